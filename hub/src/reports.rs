//! Counter reports from the other components (proto/FORMAT.md section 9), kept per hub
//! connection: a report replaces that connection's previous one, and a connection that
//! closes takes its numbers with it (to Prometheus, a component restart is a counter
//! reset, which it handles).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use proto::ipc::Event;
use proto::metrics::{MetricsError, Report, Series};

/// Most reporting connections kept (each report is bounded by `proto::metrics`).
const MAX_REPORTERS: usize = 256;

/// The latest report of every reporting connection.
#[derive(Debug, Default)]
pub struct Reports {
    by_conn: Mutex<HashMap<u64, Report>>,
}

/// Why a report was not kept.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Malformed.
    #[error("{0}")]
    Malformed(#[from] MetricsError),
    /// Too many reporting connections.
    #[error("more than {MAX_REPORTERS} reporting connections")]
    TooMany,
}

impl Reports {
    /// Keeps `event` as the report of connection `conn_id`.
    pub fn update(&self, conn_id: u64, event: &Event) -> Result<(), ReportError> {
        let report = proto::metrics::parse_report(event)?;
        let mut map = self.by_conn.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_REPORTERS && !map.contains_key(&conn_id) {
            return Err(ReportError::TooMany);
        }
        map.insert(conn_id, report);
        Ok(())
    }

    /// Connection `conn_id` closed.
    pub fn forget(&self, conn_id: u64) {
        self.by_conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conn_id);
    }

    /// Every reported series summed over the connections that report it (two ingest
    /// processes' connection counts add up), and the reporting components.
    pub fn merged(&self) -> (BTreeMap<Series, f64>, Vec<String>) {
        let map = self.by_conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = BTreeMap::new();
        let mut components: Vec<String> = Vec::new();
        for r in map.values() {
            if !components.contains(&r.component) {
                components.push(r.component.clone());
            }
            for (s, v) in &r.samples {
                *out.entry(s.clone()).or_insert(0.0) += v;
            }
        }
        components.sort();
        (out, components)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_series_and_forgets_closed_connections() {
        let r = Reports::default();
        let s = Series::new("mediaserver_rtmp_connections_total");
        r.update(1, &proto::metrics::report_event("ingest-rtmp", [(&s, 3.0)]))
            .unwrap();
        r.update(2, &proto::metrics::report_event("ingest-rtmp", [(&s, 4.0)]))
            .unwrap();
        r.update(1, &proto::metrics::report_event("ingest-rtmp", [(&s, 5.0)]))
            .unwrap();
        assert_eq!(r.merged().0[&s], 9.0);
        r.forget(2);
        assert_eq!(r.merged().0[&s], 5.0);
        assert_eq!(r.merged().1, ["ingest-rtmp"]);
        let mut bad = proto::metrics::report_event("ingest-rtmp", []);
        bad.fields.push(("1x".into(), "1".into()));
        assert!(r.update(3, &bad).is_err());
    }
}
