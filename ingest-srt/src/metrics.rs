//! ingest-srt's series (docs/metrics.md, "ingest-srt"): process totals, and one labelled
//! set per connection (`key`, `role`, `conn_id`) that is removed when the connection ends.
//!
//! ```text
//!  endpoint, every second and on close: Connection::stats() --> ConnMetrics::update
//!      growth since the last update --> process totals (counters, closed ones included)
//!                                   \-> the connection's own series (while it is open)
//!  ConnMetrics dropped --> its series removed --> gone from the next report to the hub
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use proto::srt::{RejectReason, Stats, MAX_PAYLOAD};
use telemetry::{Counter, Gauge, GaugeGuard, Metrics};

/// Connections with series of their own, at most: each has [`COUNTERS`] + [`GAUGES`]
/// series and a report holds at most `proto::metrics::MAX_SAMPLES` (4096). Connections
/// beyond it count into the totals only.
pub(crate) const MAX_LABELLED: usize = 200;

/// A statistic that only grows: its per-connection counter, and the process total it
/// adds to (if any).
struct Growing {
    name: &'static str,
    total: Option<&'static str>,
    value: fn(&Stats) -> u64,
}

/// Per-connection counters, each in the process total named next to it.
const COUNTERS: &[Growing] = &[
    Growing {
        name: "mediaserver_srt_connection_packets_received_total",
        total: Some("mediaserver_srt_packets_in_total"),
        value: |s| s.recv_packets,
    },
    Growing {
        name: "mediaserver_srt_connection_bytes_received_total",
        total: Some("mediaserver_srt_bytes_in_total"),
        value: |s| s.recv_bytes,
    },
    Growing {
        name: "mediaserver_srt_connection_packets_lost_total",
        total: Some("mediaserver_srt_packets_lost_total"),
        value: |s| s.recv_lost,
    },
    Growing {
        name: "mediaserver_srt_connection_packets_retransmitted_total",
        total: Some("mediaserver_srt_packets_retransmitted_total"),
        value: |s| s.recv_retransmitted,
    },
    Growing {
        name: "mediaserver_srt_connection_packets_dropped_total",
        total: Some("mediaserver_srt_packets_dropped_total"),
        value: |s| s.recv_dropped,
    },
    Growing {
        name: "mediaserver_srt_connection_packets_undecrypted_total",
        total: Some("mediaserver_srt_packets_undecrypted_total"),
        value: |s| s.recv_undecrypted,
    },
    Growing {
        name: "mediaserver_srt_connection_naks_sent_total",
        total: Some("mediaserver_srt_naks_sent_total"),
        value: |s| s.naks_sent,
    },
    Growing {
        name: "mediaserver_srt_connection_packets_sent_total",
        total: Some("mediaserver_srt_packets_out_total"),
        value: |s| s.sent_packets,
    },
    Growing {
        name: "mediaserver_srt_connection_bytes_sent_total",
        total: Some("mediaserver_srt_bytes_out_total"),
        value: |s| s.sent_bytes,
    },
    Growing {
        name: "mediaserver_srt_connection_packets_resent_total",
        total: Some("mediaserver_srt_packets_resent_total"),
        value: |s| s.sent_retransmitted,
    },
    Growing {
        name: "mediaserver_srt_connection_packets_send_dropped_total",
        total: None,
        value: |s| s.sent_dropped,
    },
    Growing {
        name: "mediaserver_srt_connection_naks_received_total",
        total: None,
        value: |s| s.naks_received,
    },
];

/// A statistic's value now.
type Now = fn(&Stats) -> i64;

/// Per-connection gauges: values now, which do not add up across connections.
const GAUGES: &[(&str, Now)] = &[
    ("mediaserver_srt_connection_rtt_microseconds", |s| {
        i64::from(s.rtt_us)
    }),
    ("mediaserver_srt_connection_rtt_var_microseconds", |s| {
        i64::from(s.rtt_var_us)
    }),
    ("mediaserver_srt_connection_receive_buffer_packets", |s| {
        i64::from(s.recv_buffer_packets)
    }),
    (
        "mediaserver_srt_connection_receive_buffer_milliseconds",
        |s| i64::from(s.recv_buffer_ms),
    ),
    ("mediaserver_srt_connection_send_buffer_packets", |s| {
        i64::from(s.send_buffer_packets)
    }),
    // libsrt's mbpsBandwidth: the packet-pair capacity times a full packet's payload.
    (
        "mediaserver_srt_connection_bandwidth_bits_per_second",
        |s| i64::from(s.link_capacity_pps) * MAX_PAYLOAD as i64 * 8,
    ),
];

/// Which side of the media a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Publishes a stream (sends media to us).
    Publisher,
    /// Plays a stream (`m=request`: we send media).
    Player,
}

impl Role {
    /// The `role` label value (and the `srt_stats` event's `role` field).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Player => "player",
        }
    }
}

