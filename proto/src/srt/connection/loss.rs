//! The receiver's loss list: ranges of missing sequence numbers, in order, each with the
//! time it was last reported, so a periodic NAK repeats exactly what has waited an interval
//! (a stream of fresh gaps must not postpone the repeat of an old one).
//!
//! Each report of a range is followed by one echo a short time later: the sender ignores
//! the echo when the report reached it (it just retransmitted), and answers it when the
//! report was lost, so a lost NAK costs the echo delay rather than a whole interval.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::srt::seq::SeqNo;

#[derive(Debug, Clone, Copy)]
struct Range {
    from: SeqNo,
    to: SeqNo,
    reported: Instant,
    /// The echo of the last report was sent.
    echoed: bool,
}

impl Range {
    fn due(&self, interval: Duration, echo: Duration) -> Instant {
        if self.echoed || echo >= interval {
            self.reported + interval
        } else {
            self.reported + echo
        }
    }
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
            echoed: false,
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

    /// The ranges last reported `interval` ago or earlier, or whose report was not echoed
    /// yet and is `echo` old, at most `max_words` 32-bit words, marked reported (or
    /// echoed) at `now`.
    pub(crate) fn report(
        &mut self,
        now: Instant,
        interval: Duration,
        echo: Duration,
        max_words: usize,
    ) -> Vec<(SeqNo, SeqNo)> {
        let mut words = 0;
        let mut out = Vec::new();
        for r in self.ranges.iter_mut() {
            if r.due(interval, echo) > now {
                continue;
            }
            words += if r.from == r.to { 1 } else { 2 };
            if words > max_words {
                break;
            }
            if r.reported + interval <= now {
                r.reported = now;
                r.echoed = false;
            } else {
                r.echoed = true;
            }
            out.push((r.from, r.to));
        }
        out
    }

    /// When the next report or echo is due.
    pub(crate) fn next_report(&self, interval: Duration, echo: Duration) -> Option<Instant> {
        self.ranges.iter().map(|r| r.due(interval, echo)).min()
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
        assert_eq!(l.next_report(iv, iv), Some(t + iv));
        assert_eq!(
            l.report(t + iv, iv, iv, 100),
            vec![(s(10), s(14)), (s(16), s(20))]
        );
        assert_eq!(l.next_report(iv, iv), Some(t + Duration::from_millis(25)));
        assert_eq!(l.remove_before(s(17)), 6);
        let later = t + Duration::from_millis(100);
        assert_eq!(l.report(later, iv, iv, 2), vec![(s(17), s(20))]);
        assert_eq!(l.report(later, iv, iv, 2), vec![(s(30), s(30))]);
        assert!(l.remove(s(30)));
        assert_eq!(l.len(), 4);
        assert_eq!(l.first(), Some(s(17)));
    }
}
#[cfg(test)]
mod echo_tests {
    use super::*;

    #[test]
    fn each_report_is_echoed_once() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let (iv, echo) = (ms(50), ms(20));
        let mut l = LossTracker::default();
        l.push(SeqNo::new(5), SeqNo::new(5), t);
        // Immediate NAK at t; echo at +20; repeat at +50, its echo at +70; ...
        let mut at = Vec::new();
        let mut now = t;
        while let Some(next) = l.next_report(iv, echo) {
            if next > t + ms(160) {
                break;
            }
            now = next.max(now);
            assert_eq!(
                l.report(now, iv, echo, 10),
                vec![(SeqNo::new(5), SeqNo::new(5))]
            );
            at.push((now - t).as_millis());
        }
        assert_eq!(at, vec![20, 50, 70, 100, 120, 150]);
        assert!(l.report(now, iv, echo, 10).is_empty());
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
