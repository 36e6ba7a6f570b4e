//! `/metrics` (Prometheus text format 0.0.4) and `/debug/vars` (expvar-style JSON): the
//! hub's own series plus every component's latest counter report, the same numbers in
//! both.

use std::collections::BTreeMap;
use std::fmt::Write;

use hyper::{Response, StatusCode};
use proto::metrics::{format_value, is_counter, write_label_value, Series};
use serde_json::{Map, Value};

use super::body::Body;
use super::router::{json, response};
use super::Http;

/// Help for series no component listed in `telemetry::catalog`.
const UNLISTED_HELP: &str = "Reported by a component (see docs/metrics.md).";

impl Http {
    /// Every series with its value: the hub's own, derived gauges and the reports.
    fn samples(&self) -> BTreeMap<Series, f64> {
        let (mut all, components) = self.registry.reports().merged();
        for (s, v) in self.registry.stats().metrics.snapshot() {
            *all.entry(s).or_insert(0.0) += v;
        }
        let (live, total) = self.registry.stream_counts();
        all.insert(Series::new("mediaserver_streams"), total as f64);
        all.insert(Series::new("mediaserver_streams_live"), live as f64);
        all.insert(
            Series::new("mediaserver_uptime_seconds"),
            self.started.elapsed().as_secs() as f64,
        );
        for c in components {
            all.insert(
                Series::new("mediaserver_component_reporting").label("component", c),
                1.0,
            );
        }
        all
    }

    /// `GET /metrics`.
    pub(super) fn prometheus(&self) -> Response<Body> {
        response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render_prometheus(&self.samples()),
        )
    }

    /// `GET /debug/vars`.
    pub(super) fn vars(&self) -> Response<Body> {
        let mut doc = render_vars(&self.samples());
        doc.insert(
            "cmdline".into(),
            Value::from(std::env::args().collect::<Vec<_>>()),
        );
        doc.insert("memstats".into(), memstats());
        json(StatusCode::OK, &Value::Object(doc))
    }
}

/// The Prometheus text: per metric name a `# HELP` and a `# TYPE` line, then its samples.
pub fn render_prometheus(samples: &BTreeMap<Series, f64>) -> String {
    let mut out = String::with_capacity(samples.len() * 64);
    let mut current = "";
    for (s, v) in samples {
        if s.name != current {
            current = &s.name;
            let help = telemetry::catalog::help(current).unwrap_or(UNLISTED_HELP);
            let kind = if is_counter(current) {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# HELP {current} {help}");
            let _ = writeln!(out, "# TYPE {current} {kind}");
        }
        let _ = writeln!(out, "{s} {}", format_value(*v));
    }
    out
}

/// The expvar-style object: an unlabelled series is `"name": value`; a labelled one is
/// `"name": {"label=value,...": value}`.
pub fn render_vars(samples: &BTreeMap<Series, f64>) -> Map<String, Value> {
    let mut doc = Map::new();
    for (s, v) in samples {
        let value = if v.fract() == 0.0 && v.abs() < 9e15 {
            Value::from(*v as i64)
        } else {
            serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number)
        };
        if s.labels.is_empty() {
            doc.insert(s.name.clone(), value);
            continue;
        }
        let mut key = String::new();
        for (i, (k, lv)) in s.labels.iter().enumerate() {
            if i > 0 {
                key.push(',');
            }
            key.push_str(k);
            key.push('=');
            let _ = write_label_value(&mut key, lv);
        }
        let entry = doc
            .entry(s.name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(key, value);
        }
    }
    doc
}

/// Memory of the process from /proc/self/statm, in bytes.
fn memstats() -> Value {
    let page = 4096u64;
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let mut f = statm
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    let size = f.next().unwrap_or(0);
    let rss = f.next().unwrap_or(0);
    serde_json::json!({ "vm_bytes": size * page, "rss_bytes": rss * page })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_groups_series_under_one_help_and_type() {
        let mut m = BTreeMap::new();
        m.insert(
            Series::new("mediaserver_players").label("protocol", "rtmp"),
            2.0,
        );
        m.insert(
            Series::new("mediaserver_players").label("protocol", "http-flv"),
            1.0,
        );
        m.insert(Series::new("x_total").label("why", "a\"b"), 3.5);
        assert_eq!(
            render_prometheus(&m),
            "# HELP mediaserver_players Players connected now, by protocol.\n\
             # TYPE mediaserver_players gauge\n\
             mediaserver_players{protocol=\"http-flv\"} 1\n\
             mediaserver_players{protocol=\"rtmp\"} 2\n\
             # HELP x_total Reported by a component (see docs/metrics.md).\n\
             # TYPE x_total counter\n\
             x_total{why=\"a\\\"b\"} 3.5\n"
        );
        let vars = render_vars(&m);
        assert_eq!(vars["mediaserver_players"]["protocol=rtmp"], 2.0);
        assert_eq!(vars["x_total"]["why=a\\\"b"], 3.5);
    }
}
