//! Who may connect, as what: the stream id mapped to the same `app/name` key RTMP uses,
//! the action (publish or play), the credential for auth and the stream's passphrase.
//! [`decide`] is the synchronous part, before any state exists; the endpoint then asks the
//! authenticator (asynchronously, see endpoint.rs) and [`refusal`] maps its denial.

use auth::{Action, Denial};
use proto::media::StreamKey;
use proto::srt::crypto::Passphrase;
use proto::srt::{ConnectRequest, RejectReason, StreamId, StreamMode};

use crate::cli::Config;
use crate::passphrase::Book;

/// What an accepted caller asks for, before auth.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) key: StreamKey,
    pub(crate) passphrase: Option<Passphrase>,
    /// The parsed stream id (user, session token ...), for logs.
    pub(crate) id: StreamId,
    /// Publish (`m=publish`, or no `m`) or play (`m=request`).
    pub(crate) action: Action,
    /// The stream id's fields as auth parameters (`token` among them when offered).
    pub(crate) params: Vec<(String, String)>,
}

/// Why a caller is refused: the code it gets and the log line's reason.
pub(crate) type Refusal = (RejectReason, String);

/// Decides a request: stream id syntax and mode, key, passphrase, key length.
pub(crate) fn decide(req: &ConnectRequest, cfg: &Config, book: &Book) -> Result<Grant, Refusal> {
    let id = match req.stream_id() {
        None => StreamId::default(),
        Some(raw) => StreamId::parse(raw)
            .map_err(|e| (RejectReason::BAD_REQUEST, format!("stream id: {e}")))?,
    };
    let action =
        match id.mode {
            Some(StreamMode::Bidirectional) => return Err((
                RejectReason::BAD_MODE,
                "m=bidirectional is not supported; publish with m=publish or play with m=request"
                    .into(),
            )),
            Some(StreamMode::Request) => Action::Play,
            Some(StreamMode::Publish) | None => Action::Publish,
        };
    let (resource, params) = auth::srt::params(&id);
    let key = match &resource {
        None => cfg.default_key.clone(),
        Some(r) => StreamKey::parse(r.trim_start_matches('/')).map_err(|e| {
            (
                RejectReason::NOT_FOUND,
                format!("stream id resource {r:?} is not an app/name key: {e}"),
            )
        })?,
    };
    let passphrase = cfg
        .passphrase
        .clone()
        .or_else(|| book.lookup(key.as_str()).cloned());
    if cfg.pbkeylen != 0 {
        if let Some(km) = req.handshake.km_req() {
            if km.key_len < cfg.pbkeylen {
                return Err((
                    RejectReason::Crypto,
                    format!(
                        "caller's key is {} bytes, --pbkeylen asks for {}",
                        km.key_len, cfg.pbkeylen
                    ),
                ));
            }
        }
    }
    Ok(Grant {
        key,
        passphrase,
        id,
        action,
        params,
    })
}

/// The SRT rejection of an auth denial: 1401 (unauthorized) when the credential is
/// missing or not valid, 1403 (forbidden) when it is valid but not enough, or the
/// decision itself refused (callback, lockout).
pub(crate) fn refusal(d: &Denial) -> RejectReason {
    match d {
        Denial::MissingToken
        | Denial::InvalidToken
        | Denial::Expired
        | Denial::NotYetValid
        | Denial::BadJwt(_) => RejectReason::UNAUTHORIZED,
        _ => RejectReason::FORBIDDEN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_map_to_access_codes() {
        assert_eq!(refusal(&Denial::MissingToken), RejectReason::Access(1401));
        assert_eq!(refusal(&Denial::InvalidToken), RejectReason::Access(1401));
        assert_eq!(refusal(&Denial::Expired), RejectReason::Access(1401));
        assert_eq!(refusal(&Denial::RateLimited), RejectReason::Access(1403));
        assert_eq!(
            refusal(&Denial::NotGranted {
                action: Action::Play
            }),
            RejectReason::Access(1403)
        );
        assert_eq!(
            refusal(&Denial::CallbackStatus(403)),
            RejectReason::Access(1403)
        );
    }
}
