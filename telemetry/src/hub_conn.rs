//! Opening a connection to `hub.sock` the same way in every client: connect, send the
//! opening (a `Hello` and what follows it: an `Announce`, a `Subscribe`), then read up to
//! the hub's `Hello` and check it. Publishers, subscribers and reporters differ only in
//! what they send and what they do afterwards.

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, FrameDecoder, Header, IpcError, Role, FORMAT_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long the hub may take to answer a reporter's hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection to the hub could not be opened, or failed later (a subscription's
/// [`Session`](crate::subscription::Session): `Io`, `Ipc` or `Hub`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Connecting, writing or reading failed.
    #[error("hub socket: {0}")]
    Io(#[from] io::Error),
    /// The hub's bytes are not the framed format, or its version is another.
    #[error("hub protocol: {0}")]
    Ipc(#[from] IpcError),
    /// The hub refused the connection, or ended it, with an `Error` message.
    #[error("hub error: {0}")]
    Hub(String),
    /// The peer's hello names another role: it is not a hub.
    #[error("hub answered with role {0:?}, expected Hub")]
    Role(Role),
    /// The hub closed the connection before its hello.
    #[error("hub closed the connection")]
    Closed,
}

/// An open connection to the hub, past the hub's hello.
#[derive(Debug)]
pub struct HubConn {
    /// The socket.
    pub sock: UnixStream,
    /// What was read after the hub's hello (more messages may already be there).
    pub buf: BytesMut,
}

/// Connects to the hub at `hub`, writes `opening` (which starts with this side's
/// `Hello`), and reads the hub's `Hello`, checking its version and role. An `Error` from
/// the hub before it is returned as [`OpenError::Hub`]. No timeout: the caller bounds it.
pub async fn open(hub: &Path, opening: &[u8]) -> Result<HubConn, OpenError> {
    let mut sock = UnixStream::connect(hub).await?;
    sock.write_all(opening).await?;
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some(msg) = decoder.decode(&mut buf)? {
            if let Header::Error { message } = msg.header {
                return Err(OpenError::Hub(message));
            }
            return match ipc::check_hello(&msg.header)? {
                Role::Hub => Ok(HubConn { sock, buf }),
                role => Err(OpenError::Role(role)),
            };
        }
        if sock.read_buf(&mut buf).await? == 0 {
            return Err(OpenError::Closed);
        }
    }
}

/// [`open`] as a subscriber named `name` (`component/pid`, FORMAT.md section 3) with
/// its `Subscribe` (`patterns`, whether it wants media and events).
pub async fn subscribe(
    hub: &Path,
    name: String,
    patterns: Vec<String>,
    media: bool,
    events: bool,
) -> Result<HubConn, OpenError> {
    let mut opening = BytesMut::new();
    ipc::encode_subscription(name, patterns, media, events, &mut opening);
    open(hub, &opening).await
}

/// Connects to the hub at `hub` as the reporter `component/PID` (role `Publisher`, no
/// `Announce`) and waits for its hello.
pub(crate) async fn connect(hub: &Path, component: &str) -> io::Result<UnixStream> {
    let mut hello = BytesMut::new();
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Publisher,
            name: format!("{component}/{}", std::process::id()),
        },
        &[],
        &mut hello,
    );
    match tokio::time::timeout(HELLO_TIMEOUT, open(hub, &hello)).await {
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
        Ok(Ok(conn)) => Ok(conn.sock),
        Ok(Err(OpenError::Io(e))) => Err(e),
        Ok(Err(OpenError::Closed)) => Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(Err(e)) => Err(io::Error::other(e)),
    }
}
