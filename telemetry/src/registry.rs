//! The series of one component, each an atomic that hot paths bump without locking.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use proto::metrics::Series;

#[derive(Debug, Clone)]
enum Slot {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicI64>),
}

/// The counters and gauges of one component. Registering a series again returns the same
/// atomic, so a handle may be taken wherever it is needed.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<Series, Slot>>,
}

/// A monotonic counter (its name ends in `_total`).
#[derive(Debug, Clone)]
pub struct Counter(Arc<AtomicU64>);

/// A value that goes up and down.
#[derive(Debug, Clone)]
pub struct Gauge(Arc<AtomicI64>);

/// Decrements its gauge when dropped (for "currently open" gauges).
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `n` (negative: subtracts), for a gauge several owners move by their share.
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Increments now and decrements when the guard is dropped.
    pub fn track(&self) -> GaugeGuard {
        self.inc();
        GaugeGuard(self.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// An empty set.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn slot(&self, name: &str, labels: &[(&str, &str)], counter: bool) -> Slot {
        let series = series(name, labels);
        debug_assert!(series.validate().is_ok(), "invalid series {series}");
        debug_assert_eq!(proto::metrics::is_counter(name), counter, "{name}");
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(series)
            .or_insert_with(|| {
                if counter {
                    Slot::Counter(Arc::default())
                } else {
                    Slot::Gauge(Arc::default())
                }
            })
            .clone()
    }

    /// The counter `name{labels}` (created at 0). `name` must end in `_total`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        match self.slot(name, labels, true) {
            Slot::Counter(c) => Counter(c),
            Slot::Gauge(_) => Counter(Arc::default()),
        }
    }

    /// The gauge `name{labels}` (created at 0). `name` must not end in `_total`.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.slot(name, labels, false) {
            Slot::Gauge(g) => Gauge(g),
            Slot::Counter(_) => Gauge(Arc::default()),
        }
    }

    /// Removes the series `name{labels}` (a connection's series when it ends): the next
    /// report leaves it out, so the hub stops serving it. Handles still held keep working
    /// but count into nothing; taking the series again starts it at 0. Returns whether it
    /// was there.
    pub fn remove(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        let series = series(name, labels);
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&series).is_some()
    }

    /// Every series with its current value, in series order.
    pub fn snapshot(&self) -> Vec<(Series, f64)> {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(s, slot)| {
                let v = match slot {
                    Slot::Counter(c) => c.load(Ordering::Relaxed) as f64,
                    Slot::Gauge(g) => g.load(Ordering::Relaxed) as f64,
                };
                (s.clone(), v)
            })
            .collect()
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    Series {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_series_same_atomic_and_snapshot_order() {
        let m = Metrics::new();
        let a = m.counter("x_total", &[("protocol", "rtmp")]);
        let b = m.counter("x_total", &[("protocol", "rtmp")]);
        a.inc();
        b.add(2);
        let g = m.gauge("open", &[]);
        {
            let _held = g.track();
            assert_eq!(g.get(), 1);
        }
        g.set(-4);
        let snap = m.snapshot();
        assert_eq!(
            snap,
            [
                (Series::new("open"), -4.0),
                (Series::new("x_total").label("protocol", "rtmp"), 3.0)
            ]
        );
    }

    #[test]
    fn removed_series_leave_the_snapshot_and_come_back_at_zero() {
        let m = Metrics::new();
        let conn = [("key", "live/a"), ("conn_id", "7")];
        let other = [("key", "live/b"), ("conn_id", "8")];
        let c = m.counter("srt_x_total", &conn);
        c.add(5);
        m.gauge("srt_rtt", &conn).set(20);
        m.counter("srt_x_total", &other).add(1);
        assert!(m.remove("srt_x_total", &conn));
        assert!(m.remove("srt_rtt", &conn));
        assert!(!m.remove("srt_rtt", &conn), "already gone");
        // Same name, other labels: kept.
        assert_eq!(
            m.snapshot(),
            [(
                Series::new("srt_x_total")
                    .label("key", "live/b")
                    .label("conn_id", "8"),
                1.0
            )]
        );
        // A stale handle changes nothing served; the series taken again starts over.
        c.add(3);
        assert_eq!(m.snapshot().len(), 1);
        assert_eq!(m.counter("srt_x_total", &conn).get(), 0);
    }
}
