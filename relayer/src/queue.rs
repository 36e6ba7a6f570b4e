//! A destination's bounded queue. When an item would take it over its byte budget, the
//! oldest frames are dropped up to the next sync point (a whole GOP), or, when none is
//! queued, every queued frame and then new frames until the next sync point: a
//! destination never gets half a GOP. Configurations and metadata are never dropped
//! (they are small and a decoder needs them).

use std::collections::VecDeque;

use crate::media::Item;

/// The queue.
#[derive(Debug)]
pub struct GopQueue {
    items: VecDeque<Item>,
    bytes: usize,
    max_bytes: usize,
    /// Frames are refused until the next sync point.
    waiting_sync: bool,
    /// A first sync point was queued: frames refused before it are not losses (the
    /// destination simply starts at a keyframe), later ones are.
    started: bool,
    /// Frames dropped so far.
    pub dropped_frames: u64,
    /// Bytes of frames dropped so far.
    pub dropped_bytes: u64,
}

impl GopQueue {
    /// An empty queue holding at most `max_bytes` (plus one item) of frames.
    pub fn new(max_bytes: usize) -> GopQueue {
        GopQueue {
            items: VecDeque::new(),
            bytes: 0,
            max_bytes,
            waiting_sync: true,
            started: false,
            dropped_frames: 0,
            dropped_bytes: 0,
        }
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn drop_item(&mut self, item: &Item) {
        self.bytes -= item.len();
        if let Item::Frame(_) = item {
            self.dropped_frames += 1;
            self.dropped_bytes += item.len() as u64;
        }
    }

    /// Appends an item, dropping whole GOPs to stay within the budget.
    pub fn push(&mut self, item: Item) {
        // A data message belongs with the frames around it: it goes where they go, and
        // never grows the queue past its budget.
        if let Item::Data { .. } = item {
            if self.waiting_sync || self.bytes + item.len() > self.max_bytes {
                return;
            }
        }
        if let Item::Frame(f) = &item {
            if self.waiting_sync && !f.sync {
                if self.started {
                    self.dropped_frames += 1;
                    self.dropped_bytes += f.data.len() as u64;
                }
                return;
            }
            self.waiting_sync = false;
            self.started = true;
            while self.bytes + item.len() > self.max_bytes && self.skip_gop(f.sync) {}
            if self.waiting_sync {
                self.dropped_frames += 1;
                self.dropped_bytes += item.len() as u64;
                return;
            }
        }
        self.bytes += item.len();
        self.items.push_back(item);
    }

    /// Drops frames from the front up to the next queued sync point; with none queued,
    /// every frame, and (unless the incoming item is itself a sync point) waits for one.
    /// True when a later sync point was found (another skip may free more).
    fn skip_gop(&mut self, incoming_sync: bool) -> bool {
        // The first sync point after the oldest queued frame, if any.
        let Some(first) = self.items.iter().position(|i| matches!(i, Item::Frame(_))) else {
            // Data messages queued before any frame go with the GOP that follows.
            self.drop_data();
            if !incoming_sync {
                self.waiting_sync = true;
            }
            return false;
        };
        let next = self
            .items
            .iter()
            .enumerate()
            .skip(first + 1)
            .find(|(_, i)| matches!(i, Item::Frame(f) if f.sync))
            .map(|(n, _)| n);
        let keep_from = next.unwrap_or(self.items.len());
        let mut kept = VecDeque::with_capacity(self.items.len() - keep_from + 4);
        for (n, item) in std::mem::take(&mut self.items).into_iter().enumerate() {
            if n < keep_from && in_gop(&item) {
                self.drop_item(&item);
            } else {
                kept.push_back(item);
            }
        }
        self.items = kept;
        if next.is_none() && !incoming_sync {
            self.waiting_sync = true;
        }
        next.is_some()
    }

    /// Forgets the queued data messages (there is no frame they could stay with).
    fn drop_data(&mut self) {
        let before = self.items.len();
        let mut freed = 0;
        self.items.retain(|i| {
            let data = matches!(i, Item::Data { .. });
            if data {
                freed += i.len();
            }
            !data
        });
        if self.items.len() != before {
            self.bytes -= freed;
        }
    }

    /// Takes the oldest item.
    pub fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        self.bytes -= item.len();
        Some(item)
    }

    /// Forgets every queued frame up to the next sync point (for a destination that
    /// reconnects: it restarts at a keyframe after its headers). Configs and metadata stay.
    /// `count`: whether what is skipped counts as dropped (not on a first connection,
    /// which simply starts at a keyframe).
    pub fn restart_at_sync(&mut self, count: bool) {
        let first_sync = self
            .items
            .iter()
            .position(|i| matches!(i, Item::Frame(f) if f.sync));
        let cut = first_sync.unwrap_or(self.items.len());
        let mut kept = VecDeque::new();
        for (n, item) in std::mem::take(&mut self.items).into_iter().enumerate() {
            if n < cut && in_gop(&item) {
                if count {
                    self.drop_item(&item);
                } else {
                    self.bytes -= item.len();
                }
            } else {
                kept.push_back(item);
            }
        }
        self.items = kept;
        if first_sync.is_none() {
            // The (re)connected destination starts at the next sync point; what it skips
            // until then is not counted again (frames lost while it was away were).
            self.waiting_sync = true;
            self.started = false;
        }
    }
}

