//! A reporting connection to `hub.sock`: role `Publisher` with no `Announce`, which the hub
//! accepts for `Event` messages (counter reports, events) and never writes to after its
//! hello.

use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, FrameDecoder, Header, Role, FORMAT_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long the hub may take to answer the hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the hub at `hub` as `component/PID` and waits for its hello.
pub(crate) async fn connect(hub: &Path, component: &str) -> std::io::Result<UnixStream> {
    let mut sock = UnixStream::connect(hub).await?;
    let mut out = BytesMut::new();
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Publisher,
            name: format!("{component}/{}", std::process::id()),
        },
        &[],
        &mut out,
    );
    sock.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(1024);
    let decoder = FrameDecoder::default();
    let hello = tokio::time::timeout(HELLO_TIMEOUT, async {
        loop {
            if let Some(m) = decoder.decode(&mut buf).map_err(std::io::Error::other)? {
                return ipc::check_hello(&m.header)
                    .map(|_| ())
                    .map_err(std::io::Error::other);
            }
            if sock.read_buf(&mut buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    })
    .await;
    hello.map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    Ok(sock)
}
