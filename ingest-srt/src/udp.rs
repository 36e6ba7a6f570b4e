//! The endpoint's UDP socket: reads in batches (`recvmmsg`), each datagram stamped with
//! the time the kernel received it, two ways to wait for datagrams, and sends that never
//! wait (a datagram that finds the send buffer full is dropped and counted).
//!
//! While datagrams keep arriving the endpoint reads them on a 10 ms grid instead of
//! waking for each one, and the socket is then left out of the runtime's epoll set (a
//! registered socket wakes the thread on every arrival, whether or not a task waits on
//! it). The arrival time the kernel recorded goes to the SRT state machines as `now`, so
//! reading late does not skew RTT samples, drift tracking or TSBPD.
//!
//! ```text
//!  idle or handshakes only:  registered (epoll) --readable--> read all --> handle
//!  datagrams flowing:        not registered; every grid step --> read all --> handle
//! ```

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use socket2::{SockAddr, SockRef};
use telemetry::Counter;
use tokio::io::Interest;

/// Datagrams one `recvmmsg` call takes at most.
const BATCH: usize = 32;
/// Datagram slots in one receive region: one allocation serves this many datagrams.
const REGION: usize = 64;
/// Room for one `SCM_TIMESTAMPNS` control message (CMSG_SPACE of a timespec is 32 bytes on
/// 64-bit Linux), with margin.
const CONTROL: usize = 64;
/// A kernel timestamp further in the past than this is not believed (a wall-clock step):
/// the datagram counts as received when it was read.
const MAX_AGE: Duration = Duration::from_secs(1);

/// One received datagram.
pub(crate) struct Datagram {
    /// When the kernel received it (when it was read, without kernel timestamps).
    pub(crate) at: Instant,
    pub(crate) from: SocketAddr,
    /// Its own range of a shared receive region (see [`Udp`]): mutable, so an encrypted
    /// payload is decrypted where it lies.
    pub(crate) data: BytesMut,
}

/// What one [`Udp::recv`] read.
pub(crate) struct Read {
    /// Datagrams read (dropped ones included).
    pub(crate) count: usize,
    /// Whether the socket may hold more (the read filled every slot it offered).
    pub(crate) more: bool,
}

/// The socket and its read buffers.
pub(crate) struct Udp {
    raw: std::net::UdpSocket,
    /// The same socket registered with the runtime, while the endpoint waits for
    /// readiness; `None` while it reads on the grid.
    watch: Option<tokio::net::UdpSocket>,
    /// The unused rest of the current receive region: [`REGION`] slots of `size` bytes
    /// allocated at once. `recvmmsg` fills the first slots; each filled one is split off
    /// as its datagram's buffer, the next read goes on after it, and a new region is
    /// allocated when this one has no slot left. A region's memory is freed once every
    /// datagram split off it has been dropped (a data packet waits for TSBPD, a control
    /// packet is dropped once handled): one allocation per [`REGION`] datagrams instead of
    /// one each.
    region: BytesMut,
    size: usize,
    timestamps: bool,
    /// Datagrams dropped because the send buffer was full.
    send_dropped: Counter,
}

impl Udp {
    /// Takes over `socket`; `size` is the largest datagram kept (longer ones are dropped),
    /// `send_dropped` counts the datagrams a full send buffer had no room for.
    pub(crate) fn new(
        socket: tokio::net::UdpSocket,
        size: usize,
        send_dropped: Counter,
    ) -> io::Result<Self> {
        let raw = socket.into_std()?;
        raw.set_nonblocking(true)?;
        let timestamps = enable_timestamps(&raw).map_err(|e| {
            tracing::debug!(error = %e, "no kernel receive timestamps: datagrams are stamped when read");
        }).is_ok();
        let mut udp = Udp {
            raw,
            watch: None,
            region: BytesMut::new(),
            size,
            timestamps,
            send_dropped,
        };
        udp.wait_for_readiness()?;
        Ok(udp)
    }

    /// Whether the socket is registered with the runtime ([`Udp::readable`] works).
    pub(crate) fn is_watched(&self) -> bool {
        self.watch.is_some()
    }

    /// Registers the socket with the runtime, for [`Udp::readable`].
    pub(crate) fn wait_for_readiness(&mut self) -> io::Result<()> {
        if self.watch.is_none() {
            self.watch = Some(tokio::net::UdpSocket::from_std(self.raw.try_clone()?)?);
        }
        Ok(())
    }