/// The process-wide series of ingest-srt.
#[derive(Debug)]
pub(crate) struct SrtMetrics {
    registry: Arc<Metrics>,
    open: Gauge,
    accepted: Counter,
    publishers: Gauge,
    publishes: Counter,
    players: Gauge,
    /// One per entry of [`COUNTERS`].
    totals: Vec<Option<Counter>>,
    /// MPEG-TS damage the publishers contained.
    pub(crate) ts_errors: Counter,
    /// Datagrams dropped instead of sent: the UDP send buffer was full.
    pub(crate) send_dropped: Counter,
    labelled: AtomicUsize,
}

impl SrtMetrics {
    /// Registers the process series in `registry` (at 0, so they are served before the
    /// first connection).
    pub(crate) fn new(registry: Arc<Metrics>) -> Arc<SrtMetrics> {
        let r = &registry;
        Arc::new(SrtMetrics {
            open: r.gauge("mediaserver_srt_connections_open", &[]),
            accepted: r.counter("mediaserver_srt_connections_total", &[]),
            publishers: r.gauge("mediaserver_srt_publishers", &[]),
            publishes: r.counter("mediaserver_srt_publishes_total", &[]),
            players: r.gauge("mediaserver_srt_players", &[]),
            totals: COUNTERS
                .iter()
                .map(|c| c.total.map(|t| r.counter(t, &[])))
                .collect(),
            ts_errors: r.counter("mediaserver_srt_ts_errors_total", &[]),
            send_dropped: r.counter("mediaserver_srt_datagrams_send_dropped_total", &[]),
            labelled: AtomicUsize::new(0),
            registry,
        })
    }

    /// A handshake refused with `reason`.
    pub(crate) fn refused(&self, reason: RejectReason) {
        let reason = reason.name().to_ascii_lowercase();
        self.registry
            .counter(
                "mediaserver_srt_connections_refused_total",
                &[("reason", &reason)],
            )
            .inc();
    }

    /// An established connection: counted open until the returned value is dropped, with
    /// series of its own while fewer than [`MAX_LABELLED`] other connections have them.
    pub(crate) fn connection(self: &Arc<Self>, key: &str, role: Role, conn_id: u64) -> ConnMetrics {
        self.accepted.inc();
        let role_open = match role {
            Role::Publisher => {
                self.publishes.inc();
                self.publishers.track()
            }
            Role::Player => self.players.track(),
        };
        let labelled = self
            .labelled
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_LABELLED).then_some(n + 1)
            })
            .is_ok();
        let own = labelled.then(|| {
            let labels = Labels {
                key: key.to_string(),
                role: role.as_str(),
                conn_id: conn_id.to_string(),
            };
            let l = labels.as_slice();
            Own {
                counters: COUNTERS
                    .iter()
                    .map(|c| self.registry.counter(c.name, &l))
                    .collect(),
                gauges: GAUGES
                    .iter()
                    .map(|(name, _)| self.registry.gauge(name, &l))
                    .collect(),
                labels,
            }
        });
        ConnMetrics {
            shared: self.clone(),
            own,
            last: Stats::default(),
            _open: self.open.track(),
            _role: role_open,
        }
    }
}

/// The labels of one connection's series.
#[derive(Debug)]
struct Labels {
    key: String,
    role: &'static str,
    conn_id: String,
}

impl Labels {
    fn as_slice(&self) -> [(&str, &str); 3] {
        [
            ("key", &self.key),
            ("role", self.role),
            ("conn_id", &self.conn_id),
        ]
    }
}

/// A connection's own series.
#[derive(Debug)]
struct Own {
    labels: Labels,
    counters: Vec<Counter>,
    gauges: Vec<Gauge>,
}

/// One connection's share of the series; its own series go when it is dropped.
#[derive(Debug)]
pub(crate) struct ConnMetrics {
    shared: Arc<SrtMetrics>,
    own: Option<Own>,
    /// The statistics of the last update.
    last: Stats,
    _open: GaugeGuard,
    _role: GaugeGuard,
}

impl ConnMetrics {
    /// Takes the connection's statistics now: counters grow by what they grew since the
    /// last update, gauges are set.
    pub(crate) fn update(&mut self, s: &Stats) {
        for (i, c) in COUNTERS.iter().enumerate() {
            let grew = (c.value)(s).saturating_sub((c.value)(&self.last));
            if grew == 0 {
                continue;
            }
            if let Some(total) = &self.shared.totals[i] {
                total.add(grew);
            }
            if let Some(own) = &self.own {
                own.counters[i].add(grew);
            }
        }
        if let Some(own) = &self.own {
            for ((_, value), g) in GAUGES.iter().zip(&own.gauges) {
                g.set(value(s));
            }
        }
        self.last = *s;
    }
}

