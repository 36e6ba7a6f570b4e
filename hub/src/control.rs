//! A `Control` peer (FORMAT.md section 4): an operator's tool asking the hub to act. Each
//! `Reconnect` is applied and answered with the `reconnect_request` event that reports
//! it; anything else is refused with `Error`.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, FrameDecoder, Header, Message};
use proto::media::StreamKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::events::event;
use crate::registry::Registry;
use crate::server::Opened;

/// How long a control peer may stay connected without a complete request.
const IDLE: Duration = Duration::from_secs(10);

/// Serves one control connection until the peer closes it.
pub async fn run(mut sock: UnixStream, opened: Opened, registry: Arc<Registry>) {
    let peer = opened.name;
    let decoder = FrameDecoder::default();
    let mut buf = opened.buf;
    let mut pending = opened.messages;
    loop {
        for msg in pending.drain(..) {
            let mut out = BytesMut::new();
            let done = answer(msg, &peer, &registry, &mut out);
            if sock.write_all(&out).await.is_err() || done {
                return;
            }
        }
        match decoder.decode(&mut buf) {
            Ok(Some(msg)) => {
                pending.push(msg);
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, layer = "control", error = %e, "closing connection");
                return;
            }
        }
        match tokio::time::timeout(IDLE, sock.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "control connection failed");
                return;
            }
        }
    }
}

/// Applies one request and encodes the answer into `out`; true when the connection is
/// to be closed after it (a refused request).
fn answer(msg: Message, peer: &str, registry: &Registry, out: &mut BytesMut) -> bool {
    let refuse = |out: &mut BytesMut, message: String| {
        tracing::warn!(%peer, layer = "control", error = %message, "closing connection");
        ipc::encode(&Header::Error { message }, &[], out);
        true
    };
    match msg.header {
        Header::Reconnect {
            key,
            tc_url,
            description,
            ..
        } => {
            let key = match key.as_deref().map(StreamKey::parse).transpose() {
                Ok(k) => k,
                Err(e) => return refuse(out, format!("reconnect: invalid stream key: {e}")),
            };
            let asked = key.as_ref().map_or(String::new(), |k| k.to_string());
            let r = registry.request_reconnect(key, tc_url, description, "control");
            let mut reply = event("reconnect_request", &asked, 0, "");
            reply.fields = vec![
                ("players".to_owned(), r.players.to_string()),
                ("skipped_players".to_owned(), r.skipped_players.to_string()),
                ("publishers".to_owned(), r.publishers.to_string()),
            ];
            ipc::encode(&Header::Event(reply), &[], out);
            false
        }
        _ => refuse(
            out,
            "a control connection may only send Reconnect".to_owned(),
        ),
    }
}
