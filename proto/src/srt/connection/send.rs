//! The sending half: send buffer, retransmission on NAK, sender-side drop of packets the
//! receiver can no longer use, and the flow window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::stats::Stats;
use crate::srt::packet::{DataPacket, EncryptionKey, PacketPosition};
use crate::srt::seq::{MsgNo, SeqNo};

struct Sent {
    msg: MsgNo,
    ts: u32,
    key: EncryptionKey,
    payload: Bytes,
    created: Instant,
}

pub(crate) struct Sender {
    /// Sequence number of `buf[0]`: the oldest unacknowledged packet.
    head: SeqNo,
    next_seq: SeqNo,
    next_msg: MsgNo,
    buf: VecDeque<Sent>,
    /// Index in `buf` of the first packet not sent yet.
    unsent: usize,
    rexmit: VecDeque<SeqNo>,
    flow_window: u32,
    peer_available: u32,
    drop_after: Duration,
    capacity: usize,
    /// When the ACK point last moved or a new packet was last sent.
    last_progress: Option<Instant>,
}

impl Sender {
    /// `drop_after`: age beyond which an unacknowledged packet is useless to the receiver.
    pub(crate) fn new(isn: SeqNo, flow_window: u32, drop_after: Duration, capacity: usize) -> Self {
        Sender {
            head: isn,
            next_seq: isn,
            next_msg: MsgNo::new(0),
            buf: VecDeque::new(),
            unsent: 0,
            rexmit: VecDeque::new(),
            flow_window,
            peer_available: flow_window,
            drop_after,
            capacity,
            last_progress: None,
        }
    }

    /// The sequence number the next packet gets.
    pub(crate) fn next_seq(&self) -> SeqNo {
        self.next_seq
    }

    /// Queues an (already encrypted) payload; false when the buffer is full.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        ts: u32,
        key: EncryptionKey,
        payload: Bytes,
    ) -> bool {
        if self.buf.len() >= self.capacity {
            return false;
        }
        self.next_msg = self.next_msg.next();
        self.buf.push_back(Sent {
            msg: self.next_msg,
            ts,
            key,
            payload,
            created: now,
        });
        self.next_seq = self.next_seq.next();
        true
    }

    fn packet(&self, seq: SeqNo, s: &Sent, retransmitted: bool, dst: u32) -> DataPacket {
        DataPacket {
            seq,
            position: PacketPosition::Only,
            in_order: false,
            key: s.key,
            retransmitted,
            msg: s.msg,
            timestamp: s.ts,
            destination: dst,
            payload: s.payload.clone(),
        }
    }

    /// The next datagram: retransmissions first, then new packets within the window.
    pub(crate) fn poll(&mut self, now: Instant, dst: u32, stats: &mut Stats) -> Option<DataPacket> {
        while let Some(seq) = self.rexmit.pop_front() {
            let off = seq.diff(self.head);
            if off < 0 {
                continue; // acknowledged meanwhile
            }
            let off = off as usize;
            if off >= self.unsent {
                continue;
            }
            stats.sent_retransmitted += 1;
            return Some(self.packet(seq, &self.buf[off], true, dst));
        }
        if self.unsent < self.buf.len() {
            let in_flight = self.unsent as u32;
            if in_flight >= self.flow_window.min(self.peer_available.max(1)) {
                return None;
            }
            let seq = self.head.plus(self.unsent as u32);
            let s = &self.buf[self.unsent];
            stats.sent_packets += 1;
            stats.sent_bytes += s.payload.len() as u64;
            let p = self.packet(seq, &self.buf[self.unsent], false, dst);
            self.unsent += 1;
            self.last_progress = Some(now);
            return Some(p);
        }
        None
    }

    /// Whether `poll` has something to send.
    pub(crate) fn has_pending(&self) -> bool {
        !self.rexmit.is_empty()
            || (self.unsent < self.buf.len()
                && (self.unsent as u32) < self.flow_window.min(self.peer_available.max(1)))
    }

    /// The receiver has everything before `ack`.
    pub(crate) fn handle_ack(&mut self, now: Instant, ack: SeqNo, available: Option<u32>) {
        if let Some(a) = available {
            self.peer_available = a;
        }
        let n = ack.diff(self.head);
        if n <= 0 {
            return;
        }
        let n = (n as usize).min(self.buf.len());
        self.buf.drain(..n);
        if self.last_progress.is_some() {
            self.last_progress = Some(now);
        }
        self.unsent = self.unsent.saturating_sub(n);
        self.head = self.head.plus(n as u32);
    }

    /// Queues retransmissions for a NAK; returns ranges no longer held (for drop requests).
    pub(crate) fn handle_nak(&mut self, ranges: &[(SeqNo, SeqNo)]) -> Vec<(SeqNo, SeqNo)> {
        let mut gone = Vec::new();
        for &(from, to) in ranges {
            if from < self.head {
                let end = if to < self.head {
                    to
                } else {
                    self.head.minus(1)
                };
                gone.push((from, end));
            }
            let mut s = if from < self.head { self.head } else { from };
            let mut n = 0;
            while s <= to && n < self.capacity {
                let off = s.diff(self.head) as usize;
                if off >= self.unsent {
                    break;
                }
                if !self.rexmit.contains(&s) {
                    self.rexmit.push_back(s);
                }
                s = s.next();
                n += 1;
            }
        }
        gone
    }

    /// Tail loss: when the last packets sent are lost and nothing follows them, the
    /// receiver cannot see a gap. If neither the ACK point nor new data moved for `rto`,
    /// queue the unacknowledged packets again (once per `rto`).
    pub(crate) fn handle_rto(&mut self, now: Instant, rto: Duration) {
        let Some(t) = self.last_progress else { return };
        if self.unsent == 0 || now < t + rto {
            return;
        }
        self.last_progress = Some(now);
        for i in 0..self.unsent.min(64) {
            let seq = self.head.plus(i as u32);
            if !self.rexmit.contains(&seq) {
                self.rexmit.push_back(seq);
            }
        }
    }

    /// When [`Sender::handle_rto`] may act.
    pub(crate) fn next_rto(&self, rto: Duration) -> Option<Instant> {
        (self.unsent > 0).then_some(self.last_progress? + rto)
    }

    /// Drops packets too old to be of use; returns how many.
    pub(crate) fn drop_old(&mut self, now: Instant, stats: &mut Stats) -> u32 {
        let mut n = 0;
        while let Some(s) = self.buf.front() {
            if now.saturating_duration_since(s.created) < self.drop_after {
                break;
            }
            self.buf.pop_front();
            self.head = self.head.next();
            self.unsent = self.unsent.saturating_sub(1);
            n += 1;
        }
        stats.sent_dropped += u64::from(n);
        n
    }

    /// When the oldest packet becomes too old.
    pub(crate) fn next_drop(&self) -> Option<Instant> {
        self.buf.front().map(|s| s.created + self.drop_after)
    }

    /// Packets held (sent and unacknowledged, or waiting).
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }
}
