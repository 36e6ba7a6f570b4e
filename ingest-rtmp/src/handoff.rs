//! Handing an accepted player to the hub: its TCP socket (SCM_RIGHTS) and the session
//! state, in one `sendmsg` on a fresh Unix socket, confirmed by the hub's hello.

use std::os::fd::AsRawFd;
use std::path::Path;

use bytes::BytesMut;
use proto::ipc::{self, FrameDecoder, Header, Role, FORMAT_VERSION};
use proto::rtmp::session::PlayerHandoff;
use sendfd::SendWithFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UnixStream};

use ingest_link::link::{LinkError, HUB_TIMEOUT};

/// Connects to the hub for one handoff.
pub(crate) async fn connect(hub: &Path) -> Result<UnixStream, LinkError> {
    tokio::time::timeout(HUB_TIMEOUT, UnixStream::connect(hub))
        .await
        .map_err(|_| LinkError::Timeout(HUB_TIMEOUT))?
        .map_err(LinkError::from)
}

/// Sends hello, `PlayerHandoff(state)` and the socket, then waits for the hub's hello.
/// The caller drops its copy of `tcp` afterwards.
pub(crate) async fn hand_over(
    mut uds: UnixStream,
    tcp: &TcpStream,
    state: PlayerHandoff,
) -> Result<(), LinkError> {
    let mut out = BytesMut::new();
    encode_hello(Role::PlayerHandoff, Some(state.conn_id), &mut out);
    ipc::encode(&Header::PlayerHandoff(state), &[], &mut out);
    let fd = tcp.as_raw_fd();
    let exchange = async {
        let sent = loop {
            uds.writable().await?;
            match uds.try_io(Interest::WRITABLE, || uds.send_with_fd(&out, &[fd])) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(LinkError::Io(e)),
            }
        };
        // The descriptor went with the first byte; the rest is plain stream data.
        uds.write_all(&out[sent..]).await?;
        read_hub_hello(&mut uds).await
    };
    tokio::time::timeout(HUB_TIMEOUT, exchange)
        .await
        .map_err(|_| LinkError::Timeout(HUB_TIMEOUT))?
}

/// Appends our `Hello` in `role` to `out`, naming the client connection `conn_id` (so the
/// hub logs it under the same id).
pub(crate) fn encode_hello(role: Role, conn_id: Option<u64>, out: &mut BytesMut) {
    let hello = Header::Hello {
        version: FORMAT_VERSION,
        role,
        name: ipc::hello_name("ingest-rtmp", std::process::id(), conn_id),
    };
    ipc::encode(&hello, &[], out);
}

/// Waits for the hub's `Hello` (an `Error` in its place is the hub refusing us).
pub(crate) async fn read_hub_hello(sock: &mut UnixStream) -> Result<(), LinkError> {
    let decoder = FrameDecoder::default();
    let mut rbuf = BytesMut::with_capacity(512);
    loop {
        if let Some(msg) = decoder.decode(&mut rbuf)? {
            if let Header::Error { message } = msg.header {
                return Err(LinkError::Hub(message));
            }
            return match ipc::check_hello(&msg.header)? {
                Role::Hub => Ok(()),
                role => Err(LinkError::Role(role)),
            };
        }
        if sock.read_buf(&mut rbuf).await? == 0 {
            return Err(LinkError::Closed);
        }
    }
}
