//! Turning a received descriptor and `PlayerHandoff` into a served player.

use std::sync::Arc;

use proto::ipc::Header;
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::registry::Registry;
use crate::server::Opened;

/// Takes the player socket from a completed handoff and serves it.
pub async fn run(ipc_id: u64, opened: Opened, registry: Arc<Registry>) {
    let Some(fd) = opened.fd else {
        tracing::warn!(
            conn_id = ipc_id,
            layer = "handoff",
            error = "no socket attached",
            "closing connection"
        );
        return;
    };
    let session = match opened.messages.into_iter().next().map(|m| m.header) {
        Some(Header::PlayerHandoff(s)) => s,
        other => {
            tracing::warn!(conn_id = ipc_id, layer = "handoff", error = ?other, "closing connection: expected PlayerHandoff");
            return;
        }
    };
    // The hello exchange checked the descriptor (server::open); this only notes its kind.
    if crate::peer::player_socket(&fd) == Ok(crate::peer::PlayerSocket::Relay) {
        tracing::debug!(
            conn_id = session.conn_id,
            "RTMPS player relayed by ingest over a socketpair"
        );
    }
    // A relay's Unix stream socket goes through the same type: the player code only reads,
    // writes (vectored) and shuts down, which are the same calls on either kind of stream
    // socket; `set_nodelay` below simply fails on it.
    let std_sock = std::net::TcpStream::from(fd);
    let sock = match std_sock
        .set_nonblocking(true)
        .and_then(|()| TcpStream::from_std(std_sock))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(conn_id = session.conn_id, layer = "handoff", error = %e, "closing connection");
            return;
        }
    };
    let _ = sock.set_nodelay(true);
    let span = tracing::info_span!("player", conn_id = session.conn_id, key = %session.key);
    super::driver::run(sock, session, registry)
        .instrument(span)
        .await
}