    /// Takes the socket out of the runtime's epoll set: arrivals no longer wake the
    /// thread; the caller reads on its own schedule.
    pub(crate) fn poll_on_grid(&mut self) {
        self.watch = None;
    }

    /// Waits until a datagram may be waiting; never returns while not registered.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match &self.watch {
            Some(w) => w.readable().await,
            None => std::future::pending().await,
        }
    }

    /// Reads up to one batch into `out`; a count of 0 when nothing is waiting. While the
    /// socket is registered, running dry clears the runtime's readiness (a datagram that
    /// arrives meanwhile sets it again), so [`Udp::readable`] does not return at once.
    pub(crate) fn recv(&mut self, out: &mut Vec<Datagram>) -> io::Result<Read> {
        if self.region.len() < self.size {
            // Zeroed once: the slots are then initialised bytes that `recvmmsg` overwrites.
            self.region = BytesMut::zeroed(REGION * self.size);
        }
        let (raw, region, size, ts) = (&self.raw, &mut self.region, self.size, self.timestamps);
        let slots = (region.len() / size).min(BATCH);
        let r = match &self.watch {
            Some(w) => w.try_io(Interest::READABLE, || {
                match recv_batch(raw, region, slots, size, ts, out) {
                    Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                    r => r,
                }
            }),
            None => recv_batch(raw, region, slots, size, ts, out),
        };
        match r {
            Ok(count) => Ok(Read {
                count,
                more: count == slots,
            }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Read {
                count: 0,
                more: false,
            }),
            Err(e) => Err(e),
        }
    }

    /// Sends one datagram, never waiting (see [`send_or_drop`]).
    pub(crate) fn send_to(&self, d: &[u8], to: SocketAddr) -> io::Result<()> {
        send_or_drop(&self.raw, d, &to.into(), &self.send_dropped).map(drop)
    }
}

/// What became of a datagram given to [`send_or_drop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The kernel took it.
    Sent,
    /// The socket's send buffer had no room: dropped and counted.
    Dropped,
}

/// Sends `d` to `to` without waiting, whatever mode the socket is in (`MSG_DONTWAIT`).
/// When the send buffer is full the datagram is dropped and counted in `dropped`, as the
/// network might have dropped it: waiting would hold up the one thread that serves every
/// connection, and SRT copes with the loss (data comes back by NAK and retransmission,
/// ACKs and keepalives are periodic, a shutdown is sent three times, callers repeat their
/// handshakes). Other errors are returned.
fn send_or_drop(
    socket: &impl AsFd,
    d: &[u8],
    to: &SockAddr,
    dropped: &Counter,
) -> io::Result<Fate> {
    match SockRef::from(socket).send_to_with_flags(d, to, libc::MSG_DONTWAIT) {
        Ok(_) => Ok(Fate::Sent),
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) =>
        {
            dropped.inc();
            // A burst drops many: logged at the first and then at every doubling.
            let n = dropped.get();
            if n.is_power_of_two() {
                tracing::debug!(dropped = n, error = %e, "UDP send buffer full, datagram dropped");
            }
            Ok(Fate::Dropped)
        }
        Err(e) => Err(e),
    }
}

