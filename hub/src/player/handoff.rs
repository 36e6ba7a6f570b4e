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
