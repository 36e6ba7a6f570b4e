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
use crate::conn::Ended;
use crate::drain::Token;
use crate::slots::Slots;
use crate::tls::{ClientSock, Tls};
use ingest_link::events::Closed;

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

/// Binds a listener on `addr` (SO_REUSEADDR as usual; SO_REUSEPORT with `reuse_port`,
/// so that another instance may listen there too).
pub(crate) fn bind(addr: std::net::SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let sock = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    if reuse_port {
        sock.set_reuseport(true)?;
    }
    sock.bind(addr)?;
    sock.listen(1024)
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
        let protocol = if tls.is_some() { "rtmps" } else { "rtmp" };
        cfg.events.accepted(conn_id, remote, protocol);
        tokio::spawn(
            async move {
                let since = Instant::now();
                let sock = match tls {
                    None => Ok(ClientSock::Tcp(sock)),
                    Some(tls) => tls_handshake(&tls, sock, conn_id, &cfg).await,
                };
                let ended = match sock {
                    Ok(sock) => {
                        crate::conn::run(sock, conn_id, remote, cfg.clone(), drain, slot, memory)
                            .await
                    }
                    Err(error) => Ended {
                        reason: "tls",
                        error: Some(error),
                        key: String::new(),
                        bytes_in: 0,
                    },
                };
                cfg.events.closed(
                    conn_id,
                    remote,
                    Closed {
                        protocol,
                        key: &ended.key,
                        reason: ended.reason,
                        error: ended.error.as_deref(),
                        duration: since.elapsed(),
                        bytes_in: ended.bytes_in,
                    },
                );
                drop(open);
            }
            .instrument(span),
        );
    }
}

/// The server side of the TLS handshake, bounded by the handshake timeout; the error
/// (logged) when it fails.
async fn tls_handshake(
    tls: &Tls,
    sock: tokio::net::TcpStream,
    conn_id: u64,
    cfg: &Config,
) -> Result<ClientSock, String> {
    let limit = cfg.handshake_timeout;
    let error = match tokio::time::timeout(limit, tls.acceptor().accept(sock)).await {
        Ok(Ok(s)) => return Ok(ClientSock::Tls(Box::new(s))),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "TLS handshake not completed within {}",
            humantime::format_duration(limit)
        ),
    };
    tracing::warn!(conn_id, layer = "tls", %error, "closing connection");
    Err(error)
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