fn enable_timestamps(s: &std::net::UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads an int of the given size from a live local.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One `recvmmsg` into the first `slots` slots of `region` (each `size` bytes): what
/// arrived goes to `out`, each datagram split off the region with its slot (datagrams of
/// `size` bytes or more are dropped: too long for SRT, possibly truncated).
fn recv_batch(
    s: &std::net::UdpSocket,
    region: &mut BytesMut,
    slots: usize,
    size: usize,
    timestamps: bool,
    out: &mut Vec<Datagram>,
) -> io::Result<usize> {
    debug_assert!(slots <= BATCH && slots * size <= region.len());
    // SAFETY (zeroed): plain C structs for which all-zero is a valid value.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut control = [[0u64; CONTROL / 8]; BATCH];
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (i, slot) in region.chunks_exact_mut(size).take(slots).enumerate() {
        iovs[i] = libc::iovec {
            iov_base: slot.as_mut_ptr().cast(),
            iov_len: size,
        };
        let h = &mut msgs[i].msg_hdr;
        h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        if timestamps {
            h.msg_control = control[i].as_mut_ptr().cast();
            h.msg_controllen = CONTROL as _;
        }
    }
    // SAFETY: every header points at buffers that live until the call returns: a name,
    // one iovec over a `size`-byte slot of the region, a control buffer of its stated
    // length.
    let n = unsafe {
        libc::recvmmsg(
            s.as_raw_fd(),
            msgs.as_mut_ptr(),
            slots as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    let (mono, wall) = (Instant::now(), SystemTime::now());
    for (i, m) in msgs.iter().enumerate().take(n) {
        // The slot leaves the region whatever it holds: slot i of this read is the
        // region's first now.
        let mut data = region.split_to(size);
        let len = m.msg_len as usize;
        let h = &m.msg_hdr;
        if len >= size || h.msg_flags & libc::MSG_TRUNC != 0 {
            continue;
        }
        let Some(from) = address(&names[i]) else {
            continue;
        };
        let at = if timestamps {
            // SAFETY: the kernel filled the control buffer of this header.
            unsafe { received_at(h) }
                .and_then(|t| wall.duration_since(t).ok())
                .filter(|age| *age <= MAX_AGE)
                .and_then(|age| mono.checked_sub(age))
                .unwrap_or(mono)
        } else {
            mono
        };
        data.truncate(len);
        out.push(Datagram { at, from, data });
    }
    Ok(n)
}

/// The `SCM_TIMESTAMPNS` of a received message, as a wall-clock time.
///
/// # Safety
/// `h` must describe a message `recvmmsg` just filled in, control buffer included.
unsafe fn received_at(h: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: the caller vouches for the header; the CMSG_* walk stays within the
    // control length the kernel set.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return UNIX_EPOCH.checked_add(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
        None
    }
}

fn address(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;

    /// A datagram socket bound to a fresh path, and the path (removed on drop).
    struct Bound(UnixDatagram, std::path::PathBuf);

    impl Bound {
        fn new(name: &str) -> Bound {
            let path =
                std::env::temp_dir().join(format!("ingest-srt-{name}-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let s = UnixDatagram::bind(&path).expect("bind");
            Bound(s, path)
        }
    }

    impl Drop for Bound {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.1);
        }
    }

    fn counter() -> Counter {
        telemetry::Metrics::new().counter("dropped_total", &[])
    }

    /// A UDP socket's send buffer cannot be filled on demand (loopback frees each
    /// datagram's buffer space as it is sent), so the send path is shown on a Unix datagram
    /// socket, whose sends the kernel refuses the same way (`EAGAIN`) once the receiver's
    /// queue is full. The sender is in blocking mode: a send that waited for room would
    /// never return, as nobody reads the receiver.
    #[test]
    fn a_full_send_buffer_drops_the_datagram_at_once_and_counts_it() {
        let receiver = Bound::new("full");
        let to = SockAddr::unix(&receiver.1).expect("address");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let sender = UnixDatagram::unbound().expect("socket");
            let dropped = counter();
            let mut sent = 0;
            let outcome = loop {
                match send_or_drop(&sender, &[0x5a; 100], &to, &dropped) {
                    Ok(Fate::Sent) if sent < 1_000_000 => sent += 1,
                    other => break other.map_err(|e| e.to_string()),
                }
            };
            let _ = tx.send((outcome, sent, dropped.get()));
        });
        // A bound on the send returning at all, not on its speed.
        let (outcome, sent, dropped) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a send into a full buffer waited");
        assert_eq!(outcome, Ok(Fate::Dropped), "after {sent} datagrams");
        assert_eq!(dropped, 1);
        // The dropped datagram was not queued to go out later: the receiver has exactly
        // the ones sent.
        receiver.0.set_nonblocking(true).unwrap();
        let mut buf = [0; 200];
        let mut got = 0;
        while receiver.0.recv(&mut buf).is_ok() {
            got += 1;
        }
        assert_eq!(got, sent);
    }

    #[test]
    fn errors_other_than_a_full_buffer_are_returned_and_not_counted() {
        let gone = Bound::new("gone");
        let to = SockAddr::unix(&gone.1).expect("address");
        drop(gone);
        let sender = UnixDatagram::unbound().expect("socket");
        let dropped = counter();
        let e = send_or_drop(&sender, b"x", &to, &dropped).expect_err("nobody bound there");
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert_eq!(dropped.get(), 0);
    }
}
