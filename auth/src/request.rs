//! What is asked (a [`Request`]) and what is answered (an [`Outcome`]).

use std::fmt;
use std::net::SocketAddr;

use proto::ipc::Event;

use crate::secret::Secret;

/// What the client wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send a stream.
    Publish,
    /// Receive a stream.
    Play,
}

impl Action {
    /// `publish` or `play`, as in events and callback documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol the client came in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Plain RTMP.
    Rtmp,
    /// RTMP over TLS.
    Rtmps,
    /// SRT.
    Srt,
    /// HTTP-FLV players of the hub.
    HttpFlv,
    /// WebSocket-FLV players of the hub.
    WsFlv,
    /// HLS players of the hub (every playlist and segment request).
    Hls,
}

impl Protocol {
    /// `rtmp`, `rtmps`, `srt`, `http-flv`, `ws-flv` or `hls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Rtmps => "rtmps",
            Protocol::Srt => "srt",
            Protocol::HttpFlv => "http-flv",
            Protocol::WsFlv => "ws-flv",
            Protocol::Hls => "hls",
        }
    }
}

/// One publish or play attempt.
#[derive(Debug, Clone)]
pub struct Request {
    /// Publish or play.
    pub action: Action,
    /// How the client connected.
    pub protocol: Protocol,
    /// The stream key asked for, `app/name`, without any query.
    pub key: String,
    /// The client's address.
    pub remote: SocketAddr,
    /// The ingest's connection id (for events and the callback).
    pub conn_id: u64,
    /// Further parameters: the RTMP `?query` of the stream name (decoded), or the SRT
    /// stream id fields. `token` carries the credential in every mode.
    pub params: Vec<(String, String)>,
}

impl Request {
    /// The credential the client offered: the `token` parameter.
    pub fn token(&self) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == "token")
            .map(|(_, v)| v.as_str())
    }
}

/// Why an attempt was refused. The text never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// No credential was offered where one is needed.
    #[error("no token given")]
    MissingToken,
    /// The credential does not match (or no secret is configured for the key).
    #[error("invalid credentials")]
    InvalidToken,
    /// The JWT is well formed and signed but does not grant this action on this key.
    #[error("token does not grant {action} on this key")]
    NotGranted {
        /// The action asked for.
        action: Action,
    },
    /// The JWT has expired.
    #[error("token expired")]
    Expired,
    /// The JWT is not valid yet.
    #[error("token not valid yet")]
    NotYetValid,
    /// The JWT could not be verified (signature, algorithm, key, format).
    #[error("token rejected: {0}")]
    BadJwt(String),
    /// The callback answered with a non-2xx status.
    #[error("callback answered HTTP {0}")]
    CallbackStatus(u16),
    /// The callback did not answer in time or could not be reached.
    #[error("callback failed: {0}")]
    CallbackFailed(String),
    /// The callback's 2xx reply could not be used.
    #[error("callback reply unusable: {0}")]
    CallbackReply(String),
    /// Too many failed attempts from this address recently (a lockout).
    #[error("too many failed attempts from this address; try again later")]
    RateLimited,
}

impl Denial {
    /// A short machine-readable reason, for events and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::MissingToken => "missing_token",
            Denial::InvalidToken => "invalid_token",
            Denial::NotGranted { .. } => "not_granted",
            Denial::Expired => "expired",
            Denial::NotYetValid => "not_yet_valid",
            Denial::BadJwt(_) => "bad_jwt",
            Denial::CallbackStatus(_) => "callback_status",
            Denial::CallbackFailed(_) => "callback_failed",
            Denial::CallbackReply(_) => "callback_reply",
            Denial::RateLimited => "lockout",
        }
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Go ahead.
    Allow {
        /// The key to use: the one asked for, or the callback's rename.
        key: String,
        /// For SRT: the passphrase the stream must be encrypted with (from the callback).
        passphrase: Option<Secret>,
    },
    /// Refused.
    Deny(Denial),
}

/// Event kind of an allowed attempt.
pub const EVENT_ALLOWED: &str = "auth_allowed";
/// Event kind of a refused attempt.
pub const EVENT_DENIED: &str = "auth_denied";

impl Outcome {
    /// The event that reports this decision (proto/FORMAT.md, `auth_allowed` /
    /// `auth_denied`): never with a secret in it.
    pub fn event(&self, req: &Request, mode: &str) -> Event {
        let mut fields = vec![
            ("action".to_owned(), req.action.as_str().to_owned()),
            ("protocol".to_owned(), req.protocol.as_str().to_owned()),
            ("mode".to_owned(), mode.to_owned()),
        ];
        let (kind, key) = match self {
            Outcome::Allow { key, .. } => {
                if *key != req.key {
                    fields.push(("requested_key".to_owned(), req.key.clone()));
                }
                (EVENT_ALLOWED, key.clone())
            }
            Outcome::Deny(d) => {
                fields.push(("reason".to_owned(), d.code().to_owned()));
                fields.push(("error".to_owned(), d.to_string()));
                (EVENT_DENIED, req.key.clone())
            }
        };
        Event {
            kind: kind.to_owned(),
            key,
            conn_id: req.conn_id,
            remote: req.remote.to_string(),
            fields,
        }
    }
}
