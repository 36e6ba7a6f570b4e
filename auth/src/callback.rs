//! The HTTP callback's documents. The server POSTs (`Content-Type: application/json`):
//!
//! ```json
//! {"action": "publish", "protocol": "rtmp", "key": "live/cam", "remote": "203.0.113.7:50312",
//!  "conn_id": 12, "params": {"token": "..."}}
//! ```
//!
//! `params` holds the RTMP `?query` of the stream name or the SRT stream id fields, as sent
//! (the callback decides, so it sees the credential). A 2xx answer allows; its body may be
//! empty or a JSON object with `key` (use this key instead: a rename) and, for SRT,
//! `passphrase` (the stream must be encrypted with it). Any other status, a timeout or an
//! unusable reply denies.

use proto::media::StreamKey;
use serde::Deserialize;

use crate::request::{Denial, Outcome, Protocol, Request};
use crate::secret::Secret;

/// Longest reply body read.
pub const MAX_REPLY: usize = 64 * 1024;
/// Shortest and longest SRT passphrase (the SRT library's limits).
pub const PASSPHRASE_LEN: std::ops::RangeInclusive<usize> = 10..=79;

/// The JSON body posted for `req`.
pub fn body(req: &Request) -> Vec<u8> {
    let params: serde_json::Map<String, serde_json::Value> = req
        .params
        .iter()
        .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let doc = serde_json::json!({
        "action": req.action.as_str(),
        "protocol": req.protocol.as_str(),
        "key": req.key,
        "remote": req.remote.to_string(),
        "conn_id": req.conn_id,
        "params": params,
    });
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

#[derive(Deserialize)]
struct Reply {
    key: Option<String>,
    passphrase: Option<String>,
}

/// The outcome of a reply with `status` and `body`.
pub fn outcome(req: &Request, status: u16, body: &[u8]) -> Outcome {
    if !(200..300).contains(&status) {
        return Outcome::Deny(Denial::CallbackStatus(status));
    }
    let trimmed = body.trim_ascii();
    let reply = if trimmed.first() == Some(&b'{') {
        match serde_json::from_slice::<Reply>(trimmed) {
            Ok(r) => r,
            Err(e) => {
                let e = crate::redact::hide_strings(&e.to_string());
                return Outcome::Deny(Denial::CallbackReply(format!("invalid JSON: {e}")));
            }
        }
    } else {
        // A bare "OK" or an empty body: allowed as asked.
        Reply {
            key: None,
            passphrase: None,
        }
    };
    let key = match reply.key {
        Some(k) => match StreamKey::parse(&k) {
            Ok(k) => k.as_str().to_owned(),
            Err(e) => return Outcome::Deny(Denial::CallbackReply(format!("key: {e}"))),
        },
        None => req.key.clone(),
    };
    let passphrase = match reply.passphrase {
        Some(p) if req.protocol != Protocol::Srt => {
            tracing::debug!(
                len = p.len(),
                "callback passphrase ignored: not an SRT client"
            );
            None
        }
        Some(p) if !PASSPHRASE_LEN.contains(&p.len()) => {
            return Outcome::Deny(Denial::CallbackReply(format!(
                "passphrase of {} bytes; SRT needs 10 to 79",
                p.len()
            )))
        }
        Some(p) => Some(Secret::new(p)),
        None => None,
    };
    Outcome::Allow { key, passphrase }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Action;

    fn req(protocol: Protocol) -> Request {
        Request {
            action: Action::Publish,
            protocol,
            key: "live/cam".into(),
            remote: "127.0.0.1:5000".parse().unwrap(),
            conn_id: 7,
            params: vec![("token".into(), "t".into())],
        }
    }

    #[test]
    fn body_shape() {
        let v: serde_json::Value = serde_json::from_slice(&body(&req(Protocol::Rtmp))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"action": "publish", "protocol": "rtmp", "key": "live/cam",
                "remote": "127.0.0.1:5000", "conn_id": 7, "params": {"token": "t"}})
        );
    }

    proptest::proptest! {
        /// Only a 2xx allows; a valid key in the reply is the key granted, a passphrase
        /// within SRT's limits is granted to SRT callers only; a reply that cannot be used
        /// denies and its error shows no value of the reply.
        #[test]
        fn reply_decides(
            status in 100u16..600,
            key in proptest::option::of("[a-z]{1,6}/[a-z0-9]{1,6}|\\PC{0,12}"),
            passphrase in proptest::option::of("[ -~]{0,90}"),
            srt in proptest::bool::ANY,
            junk in proptest::option::of("\\PC{0,40}"),
        ) {
            let r = req(if srt { Protocol::Srt } else { Protocol::Rtmp });
            let body = match &junk {
                Some(j) => j.clone(),
                None => serde_json::json!({"key": key, "passphrase": passphrase}).to_string(),
            };
            let out = outcome(&r, status, body.as_bytes());
            if !(200..300).contains(&status) {
                proptest::prop_assert_eq!(out, Outcome::Deny(Denial::CallbackStatus(status)));
                return Ok(());
            }
            if junk.is_some() {
                if let Outcome::Allow { key, passphrase } = out {
                    proptest::prop_assert_eq!(key, "live/cam");
                    proptest::prop_assert!(passphrase.is_none());
                }
                return Ok(());
            }
            let key_ok = key.as_deref().is_none_or(|k| StreamKey::parse(k).is_ok());
            let pass_ok = !srt || passphrase.as_ref().is_none_or(|p| PASSPHRASE_LEN.contains(&p.len()));
            match out {
                Outcome::Allow { key: granted, passphrase: granted_pass } => {
                    proptest::prop_assert!(key_ok && pass_ok);
                    let expected = key.map_or("live/cam".to_owned(), |k| StreamKey::parse(&k).unwrap().as_str().to_owned());
                    proptest::prop_assert_eq!(granted, expected);
                    let expected = passphrase.filter(|_| srt).map(Secret::new);
                    proptest::prop_assert_eq!(granted_pass, expected);
                }
                Outcome::Deny(d) => {
                    proptest::prop_assert!(!(key_ok && pass_ok), "{}", d);
                    // (A key error may quote the key, which the passphrase could be part of.)
                    if let Some(p) = passphrase.filter(|p| key_ok && p.len() >= 4) {
                        proptest::prop_assert!(!d.to_string().contains(&p), "{}", d);
                    }
                }
            }
        }
    }

    #[test]
    fn replies() {
        let r = req(Protocol::Rtmp);
        assert_eq!(
            outcome(&r, 200, b""),
            Outcome::Allow {
                key: "live/cam".into(),
                passphrase: None
            }
        );
        assert_eq!(
            outcome(&r, 204, b"OK"),
            Outcome::Allow {
                key: "live/cam".into(),
                passphrase: None
            }
        );
        assert_eq!(
            outcome(&r, 200, br#"{"key":"live/renamed"}"#),
            Outcome::Allow {
                key: "live/renamed".into(),
                passphrase: None
            }
        );
        assert_eq!(
            outcome(&r, 403, b""),
            Outcome::Deny(Denial::CallbackStatus(403))
        );
        assert_eq!(
            outcome(&r, 302, b""),
            Outcome::Deny(Denial::CallbackStatus(302))
        );
        assert!(matches!(
            outcome(&r, 200, br#"{"key":"../x"}"#),
            Outcome::Deny(Denial::CallbackReply(_))
        ));
        assert!(matches!(
            outcome(&r, 200, b"{nope"),
            Outcome::Deny(Denial::CallbackReply(_))
        ));
        let s = req(Protocol::Srt);
        assert_eq!(
            outcome(&s, 200, br#"{"passphrase":"0123456789ab"}"#),
            Outcome::Allow {
                key: "live/cam".into(),
                passphrase: Some(Secret::new("0123456789ab"))
            }
        );
        let short = outcome(&s, 200, br#"{"passphrase":"short"}"#);
        assert!(matches!(short, Outcome::Deny(Denial::CallbackReply(_))));
        assert!(!format!("{short:?}").contains("short\""));
    }
}
