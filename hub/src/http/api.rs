//! The JSON API under `/api/v1` (docs/api.md): streams, connections, kicks, reconnect
//! requests and the effective configuration. Mutating calls need `Authorization: Bearer <--api-token>`;
//! reads need it too with `--api-protect-reads`.

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::{Method, Request, Response, StatusCode};
use proto::media::StreamKey;
use proto::rtmp::amf0::{self, AmfLimits};
use serde_json::{json, Value};

use super::body::Body;
use super::router::{error, json as json_response, method_not_allowed};
use super::Http;
use crate::conns::{ConnInfo, ConnKind};
use crate::stats::Protocol;
use crate::stream::Stream;

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Http {
    /// `/api/v1/...`: `rest` is the path after `/api/v1`.
    pub(super) fn api<B>(&self, req: &Request<B>, rest: &str) -> Response<Body> {
        let method = req.method().clone();
        let read = matches!(method, Method::GET | Method::HEAD);
        if let Some(refused) = self.check_auth(req, !read) {
            return refused;
        }
        let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
        match (parts.as_slice(), read) {
            (["streams"], true) => self.list_streams(),
            (["streams", app, name], true) => self.one_stream(app, name),
            (["streams", app, name, "publisher"], _) if method == Method::DELETE => {
                self.kick_publisher(app, name)
            }
            (["streams", app, name, "reconnect"], _) if method == Method::POST => {
                match StreamKey::new(app, name) {
                    Ok(key) => self.reconnect(Some(key)),
                    Err(_) => error(StatusCode::BAD_REQUEST, "invalid stream key"),
                }
            }
            (["reconnect"], _) if method == Method::POST => self.reconnect(None),
            (["connections"], true) => self.list_connections(),
            (["connections", id], _) if method == Method::DELETE => self.kick_connection(id),
            (["config"], true) => self.config(),
            (["streams"] | ["streams", _, _] | ["connections"] | ["config"], false) => {
                method_not_allowed("GET, HEAD")
            }
            (["streams", _, _, "publisher"] | ["connections", _], _) => {
                method_not_allowed("DELETE")
            }
            (["streams", _, _, "reconnect"] | ["reconnect"], _) => method_not_allowed("POST"),
            _ => error(StatusCode::NOT_FOUND, format!("no API route /api/v1{rest}")),
        }
    }

    fn list_streams(&self) -> Response<Body> {
        let conns = self.registry.conns().list();
        let streams: Vec<Value> = self
            .registry
            .streams()
            .iter()
            .map(|s| describe_stream(s, &conns))
            .collect();
        json_response(StatusCode::OK, &json!({ "streams": streams }))
    }

    fn one_stream(&self, app: &str, name: &str) -> Response<Body> {
        let Ok(key) = StreamKey::new(app, name) else {
            return error(StatusCode::BAD_REQUEST, "invalid stream key");
        };
        match self.registry.stream(&key) {
            Some(s) => json_response(
                StatusCode::OK,
                &describe_stream(&s, &self.registry.conns().list()),
            ),
            None => error(StatusCode::NOT_FOUND, format!("no stream {key}")),
        }
    }

    fn kick_publisher(&self, app: &str, name: &str) -> Response<Body> {
        let Ok(key) = StreamKey::new(app, name) else {
            return error(StatusCode::BAD_REQUEST, "invalid stream key");
        };
        if !self.registry.kick_publisher(&key) {
            return error(StatusCode::NOT_FOUND, format!("nobody publishes {key}"));
        }
        tracing::info!(key = %key, "API: publisher kicked");
        json_response(
            StatusCode::OK,
            &json!({ "kicked": "publisher", "key": key.as_str() }),
        )
    }

    /// Asks the RTMP clients of `key` (every one when `None`) that announced the E-RTMP
    /// Reconnect capability to reconnect.
    fn reconnect(&self, key: Option<StreamKey>) -> Response<Body> {
        let asked = key.as_ref().map(|k| k.to_string());
        if let Some(k) = &key {
            if self.registry.stream(k).is_none() {
                return error(StatusCode::NOT_FOUND, format!("no stream {k}"));
            }
        }
        let r = self.registry.request_reconnect(key, None, None, "api");
        json_response(
            StatusCode::OK,
            &json!({ "reconnect": {
                "key": asked,
                "players": r.players,
                "skipped_players": r.skipped_players,
                "publishers": r.publishers,
                "tc_url": self.registry.config().reconnect_tc_url,
            }}),
        )
    }

    fn list_connections(&self) -> Response<Body> {
        let conns: Vec<Value> = self
            .registry
            .conns()
            .list()
            .iter()
            .map(describe_conn)
            .collect();
        json_response(StatusCode::OK, &json!({ "connections": conns }))
    }

    fn kick_connection(&self, id: &str) -> Response<Body> {
        let Ok(id) = id.parse::<u64>() else {
            return error(StatusCode::BAD_REQUEST, "a connection id is a number");
        };
        let Some(info) = self
            .registry
            .conns()
            .list()
            .into_iter()
            .find(|c| c.id == id)
        else {
            return error(StatusCode::NOT_FOUND, format!("no connection {id}"));
        };
        // A publisher is stopped through its stream (its hub.sock link would otherwise
        // come straight back and re-announce); the others close their connection.
        let kicked = match info.kind {
            ConnKind::Publisher => {
                StreamKey::parse(&info.key).is_ok_and(|k| self.registry.kick_publisher(&k))
            }
            _ => self.registry.conns().kick(id).is_some(),
        };
        if !kicked {
            return error(StatusCode::NOT_FOUND, format!("connection {id} is gone"));
        }
        tracing::info!(id, conn_id = info.conn_id, kind = info.kind.as_str(), key = %info.key, "API: connection kicked");
        json_response(StatusCode::OK, &json!({ "kicked": describe_conn(&info) }))
    }

    fn config(&self) -> Response<Body> {
        let c = self.registry.config();
        let doc = json!({
            "socket": c.socket.display().to_string(),
            "on_duplicate": format!("{:?}", c.on_duplicate).to_lowercase(),
            "gop_cache_bytes": c.gop_cache_bytes,
            "gop_cache_duration_ms": c.gop_cache_duration.as_millis() as u64,
            "player_queue_bytes": c.player_queue_bytes,
            "max_lag_skips": c.max_lag_skips,
            "player_write_timeout_ms": c.player_write_timeout.as_millis() as u64,
            "subscriber_write_timeout_ms": c.subscriber_write_timeout.as_millis() as u64,
            "publisher_wait_ms": c.publisher_wait.as_millis() as u64,
            "unpublish_timeout_ms": c.unpublish_timeout.as_millis() as u64,
            "chunk_size": c.chunk_size,
            "write_coalesce_ms": c.write_coalesce.as_millis() as u64,
            "max_streams": c.max_streams,
            "max_players": c.max_players,
            "reconnect_tc_url": c.reconnect_tc_url,
            "http": {
                "listen": self.cfg.listen.to_string(),
                "max_connections": self.cfg.max_connections,
                "header_timeout_ms": self.cfg.header_timeout.as_millis() as u64,
                "api_token": self.cfg.token.is_some(),
                "api_protect_reads": self.cfg.protect_reads,
            },
            "hls": {
                "segment_duration_ms": self.cfg.hls.segment_duration.as_millis() as u64,
                "segment_count": self.cfg.hls.segment_count,
                "max_streams": self.cfg.hls.max_streams,
            },
        });
        json_response(StatusCode::OK, &doc)
    }

    /// `None` when the request may go on, else the refusal. `mutating`: the call changes
    /// something.
    pub(super) fn check_auth<B>(&self, req: &Request<B>, mutating: bool) -> Option<Response<Body>> {
        if !mutating && !self.cfg.protect_reads {
            return None;
        }
        let Some(token) = &self.cfg.token else {
            return Some(error(
                StatusCode::FORBIDDEN,
                "mutating API calls are disabled: start the hub with --api-token",
            ));
        };
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return None;
        }
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "this call needs Authorization: Bearer <the hub's --api-token>",
        );
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"mediaserver\""),
        );
        Some(r)
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess
/// was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn describe_conn(c: &ConnInfo) -> Value {
    json!({
        "id": c.id,
        "conn_id": c.conn_id,
        "kind": c.kind.as_str(),
        "protocol": c.protocol,
        "remote": c.remote,
        "key": c.key,
        "since": unix(c.since),
        "reconnect": c.reconnect,
    })
}

