//! `mediaserver_auth_allowed_total` and `mediaserver_auth_denied_total`, counted from the
//! `auth_allowed` / `auth_denied` events the hub routes (whoever emitted them), so every
//! access decision in the system shows at `/metrics` without each emitter reporting it.
//!
//! Label values come from other processes' events: anything outside the documented sets
//! is counted as `other`, which keeps the number of series bounded.

use proto::ipc::Event;
use telemetry::Metrics;

/// Protocols that make access decisions (proto/FORMAT.md, `auth_allowed`).
const PROTOCOLS: &[&str] = &["rtmp", "rtmps", "srt", "http-flv", "ws-flv"];
/// What was asked for.
const ACTIONS: &[&str] = &["publish", "play", "connect"];
/// Why a request was refused (proto/FORMAT.md, `auth_denied`).
const REASONS: &[&str] = &[
    "missing_token",
    "invalid_token",
    "not_granted",
    "expired",
    "not_yet_valid",
    "bad_jwt",
    "callback_status",
    "callback_failed",
    "callback_reply",
    "lockout",
];

/// Counts `event` if it is an access decision; any other event is left alone.
pub fn count(metrics: &Metrics, event: &Event) {
    let allowed = match event.kind.as_str() {
        "auth_allowed" => true,
        "auth_denied" => false,
        _ => return,
    };
    let field = |name: &str, known: &[&'static str]| -> &'static str {
        let v = event
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str());
        known.iter().find(|k| **k == v).copied().unwrap_or("other")
    };
    let protocol = field("protocol", PROTOCOLS);
    let action = field("action", ACTIONS);
    if allowed {
        metrics
            .counter(
                "mediaserver_auth_allowed_total",
                &[("action", action), ("protocol", protocol)],
            )
            .inc();
    } else {
        let reason = field("reason", REASONS);
        metrics
            .counter(
                "mediaserver_auth_denied_total",
                &[
                    ("action", action),
                    ("protocol", protocol),
                    ("reason", reason),
                ],
            )
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::metrics::Series;

    fn ev(kind: &str, fields: &[(&str, &str)]) -> Event {
        Event {
            kind: kind.into(),
            key: "live/a".into(),
            conn_id: 1,
            remote: String::new(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn counts_decisions_by_label_and_folds_unknown_values() {
        let m = Metrics::new();
        count(
            &m,
            &ev(
                "auth_allowed",
                &[("action", "publish"), ("protocol", "srt")],
            ),
        );
        count(
            &m,
            &ev(
                "auth_allowed",
                &[("action", "publish"), ("protocol", "srt")],
            ),
        );
        count(
            &m,
            &ev(
                "auth_denied",
                &[
                    ("action", "play"),
                    ("protocol", "rtmp"),
                    ("reason", "expired"),
                ],
            ),
        );
        count(
            &m,
            &ev(
                "auth_denied",
                &[
                    ("action", "x"),
                    ("protocol", "gopher"),
                    ("reason", "\"huh\""),
                ],
            ),
        );
        count(&m, &ev("publish", &[("action", "publish")]));
        let snap = m.snapshot();
        assert_eq!(
            snap,
            [
                (
                    Series::new("mediaserver_auth_allowed_total")
                        .label("action", "publish")
                        .label("protocol", "srt"),
                    2.0
                ),
                (
                    Series::new("mediaserver_auth_denied_total")
                        .label("action", "other")
                        .label("protocol", "other")
                        .label("reason", "other"),
                    1.0
                ),
                (
                    Series::new("mediaserver_auth_denied_total")
                        .label("action", "play")
                        .label("protocol", "rtmp")
                        .label("reason", "expired"),
                    1.0
                ),
            ]
        );
    }
}
