//! Accepting TCP connections, RTMP and RTMPS, under one admission table. The loop never
//! waits for anything but `accept`: admission (slots.rs) is a short table update, and each
//! connection runs in its own task, TLS handshake included, so a client that stalls
//! delays nobody else.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tracing::Instrument;

use crate::cli::Config;
use crate::drain::Token;
use crate::slots::Slots;
use crate::tls::{ClientSock, Tls};

/// What the listeners share: admission, the memory account and the connection ids.
pub(crate) struct Accepting {
    slots: Arc<Slots>,
    memory: Arc<AtomicUsize>,
    next_id: AtomicU64,
}

impl Accepting {
    /// One admission table for every listener of `cfg`.
    pub(crate) fn new(cfg: &Config) -> Arc<Accepting> {
        Arc::new(Accepting {
            slots: Slots::new(cfg.slots),
            memory: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU64::new(1),
        })
    }
}

/// Accepts until the listener fails for good; one task per connection. With `tls`, each
/// connection first completes a TLS handshake within the handshake timeout.
pub(crate) async fn serve(
    listener: TcpListener,
    cfg: Arc<Config>,
    shared: Arc<Accepting>,
    tls: Option<Arc<Tls>>,
    drain: Token,
) -> io::Result<()> {
    let slots = &shared.slots;
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
        let conn_id = shared.next_id.fetch_add(1, Ordering::Relaxed);
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
        let memory = shared.memory.clone();
        let tls = tls.clone();
        let span = tracing::info_span!("conn", conn_id, %remote);
        tokio::spawn(
            async move {
                let sock = match tls {
                    None => Some(ClientSock::Tcp(sock)),
                    Some(tls) => tls_handshake(&tls, sock, conn_id, &cfg).await,
                };
                if let Some(sock) = sock {
                    crate::conn::run(sock, conn_id, remote, cfg, drain, slot, memory).await;
                }
                drop(open);
            }
            .instrument(span),
        );
    }
}

/// The server side of the TLS handshake, bounded by the handshake timeout.
async fn tls_handshake(
    tls: &Tls,
    sock: tokio::net::TcpStream,
    conn_id: u64,
    cfg: &Config,
) -> Option<ClientSock> {
    let limit = cfg.handshake_timeout;
    match tokio::time::timeout(limit, tls.acceptor().accept(sock)).await {
        Ok(Ok(s)) => Some(ClientSock::Tls(Box::new(s))),
        Ok(Err(e)) => {
            tracing::warn!(conn_id, layer = "tls", error = %e, "closing connection");
            None
        }
        Err(_) => {
            let error = format!(
                "TLS handshake not completed within {}",
                humantime::format_duration(limit)
            );
            tracing::warn!(conn_id, layer = "tls", %error, "closing connection");
            None
        }
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
