//! The receiving half: reorder buffer, loss detection, ACK/NAK generation and TSBPD release.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::loss::LossTracker;
use super::stats::Stats;
use super::tsbpd::Tsbpd;
use crate::srt::packet::{AckInfo, DataPacket};
use crate::srt::seq::SeqNo;

/// Full ACK period (draft 4.8.1).
pub(crate) const ACK_INTERVAL: Duration = Duration::from_millis(10);
/// A light ACK every this many packets.
const LIGHT_ACK_PACKETS: u32 = 64;
/// Shortest periodic NAK interval (libsrt: 20 ms).
pub(crate) const MIN_NAK_INTERVAL: Duration = Duration::from_millis(20);
/// ACK numbers remembered for RTT measurement.
const ACK_HISTORY: usize = 1024;

struct Slot {
    due: Instant,
    ts: u32,
    payload: Bytes,
}

/// What the receiver wants sent after an input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecvOutput {
    /// Nothing.
    None,
    /// An immediate NAK for a new gap.
    Nak(SeqNo, SeqNo),
}

/// A packet released by TSBPD, or a gap given up on.
#[derive(Debug)]
pub(crate) enum Release {
    Packet { payload: Bytes, timestamp: u32 },
    Dropped { first: SeqNo, count: u32 },
}

pub(crate) struct Receiver {
    /// Sequence number of `buf[0]`: the first packet not yet released.
    head: SeqNo,
    /// One past the highest sequence number received.
    next_expected: SeqNo,
    buf: VecDeque<Option<Slot>>,
    capacity: usize,
    loss: LossTracker,
    pub(crate) tsbpd: Tsbpd,
    too_late_drop: bool,
    ack_number: u32,
    /// Full ACKs sent and not yet answered: number, when, the sequence number acknowledged.
    ack_history: VecDeque<(u32, Instant, SeqNo)>,
    last_ack_at: Option<Instant>,
    /// The highest sequence number the peer confirmed having been acknowledged (by an
    /// ACKACK): an ACK for it is not sent again.
    ackacked: Option<SeqNo>,
    /// When the ACK timer fires next (whether or not an ACK is then due). It runs at a fixed
    /// rate: a late wake-up does not push the next one back, so a driver that wakes on a
    /// coarse grid (every 10 ms) keeps one full ACK per grid step instead of one per two.
    ack_due: Option<Instant>,
    last_acked: SeqNo,
    since_light_ack: u32,
    // Receive rate over the last ACK period.
    window_packets: u32,
    window_bytes: u64,
    window_start: Option<Instant>,
    rate: (u32, u32),
    // Link capacity from packet pairs (every 16th packet and its successor).
    probe_start: Option<(SeqNo, Instant)>,
    probe_intervals: VecDeque<Duration>,
}

impl Receiver {
    pub(crate) fn new(isn: SeqNo, capacity: usize, tsbpd: Tsbpd, too_late_drop: bool) -> Self {
        Receiver {
            head: isn,
            next_expected: isn,
            buf: VecDeque::new(),
            capacity,
            loss: LossTracker::default(),
            tsbpd,
            too_late_drop,
            ack_number: 0,
            ack_history: VecDeque::new(),
            last_ack_at: None,
            ackacked: None,
            ack_due: None,
            last_acked: isn,
            since_light_ack: 0,
            window_packets: 0,
            window_bytes: 0,
            window_start: None,
            rate: (0, 0),
            probe_start: None,
            probe_intervals: VecDeque::new(),
        }
    }

    /// Stores a (decrypted) data packet.
    pub(crate) fn handle_data(
        &mut self,
        now: Instant,
        p: DataPacket,
        stats: &mut Stats,
    ) -> RecvOutput {
        stats.recv_packets += 1;
        stats.recv_bytes += p.payload.len() as u64;
        if p.retransmitted {
            stats.recv_retransmitted += 1;
        }
        self.window_packets += 1;
        self.window_bytes += p.payload.len() as u64;
        self.window_start.get_or_insert(now);
        self.probe(now, p.seq);
        let offset = p.seq.diff(self.head);
        if offset < 0 {
            stats.recv_belated += 1;
            return RecvOutput::None;
        }
        let offset = offset as usize;
        if offset >= self.capacity {
            stats.recv_overflow += 1;
            return RecvOutput::None;
        }
        let mut out = RecvOutput::None;
        if p.seq >= self.next_expected {
            if p.seq > self.next_expected {
                let to = p.seq.minus(1);
                stats.recv_lost += (to.diff(self.next_expected) + 1) as u64;
                self.loss.push(self.next_expected, to, now);
                out = RecvOutput::Nak(self.next_expected, to);
            }
            self.next_expected = p.seq.next();
        } else if !self.loss.remove(p.seq) {
            stats.recv_duplicates += 1;
            return RecvOutput::None;
        }
        while self.buf.len() <= offset {
            self.buf.push_back(None);
        }
        let due = self.tsbpd.delivery_time(p.timestamp);
        self.buf[offset] = Some(Slot {
            due,
            ts: p.timestamp,
            payload: p.payload,
        });
        self.since_light_ack += 1;
        out
    }

