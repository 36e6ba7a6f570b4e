//! The receiver's loss list: ranges of missing sequence numbers, in order, each with the
//! time it was last reported, so a periodic NAK repeats exactly what has waited an interval
//! (a stream of fresh gaps must not postpone the repeat of an old one).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::srt::seq::SeqNo;

#[derive(Debug, Clone, Copy)]
struct Range {
    from: SeqNo,
    to: SeqNo,
    reported: Instant,
}

/// Missing packets, ascending, non-overlapping.
#[derive(Debug, Default)]
pub(crate) struct LossTracker {
    ranges: VecDeque<Range>,
    count: u64,
}

impl LossTracker {
    /// Records `from..=to` as missing and reported at `now`; they are always after every
    /// range held.
    pub(crate) fn push(&mut self, from: SeqNo, to: SeqNo, now: Instant) {
        self.count += (to.diff(from) + 1) as u64;
        self.ranges.push_back(Range {
            from,
            to,
            reported: now,
        });
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    pub(crate) fn first(&self) -> Option<SeqNo> {
        self.ranges.front().map(|r| r.from)
    }

    /// Removes `seq`; true when it was listed.
    pub(crate) fn remove(&mut self, seq: SeqNo) -> bool {
        let idx = self.ranges.partition_point(|r| r.to < seq);
        if idx == self.ranges.len() || self.ranges[idx].from > seq {
            return false;
        }
        self.count -= 1;
        let r = self.ranges[idx];
        if r.from == r.to {
            self.ranges.remove(idx);
        } else if r.from == seq {
            self.ranges[idx].from = seq.next();
        } else if r.to == seq {
            self.ranges[idx].to = seq.minus(1);
        } else {
            self.ranges[idx].to = seq.minus(1);
            self.ranges.insert(
                idx + 1,
                Range {
                    from: seq.next(),
                    ..r
                },
            );
        }
        true
    }

    /// Forgets everything before `seq`; returns how many were forgotten.
    pub(crate) fn remove_before(&mut self, seq: SeqNo) -> u64 {
        let mut removed = 0u64;
        while let Some(r) = self.ranges.front_mut() {
            if r.to < seq {
                removed += (r.to.diff(r.from) + 1) as u64;
                self.ranges.pop_front();
            } else {
                if r.from < seq {
                    removed += seq.diff(r.from) as u64;
                    r.from = seq;
                }
                break;
            }
        }
        self.count -= removed;
        removed
    }

    /// The ranges last reported `interval` ago or earlier, at most `max_words` 32-bit
    /// words, marked reported at `now`.
    pub(crate) fn report(
        &mut self,
        now: Instant,
        interval: Duration,
        max_words: usize,
    ) -> Vec<(SeqNo, SeqNo)> {
        let mut words = 0;
        let mut out = Vec::new();
        for r in self.ranges.iter_mut() {
            if r.reported + interval > now {
                continue;
            }
            words += if r.from == r.to { 1 } else { 2 };
            if words > max_words {
                break;
            }
            r.reported = now;
            out.push((r.from, r.to));
        }
        out
    }

    /// When the oldest report becomes due again.
    pub(crate) fn next_report(&self, interval: Duration) -> Option<Instant> {
        self.ranges.iter().map(|r| r.reported + interval).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: u32) -> SeqNo {
        SeqNo::new(v)
    }

    #[test]
    fn split_and_trim() {
        let t = Instant::now();
        let mut l = LossTracker::default();
        l.push(s(10), s(20), t);
        l.push(s(30), s(30), t + Duration::from_millis(5));
        assert_eq!(l.len(), 12);
        assert!(l.remove(s(15)));
        assert!(!l.remove(s(15)));
        assert!(!l.remove(s(25)));
        let iv = Duration::from_millis(20);
        assert_eq!(l.next_report(iv), Some(t + iv));
        assert_eq!(
            l.report(t + iv, iv, 100),
            vec![(s(10), s(14)), (s(16), s(20))]
        );
        assert_eq!(l.next_report(iv), Some(t + Duration::from_millis(25)));
        assert_eq!(l.remove_before(s(17)), 6);
        let later = t + Duration::from_millis(100);
        assert_eq!(l.report(later, iv, 2), vec![(s(17), s(20))]);
        assert_eq!(l.report(later, iv, 2), vec![(s(30), s(30))]);
        assert!(l.remove(s(30)));
        assert_eq!(l.len(), 4);
        assert_eq!(l.first(), Some(s(17)));
    }
}
#[cfg(test)]
mod more_tests {
    use super::*;
    #[test]
    fn many_ranges_remove_each() {
        let mut l = LossTracker::default();
        for i in 0..100u32 {
            l.push(SeqNo::new(i * 10), SeqNo::new(i * 10 + 2), Instant::now());
        }
        for i in 0..100u32 {
            for k in 0..3 {
                assert!(l.remove(SeqNo::new(i * 10 + k)), "{i} {k}");
            }
        }
        assert!(l.is_empty());
    }
}
