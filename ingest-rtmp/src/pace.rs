//! Read coalescing (`--read-coalesce`): a publisher's socket is read on a grid of ticks
//! shared by every connection of the process, instead of each time a frame arrives.
//!
//! ```text
//!  frames arrive ---> kernel receive buffer (SO_RCVLOWAT raised: no wake-up per frame)
//!  tick (every --read-coalesce, the same instant for all publishers):
//!      SO_RCVLOWAT lowered -> readable -> one read of everything that arrived ->
//!      one vectored write of all its frames to the hub -> SO_RCVLOWAT raised again
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

use std::io;
use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::Duration;

use nix::libc;
use nix::{setsockopt_impl, sockopt_impl};
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
    /// The low-water mark is raised: the socket is read at `tick` (or after a burst).
    raised: bool,
    tick: Instant,
}

impl Pace {
    /// Pacing at `every` (zero: off, every frame is read as it arrives).
    pub(crate) fn new(every: Duration) -> Pace {
        Pace {
            every,
            raised: false,
            tick: Instant::now(),
        }
    }

    /// When the socket is read next if nothing else happens: `Some` while waiting for a
    /// tick.
    pub(crate) fn waiting_until(&self) -> Option<Instant> {
        self.raised.then_some(self.tick)
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
    pub(crate) fn after_read(&mut self, sock: &impl AsFd, on: bool) -> io::Result<()> {
        let on = on && !self.every.is_zero();
        if on && !self.raised {
            set_low_water(sock, LOW_WATER)?;
            self.raised = true;
            self.tick = next_tick(Instant::now(), self.every);
        } else if !on && self.raised {
            self.lower(sock)?;
        }
        Ok(())
    }

    /// The tick is due (or pacing ends): whatever is buffered becomes readable now, and
    /// so does the next byte if nothing is.
    pub(crate) fn lower(&mut self, sock: &impl AsFd) -> io::Result<()> {
        set_low_water(sock, 1)?;
        self.raised = false;
        Ok(())
    }
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

    #[tokio::test]
    async fn a_raised_low_water_mark_holds_small_writes_until_lowered() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 16];
        // As a publisher's connection: some input was read before pacing starts.
        client.write_all(b"hello").await.unwrap();
        // A short read (less than asked for) leaves the socket not readable until the
        // kernel signals it again, as after every read of a publisher's connection.
        assert_eq!(server.read(&mut buf).await.unwrap(), 5);
        let mut pace = Pace::new(Duration::from_millis(10));
        pace.after_read(&server, true).unwrap();
        assert!(pace.waiting_until().is_some());
        client.write_all(b"frame").await.unwrap();
        // Below the low-water mark the socket does not become readable ...
        let held = tokio::time::timeout(Duration::from_millis(50), server.readable()).await;
        assert!(held.is_err(), "a small write woke the paced reader");
        // ... until the tick lowers it.
        pace.lower(&server).unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), server.read(&mut buf))
            .await
            .expect("readable once lowered")
            .unwrap();
        assert_eq!(&buf[..n], b"frame");
        // A burst of the low-water mark is readable without a tick.
        pace.after_read(&server, true).unwrap();
        client
            .write_all(&vec![7u8; LOW_WATER as usize])
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), server.readable())
            .await
            .expect("a burst wakes the reader")
            .unwrap();
    }
}
