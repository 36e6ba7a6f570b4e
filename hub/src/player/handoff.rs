//! Turning a received descriptor and `PlayerHandoff` into a served player.

use std::sync::Arc;

use proto::ipc::Header;
use tokio::net::{TcpStream, UnixStream};
use tracing::Instrument;

use crate::registry::Registry;
use crate::server::Opened;

/// Takes the player socket from a completed handoff and serves it.
pub async fn run(ipc_id: u64, opened: Opened, registry: Arc<Registry>) {
    // Only the descriptor and the handoff message are kept: the rest (the hello's receive
    // buffer) would otherwise live as long as the player.
    let Opened {
        fd, messages, buf, ..
    } = opened;
    drop(buf);
    let Some(fd) = fd else {
        tracing::warn!(
            conn_id = ipc_id,
            layer = "handoff",
            error = "no socket attached",
            "closing connection"
        );
        return;
    };
    let session = match messages.into_iter().next().map(|m| m.header) {
        Some(Header::PlayerHandoff(s)) => *s,
        other => {
            tracing::warn!(conn_id = ipc_id, layer = "handoff", error = ?other, "closing connection: expected PlayerHandoff");
            return;
        }
    };
    // The hello exchange checked the descriptor (server::open); its kind picks the type.
    let span = tracing::info_span!("player", conn_id = session.conn_id, key = %session.key);
    let conn_id = session.conn_id;
    let refused = |e: std::io::Error| {
        tracing::warn!(conn_id, layer = "handoff", error = %e, "closing connection");
    };
    if crate::peer::player_socket(&fd) == Ok(crate::peer::PlayerSocket::Relay) {
        tracing::debug!(conn_id, "RTMPS player relayed by ingest over a socketpair");
        let std_sock = std::os::unix::net::UnixStream::from(fd);
        match std_sock
            .set_nonblocking(true)
            .and_then(|()| UnixStream::from_std(std_sock))
        {
            Ok(sock) => {
                super::driver::run(sock, session, registry)
                    .instrument(span)
                    .await
            }
            Err(e) => refused(e),
        }
    } else {
        let std_sock = std::net::TcpStream::from(fd);
        match std_sock
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(std_sock))
        {
            Ok(sock) => {
                let _ = sock.set_nodelay(true);
                super::driver::run(sock, session, registry)
                    .instrument(span)
                    .await
            }
            Err(e) => refused(e),
        }
    }
}