/// Whether an item goes with its GOP when that is skipped (frames and data messages;
/// configurations and metadata describe the stream and stay).
fn in_gop(item: &Item) -> bool {
    matches!(item, Item::Frame(_) | Item::Data { .. })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;
    use proto::media::{Codec, FrameFlags};

    use super::*;
    use crate::media::Frame;

    fn frame(n: u32, sync: bool, len: usize) -> Item {
        Item::Frame(Frame {
            codec: Codec::H264,
            track: 0,
            ts: n,
            cts: 0,
            flags: FrameFlags::new(sync, false),
            sync,
            data: Bytes::from(vec![0; len]),
            nanos: 0,
        })
    }

    fn ts(q: &mut GopQueue) -> Vec<u32> {
        std::iter::from_fn(|| q.pop())
            .filter_map(|i| match i {
                Item::Frame(f) => Some(f.ts),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn waits_for_a_keyframe_first() {
        let mut q = GopQueue::new(1000);
        q.push(frame(0, false, 10));
        q.push(frame(1, true, 10));
        q.push(frame(2, false, 10));
        assert_eq!(ts(&mut q), [1, 2]);
        // Starting at a keyframe loses nothing.
        assert_eq!(q.dropped_frames, 0);
    }

    #[test]
    fn skips_the_oldest_gop_when_full() {
        let mut q = GopQueue::new(100);
        for n in 0..4 {
            q.push(frame(n, n % 2 == 0, 30));
        }
        // 0(k) 1 2(k) 3 = 120 > 100 at frame 3: GOP 0-1 goes.
        assert_eq!(ts(&mut q), [2, 3]);
        assert_eq!((q.dropped_frames, q.dropped_bytes), (2, 60));
    }

    #[test]
    fn with_one_gop_queued_it_drops_until_the_next_keyframe() {
        let mut q = GopQueue::new(100);
        q.push(Item::Metadata(Bytes::from_static(b"m")));
        for n in 0..5 {
            q.push(frame(n, n == 0, 30));
        }
        // 0(k) 1 2 fit, 3 overflows: the whole GOP goes, 3 and 4 are refused.
        q.push(frame(5, true, 30));
        q.push(frame(6, false, 30));
        let items: Vec<Item> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(items[0], Item::Metadata(Bytes::from_static(b"m")));
        assert_eq!(items.len(), 3);
        assert_eq!(q.dropped_frames, 5);
        assert_eq!(q.dropped_bytes, 150);
    }

    #[test]
    fn data_messages_stay_in_order_and_go_with_their_gop() {
        let mut q = GopQueue::new(100);
        let cue = |ts| Item::Data {
            ts,
            body: Bytes::from_static(b"cue"),
        };
        q.push(cue(0));
        q.push(frame(0, true, 30));
        q.push(cue(1));
        q.push(frame(1, false, 30));
        q.push(frame(2, true, 30));
        q.push(cue(2));
        // The first cue came before any keyframe: refused. 3 x 30 + 2 x 3 = 96 bytes, so
        // one more cue fits; the next frame makes room by dropping the first GOP with
        // the cue inside it, and a cue that does not fit is refused.
        q.push(cue(3));
        q.push(frame(3, false, 30));
        q.push(Item::Data {
            ts: 4,
            body: Bytes::from(vec![0; 40]),
        });
        let items: Vec<Item> = std::iter::from_fn(|| q.pop()).collect();
        let order: Vec<String> = items
            .iter()
            .map(|i| match i {
                Item::Data { ts, .. } => format!("d{ts}"),
                Item::Frame(f) => format!("f{}", f.ts),
                _ => "?".into(),
            })
            .collect();
        assert_eq!(order, ["f2", "d2", "d3", "f3"]);
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn restart_at_sync() {
        let mut q = GopQueue::new(1000);
        for n in 0..5 {
            q.push(frame(n, n == 0 || n == 3, 10));
        }
        q.pop();
        q.restart_at_sync(true);
        assert_eq!(ts(&mut q), [3, 4]);
    }

    proptest! {
        /// The queue stays within budget plus one item, and a non-sync frame is only ever
        /// delivered after the sync frame that precedes it in input order.
        #[test]
        fn bounded_and_whole_gops(input in proptest::collection::vec((any::<bool>(), 1usize..400), 1..300),
                                  pops in proptest::collection::vec(0usize..4, 1..300)) {
            let mut q = GopQueue::new(1000);
            let mut out = Vec::new();
            let mut pops = pops.iter().cycle();
            for (n, (sync, len)) in input.iter().enumerate() {
                q.push(frame(n as u32, *sync, *len));
                prop_assert!(q.bytes() <= 1000 + 400);
                for _ in 0..*pops.next().unwrap() {
                    if let Some(Item::Frame(f)) = q.pop() {
                        out.push(f.ts);
                    }
                }
            }
            out.extend(ts(&mut q));
            // Every delivered frame's GOP head (last sync at or before it in the input)
            // was delivered too, and order is kept.
            prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
            for &t in &out {
                let head = (0..=t as usize).rev().find(|&i| input[i].0).map(|i| i as u32);
                prop_assert!(head.is_some_and(|h| out.contains(&h)), "{t} without its keyframe in {out:?}");
            }
            // Within a delivered GOP, nothing is missing between head and frame.
            for &t in &out {
                let head = (0..=t as usize).rev().find(|&i| input[i].0).unwrap() as u32;
                prop_assert!((head..=t).all(|i| out.contains(&i)), "hole before {t} in {out:?}");
            }
        }
    }
}
