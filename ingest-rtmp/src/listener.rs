//! Accepting TCP connections under the connection limit.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::cli::Config;
use crate::drain::Token;

/// Accepts until the listener fails for good; one task per connection.
pub(crate) async fn serve(listener: TcpListener, cfg: Arc<Config>, drain: Token) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let mut next_id: u64 = 1;
    loop {
        let (sock, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) if is_transient(&e) => {
                tracing::warn!(error = %e, "accept failed, retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let conn_id = next_id;
        next_id += 1;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            cfg.stats.refused.inc();
            tracing::warn!(
                conn_id,
                %remote,
                layer = "listener",
                error = %format!("{} connections already open", cfg.max_connections),
                "closing connection"
            );
            continue;
        };
        let _ = sock.set_nodelay(true);
        cfg.stats.accepted.inc();
        let open = cfg.stats.connections.track();
        let cfg = cfg.clone();
        let drain = drain.clone();
        let span = tracing::info_span!("conn", conn_id, %remote);
        tokio::spawn(
            async move {
                crate::conn::run(sock, conn_id, remote, cfg, drain).await;
                drop(open);
                drop(permit);
            }
            .instrument(span),
        );
    }
}

fn is_transient(e: &io::Error) -> bool {
    // ENFILE / EMFILE: out of descriptors for a moment; the listener itself is fine.
    matches!(e.raw_os_error(), Some(23 | 24))
        || matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
        )
}