/// A stream as the API and the status page show it.
pub fn describe_stream(s: &Stream, conns: &[ConnInfo]) -> Value {
    let st = s.lock();
    let meta = st.metadata.as_ref().and_then(|m| {
        let values = amf0::decode_all(m, &AmfLimits::default()).ok()?;
        values
            .into_iter()
            .find(|v| v.get("width").is_some() || v.get("duration").is_some())
    });
    let meta_num = |k: &str| {
        meta.as_ref()
            .and_then(|m| m.get(k))
            .and_then(|v| v.as_f64())
    };
    let mut video = Value::Null;
    let mut audio = Value::Null;
    // Picture size, frame rate and sample rate as the publisher's onMetaData gives them.
    for (&(is_video, _), t) in &st.tracks {
        if is_video && video.is_null() {
            video = json!({
                "codec": t.codec.name(),
                "width": meta_num("width").map(|w| w as u32),
                "height": meta_num("height").map(|h| h as u32),
                "framerate": meta_num("framerate"),
            });
        } else if !is_video && audio.is_null() {
            audio = json!({
                "codec": t.codec.name(),
                "sample_rate": meta_num("audiosamplerate").map(|r| r as u32),
                "channels": meta_num("audiochannels")
                    .map(|c| c as u32)
                    .or_else(|| meta.as_ref().and_then(|m| m.get("stereo")).and_then(|v| v.as_bool()).map(|s| if s { 2 } else { 1 })),
            });
        }
    }
    let key = s.key.as_str();
    let publisher = conns
        .iter()
        .rev()
        .find(|c| c.kind == ConnKind::Publisher && c.key == key)
        .filter(|_| st.is_live())
        .map(describe_conn);
    let mut players = serde_json::Map::new();
    players.insert("total".into(), st.players.into());
    for p in Protocol::ALL {
        let n = conns
            .iter()
            .filter(|c| c.kind == ConnKind::Player && c.key == key && c.protocol == p.as_str())
            .count();
        players.insert(p.as_str().into(), n.into());
    }
    let uptime = st
        .published_at
        .and_then(|t| t.elapsed().ok())
        .map(|d| d.as_secs());
    json!({
        "key": key,
        "app": s.key.app(),
        "name": s.key.name(),
        "live": st.is_live(),
        "publisher": publisher,
        "uptime_seconds": uptime,
        "bitrate_kbps": st.is_live().then(|| st.rate.bits_per_second() / 1000),
        "video": video,
        "audio": audio,
        "players": players,
        "flv": format!("/{key}.flv"),
    })
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
