//! Who may connect, as what: the stream id mapped to the same `app/name` key RTMP uses,
//! the mode, and the stream's passphrase. This is the hook point for publish auth: a
//! policy that reads `u=`/`s=` of the stream id decides here, before any state exists.

use proto::media::StreamKey;
use proto::srt::crypto::Passphrase;
use proto::srt::{ConnectRequest, RejectReason, StreamId, StreamMode};

use crate::cli::Config;
use crate::passphrase::Book;

/// What an accepted caller publishes or plays.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) key: StreamKey,
    /// `m=request`: the caller plays the key (player.rs) instead of publishing it.
    pub(crate) play: bool,
    pub(crate) passphrase: Option<Passphrase>,
    /// The parsed stream id (user, session token ...), for logs and auth.
    pub(crate) id: StreamId,
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
    let play =
        match id.mode {
            Some(StreamMode::Bidirectional) => return Err((
                RejectReason::BAD_MODE,
                "m=bidirectional is not supported; publish with m=publish or play with m=request"
                    .into(),
            )),
            Some(StreamMode::Request) => true,
            Some(StreamMode::Publish) | None => false,
        };
    let key = match &id.resource {
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
        play,
        passphrase,
        id,
    })
}
