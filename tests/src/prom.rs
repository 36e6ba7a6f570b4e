//! Prometheus text parsed by the reference parser (`prometheus_client` from PyPI), so the
//! tests check what a real scraper reads, not what our own code thinks it wrote.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// A parser run: per metric family its type, and every sample as `name{labels}` (labels
/// sorted, `k="v"` joined by `,`) with its value.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Family name (without `_total` for counters, as the parser names them) to type.
    pub types: BTreeMap<String, String>,
    /// Sample to value.
    pub samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// The value of `series` (`name` or `name{k="v",...}`, labels sorted), 0 if absent.
    pub fn get(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }
}

/// The value of `series` exactly as printed (`name` or `name{labels}` in the exposition's
/// label order) in Prometheus text, read without the reference parser: for polling.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
types, samples = {}, {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    types[fam.name] = fam.type
    for s in fam.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        samples[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps({"types": types, "samples": samples}))
"#;

/// Whether `prometheus_client` is importable.
pub fn parser_available() -> bool {
    Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Parses `text` with `prometheus_client`; panics with its error when it refuses it.
pub fn parse(text: &str) -> Scrape {
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed the parser");
    let out = child.wait_with_output().expect("parser finishes");
    assert!(
        out.status.success(),
        "prometheus_client refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("parser JSON");
    let mut scrape = Scrape::default();
    for (k, v) in doc["types"].as_object().expect("types") {
        scrape
            .types
            .insert(k.clone(), v.as_str().unwrap_or("").to_string());
    }
    for (k, v) in doc["samples"].as_object().expect("samples") {
        scrape
            .samples
            .insert(k.clone(), v.as_f64().unwrap_or(f64::NAN));
    }
    scrape
}
