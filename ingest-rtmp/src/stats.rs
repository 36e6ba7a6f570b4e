//! ingest-rtmp's counters, reported to the hub (component `ingest-rtmp` at `/metrics`).

use std::sync::Arc;

use telemetry::{Counter, Gauge, Metrics};

/// Handles to every series, taken once.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) connections: Gauge,
    pub(crate) accepted: Counter,
    pub(crate) refused: Counter,
    pub(crate) publishers: Gauge,
    pub(crate) publishes: Counter,
    pub(crate) plays: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) events_dropped: Counter,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        let m = Arc::new(Metrics::new());
        Stats {
            connections: m.gauge("mediaserver_rtmp_connections_open", &[]),
            accepted: m.counter("mediaserver_rtmp_connections_total", &[]),
            refused: m.counter("mediaserver_rtmp_connections_refused_total", &[]),
            publishers: m.gauge("mediaserver_rtmp_publishers", &[]),
            publishes: m.counter("mediaserver_rtmp_publishes_total", &[]),
            plays: m.counter("mediaserver_rtmp_plays_total", &[]),
            bytes_in: m.counter("mediaserver_rtmp_bytes_in_total", &[]),
            events_dropped: m.counter("mediaserver_events_dropped_total", &[]),
            metrics: m,
        }
    }

    /// A connection closed for bad input, a limit or a timeout, at `layer`.
    pub(crate) fn closed(&self, layer: &str) {
        self.metrics
            .counter("mediaserver_rtmp_closed_total", &[("layer", layer)])
            .inc();
    }
}
