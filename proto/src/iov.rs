//! Bookkeeping for vectored writes of shared buffers: a queue of [`Bytes`] (frames
//! serialized once, referenced by every reader) handed to `writev` as `IoSlice`s and
//! consumed by however many bytes the kernel took. No I/O here: the caller writes.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

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

/// A queue of shared buffers waiting for a socket, that knows how many bytes it holds:
/// the one place where a connection's pending output (media and control replies alike) is
/// counted, so that a bound on it is a bound on everything.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Bytes>,
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
            self.bytes += b.len();
            self.queue.push_back(b);
        }
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Buffers queued.
    pub fn buffers(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Fills `iov` with the front of the queue; returns how many slots were used.
    pub fn fill<'a>(&'a self, iov: &mut [IoSlice<'a>]) -> usize {
        fill(&self.queue, iov)
    }

    /// Drops the first `n` bytes (what a write took).
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.bytes);
        advance(&mut self.queue, n);
        self.bytes -= n;
        self.written += n as u64;
    }

    /// Bytes taken by writes ([`Outbox::advance`]) over the outbox's life.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.queue.clear();
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
}
