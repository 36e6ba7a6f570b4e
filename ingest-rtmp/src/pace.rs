//! Read coalescing (`--read-coalesce`): a publisher's socket is read on a grid of ticks
//! shared by every connection of the process, instead of each time a frame arrives.
//!
//! ```text
//!  frames arrive ---> kernel receive buffer (SO_RCVLOWAT raised once: no wake-up per frame)
//!  tick (every --read-coalesce, the same instant for all publishers):
//!      one non-blocking recv of everything that arrived (the low-water mark does not
//!      hold back a read that does not wait) -> one vectored write of its frames to the hub
//! ```
//!
//! Every arriving frame used to cost a wake-up of this process, a read, a write to the hub
//! and a wake-up of the hub; at 30 video and 47 audio frames a second that dominated a
//! publisher's cost. Raising the socket's receive low-water mark keeps the kernel from
//! waking us for each segment; the tick then reads them all at once. Because the ticks of
//! all publishers coincide, one wake-up of the process serves every publisher, and the hub
//! receives all their writes together. A frame waits at most one tick in the kernel; a
//! burst of [`LOW_WATER`] bytes (a large keyframe) is read as soon as it is there, and the
//! end of the connection or an error is seen at once.
//!
//! A plain TCP socket is read on the tick with one `recv` that bypasses the runtime's
//! readiness (which the raised mark keeps clear); an RTMPS socket, whose bytes must go
//! through TLS, has its mark lowered on the tick instead, which makes it readable, and
//! raised again after the read (two `setsockopt` and a wake-up more per tick).

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use nix::libc;
use nix::{setsockopt_impl, sockopt_impl};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Bytes that wake a paced reader before its tick: a read's worth.
pub(crate) const LOW_WATER: i32 = 64 * 1024;

// The `SO_RCVLOWAT` socket option (nix has no binding for it).
sockopt_impl!(
    RcvLowat,
    SetOnly,
    libc::SOL_SOCKET,
    libc::SO_RCVLOWAT,
    libc::c_int
);

/// One connection's read pacing.
#[derive(Debug)]
pub(crate) struct Pace {
    every: Duration,
    /// The tick reads the socket itself (plain TCP) rather than lowering the mark (TLS).
    direct: bool,
    /// The low-water mark is raised: the socket is read at `tick` (or after a burst).
    raised: bool,
    tick: Instant,
}

impl Pace {
    /// Pacing at `every` (zero: off, every frame is read as it arrives); `direct`: the
    /// connection's bytes are the socket's (no TLS), so a tick reads with [`read_now`].
    pub(crate) fn new(every: Duration, direct: bool) -> Pace {
        Pace {
            every,
            direct,
            raised: false,
            tick: Instant::now(),
        }
    }

    /// When the socket is read next if nothing else happens: `Some` while waiting for a
    /// tick.
    pub(crate) fn waiting_until(&self) -> Option<Instant> {
        self.raised.then_some(self.tick)
    }

    /// Whether the tick reads with [`read_now`] (otherwise it calls [`Pace::lower`]).
    pub(crate) fn reads_on_tick(&self) -> bool {
        self.direct
    }

    /// How long input may wait unread: a deadline for input is this much later.
    pub(crate) fn grace(&self) -> Duration {
        if self.raised {
            self.every
        } else {
            Duration::ZERO
        }
    }

    /// After a read: with `on`, the next frames wait in the kernel until the next tick.
    /// Without it (not publishing, or not yet), every byte wakes the reader again.
    /// `drained`: the read took less than it had room for, so the socket was empty.
    pub(crate) fn after_read(
        &mut self,
        sock: &TcpStream,
        on: bool,
        drained: bool,
    ) -> io::Result<()> {
        let on = on && !self.every.is_zero();
        if !on {
            if self.raised {
                self.lower(sock)?;
            }
            return Ok(());
        }
        if !self.direct {
            if !self.raised {
                set_low_water(sock, LOW_WATER)?;
                self.raised = true;
                self.tick = next_tick(Instant::now(), self.every);
            }
            return Ok(());
        }
        if !self.raised {
            set_low_water(sock, LOW_WATER)?;
            self.raised = true;
        }
        // A short read emptied the socket (the runtime then waits for the kernel's next
        // signal too); a full one may have left more, read at once.
        self.tick = if drained {
            next_tick(Instant::now(), self.every)
        } else {
            Instant::now()
        };
        Ok(())
    }

    /// The tick is due (or pacing ends): whatever is buffered becomes readable now, and
    /// so does the next byte if nothing is.
    pub(crate) fn lower(&mut self, sock: &impl AsFd) -> io::Result<()> {
        set_low_water(sock, 1)?;
        self.raised = false;
        Ok(())
    }

    /// A tick found nothing to read: wait for the next one.
    pub(crate) fn idle_tick(&mut self) {
        self.tick = next_tick(Instant::now(), self.every);
    }
}

