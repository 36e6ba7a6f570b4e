//! Handing an accepted player to the hub: its TCP socket (SCM_RIGHTS) and the session
//! state, in one `sendmsg` on a fresh Unix socket, confirmed by the hub's hello.
//!
//! An RTMPS player's TLS session cannot leave this process, so it gets a socketpair
//! instead: one end goes to the hub, which serves it like any player socket; ingest keeps
//! the TLS session and relays plaintext between it and the other end.
//!
//! ```text
//!  client ==TLS== ingest (decrypt/encrypt) --plaintext-- socketpair --fd--> hub
//! ```

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, FrameDecoder, Header, Role, FORMAT_VERSION};
use proto::rtmp::session::PlayerHandoff;
use sendfd::SendWithFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;

use ingest_link::link::{LinkError, HUB_TIMEOUT};

/// Connects to the hub for one handoff.
pub(crate) async fn connect(hub: &Path) -> Result<UnixStream, LinkError> {
    tokio::time::timeout(HUB_TIMEOUT, UnixStream::connect(hub))
        .await
        .map_err(|_| LinkError::Timeout(HUB_TIMEOUT))?
        .map_err(LinkError::from)
}

/// Sends hello, `PlayerHandoff(state)` and the socket `player` (the client's TCP socket or
/// the hub's end of an RTMPS player's socketpair), then waits for the hub's hello. The
/// caller drops its copy of the socket afterwards.
pub(crate) async fn hand_over(
    mut uds: UnixStream,
    player: BorrowedFd<'_>,
    state: PlayerHandoff,
) -> Result<(), LinkError> {
    let mut out = BytesMut::new();
    encode_hello(Role::PlayerHandoff, Some(state.conn_id), &mut out);
    ipc::encode(&Header::PlayerHandoff(Box::new(state)), &[], &mut out);
    let fd = player.as_raw_fd();
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

/// Bytes relayed per read, each direction.
const RELAY_CHUNK: usize = 16 * 1024;

/// Hands an RTMPS player to the hub over a socketpair, then relays plaintext between the
/// TLS session and the pair until either side ends. A client that takes no bytes for
/// `write_timeout` ends the relay (the hub's own write timeout closes its end first).
pub(crate) async fn relay_tls(
    uds: UnixStream,
    tls: TlsStream<TcpStream>,
    state: PlayerHandoff,
    key: &proto::media::StreamKey,
    write_timeout: Duration,
) -> Result<(), LinkError> {
    let (ours, theirs) = UnixStream::pair()?;
    hand_over(uds, theirs.as_fd(), state).await?;
    drop(theirs);
    tracing::info!(key = %key, "RTMPS player handed to the hub (relayed through ingest)");
    let (mut tls_rd, mut tls_wr) = tokio::io::split(tls);
    let (mut hub_rd, mut hub_wr) = ours.into_split();
    let to_client = async {
        let mut buf = vec![0u8; RELAY_CHUNK];
        loop {
            let n = hub_rd.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>("the hub closed the player");
            }
            tokio::time::timeout(write_timeout, tls_wr.write_all(&buf[..n]))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "the client does not read")
                })??;
        }
    };
    let from_client = async {
        tokio::io::copy(&mut tls_rd, &mut hub_wr).await?;
        Ok::<_, std::io::Error>("the client closed the connection")
    };
    let why = tokio::select! {
        r = to_client => r,
        r = from_client => r,
    };
    match why {
        Ok(why) => tracing::debug!(why, "RTMPS relay ended"),
        Err(e) => tracing::debug!(error = %e, "RTMPS relay ended"),
    }
    // Best effort: a TLS close_notify, bounded like any write.
    let mut tls = tls_rd.unsplit(tls_wr);
    let _ = tokio::time::timeout(write_timeout, tls.shutdown()).await;
    Ok(())
}
