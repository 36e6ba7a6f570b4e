//! Bodies of the auth fuzz targets, as plain functions so that `auth/tests/fuzz_smoke.rs`
//! runs them on stable without libFuzzer. Each parser here reads what a client, a
//! callback server, an identity provider or an operator's file sends: it must answer with
//! a decision or an error, never panic, and the invariants asserted must hold for any
//! input.

use std::net::SocketAddr;

use auth::jwt::{self, Keys, Policy};
use auth::table::Table;
use auth::{callback, redact, Action, Denial, Outcome, Protocol, Request};
use proto::media::StreamKey;
use proto::srt::StreamId;

/// A public P-256 key (x, y of a point made once with `openssl ecparam`) as a JWK set,
/// so that ES256 tokens reach signature verification.
const EC_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"ec",
    "x":"ZO2BDtP3d4dTSdobAMiiK33BIF2SUKFx_NLsWf82Xwk",
    "y":"XsxpNSv79XmzofWsW9ZY_qJFo0YU6XPvrfBzIoeMwrk"}]}"#;

/// The HS256 secret of the fuzzed tokens; the fuzzer cannot sign with it.
const HS_SECRET: &[u8] = b"fuzz-hs256-secret";

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Splits `data` at its first NUL byte (two fields of one input).
fn halves(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The RTMP stream name and app with their `?query` (`name?token=...`, `app?token=...`),
/// as ingest-rtmp and the hub's HTTP players read them: the parameters parse, the token
/// is the first `token` parameter, and the redacted forms show no value.
pub fn query(data: &[u8]) {
    let (name, app) = halves(data);
    let (name, app) = (text(name), text(app));
    let queries: Vec<&str> = [name.as_str(), app.as_str()]
        .into_iter()
        .filter_map(|s| s.split_once('?').map(|(_, q)| q))
        .collect();
    let params = redact::parse_queries(queries.iter().copied());
    let parts: usize = queries
        .iter()
        .map(|q| q.split('&').filter(|p| !p.is_empty()).count())
        .sum();
    assert_eq!(params.len(), parts, "one parameter per non-empty part");
    let req = Request {
        action: Action::Publish,
        protocol: Protocol::Rtmp,
        key: "live/x".into(),
        remote: SocketAddr::from(([127, 0, 0, 1], 1935)),
        conn_id: 1,
        params,
    };
    let first = req.params.iter().find(|(n, _)| n == "token");
    assert_eq!(req.token(), first.map(|(_, v)| v.as_str()));
    for q in &queries {
        assert_redacted(&redact::query(q));
    }
    let shown = redact::name_with_query(&name);
    let (before, after) = shown.split_once('?').unwrap_or((&shown, ""));
    assert_eq!(before, name.split('?').next().unwrap_or_default());
    assert_redacted(after);
    assert_redacted(&redact::params(&req.params));
}

/// Every `name=value` of a redacted query has the value `<redacted>`.
fn assert_redacted(q: &str) {
    for part in q.split('&') {
        if let Some(i) = part.find('=') {
            assert_eq!(&part[i + 1..], redact::REDACTED, "value shown in {q:?}");
        }
    }
}

/// A JWT as offered by a client, verified against an HS256 secret and an ES256 key: any
/// input is refused (the fuzzer cannot sign), never accepted and never a panic. Inputs
/// starting with `{` or `-` are also read as a JWK set and as a key file (a JWKS URL's
/// answer, an operator's `--jwt-key`).
pub fn jwt(data: &[u8]) {
    let s = text(data);
    let hs = Keys::hs256(HS_SECRET).expect("a secret");
    let ec = Keys::from_jwks(EC_JWKS.as_bytes()).expect("the EC key parses");
    let policy = Policy::default();
    for keys in [&hs, &ec] {
        let _ = keys.lacks_kid_of(&s);
        for action in [Action::Publish, Action::Play] {
            let verdict = jwt::verify(keys, &policy, &s, action, "live/x", 1.0e9);
            assert!(verdict.is_err(), "an unsigned token was accepted: {s:?}");
        }
    }
    if matches!(data.first(), Some(b'{' | b'-')) {
        if let Ok(keys) = Keys::from_jwks(data) {
            assert!(!keys.is_empty(), "a JWK set without keys is an error");
            let _ = jwt::verify(&keys, &policy, "a.b.c", Action::Play, "live/x", 0.0);
        }
        let _ = Keys::from_file_contents(data);
    }
}

/// An auth file (first byte: 0 TOML, else JSON): it parses or says why; a parsed table
/// refuses a missing token and decides any key and token without a panic.
pub fn file(data: &[u8]) {
    let Some((&syntax, rest)) = data.split_first() else {
        return;
    };
    let (doc, probe) = halves(rest);
    let (doc, probe) = (text(doc), text(probe));
    let Ok(table) = Table::parse_file(&doc, syntax != 0) else {
        return;
    };
    let (key, token) = probe.split_once(' ').unwrap_or((&probe, ""));
    for action in [Action::Publish, Action::Play] {
        assert_eq!(
            table.check(action, key, None),
            Err(Denial::MissingToken),
            "no token must mean missing_token"
        );
        let _ = table.check(action, key, Some(token));
    }
}

/// An SRT stream id (`#!::r=...,m=...,s=...`): parsed or refused; what parses gives a
/// resource without a query and a credential wherever the caller put one.
pub fn srt_stream_id(data: &[u8]) {
    let Ok(id) = StreamId::parse(data) else {
        return;
    };
    let (resource, params) = auth::srt::params(&id);
    assert!(resource.as_deref().is_none_or(|r| !r.contains('?')));
    let has_token = params.iter().any(|(n, _)| n == "token");
    if id.session.is_some() || id.other.iter().any(|(n, _)| n == "token") {
        assert!(has_token, "a credential was offered but not found: {id:?}");
    }
    if let Some(r) = &resource {
        assert!(params.iter().any(|(n, v)| n == "r" && v == r));
    }
}

/// A callback's reply (first two bytes: the HTTP status, then the body) to an RTMP and an
/// SRT request: only a 2xx allows, a granted key is a valid stream key, and a passphrase
/// is granted to SRT only, within SRT's length limits.
pub fn callback_reply(data: &[u8]) {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_be_bytes(*status) % 1000;
    for protocol in [Protocol::Rtmp, Protocol::Srt] {
        let req = Request {
            action: Action::Publish,
            protocol,
            key: "live/cam".into(),
            remote: SocketAddr::from(([127, 0, 0, 1], 9000)),
            conn_id: 1,
            params: Vec::new(),
        };
        match callback::outcome(&req, status, body) {
            Outcome::Allow { key, passphrase } => {
                assert!((200..300).contains(&status), "HTTP {status} allowed");
                assert!(StreamKey::parse(&key).is_ok(), "granted key {key:?}");
                if let Some(p) = passphrase {
                    assert_eq!(protocol, Protocol::Srt, "passphrase for {protocol:?}");
                    assert!(callback::PASSPHRASE_LEN.contains(&p.expose().len()));
                }
            }
            Outcome::Deny(Denial::CallbackStatus(s)) => assert_eq!(s, status),
            Outcome::Deny(d) => {
                assert!((200..300).contains(&status), "HTTP {status}: {d}");
                assert!(matches!(d, Denial::CallbackReply(_)), "{d}");
            }
        }
    }
}
