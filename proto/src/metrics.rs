//! Counter reports: how a component (ingest-rtmp, ingest-srt, recorder, relayer,
//! supervisor, ...) tells the hub its counters, so that the hub's `/metrics` covers the
//! whole system.
//!
//! A report is an IPC [`Event`] of kind [`KIND`] (`metrics`) sent on any connection to
//! `hub.sock`. Its first field is `("component", NAME)`; every further field is one sample,
//! `(SERIES, VALUE)`, where SERIES is a Prometheus series (`name` or
//! `name{label="value",...}`) and VALUE a decimal number. Values are absolute (the
//! current total, not an increment), so a report repeated, lost or sent again after a hub
//! restart changes nothing. A name ending in `_total` is a counter, any other a gauge.
//! See `proto/FORMAT.md` section 9.
//!
//! ```text
//!  component: [(series, value)] --report_event--> Event --hub.sock--> parse_report --> Report
//! ```

use std::fmt;

use crate::ipc::Event;

/// The `Event.kind` of a counter report.
pub const KIND: &str = "metrics";
/// The name of the first field, whose value names the reporting component.
pub const COMPONENT_FIELD: &str = "component";
/// Most samples in one report.
pub const MAX_SAMPLES: usize = 4096;
/// Longest metric name, label name or component name, in bytes.
pub const MAX_NAME: usize = 128;
/// Longest label value, in bytes.
pub const MAX_LABEL_VALUE: usize = 256;
/// Most labels on one series.
pub const MAX_LABELS: usize = 8;

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// The event is not a counter report.
    #[error("event kind {0:?} is not {KIND:?}")]
    Kind(String),
    /// The first field is not `component`, or the component name is not a valid name.
    #[error(
        "the first field must be `component` with a name of [a-z0-9_-], 1 to {MAX_NAME} bytes"
    )]
    Component,
    /// More than [`MAX_SAMPLES`] samples.
    #[error("{0} samples; at most {MAX_SAMPLES}")]
    TooManySamples(usize),
    /// A series is not `name` or `name{label="value",...}` within the limits.
    #[error("series {series:?}: {why}")]
    Series {
        /// The offending text (cut to [`MAX_NAME`] bytes).
        series: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A value is not a finite decimal number.
    #[error("series {series:?}: value {value:?} is not a finite number")]
    Value {
        /// The series.
        series: String,
        /// The offending value (cut to [`MAX_NAME`] bytes).
        value: String,
    },
}

/// One Prometheus series: a metric name and its labels, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    /// Metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    pub name: String,
    /// Label names (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`) and values (any
    /// UTF-8 text).
    pub labels: Vec<(String, String)>,
}

/// Whether a sample of this metric is a counter (`_total`) rather than a gauge.
pub fn is_counter(name: &str) -> bool {
    name.ends_with("_total")
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_NAME);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn valid_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        && s.len() <= MAX_NAME
}

fn valid_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.starts_with("__")
        && s.len() <= MAX_NAME
}

fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Series {
    /// A series with no labels.
    pub fn new(name: impl Into<String>) -> Series {
        Series {
            name: name.into(),
            labels: Vec::new(),
        }
    }

    /// Adds a label.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Series {
        self.labels.push((name.into(), value.into()));
        self
    }

    /// Parses `name` or `name{label="value",...}` (values escape `\`, `"` and newline as
    /// `\\`, `\"`, `\n`, as in the Prometheus text format).
    pub fn parse(text: &str) -> Result<Series, MetricsError> {
        let bad = |why| MetricsError::Series {
            series: cut(text),
            why,
        };
        let (name, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        if !valid_metric_name(name) {
            return Err(bad("invalid metric name"));
        }
        let mut series = Series::new(name);
        let Some(mut rest) = rest else {
            return Ok(series);
        };
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                if !after.is_empty() {
                    return Err(bad("text after the closing brace"));
                }
                return Ok(series);
            }
            if series.labels.len() == MAX_LABELS {
                return Err(bad("too many labels"));
            }
            let eq = rest.find('=').ok_or_else(|| bad("label without '='"))?;
            let label = &rest[..eq];
            if !valid_label_name(label) {
                return Err(bad("invalid label name"));
            }
            if series.labels.iter().any(|(l, _)| l == label) {
                return Err(bad("repeated label"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| bad("label value not quoted"))?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(bad("unterminated label value")),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err(bad("invalid escape in label value")),
                    },
                    Some((_, c)) => value.push(c),
                }
                if value.len() > MAX_LABEL_VALUE {
                    return Err(bad("label value too long"));
                }
            };
            series.labels.push((label.to_string(), value));
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(bad("expected ',' or '}' after a label"));
            }
        }
    }

    /// Checks the names and limits (what [`Series::parse`] checks for text).
    pub fn validate(&self) -> Result<(), MetricsError> {
        Series::parse(&self.to_string()).map(|_| ())
    }
}

/// Writes a label value with `\`, `"` and newline escaped.
pub fn write_label_value(f: &mut impl fmt::Write, value: &str) -> fmt::Result {
    for c in value.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.labels.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=\"")?;
            write_label_value(f, v)?;
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// A parsed counter report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The reporting component (`ingest-rtmp`, `recorder`, ...).
    pub component: String,
    /// Its samples.
    pub samples: Vec<(Series, f64)>,
}

/// Builds the report event of `component` with `samples`.
pub fn report_event<'a>(
    component: &str,
    samples: impl IntoIterator<Item = (&'a Series, f64)>,
) -> Event {
    let mut fields = vec![(COMPONENT_FIELD.to_string(), component.to_string())];
    fields.extend(
        samples
            .into_iter()
            .map(|(s, v)| (s.to_string(), format_value(v))),
    );
    Event {
        kind: KIND.to_string(),
        key: String::new(),
        conn_id: 0,
        remote: String::new(),
        fields,
    }
}