/// Reads what `sock` holds into the spare room of `buf` without waiting: a read that does
/// not wait returns what is there even below the low-water mark, and going around the
/// runtime's readiness (clear while the mark holds input back) saves lowering the mark to
/// make the socket readable and raising it again. `None`: nothing arrived; `Some(0)`:
/// the peer closed its side.
pub(crate) fn read_now(sock: &TcpStream, buf: &mut BytesMut) -> io::Result<Option<usize>> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: recv writes at most `spare.len()` bytes into the memory it is given, which
    // is `buf`'s own allocated and unused capacity; it does not keep the pointer.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            spare.as_mut_ptr().cast(),
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    let n = n as usize;
    // SAFETY: the kernel initialized the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(Some(n))
}

fn set_low_water(sock: &impl AsFd, bytes: i32) -> io::Result<()> {
    nix::sys::socket::setsockopt(sock, RcvLowat, &bytes).map_err(io::Error::from)
}

/// The first tick after `now`: ticks are multiples of `every` from one process-wide
/// epoch, so the ticks of all connections fall on the same instants.
pub(crate) fn next_tick(now: Instant, every: Duration) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let every_ns = every.as_nanos().max(1);
    let since = now.saturating_duration_since(epoch).as_nanos();
    let n = since / every_ns + 1;
    epoch + Duration::from_nanos((n * every_ns).min(u128::from(u64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_one_grid_after_now() {
        let every = Duration::from_millis(20);
        next_tick(Instant::now(), every); // the process-wide epoch exists
        let now = Instant::now();
        let a = next_tick(now, every);
        let b = next_tick(now + Duration::from_millis(7), every);
        let c = next_tick(a, every);
        assert!(a > now && a <= now + every);
        assert!(b >= a && b <= a + every);
        assert_eq!(c, a + every, "a tick's successor is one period later");
        // Any two instants map onto the same grid: the difference of ticks is a multiple.
        let d = next_tick(now + Duration::from_millis(53), every);
        assert_eq!((d - a).as_nanos() % every.as_nanos(), 0);
    }

    /// A publisher's connection, paced: some input was read before pacing starts, with a
    /// short read (less than asked for), which leaves the socket not readable until the
    /// kernel signals it again, as after every read of a publisher's connection.
    async fn paced(direct: bool) -> (TcpStream, TcpStream, Pace) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = l.accept().await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).await.unwrap(), 5);
        let mut pace = Pace::new(Duration::from_millis(10), direct);
        pace.after_read(&server, true, true).unwrap();
        assert!(pace.waiting_until().is_some());
        (client, server, pace)
    }

    async fn not_readable(server: &TcpStream) -> bool {
        tokio::time::timeout(Duration::from_millis(50), server.readable())
            .await
            .is_err()
    }

    async fn wakes_on_a_burst(client: &mut TcpStream, server: &TcpStream) {
        use tokio::io::AsyncWriteExt;
        client
            .write_all(&vec![7u8; LOW_WATER as usize])
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), server.readable())
            .await
            .expect("a burst wakes the reader")
            .unwrap();
    }

    #[tokio::test]
    async fn a_raised_low_water_mark_holds_small_writes_until_lowered() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, mut server, mut pace) = paced(false).await;
        assert!(!pace.reads_on_tick());
        client.write_all(b"frame").await.unwrap();
        // Below the low-water mark the socket does not become readable ...
        assert!(
            not_readable(&server).await,
            "a small write woke the paced reader"
        );
        // ... until the tick lowers it.
        pace.lower(&server).unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), server.read(&mut buf))
            .await
            .expect("readable once lowered")
            .unwrap();
        assert_eq!(&buf[..n], b"frame");
        // A burst of the low-water mark is readable without a tick.
        pace.after_read(&server, true, true).unwrap();
        wakes_on_a_burst(&mut client, &server).await;
    }

    #[tokio::test]
    async fn a_tick_reads_below_the_low_water_mark_without_lowering_it() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server, mut pace) = paced(true).await;
        assert!(pace.reads_on_tick());
        let mut buf = BytesMut::with_capacity(64);
        assert_eq!(
            read_now(&server, &mut buf).unwrap(),
            None,
            "nothing arrived yet"
        );
        client.write_all(b"frame").await.unwrap();
        assert!(
            not_readable(&server).await,
            "a small write woke the paced reader"
        );
        // The tick's read takes what is there, and the mark stays raised.
        assert_eq!(read_now(&server, &mut buf).unwrap(), Some(5));
        assert_eq!(&buf[..], b"frame");
        pace.after_read(&server, true, true).unwrap();
        let next = pace.waiting_until().expect("paced");
        assert!(
            next > Instant::now(),
            "a short read waits for the next tick"
        );
        client.write_all(b"again").await.unwrap();
        assert!(not_readable(&server).await, "the mark was lowered");
        assert_eq!(read_now(&server, &mut buf).unwrap(), Some(5));
        assert_eq!(&buf[..], b"frameagain");
        // A full read reads again at once.
        pace.after_read(&server, true, false).unwrap();
        assert!(pace.waiting_until().unwrap() <= Instant::now());
        wakes_on_a_burst(&mut client, &server).await;
        // The end of the connection is seen by a tick's read too.
        drop(client);
        let mut rest = BytesMut::with_capacity(2 * LOW_WATER as usize);
        let eof = async {
            loop {
                match read_now(&server, &mut rest).unwrap() {
                    Some(0) => break,
                    Some(_) => rest.clear(),
                    None => server.readable().await.unwrap(),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), eof)
            .await
            .expect("the end of the connection is read");
    }
}