    fn probe(&mut self, now: Instant, seq: SeqNo) {
        if seq.get() & 15 == 0 {
            self.probe_start = Some((seq, now));
        } else if let Some((s, t)) = self.probe_start.take() {
            if s.next() == seq {
                self.probe_intervals.push_back(now - t);
                if self.probe_intervals.len() > 16 {
                    self.probe_intervals.pop_front();
                }
            }
        }
    }

    /// Link capacity estimate, packets per second.
    pub(crate) fn link_capacity(&self) -> u32 {
        if self.probe_intervals.is_empty() {
            return 0;
        }
        let mut v: Vec<Duration> = self.probe_intervals.iter().copied().collect();
        v.sort();
        let median = v[v.len() / 2].as_micros().max(1);
        (1_000_000 / median).min(u128::from(u32::MAX)) as u32
    }

    /// Packets/s and bytes/s received over the last ACK period.
    pub(crate) fn rate(&self) -> (u32, u32) {
        self.rate
    }

    /// The first sequence number not received.
    pub(crate) fn ack_seq(&self) -> SeqNo {
        self.loss.first().unwrap_or(self.next_expected)
    }

    /// Packets held (holes included) and the span of their timestamps in milliseconds.
    pub(crate) fn buffered(&self) -> (u32, u32) {
        let mut present = self.buf.iter().flatten();
        let span = match (present.next(), self.buf.iter().rev().flatten().next()) {
            (Some(first), Some(last)) => last.ts.wrapping_sub(first.ts) / 1000,
            _ => 0,
        };
        (self.buf.len() as u32, span)
    }

    pub(crate) fn available_buffer(&self) -> u32 {
        (self.capacity.saturating_sub(self.buf.len())) as u32
    }

    /// Releases what TSBPD says is due, dropping gaps that are too late.
    pub(crate) fn poll_release(&mut self, now: Instant, stats: &mut Stats) -> Option<Release> {
        match self.buf.front() {
            Some(Some(slot)) if slot.due <= now => {
                let slot = self.buf.pop_front().flatten().expect("checked");
                self.head = self.head.next();
                stats.delivered += 1;
                Some(Release::Packet {
                    payload: slot.payload,
                    timestamp: slot.ts,
                })
            }
            Some(None) if self.too_late_drop => {
                let gap = self.buf.iter().position(|s| s.is_some())?;
                let due = self.buf[gap].as_ref().expect("found").due;
                if due > now {
                    return None;
                }
                let first = self.head;
                self.buf.drain(..gap);
                self.head = self.head.plus(gap as u32);
                self.loss.remove_before(self.head);
                if self.last_acked < self.head {
                    self.last_acked = self.head;
                }
                stats.recv_dropped += gap as u64;
                Some(Release::Dropped {
                    first,
                    count: gap as u32,
                })
            }
            _ => None,
        }
    }

    /// Everything still buffered, in order (the peer shut down: nothing more will arrive,
    /// and what did arrive is still owed to the application); the holes between are
    /// reported and counted as dropped.
    pub(crate) fn drain_all(&mut self, stats: &mut Stats) -> Vec<Release> {
        let mut out = Vec::new();
        let mut hole: Option<(SeqNo, u32)> = None;
        let mut seq = self.head;
        for slot in self.buf.drain(..) {
            match slot {
                None => match &mut hole {
                    Some((_, n)) => *n += 1,
                    None => hole = Some((seq, 1)),
                },
                Some(slot) => {
                    if let Some((first, count)) = hole.take() {
                        stats.recv_dropped += u64::from(count);
                        out.push(Release::Dropped { first, count });
                    }
                    stats.delivered += 1;
                    out.push(Release::Packet {
                        payload: slot.payload,
                        timestamp: slot.ts,
                    });
                }
            }
            seq = seq.next();
        }
        self.head = seq;
        out
    }

    /// The sender gave up on `first..=last`: treat them as dropped.
    pub(crate) fn handle_drop_request(&mut self, first: SeqNo, last: SeqNo) {
        let mut s = first;
        while s <= last && s.diff(first) < self.capacity as i32 {
            if s >= self.head && s < self.next_expected {
                self.loss.remove(s);
            }
            s = s.next();
        }
        // The slots stay empty; `poll_release` skips them once a later packet is due.
        if last >= self.next_expected && last.diff(self.head) < self.capacity as i32 {
            self.next_expected = last.next();
        }
    }

    /// When the next packet is due (or a gap would be dropped).
    pub(crate) fn next_release(&self) -> Option<Instant> {
        match self.buf.front()? {
            Some(slot) => Some(slot.due),
            None if self.too_late_drop => self.buf.iter().flatten().next().map(|s| s.due),
            None => None,
        }
    }

