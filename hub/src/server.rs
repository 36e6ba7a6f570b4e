//! The UDS listener: binding `hub.sock`, accepting connections, the hello exchange
//! (receiving a player's TCP socket with it), and dispatch by role.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, FrameDecoder, Header, IpcError, Message, Role, FORMAT_VERSION};
use sendfd::RecvWithFd;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tracing::Instrument;

use crate::registry::Registry;

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most file descriptors accepted with one read; extra ones are closed.
const MAX_FDS: usize = 4;

/// Why a connection's opening failed.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// Malformed framing, wrong first message or wrong version.
    #[error("{0}")]
    Ipc(#[from] IpcError),
    /// The peer closed before its hello was complete.
    #[error("closed before hello")]
    Closed,
    /// No hello within the timeout.
    #[error("no hello within {0:?}")]
    Timeout(Duration),
    /// A player handoff without a socket attached, or without its session.
    #[error("player handoff without {0}")]
    Handoff(&'static str),
    /// The descriptor handed over with a player is not a connected TCP or Unix stream
    /// socket.
    #[error("player handoff refused: {0}")]
    BadSocket(String),
    /// The peer claims to be a hub.
    #[error("peer role {0:?} is not accepted")]
    Role(Role),
}

/// What the hello exchange produced.
#[derive(Debug)]
pub struct Opened {
    /// The peer's role.
    pub role: Role,
    /// The peer's name.
    pub name: String,
    /// The client connection this IPC connection serves, in the sender's numbering
    /// (from the name, see [`ipc::hello_conn_id`]): logged as `conn_id`.
    pub conn_id: Option<u64>,
    /// Messages already decoded after the hello (the handoff, or early announces).
    pub messages: Vec<Message>,
    /// Bytes received past the decoded messages.
    pub buf: BytesMut,
    /// A descriptor received with the first bytes (player handoff).
    pub fd: Option<OwnedFd>,
}

/// Binds the socket: makes its directory private exactly as the supervisor does (created
/// 0700, owned by us or refused; 0710 for `group`), removes a stale socket file (one
/// nobody accepts on), and refuses to steal the socket of a running hub.
pub fn bind(path: &Path, group: Option<u32>) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        runtime::dir::ensure_private_for(dir, group)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is served by a running process", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    // Only this user (and `group`) may connect; SO_PEERCRED checks every connection again.
    let mode = match group {
        Some(gid) => {
            std::os::unix::fs::chown(path, None, Some(gid))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Accepts connections until the listener fails.
pub async fn serve(listener: UnixListener, registry: Arc<Registry>) -> io::Result<()> {
    let next_conn = AtomicU64::new(1);
    let policy = crate::peer::PeerPolicy::new(registry.config().socket_group);
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) if is_transient(&e) => {
                tracing::warn!(error = %e, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let ipc_id = next_conn.fetch_add(1, Ordering::Relaxed);
        let allowed = sock
            .peer_cred()
            .map_err(|e| format!("SO_PEERCRED: {e}"))
            .and_then(|c| policy.check(c.uid(), c.gid()));
        if let Err(error) = allowed {
            tracing::warn!(ipc_id, layer = "peer", %error, "refusing connection");
            continue;
        }
        let registry = registry.clone();
        // `conn_id` is the client's id in the sending ingest, known after the hello.
        let span = tracing::info_span!("ipc", ipc_id, conn_id = tracing::field::Empty);
        tokio::spawn(handle(sock, ipc_id, registry).instrument(span));
    }
}

/// Whether an accept error is momentary (the listener itself is fine).
pub fn is_transient(e: &io::Error) -> bool {
    // ENFILE / EMFILE: out of descriptors for a moment; the listener itself is fine.
    matches!(e.raw_os_error(), Some(23 | 24))
        || matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
        )
}

async fn handle(mut sock: UnixStream, ipc_id: u64, registry: Arc<Registry>) {
    // Boxed: the hello's receive buffer is freed once it is done, rather than kept in every
    // connection's task (a player's lives as long as the player).
    let opened = match tokio::time::timeout(HELLO_TIMEOUT, Box::pin(open(&sock))).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            tracing::warn!(ipc_id, layer = "hello", error = %e, "closing connection");
            if matches!(
                e,
                HelloError::Ipc(_) | HelloError::Role(_) | HelloError::BadSocket(_)
            ) {
                let mut out = BytesMut::new();
                ipc::encode(
                    &Header::Error {
                        message: e.to_string(),
                    },
                    &[],
                    &mut out,
                );
                let _ = sock.write_all(&out).await;
            }
            return;
        }
        Err(_) => {
            tracing::warn!(ipc_id, layer = "hello", error = %HelloError::Timeout(HELLO_TIMEOUT), "closing connection");
            return;
        }
    };
    // A handed-over player's own span names its client (from the session) instead.
    if let (Some(id), false) = (opened.conn_id, opened.role == Role::PlayerHandoff) {
        tracing::Span::current().record("conn_id", id);
    }
    tracing::debug!(ipc_id, role = ?opened.role, peer = %opened.name, "hello");
    let mut out = BytesMut::new();
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Hub,
            name: format!("hub/{}", std::process::id()),
        },
        &[],
        &mut out,
    );
    if let Err(e) = sock.write_all(&out).await {
        tracing::warn!(ipc_id, layer = "hello", error = %e, "closing connection");
        return;
    }
    // Each role's future is boxed, so a task holds the state of its own role only (a
    // player's task is most of the hub's memory per player).
    match opened.role {
        Role::Publisher => {
            Box::pin(crate::publisher::run(
                sock,
                ipc_id,
                opened,
                registry.clone(),
            ))
            .await
        }
        Role::Subscriber => {
            Box::pin(crate::subscriber::run(
                sock,
                ipc_id,
                opened,
                registry.clone(),
            ))
            .await
        }
        Role::PlayerHandoff => {
            // The handoff is complete once our hello is written; the UDS is done.
            drop(sock);
            Box::pin(crate::player::handoff::run(
                ipc_id,
                opened,
                registry.clone(),
            ))
            .await
        }
        Role::Control => Box::pin(crate::control::run(sock, opened, registry.clone())).await,
        Role::Hub => unreachable_role(ipc_id),
    }
    registry.connection_closed(ipc_id);
}

