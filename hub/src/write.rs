//! Writing an [`Outbox`] (shared buffers queued for one socket) with vectored writes:
//! without blocking, for the publisher's fan-out and the players' passes, or to the end,
//! for the few bytes of a refused player and for subscribers.

use std::future::Future;
use std::io::{self, IoSlice};
use std::time::Duration;

use proto::iov::Outbox;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{tcp, unix, TcpStream, UnixStream};

/// Most slices passed to one `writev` call (below every IOV_MAX).
const MAX_IOV: usize = 64;

/// What a non-blocking write left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The outbox is empty.
    All,
    /// The socket is full; `progress` when it took some bytes first.
    Blocked {
        /// Whether any byte was taken.
        progress: bool,
    },
}

/// The write half of a player's socket, written without blocking from whichever task
/// has something to send: a TCP connection, or the Unix socketpair ingest relays an RTMPS
/// player over.
pub trait SockWrite: AsyncWrite + Unpin + Send + Sync + 'static {
    /// One non-blocking vectored write (`WouldBlock` when the socket is full).
    fn try_writev(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Resolves when the socket may take bytes again.
    fn ready(&self) -> impl Future<Output = io::Result<()>> + Send;
}

/// A player's connected stream socket, split into its two halves.
pub trait PlayerSock: Send + 'static {
    /// The read half.
    type Read: AsyncRead + Unpin + Send;
    /// The write half.
    type Write: SockWrite;
    /// Splits the socket.
    fn split(self) -> (Self::Read, Self::Write);
}

macro_rules! stream_socket {
    ($stream:ty, $half:ident) => {
        impl SockWrite for $half::OwnedWriteHalf {
            fn try_writev(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                self.try_write_vectored(bufs)
            }

            fn ready(&self) -> impl Future<Output = io::Result<()>> + Send {
                self.writable()
            }
        }

        impl PlayerSock for $stream {
            type Read = $half::OwnedReadHalf;
            type Write = $half::OwnedWriteHalf;

            fn split(self) -> (Self::Read, Self::Write) {
                self.into_split()
            }
        }
    };
}

stream_socket!(TcpStream, tcp);
stream_socket!(UnixStream, unix);

/// Writes `out` until it is empty or the socket would block.
pub fn try_write<W: SockWrite>(sock: &W, out: &mut Outbox) -> io::Result<Written> {
    let mut progress = false;
    while !out.is_empty() {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let n = out.fill(&mut iov);
        let offered: usize = iov[..n].iter().map(|s| s.len()).sum();
        let whole = n == out.buffers();
        match sock.try_writev(&iov[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                out.advance(written);
                progress = true;
                if written < offered && whole {
                    // A short write: the socket buffer is full.
                    return Ok(Written::Blocked { progress });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Written::Blocked { progress })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Written::All)
}

/// Writes all of `out`, waiting for the socket as needed.
pub async fn write_all<W: AsyncWrite + Unpin>(wr: &mut W, out: &mut Outbox) -> io::Result<()> {
    write_all_within(wr, out, None).await
}

/// [`write_all`], failing with `TimedOut` when the socket takes no byte for `stall` (a
/// peer that stopped reading without closing).
pub async fn write_all_within<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &mut Outbox,
    stall: Option<Duration>,
) -> io::Result<()> {
    while !out.is_empty() {
        let written = {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = out.fill(&mut iov);
            let write = wr.write_vectored(&iov[..n]);
            match stall {
                Some(stall) => tokio::time::timeout(stall, write)
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??,
                None => write.await?,
            }
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        out.advance(written);
    }
    Ok(())
}