    /// A full ACK to send now, if one is due: its number and body.
    pub(crate) fn poll_full_ack(
        &mut self,
        now: Instant,
        rtt: (u32, u32),
        resend_after: Duration,
    ) -> Option<(u32, SeqNo, AckInfo)> {
        if self.ack_due.is_some_and(|t| now < t) {
            return None;
        }
        self.window_start?;
        // Fixed rate; after a stall longer than a period the schedule restarts from now.
        self.ack_due = Some(match self.ack_due {
            Some(t) if t + ACK_INTERVAL > now => t + ACK_INTERVAL,
            _ => now + ACK_INTERVAL,
        });
        if !self.has_news() && self.repeat_at(resend_after).is_none_or(|t| now < t) {
            return None;
        }
        let ack = self.ack_seq();
        if let Some(start) = self.window_start {
            let el = (now - start).as_micros().max(1);
            if el >= ACK_INTERVAL.as_micros() {
                self.rate = (
                    (u128::from(self.window_packets) * 1_000_000 / el) as u32,
                    (u128::from(self.window_bytes) * 1_000_000 / el).min(u128::from(u32::MAX))
                        as u32,
                );
                self.window_packets = 0;
                self.window_bytes = 0;
                self.window_start = Some(now);
            }
        }
        self.ack_number = self.ack_number.wrapping_add(1).max(1);
        self.ack_history.push_back((self.ack_number, now, ack));
        if self.ack_history.len() > ACK_HISTORY {
            self.ack_history.pop_front();
        }
        self.last_ack_at = Some(now);
        self.last_acked = ack;
        self.since_light_ack = 0;
        Some((
            self.ack_number,
            ack,
            AckInfo {
                rtt_us: rtt.0,
                rtt_var_us: rtt.1,
                available_buffer: self.available_buffer(),
                rates: Some((self.rate.0, self.link_capacity(), self.rate.1)),
            },
        ))
    }

    /// A light ACK when 64 packets arrived since the last ACK.
    pub(crate) fn poll_light_ack(&mut self) -> Option<SeqNo> {
        if self.since_light_ack < LIGHT_ACK_PACKETS {
            return None;
        }
        self.since_light_ack = 0;
        let ack = self.ack_seq();
        (ack != self.last_acked).then(|| {
            self.last_acked = ack;
            ack
        })
    }

    /// The RTT sample for ACKACK `number`.
    pub(crate) fn handle_ackack(&mut self, now: Instant, number: u32) -> Option<Duration> {
        let i = self.ack_history.iter().position(|(n, ..)| *n == number)?;
        let (_, sent, seq) = self.ack_history[i];
        self.ack_history.drain(..=i);
        self.ackacked = Some(seq);
        Some(now - sent)
    }

    /// When [`Receiver::poll_full_ack`] may next have an ACK to send: `None` while there
    /// is nothing to acknowledge that the peer has not confirmed (an idle connection then
    /// wakes its driver for keepalives, not every ACK period).
    pub(crate) fn next_ack(&self, resend_after: Duration) -> Option<Instant> {
        let due = self.ack_due.or(self.window_start)?;
        if self.has_news() {
            return Some(due);
        }
        self.repeat_at(resend_after).map(|t| due.max(t))
    }

    /// Whether a full ACK would tell the peer something new: the ACK point moved, or
    /// packets arrived since the last one (also while the ACK point is stuck behind a
    /// loss: every full ACK brings an ACKACK, and the RTT samples keep the NAK interval
    /// tight).
    fn has_news(&self) -> bool {
        self.ack_seq() != self.last_acked || self.window_packets > 0
    }

    /// When the last full ACK may be sent again with nothing new: once stale (it or its
    /// ACKACK may be lost), never once the peer answered it (as libsrt). Without this an
    /// ACK would go every period on a short path, each waking the sender.
    fn repeat_at(&self, resend_after: Duration) -> Option<Instant> {
        if self.ackacked == Some(self.last_acked) {
            return None;
        }
        self.last_ack_at
            .map(|t| t + resend_after)
            .or(self.window_start)
    }

    /// The periodic NAK, if one is due: the ranges not reported for `interval` (at least
    /// 20 ms), and those whose last report was not echoed 20 ms later yet.
    pub(crate) fn poll_periodic_nak(
        &mut self,
        now: Instant,
        interval: Duration,
    ) -> Option<Vec<(SeqNo, SeqNo)>> {
        let interval = interval.max(MIN_NAK_INTERVAL);
        let due = self.loss.next_report(interval, MIN_NAK_INTERVAL)?;
        if due > now {
            return None;
        }
        Some(self.loss.report(now, interval, MIN_NAK_INTERVAL, 350))
    }

    pub(crate) fn next_periodic_nak(&self, interval: Duration) -> Option<Instant> {
        self.loss
            .next_report(interval.max(MIN_NAK_INTERVAL), MIN_NAK_INTERVAL)
    }
}
