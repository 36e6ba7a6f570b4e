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
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::PlayerHandoff,
            name: ipc::hello_name("ingest-rtmp", std::process::id(), Some(state.conn_id)),
        },
        &[],
        &mut out,
    );
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
        let decoder = FrameDecoder::default();
        let mut rbuf = BytesMut::with_capacity(512);
        loop {
            if let Some(msg) = decoder.decode(&mut rbuf)? {
                if let Header::Error { message } = msg.header {
                    return Err(LinkError::Hub(message));
                }
                let role = ipc::check_hello(&msg.header)?;
                return if role == Role::Hub {
                    Ok(())
                } else {
                    Err(LinkError::Role(role))
                };
            }
            if uds.read_buf(&mut rbuf).await? == 0 {
                return Err(LinkError::Closed);
            }
        }
    };
    tokio::time::timeout(HUB_TIMEOUT, exchange)
        .await
        .map_err(|_| LinkError::Timeout(HUB_TIMEOUT))?
}
