//! A bounded FIFO between the link and one sink: pushing never waits; when full, the
//! oldest entry is dropped (and counted) so the newest events still get through.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// The queue, shared by the link (push) and the sink's task (pop).
#[derive(Debug)]
pub struct Queue<T> {
    /// Entries with their position in the push order, and the count of dropped ones.
    items: Mutex<(VecDeque<(u64, T)>, u64)>,
    next: std::sync::atomic::AtomicU64,
    cap: usize,
    ready: Notify,
    /// Set by [`Queue::close`]: no more pushes are coming.
    closed: std::sync::atomic::AtomicBool,
}

impl<T> Queue<T> {
    /// A queue holding at most `cap` entries (at least 1).
    pub fn new(cap: usize) -> Queue<T> {
        Queue {
            items: Mutex::new((VecDeque::new(), 0)),
            next: std::sync::atomic::AtomicU64::new(0),
            cap: cap.max(1),
            ready: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Appends `item`; returns true when the oldest entry had to be dropped for it.
    pub fn push(&self, item: T) -> bool {
        let mut q = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let full = q.0.len() >= self.cap;
        if full {
            q.0.pop_front();
            q.1 += 1;
        }
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        q.0.push_back((n, item));
        drop(q);
        self.ready.notify_one();
        full
    }

    /// The oldest entry and its ticket, without removing it, waiting for one.
    pub async fn front(&self) -> (u64, T)
    where
        T: Clone,
    {
        loop {
            let notified = self.ready.notified();
            if let Some(item) = self.peek() {
                return item;
            }
            notified.await;
        }
    }

    /// As [`Queue::front`], but `None` once the queue is closed and empty: the sink
    /// delivers what was queued before its rule was removed, then ends.
    pub async fn front_until_closed(&self) -> Option<(u64, T)>
    where
        T: Clone,
    {
        loop {
            let notified = self.ready.notified();
            if let Some(item) = self.peek() {
                return Some(item);
            }
            if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                return None;
            }
            notified.await;
        }
    }

    /// A copy of the oldest entry and its ticket, if any; the lock is released before the
    /// caller awaits.
    fn peek(&self) -> Option<(u64, T)>
    where
        T: Clone,
    {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .front()
            .cloned()
    }

    /// No more entries will be pushed (the sink's rule was removed by a reload).
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.ready.notify_one();
    }

    /// Removes the entry of `ticket` after it was delivered (unless a full queue already
    /// dropped it).
    pub fn pop(&self, ticket: u64) {
        let mut q = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if q.0.front().is_some_and(|(n, _)| *n == ticket) {
            q.0.pop_front();
        }
    }

    /// Entries dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drops_oldest_when_full() {
        let q = Queue::new(2);
        assert!(!q.push(1));
        assert!(!q.push(2));
        assert!(q.push(3));
        let (t, v) = q.front().await;
        assert_eq!(v, 2);
        // A push that drops the entry being delivered: its pop must not drop the next.
        assert!(q.push(4));
        q.pop(t);
        assert_eq!(q.front().await.1, 3);
        assert_eq!(q.dropped(), 2);
    }

    #[tokio::test]
    async fn a_closed_queue_hands_out_what_it_holds_then_ends() {
        let q = Queue::new(4);
        q.push(1);
        q.close();
        let (t, v) = q.front_until_closed().await.unwrap();
        assert_eq!(v, 1);
        q.pop(t);
        assert_eq!(q.front_until_closed().await, None);
    }
}
