//! WebSocket-FLV players: `GET /{app}/{name}.flv` with `Upgrade: websocket` gets the same
//! FLV stream as an HTTP-FLV player ([`FlvBody`]: GOP-cache start, slow-reader policy,
//! kicks, stall check), each tag one binary WebSocket frame, over the upgraded
//! connection. The framing is `proto::websocket`; this file is the thin async shell.
//!
//! ```text
//!  request --handshake()--> flv() --switch()--> 101 + Pending in the connection's slot
//!  connection task: hyper hands the socket over --> Pending::run: FlvBody frames out,
//!                                                    client pings answered, close echoed
//! ```

use std::future::poll_fn;
use std::io::IoSlice;
use std::sync::Mutex;

use bytes::{Buf, BytesMut};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use proto::websocket::{self, close_code, opcode, ClientFrame, Decoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::{Body, Segments};
use super::flv::FlvBody;
use super::router::error;

/// A WebSocket-FLV player between its 101 answer and the connection task taking it.
pub struct Pending {
    body: Box<FlvBody>,
    upgrade: Option<OnUpgrade>,
}

/// Where a request handler leaves its WebSocket player for the connection task (which
/// holds the connection's slot in `--http-max-connections` for as long as it plays).
#[derive(Default)]
pub struct Slot(Mutex<Option<Pending>>);

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the upgraded connection to the player waiting in the slot.
    pub fn set_upgrade(&self, upgrade: OnUpgrade) {
        if let Some(p) = self.lock().as_mut() {
            p.upgrade = Some(upgrade);
        }
    }

    /// The waiting player, if a request switched protocols.
    pub fn take(&self) -> Option<Pending> {
        self.lock().take()
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Whether `req` opens a WebSocket: `Ok(None)` for a plain request, `Ok(Some(accept))`
/// with the `Sec-WebSocket-Accept` value for a valid opening handshake, or the refusal of
/// an invalid one (400, or 426 for another protocol version).
pub fn handshake<B>(req: &Request<B>) -> Result<Option<String>, Box<Response<Body>>> {
    let h = req.headers();
    if !has_token(h, header::UPGRADE, "websocket") {
        return Ok(None);
    }
    if req.method() != Method::GET || !has_token(h, header::CONNECTION, "upgrade") {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "a WebSocket opens with GET and Connection: Upgrade",
        )));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != websocket::VERSION.as_bytes())
    {
        let mut r = error(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static(websocket::VERSION),
        );
        return Err(Box::new(r));
    }
    match h.get(header::SEC_WEBSOCKET_KEY) {
        Some(k) if websocket::valid_client_key(k.as_bytes()) => {
            Ok(Some(websocket::accept_key(k.as_bytes())))
        }
        _ => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "missing or invalid Sec-WebSocket-Key",
        ))),
    }
}

/// Turns the answer of `flv()` into the switch to WebSocket: a player body goes into
/// `slot` and the answer becomes `101`; a refusal (not live, limit, auth) stays as it is.
pub fn switch(resp: Response<Body>, accept: String, slot: &Slot) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let Body::Flv(body) = body else {
        return Response::from_parts(parts, body);
    };
    let Ok(accept) = HeaderValue::try_from(accept) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "bad accept key");
    };
    *slot.lock() = Some(Pending {
        body,
        upgrade: None,
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    r
}

impl Pending {
    /// Plays until the stream ends, the player is kicked or too slow, or the client
    /// closes or breaks the protocol. Dropping the body ends the player (`stop` event).
    pub async fn run(mut self) {
        let Some(upgrade) = self.upgrade.take() else {
            return;
        };
        let io = match upgrade.await {
            Ok(io) => TokioIo::new(io),
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let (rd, mut wr) = tokio::io::split(io);
        let code = match self.session(rd, &mut wr).await {
            Ok(code) => code,
            Err(e) => {
                tracing::debug!(error = %e, "websocket-flv player gone");
                return;
            }
        };
        if let Some(code) = code {
            let _ = wr.write_all(&websocket::close_frame(code)).await;
        }
        let _ = wr.shutdown().await;
    }

    /// The player's loop; `Ok(Some(code))` when a close frame with `code` is to be sent.
    async fn session<R, W>(&mut self, mut rd: R, wr: &mut W) -> std::io::Result<Option<u16>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        // Holds at most one frame header and one control frame (the decoder skips data).
        let mut input = BytesMut::with_capacity(256);
        let mut decoder = Decoder::default();
        loop {
            tokio::select! {
                next = poll_fn(|cx| self.body.poll_segments(cx)) => match next {
                    Some(mut s) => write_segments(wr, &mut s).await?,
                    None => return Ok(Some(close_code::GOING_AWAY)),
                },
                n = rd.read_buf(&mut input) => {
                    if n? == 0 {
                        return Ok(None);
                    }
                    loop {
                        match decoder.decode(&mut input) {
                            Ok(None) => break,
                            Ok(Some(ClientFrame::Ping(payload))) => {
                                let mut h = [0; websocket::MAX_HEADER];
                                let n = websocket::frame_header(opcode::PONG, payload.len() as u64, &mut h);
                                if let Some(mut pong) = Segments::framed(&h[..n], payload, &[]) {
                                    write_segments(wr, &mut pong).await?;
                                }
                            }
                            Ok(Some(ClientFrame::Close(code))) => {
                                tracing::debug!(?code, "websocket-flv player closed");
                                return Ok(Some(close_code::NORMAL));
                            }
                            Ok(Some(ClientFrame::Pong | ClientFrame::Data { .. })) => {}
                            Err(e) => {
                                tracing::warn!(layer = "websocket", error = %e, "closing connection");
                                return Ok(Some(close_code::PROTOCOL_ERROR));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Writes all of `s` with vectored writes (the shared payload is not copied).
async fn write_segments<W: AsyncWrite + Unpin>(w: &mut W, s: &mut Segments) -> std::io::Result<()> {
    while s.has_remaining() {
        let mut iov = [IoSlice::new(&[]); 3];
        let n = s.chunks_vectored(&mut iov);
        let wrote = w.write_vectored(&iov[..n]).await?;
        if wrote == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        s.advance(wrote);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get("/live/a.flv");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    const OPEN: &[(&str, &str)] = &[
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn handshake_accepts_rfc_requests_and_refuses_broken_ones() {
        assert_eq!(handshake(&req(&[])).ok(), Some(None));
        assert_eq!(
            handshake(&req(OPEN)).ok(),
            Some(Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_owned()))
        );
        let status = |h: &[(&str, &str)]| handshake(&req(h)).err().map(|r| r.status());
        assert_eq!(status(&OPEN[..1]), Some(StatusCode::BAD_REQUEST));
        let mut v8 = OPEN.to_vec();
        v8[2] = ("sec-websocket-version", "8");
        assert_eq!(status(&v8), Some(StatusCode::UPGRADE_REQUIRED));
        let mut bad_key = OPEN.to_vec();
        bad_key[3] = ("sec-websocket-key", "short");
        assert_eq!(status(&bad_key), Some(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn refusals_are_not_switched() {
        let slot = Slot::default();
        let r = switch(error(StatusCode::NOT_FOUND, "no"), "x".into(), &slot);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(slot.take().is_none());
    }
}
