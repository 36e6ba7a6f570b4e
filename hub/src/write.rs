//! Writing an [`Outbox`] (shared buffers queued for one socket) with vectored writes:
//! without blocking, for the publisher's fan-out and the players' passes, or to the end,
//! for the few bytes of a refused player and for subscribers.

use std::io::{self, IoSlice};

use proto::iov::Outbox;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

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

/// Writes `out` until it is empty or the socket would block.
pub fn try_write(sock: &OwnedWriteHalf, out: &mut Outbox) -> io::Result<Written> {
    let mut progress = false;
    while !out.is_empty() {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let n = out.fill(&mut iov);
        let offered: usize = iov[..n].iter().map(|s| s.len()).sum();
        let whole = n == out.buffers();
        match sock.try_write_vectored(&iov[..n]) {
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
    while !out.is_empty() {
        let written = {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = out.fill(&mut iov);
            wr.write_vectored(&iov[..n]).await?
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        out.advance(written);
    }
    Ok(())
}
