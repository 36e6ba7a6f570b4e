//! Accepting TCP connections. The loop never waits for anything but `accept`: admission
//! (slots.rs) is a short table update, and each connection runs in its own task.

use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tracing::Instrument;

use crate::cli::Config;
use crate::drain::Token;
use crate::slots::Slots;

/// Accepts until the listener fails for good; one task per connection.
pub(crate) async fn serve(listener: TcpListener, cfg: Arc<Config>, drain: Token) -> io::Result<()> {
    let slots = Slots::new(cfg.slots);
    let memory = Arc::new(AtomicUsize::new(0));
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
        let (slot, evicted) = match slots.admit(conn_id, remote.ip(), Instant::now()) {
            Ok(x) => x,
            Err(refusal) => {
                cfg.stats.refused.inc();
                tracing::warn!(
                    conn_id,
                    %remote,
                    layer = "listener",
                    error = %refusal,
                    "closing connection"
                );
                continue;
            }
        };
        if !evicted.is_empty() {
            tracing::debug!(
                conn_id,
                ?evicted,
                "took the slots of connections still in setup"
            );
        }
        let _ = sock.set_nodelay(true);
        cfg.stats.accepted.inc();
        let open = cfg.stats.connections.track();
        let cfg = cfg.clone();
        let drain = drain.clone();
        let memory = memory.clone();
        let span = tracing::info_span!("conn", conn_id, %remote);
        tokio::spawn(
            async move {
                crate::conn::run(sock, conn_id, remote, cfg, drain, slot, memory).await;
                drop(open);
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
