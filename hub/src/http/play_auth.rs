//! Who may play over HTTP: the one auth decision of every HTTP player route (HTTP-FLV
//! today, WebSocket-FLV alike), with the same modes and flags as ingest-rtmp's play auth.
//!
//! ```text
//!  GET /{app}/{name}.flv?token=T --> authorize_player --allow--> the player (maybe renamed key)
//!                                         |  auth_allowed / auth_denied event
//!                                         +--deny--> 401 (no token) | 429 (lockout) | 403
//! ```

use std::net::SocketAddr;

use auth::{Action, Denial, Protocol, Request};
use hyper::{Response, StatusCode};
use proto::media::StreamKey;

use super::body::Body;
use super::router::error;
use super::Http;

/// The status a refused player gets (an unusable rename by the callback: 403).
fn status(d: Option<&Denial>) -> StatusCode {
    match d {
        Some(Denial::MissingToken) => StatusCode::UNAUTHORIZED,
        Some(Denial::RateLimited) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::FORBIDDEN,
    }
}

impl Http {
    /// Decides whether the `protocol` player `conn_id` from `remote` may play `key`, offering the
    /// parameters of the request's `query` (`token=...`). Reports the decision as an
    /// event (an allowance only when `announce`: HLS asks again at every request of one
    /// viewing); answers the key to serve (a callback may rename it) or the refusal to
    /// send, whose JSON body says why without any secret.
    pub(super) async fn authorize_player(
        &self,
        protocol: Protocol,
        key: StreamKey,
        query: Option<&str>,
        remote: SocketAddr,
        conn_id: u64,
        announce: bool,
    ) -> Result<StreamKey, Response<Body>> {
        let Some(auth) = &self.cfg.play_auth else {
            return Ok(key);
        };
        let req = Request {
            action: Action::Play,
            protocol,
            key: key.to_string(),
            remote,
            conn_id,
            params: auth::redact::parse_queries(query),
        };
        auth.authorize_key(key, &req, |e| {
            if announce || e.kind != auth::request::EVENT_ALLOWED {
                self.registry.publish_event(e);
            }
        })
        .await
        .map_err(|r| error(status(r.denial()), r.to_string()))
    }
}
