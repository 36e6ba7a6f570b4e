//! Who may play over HTTP: the one auth decision of every HTTP player route (HTTP-FLV
//! today, WebSocket-FLV alike), with the same modes and flags as ingest-rtmp's play auth.
//!
//! ```text
//!  GET /{app}/{name}.flv?token=T --> authorize_player --allow--> the player (maybe renamed key)
//!                                         |  auth_allowed / auth_denied event
//!                                         +--deny--> 401 (no token) | 429 (lockout) | 403
//! ```

use std::net::SocketAddr;

use auth::{Action, Denial, Outcome, Protocol, Request};
use hyper::{Response, StatusCode};
use proto::media::StreamKey;

use super::body::Body;
use super::router::error;
use super::Http;

/// The status a refused player gets.
fn status(d: &Denial) -> StatusCode {
    match d {
        Denial::MissingToken => StatusCode::UNAUTHORIZED,
        Denial::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::FORBIDDEN,
    }
}

impl Http {
    /// Decides whether the `protocol` player `conn_id` from `remote` may play `key`, offering the
    /// parameters of the request's `query` (`token=...`). Reports the decision as an
    /// event; answers the key to serve (a callback may rename it) or the refusal to send,
    /// whose JSON body says why without any secret.
    pub(super) async fn authorize_player(
        &self,
        protocol: Protocol,
        key: StreamKey,
        query: Option<&str>,
        remote: SocketAddr,
        conn_id: u64,
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
            params: query.map(auth::redact::parse_query).unwrap_or_default(),
        };
        let outcome = auth.authorize(&req).await;
        self.registry.publish_event(auth.event(&req, &outcome));
        match outcome {
            Outcome::Allow { key: granted, .. } if granted == req.key => Ok(key),
            Outcome::Allow { key: granted, .. } => StreamKey::parse(&granted).map_err(|e| {
                let why = format!("playing {key} is not authorized: renamed key: {e}");
                error(StatusCode::FORBIDDEN, why)
            }),
            Outcome::Deny(d) => Err(error(
                status(&d),
                format!("playing {key} is not authorized: {d}"),
            )),
        }
    }
}