/// Formats a value the way reports and the Prometheus text carry it: integers without a
/// fraction, others in the shortest form that reads back the same.
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Parses a report event, checking every name and limit.
pub fn parse_report(event: &Event) -> Result<Report, MetricsError> {
    if event.kind != KIND {
        return Err(MetricsError::Kind(cut(&event.kind)));
    }
    let (first, rest) = event.fields.split_first().ok_or(MetricsError::Component)?;
    if first.0 != COMPONENT_FIELD || !valid_component(&first.1) {
        return Err(MetricsError::Component);
    }
    if rest.len() > MAX_SAMPLES {
        return Err(MetricsError::TooManySamples(rest.len()));
    }
    let mut samples = Vec::with_capacity(rest.len());
    for (series, value) in rest {
        let s = Series::parse(series)?;
        let v = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| MetricsError::Value {
                series: cut(series),
                value: cut(value),
            })?;
        samples.push((s, v));
    }
    Ok(Report {
        component: first.1.clone(),
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_plain_and_labelled_series() {
        assert_eq!(
            Series::parse("mediaserver_connections_total").unwrap(),
            Series::new("mediaserver_connections_total")
        );
        let s = Series::parse(r#"a:b_c{protocol="rtmp",why="say \"hi\"\\\n"}"#).unwrap();
        assert_eq!(s.name, "a:b_c");
        assert_eq!(
            s.labels,
            [
                ("protocol".to_string(), "rtmp".to_string()),
                ("why".to_string(), "say \"hi\"\\\n".to_string())
            ]
        );
        assert_eq!(
            s.to_string(),
            r#"a:b_c{protocol="rtmp",why="say \"hi\"\\\n"}"#
        );
        assert_eq!(Series::parse("x{}").unwrap(), Series::new("x"));
    }

    #[test]
    fn refuses_bad_series() {
        for bad in [
            "",
            "1abc",
            "a-b",
            "a{",
            "a{b}",
            "a{b=c}",
            "a{b=\"c\"",
            "a{b=\"c\"}x",
            "a{__b=\"c\"}",
            "a{b=\"c\",b=\"d\"}",
            "a{b=\"c\\t\"}",
            "a{b=\"c\" d=\"e\"}",
            "a{1=\"c\"}",
        ] {
            assert!(Series::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(MAX_NAME + 1);
        assert!(Series::parse(&long).is_err());
        let many = format!(
            "a{{{}}}",
            (0..=MAX_LABELS)
                .map(|i| format!("l{i}=\"v\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(Series::parse(&many).is_err());
        let value = format!("a{{b=\"{}\"}}", "v".repeat(MAX_LABEL_VALUE + 1));
        assert!(Series::parse(&value).is_err());
    }

    #[test]
    fn report_round_trip_and_golden_fields() {
        let conns = Series::new("mediaserver_rtmp_connections_total");
        let players = Series::new("mediaserver_players").label("protocol", "rtmp");
        let ev = report_event("ingest-rtmp", [(&conns, 12.0), (&players, 2.5)]);
        assert_eq!(ev.kind, "metrics");
        assert_eq!(
            ev.fields,
            [
                ("component".to_string(), "ingest-rtmp".to_string()),
                (
                    "mediaserver_rtmp_connections_total".to_string(),
                    "12".to_string()
                ),
                (
                    "mediaserver_players{protocol=\"rtmp\"}".to_string(),
                    "2.5".to_string()
                ),
            ]
        );
        let r = parse_report(&ev).unwrap();
        assert_eq!(r.component, "ingest-rtmp");
        assert_eq!(r.samples, [(conns, 12.0), (players, 2.5)]);
    }

    #[test]
    fn refuses_bad_reports() {
        let mut ev = report_event("recorder", []);
        ev.kind = "publish".into();
        assert!(matches!(parse_report(&ev), Err(MetricsError::Kind(_))));
        let mut ev = report_event("Bad Name", []);
        assert_eq!(parse_report(&ev), Err(MetricsError::Component));
        ev.fields.clear();
        assert_eq!(parse_report(&ev), Err(MetricsError::Component));
        let mut ev = report_event("recorder", []);
        ev.fields.push(("x_total".into(), "NaN".into()));
        assert!(matches!(parse_report(&ev), Err(MetricsError::Value { .. })));
        let mut ev = report_event("recorder", []);
        ev.fields.push(("x_total".into(), "12abc".into()));
        assert!(matches!(parse_report(&ev), Err(MetricsError::Value { .. })));
        let mut ev = report_event("recorder", []);
        ev.fields
            .extend((0..=MAX_SAMPLES).map(|i| (format!("x{i}"), "1".to_string())));
        assert!(matches!(
            parse_report(&ev),
            Err(MetricsError::TooManySamples(_))
        ));
    }

    #[test]
    fn values() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(-3.0), "-3");
        assert_eq!(format_value(1.25), "1.25");
        assert_eq!(format_value(1e20), "100000000000000000000");
    }

    fn series_strategy() -> impl Strategy<Value = Series> {
        (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
            proptest::collection::btree_map("[a-zA-Z][a-zA-Z0-9_]{0,10}", ".{0,20}", 0..4),
        )
            .prop_map(|(name, labels)| Series {
                name,
                labels: labels.into_iter().collect(),
            })
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(s in series_strategy()) {
            prop_assert_eq!(Series::parse(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = Series::parse(&text);
        }
    }
}