impl Drop for ConnMetrics {
    fn drop(&mut self) {
        let Some(own) = self.own.take() else { return };
        let l = own.labels.as_slice();
        for c in COUNTERS {
            self.shared.registry.remove(c.name, &l);
        }
        for (name, _) in GAUGES {
            self.shared.registry.remove(name, &l);
        }
        self.shared.labelled.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(m: &Metrics, name: &str, conn: Option<&str>) -> Option<f64> {
        m.snapshot()
            .into_iter()
            .find(|(s, _)| {
                s.name == name
                    && conn.is_none_or(|c| s.labels.iter().any(|(k, v)| k == "conn_id" && v == c))
            })
            .map(|(_, v)| v)
    }

    #[test]
    fn connections_add_their_growth_to_the_totals_and_take_their_series_away() {
        let registry = Arc::new(Metrics::new());
        let m = SrtMetrics::new(registry.clone());
        let mut a = m.connection("live/a", Role::Publisher, 1);
        let mut b = m.connection("live/b", Role::Player, 2);
        let stats = |packets, rtt_us| Stats {
            recv_packets: packets,
            sent_packets: packets,
            rtt_us,
            link_capacity_pps: 10,
            ..Stats::default()
        };
        a.update(&stats(10, 20_000));
        a.update(&stats(25, 30_000));
        b.update(&stats(5, 1_000));
        let r = &registry;
        let conn_packets = "mediaserver_srt_connection_packets_received_total";
        assert_eq!(value(r, conn_packets, Some("1")), Some(25.0));
        assert_eq!(value(r, conn_packets, Some("2")), Some(5.0));
        assert_eq!(
            value(r, "mediaserver_srt_packets_in_total", None),
            Some(30.0)
        );
        assert_eq!(
            value(r, "mediaserver_srt_packets_out_total", None),
            Some(30.0)
        );
        assert_eq!(
            value(r, "mediaserver_srt_connection_rtt_microseconds", Some("1")),
            Some(30_000.0)
        );
        assert_eq!(
            value(
                r,
                "mediaserver_srt_connection_bandwidth_bits_per_second",
                Some("1")
            ),
            Some(10.0 * 1456.0 * 8.0)
        );
        assert_eq!(
            value(r, "mediaserver_srt_connections_open", None),
            Some(2.0)
        );
        assert_eq!(value(r, "mediaserver_srt_publishers", None), Some(1.0));
        assert_eq!(value(r, "mediaserver_srt_players", None), Some(1.0));
        let labels = r
            .snapshot()
            .into_iter()
            .find(|(s, _)| s.name == conn_packets)
            .map(|(s, _)| s.labels)
            .unwrap();
        assert_eq!(
            labels,
            [
                ("key".to_string(), "live/a".to_string()),
                ("role".to_string(), "publisher".to_string()),
                ("conn_id".to_string(), "1".to_string()),
            ]
        );
        // The publisher leaves after a last update: its series go, the totals keep it.
        a.update(&stats(26, 30_000));
        drop(a);
        assert!(r
            .snapshot()
            .iter()
            .all(|(s, _)| !s.labels.iter().any(|(k, v)| k == "conn_id" && v == "1")));
        assert_eq!(value(r, conn_packets, Some("2")), Some(5.0));
        assert_eq!(
            value(r, "mediaserver_srt_packets_in_total", None),
            Some(31.0)
        );
        assert_eq!(
            value(r, "mediaserver_srt_connections_open", None),
            Some(1.0)
        );
        assert_eq!(value(r, "mediaserver_srt_publishers", None), Some(0.0));
        assert_eq!(
            value(r, "mediaserver_srt_connections_total", None),
            Some(2.0)
        );
        assert_eq!(value(r, "mediaserver_srt_publishes_total", None), Some(1.0));
        assert_eq!(
            value(r, "mediaserver_srt_datagrams_send_dropped_total", None),
            Some(0.0)
        );
        m.refused(RejectReason::BadSecret);
        let refused = r
            .snapshot()
            .into_iter()
            .find(|(s, _)| s.name == "mediaserver_srt_connections_refused_total")
            .unwrap();
        assert_eq!(
            refused.0.labels,
            [("reason".to_string(), "badsecret".to_string())]
        );
    }

    #[test]
    fn connections_beyond_the_labelled_bound_count_in_the_totals_only() {
        let registry = Arc::new(Metrics::new());
        let m = SrtMetrics::new(registry.clone());
        let mut conns: Vec<ConnMetrics> = (0..MAX_LABELLED as u64 + 1)
            .map(|i| m.connection("live/a", Role::Publisher, i))
            .collect();
        let one = Stats {
            recv_packets: 1,
            ..Stats::default()
        };
        for c in &mut conns {
            c.update(&one);
        }
        let own = |r: &Metrics| {
            r.snapshot()
                .iter()
                .filter(|(s, _)| s.name == "mediaserver_srt_connection_packets_received_total")
                .count()
        };
        assert_eq!(own(&registry), MAX_LABELLED);
        assert!(registry.snapshot().len() < proto::metrics::MAX_SAMPLES);
        assert_eq!(
            value(&registry, "mediaserver_srt_packets_in_total", None),
            Some(MAX_LABELLED as f64 + 1.0)
        );
        // A labelled one leaves: the next connection gets series of its own again.
        conns.remove(0);
        let _next = m.connection("live/b", Role::Player, 999);
        assert_eq!(own(&registry), MAX_LABELLED);
    }
}