fn unreachable_role(ipc_id: u64) {
    tracing::warn!(ipc_id, layer = "hello", "closing connection: peer role Hub");
}

/// Reads until the hello (and, for a player handoff, the handoff message and its
/// descriptor) has arrived.
async fn open(sock: &UnixStream) -> Result<Opened, HelloError> {
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::with_capacity(8192);
    let mut fd: Option<OwnedFd> = None;
    let mut hello: Option<(Role, String)> = None;
    let mut messages = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        while let Some(msg) = decoder.decode(&mut buf)? {
            match &hello {
                None => {
                    let role = ipc::check_hello(&msg.header)?;
                    if role == Role::Hub {
                        return Err(HelloError::Role(role));
                    }
                    let Header::Hello { name, .. } = msg.header else {
                        return Err(HelloError::Closed);
                    };
                    hello = Some((role, name));
                }
                Some(_) => messages.push(msg),
            }
        }
        if let Some((role, _)) = &hello {
            let done = match role {
                Role::PlayerHandoff => !messages.is_empty(),
                _ => true,
            };
            if done {
                let (role, name) = hello.take().expect("hello set");
                if role == Role::PlayerHandoff && fd.is_none() {
                    return Err(HelloError::Handoff("a socket"));
                }
                return Ok(Opened {
                    role,
                    conn_id: ipc::hello_conn_id(&name),
                    name,
                    messages,
                    buf,
                    fd,
                });
            }
        }
        sock.readable().await?;
        let mut fds: [RawFd; MAX_FDS] = [-1; MAX_FDS];
        let (n, nfds) = match sock.recv_with_fd(&mut chunk, &mut fds) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        };
        let mut received = Vec::with_capacity(nfds);
        for &raw in &fds[..nfds.min(MAX_FDS)] {
            // SAFETY: `raw` was just installed in this process by the kernel for this
            // recvmsg (SCM_RIGHTS) and nothing else owns it; wrapping it at once makes it
            // closed on every path, including the extra descriptors we drop here.
            received.push(unsafe { OwnedFd::from_raw_fd(raw) });
        }
        if let Some(first) = received.into_iter().next().filter(|_| fd.is_none()) {
            // Refused as soon as it arrives: only a player's connected stream socket may be
            // handed over.
            crate::peer::player_socket(&first).map_err(HelloError::BadSocket)?;
            fd = Some(first);
        }
        if n == 0 {
            return Err(HelloError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
