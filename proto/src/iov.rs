//! Bookkeeping for vectored writes of shared buffers: a queue of [`Bytes`] (frames
//! serialized once, referenced by every reader) handed to `writev` as `IoSlice`s and
//! consumed by however many bytes the kernel took. No I/O here: the caller writes.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Fills `iov` with the front of `queue`; returns how many slots were used.
pub fn fill<'a>(queue: &'a VecDeque<Bytes>, iov: &mut [IoSlice<'a>]) -> usize {
    let mut n = 0;
    for (slot, b) in iov.iter_mut().zip(queue.iter()) {
        *slot = IoSlice::new(b);
        n += 1;
    }
    n
}

/// Drops the first `n` bytes of `queue` (whole buffers, then the front of a partly
/// written one), and any empty buffers left at the front.
pub fn advance(queue: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = queue.front_mut() else {
            return;
        };
        if front.len() <= n {
            n -= front.len();
            queue.pop_front();
        } else {
            front.advance(n);
            n = 0;
        }
    }
    while queue.front().is_some_and(|b| b.is_empty()) {
        queue.pop_front();
    }
}

/// Queue slots an emptied [`Outbox`] keeps: a backlog may have grown the queue to
/// hundreds of slots, which a connection that then keeps up would hold for its lifetime.
const KEEP_SLOTS: usize = 32;

/// A queue of shared buffers waiting for a socket, that knows how many bytes it holds:
/// the one place where a connection's pending output (media and control replies alike) is
/// counted, so that a bound on it is a bound on everything.
///
/// Small messages built for this connection alone (control replies, status) are appended
/// to one owned tail buffer ([`Outbox::append`]) instead of queued one by one, so a peer
/// that makes the connection answer many tiny requests costs the bytes it caused, not a
/// queue slot and an allocation per reply.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Bytes>,
    /// Bytes built here, queued after everything in `queue`.
    tail: BytesMut,
    bytes: usize,
    written: u64,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Appends one buffer (empty ones are dropped).
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.seal_tail();
            self.bytes += b.len();
            self.queue.push_back(b);
        }
    }

    /// Appends bytes `write` puts at the end of the owned tail buffer (consecutive appends
    /// share one buffer).
    pub fn append(&mut self, write: impl FnOnce(&mut BytesMut)) {
        let before = self.tail.len();
        write(&mut self.tail);
        self.bytes += self.tail.len() - before;
    }

    /// Moves the tail into the queue so that what is pushed next goes after it.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.queue.push_back(self.tail.split().freeze());
        }
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Buffers queued.
    pub fn buffers(&self) -> usize {
        self.queue.len() + usize::from(!self.tail.is_empty())
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Fills `iov` with the front of the queue; returns how many slots were used.
    pub fn fill<'a>(&'a self, iov: &mut [IoSlice<'a>]) -> usize {
        let n = fill(&self.queue, iov);
        if n < iov.len() && n == self.queue.len() && !self.tail.is_empty() {
            iov[n] = IoSlice::new(&self.tail);
            return n + 1;
        }
        n
    }

    /// Drops the first `n` bytes (what a write took).
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.bytes);
        let in_queue = n.min(self.bytes - self.tail.len());
        advance(&mut self.queue, in_queue);
        self.tail.advance(n - in_queue);
        self.bytes -= n;
        self.written += n as u64;
        if self.queue.is_empty() && self.queue.capacity() > KEEP_SLOTS {
            self.queue.shrink_to(KEEP_SLOTS);
        }
    }

    /// Bytes taken by writes ([`Outbox::advance`]) over the outbox's life.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.tail.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes() {
        let mut q: VecDeque<Bytes> = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b""),
            Bytes::from_static(b"defg"),
        ]
        .into();
        let mut iov = [IoSlice::new(&[]); 2];
        assert_eq!(fill(&q, &mut iov), 2);
        assert_eq!(&*iov[0], b"abc");
        advance(&mut q, 2);
        assert_eq!(q[0], Bytes::from_static(b"c"));
        advance(&mut q, 1);
        assert_eq!(q.len(), 1, "empty buffers are dropped");
        advance(&mut q, 3);
        assert_eq!(q[0], Bytes::from_static(b"g"));
        advance(&mut q, 1);
        assert!(q.is_empty());
        advance(&mut q, 5);
        assert!(q.is_empty(), "advancing an empty queue is harmless");
    }

    fn contents(o: &Outbox) -> Vec<u8> {
        let mut iov = [IoSlice::new(&[]); 8];
        let n = o.fill(&mut iov);
        iov[..n].iter().flat_map(|s| s.to_vec()).collect()
    }

    #[test]
    fn appended_replies_share_one_buffer_in_order() {
        let mut o = Outbox::new();
        o.push(Bytes::from_static(b"media1"));
        for _ in 0..1000 {
            o.append(|b| b.extend_from_slice(b"pong"));
        }
        assert_eq!(o.buffers(), 2, "a thousand replies are one buffer");
        assert_eq!(o.bytes(), 6 + 4000);
        o.push(Bytes::from_static(b"media2"));
        o.append(|b| b.extend_from_slice(b"ack"));
        assert_eq!(o.buffers(), 4);
        let all = contents(&o);
        assert_eq!(&all[..10], b"media1pong");
        assert_eq!(&all[all.len() - 9..], b"media2ack");
        assert_eq!(all.len(), o.bytes());
    }

    #[test]
    fn advance_crosses_into_the_tail() {
        let mut o = Outbox::new();
        o.push(Bytes::from_static(b"abc"));
        o.append(|b| b.extend_from_slice(b"defg"));
        o.advance(5);
        assert_eq!(contents(&o), b"fg");
        assert_eq!(o.bytes(), 2);
        o.append(|b| b.extend_from_slice(b"h"));
        o.advance(2);
        assert_eq!(contents(&o), b"h");
        o.advance(10);
        assert!(o.is_empty());
        assert_eq!(o.written(), 8);
        assert_eq!(o.buffers(), 0);
    }

    #[test]
    fn a_drained_backlog_gives_its_slots_back() {
        let mut o = Outbox::new();
        for _ in 0..1000 {
            o.push(Bytes::from_static(b"frame"));
        }
        o.advance(5 * 999);
        assert!(o.queue.capacity() >= 1000, "still one buffer queued");
        o.advance(5);
        assert!(o.is_empty());
        assert!(o.queue.capacity() <= KEEP_SLOTS);
    }

    #[test]
    fn fill_stops_at_the_slots_given() {
        let mut o = Outbox::new();
        o.push(Bytes::from_static(b"a"));
        o.push(Bytes::from_static(b"b"));
        o.append(|b| b.extend_from_slice(b"c"));
        let mut iov = [IoSlice::new(&[]); 2];
        assert_eq!(o.fill(&mut iov), 2);
        assert_eq!((&*iov[0], &*iov[1]), (&b"a"[..], &b"b"[..]));
    }
}
