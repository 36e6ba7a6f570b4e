//! An established SRT connection in live mode, both directions, as a sans-IO state machine.
//!
//! ```text
//!  handle_datagram(now, bytes) --> recv.rs (reorder, loss list, TSBPD) --> poll_event: Message
//!                              \-> send.rs (ACK, NAK -> retransmit)
//!  send(now, payload) ----------> crypto (TxKeys) --> send.rs --> poll_transmit --> datagrams
//!  handle_timeout(now) --> ACK every 10 ms (while there is something the peer has not
//!                          confirmed by ACKACK), periodic NAK, TSBPD release + too-late drop,
//!                          keepalive, idle timeout, KM refresh retries
//! ```
//!
//! Methods come in four groups, as in quinn-proto: getters; `handle_*` for inputs
//! (datagrams, timer expiry); mutators (`send`, `close`); and `poll_*` for outputs. After
//! any input, drain [`Connection::poll_transmit`] until it returns `None`, then
//! [`Connection::poll_event`], then re-arm the single timer from
//! [`Connection::poll_timeout`].

mod loss;
mod recv;
mod rtt;
mod send;
mod stats;
mod tsbpd;

pub use stats::Stats;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::srt::crypto::{CryptoError, RxKeys, TxKeys};
use crate::srt::packet::{
    Ack, Control, ControlPacket, EncryptionKey, KeyMaterial, KmResponse, LossList, Packet,
    HEADER_LEN,
};
use crate::srt::seq::{MsgNo, SeqNo};
use crate::srt::{Config, Random};
use recv::{Receiver, RecvOutput, Release};
use rtt::Rtt;
use send::Sender;
use tsbpd::Tsbpd;

/// Keepalive period when nothing else is sent.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// Unanswered KM refreshes are sent this many times.
const KM_RETRIES: u32 = 10;
/// Copies of the shutdown sent on close.
const SHUTDOWN_COPIES: usize = 3;
/// Largest payload of one data packet: 1500 - 20 (IPv4) - 8 (UDP) - 16 (SRT).
pub const MAX_PAYLOAD: usize = 1456;

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent a shutdown.
    PeerShutdown,
    /// Nothing arrived for the peer idle timeout.
    Timeout,
    /// [`Connection::close`] was called.
    Local,
}

/// Something the application must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A payload released by TSBPD, in order.
    Message {
        /// The payload (plain text).
        payload: Bytes,
        /// The sender's timestamp, microseconds since its connection start (wrapping).
        timestamp: u32,
    },
    /// Packets given up on (too-late drop): the stream has a hole here.
    Dropped {
        /// First missing sequence number.
        first: SeqNo,
        /// How many.
        count: u32,
    },
    /// New keys from a KM refresh were installed.
    KeysRefreshed,
    /// A KM refresh could not be unwrapped; the peer was told.
    KeyRefreshFailed(CryptoError),
    /// Our sending keys changed (a new key pre-announced, or the old one decommissioned,
    /// draft 6.1.6) and the new key material was sent to the peer (KMREQ).
    KeysAnnounced,
    /// The connection is over; nothing more will be sent or received.
    Closed(CloseReason),
}

/// Why [`Connection::send`] refused a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// Larger than [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte maximum")]
    TooLarge(usize),
    /// The send buffer is full (the receiver stopped acknowledging).
    #[error("send buffer full")]
    BufferFull,
}

/// What the handshake agreed, to build a [`Connection`].
pub(crate) struct Params {
    pub(crate) now: Instant,
    /// Time zero of the timestamps this side sends (its handshake's time base).
    pub(crate) start: Instant,
    pub(crate) local_id: u32,
    pub(crate) peer_id: u32,
    pub(crate) isn: SeqNo,
    pub(crate) recv_latency: Duration,
    pub(crate) send_latency: Duration,
    /// Timestamp of the peer's handshake packet that arrived at `now`.
    pub(crate) peer_timestamp: u32,
    pub(crate) rx_keys: Option<RxKeys>,
    pub(crate) tx_keys: Option<TxKeys>,
    pub(crate) rng: Box<dyn Random>,
    pub(crate) config: Config,
    /// The listener's conclusion response, re-sent if the caller repeats its request.
    pub(crate) handshake_reply: Option<Bytes>,
}

/// An established connection.
pub struct Connection {
    local_id: u32,
    peer_id: u32,
    start: Instant,
    config: Config,
    recv: Receiver,
    send: Sender,
    rtt: Rtt,
    rx_keys: Option<RxKeys>,
    tx_keys: Option<TxKeys>,
    rng: Box<dyn Random>,
    km_pending: Option<(KeyMaterial, Instant, u32)>,
    control: VecDeque<BytesMut>,
    events: VecDeque<Event>,
    last_recv: Instant,
    last_send: Instant,
    /// When the last new payload was queued.
    last_payload: Instant,
    send_latency: Duration,
    /// [`Connection::shutdown`]: the deadline of the flush.
    closing: Option<Instant>,
    closed: bool,
    handshake_reply: Option<Bytes>,
    stats: Stats,
    scratch: BytesMut,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("local_id", &self.local_id)
            .field("peer_id", &self.peer_id)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(p: Params) -> Self {
        let tsbpd = Tsbpd::new(p.now, p.peer_timestamp, p.recv_latency);
        let drop_after = p.send_latency * 5 / 4 + Duration::from_millis(20);
        Connection {
            local_id: p.local_id,
            peer_id: p.peer_id,
            start: p.start,
            recv: Receiver::new(
                p.isn,
                p.config.recv_buffer as usize,
                tsbpd,
                p.config.too_late_drop,
            ),
            send: Sender::new(
                p.isn,
                p.config.flow_window,
                drop_after,
                p.config.send_buffer as usize,
            ),
            config: p.config,
            rtt: Rtt::default(),
            rx_keys: p.rx_keys,
            tx_keys: p.tx_keys,
            rng: p.rng,
            km_pending: None,
            control: VecDeque::new(),
            events: VecDeque::new(),
            last_recv: p.now,
            last_send: p.now,
            last_payload: p.now,
            send_latency: p.send_latency,
            closing: None,
            closed: false,
            handshake_reply: p.handshake_reply,
            stats: Stats::default(),
            scratch: BytesMut::with_capacity(2048),
        }
    }

    // ---- getters ----

    /// Our socket id (the destination id of the peer's packets).
    pub fn local_id(&self) -> u32 {
        self.local_id
    }

    /// The peer's socket id.
    pub fn peer_id(&self) -> u32 {
        self.peer_id
    }

    /// The negotiated receive latency.
    pub fn latency(&self) -> Duration {
        self.recv.tsbpd.latency()
    }

    /// Whether payloads are encrypted in either direction.
    pub fn is_encrypted(&self) -> bool {
        self.rx_keys.is_some() || self.tx_keys.is_some()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether [`Connection::shutdown`] was called and the connection is flushing.
    pub fn is_closing(&self) -> bool {
        self.closing.is_some() && !self.closed
    }

    /// The negotiated latency of what this side sends (the peer's receive latency).
    pub fn send_latency(&self) -> Duration {
        self.send_latency
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.rtt_us = self.rtt.rtt_us();
        s.rtt_var_us = self.rtt.var_us();
        s.recv_rate_bps = self.recv.rate().1;
        s.link_capacity_pps = self.recv.link_capacity();
        (s.recv_buffer_packets, s.recv_buffer_ms) = self.recv.buffered();
        s.send_buffer_packets = self.send.buffered() as u32;
        s
    }

    /// Packets dropped from the send buffer unacknowledged so far ([`Stats::sent_dropped`]
    /// without computing the rest of the statistics, which walks the receive buffer).
    pub fn sent_dropped(&self) -> u64 {
        self.stats.sent_dropped
    }

    /// Packets in the send buffer (unacknowledged or waiting for the window).
    pub fn send_buffered(&self) -> usize {
        self.send.buffered()
    }

    /// Total TSBPD drift correction applied, microseconds.
    pub fn drift_us(&self) -> i64 {
        self.recv.tsbpd.drift_applied_us
    }

    // ---- inputs ----

    /// Feeds one datagram addressed to this connection. An encrypted payload is decrypted
    /// in place when `datagram` owns its buffer alone, into a copy otherwise (see
    /// [`Connection::handle_datagram_mut`]).
    pub fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        if self.closed {
            return;
        }
        let Ok(packet) = Packet::decode(datagram) else {
            return;
        };
        self.handle_packet(now, packet, None);
    }

    /// [`Connection::handle_datagram`] for a datagram whose buffer the driver hands over
    /// mutably, e.g. one of many datagrams read into one allocation and split apart: an
    /// encrypted payload is decrypted where it lies, never copied.
    pub fn handle_datagram_mut(&mut self, now: Instant, mut datagram: BytesMut) {
        if self.closed || datagram.len() < HEADER_LEN {
            return;
        }
        let mut decrypted = None;
        if datagram[0] & 0x80 == 0 {
            let w1 = u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
            let key = EncryptionKey::from_bits(w1 >> 27);
            if key != EncryptionKey::None {
                let seq = u32::from_be_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]);
                let payload = &mut datagram[HEADER_LEN..];
                decrypted = Some(
                    self.rx_keys
                        .as_ref()
                        .is_some_and(|k| k.decrypt(key, seq, payload)),
                );
            }
        }
        let Ok(packet) = Packet::decode(datagram.freeze()) else {
            return;
        };
        self.handle_packet(now, packet, decrypted);
    }

    /// A decoded packet; `decrypted` says whether an encrypted data payload was already
    /// decrypted in place (`Some(false)`: it could not be).
    fn handle_packet(&mut self, now: Instant, packet: Packet, decrypted: Option<bool>) {
        if packet.destination() != self.local_id {
            return;
        }
        self.last_recv = now;
        match packet {
            Packet::Data(mut d) => {
                if d.key != EncryptionKey::None {
                    let ok = match decrypted {
                        Some(ok) => ok,
                        None => {
                            let seq = d.seq.get();
                            let mut buf = match std::mem::take(&mut d.payload).try_into_mut() {
                                Ok(b) => b,
                                Err(shared) => BytesMut::from(&shared[..]),
                            };
                            let ok = self
                                .rx_keys
                                .as_ref()
                                .is_some_and(|k| k.decrypt(d.key, seq, &mut buf));
                            d.payload = buf.freeze();
                            ok
                        }
                    };
                    if !ok {
                        // Kept as an empty slot so it is not reported lost, never delivered.
                        d.payload = Bytes::new();
                        self.stats.recv_undecrypted += 1;
                    }
                }
                if let RecvOutput::Nak(from, to) = self.recv.handle_data(now, d, &mut self.stats) {
                    self.queue(Control::Nak(LossList(vec![(from, to)])));
                    self.stats.naks_sent += 1;
                }
                if let Some(ack) = self.recv.poll_light_ack() {
                    self.queue(Control::Ack(Ack {
                        number: 0,
                        ack_seq: ack,
                        info: None,
                    }));
                }
                self.release(now);
            }
            Packet::Control(c) => self.handle_control(now, c),
        }
    }

    /// The caller repeated its conclusion (our response was lost): answer it again. The
    /// listener's driver calls this when a conclusion arrives from a peer it already has a
    /// connection with.
    pub fn handle_repeated_conclusion(&mut self) {
        if let Some(reply) = &self.handshake_reply {
            self.control.push_back(BytesMut::from(&reply[..]));
        }
    }

    fn handle_control(&mut self, now: Instant, c: ControlPacket) {
        match c.control {
            Control::Handshake(hs) => {
                if hs.kind == crate::srt::packet::HandshakeType::Conclusion {
                    self.handle_repeated_conclusion();
                }
            }
            Control::Ack(ack) => {
                self.send
                    .handle_ack(now, ack.ack_seq, ack.info.map(|i| i.available_buffer));
                if let Some(info) = ack.info {
                    if self.stats.recv_packets == 0 {
                        self.rtt.set(info.rtt_us, info.rtt_var_us);
                    }
                }
                if ack.number != 0 {
                    self.queue(Control::AckAck(ack.number));
                }
                self.check_flushed(now);
            }
            Control::Nak(list) => {
                self.stats.naks_received += 1;
                for (first, last) in self.send.handle_nak(&list.0) {
                    self.queue(Control::DropRequest {
                        msg: MsgNo::new(0),
                        first,
                        last,
                    });
                }
            }
            Control::AckAck(n) => {
                if let Some(sample) = self.recv.handle_ackack(now, n) {
                    self.rtt.sample(sample);
                    self.recv.tsbpd.drift_sample(now, c.timestamp);
                }
            }
            Control::Shutdown => {
                for r in self.recv.drain_all(&mut self.stats) {
                    self.released(r);
                }
                self.close_with(CloseReason::PeerShutdown)
            }
            Control::DropRequest { first, last, .. } => {
                self.recv.handle_drop_request(first, last);
                self.release(now);
            }
            Control::KmReq(km) => {
                let rsp = match self.rx_keys.as_mut() {
                    None => KmResponse::State(KmResponse::NO_SECRET),
                    Some(keys) => match keys.handle_key_material(&km) {
                        Ok(()) => {
                            self.events.push_back(Event::KeysRefreshed);
                            KmResponse::Echo(km)
                        }
                        Err(e) => {
                            self.events.push_back(Event::KeyRefreshFailed(e));
                            KmResponse::State(KmResponse::BAD_SECRET)
                        }
                    },
                };
                self.queue(Control::KmRsp(rsp));
            }
            Control::KmRsp(KmResponse::Echo(km)) => {
                if self.km_pending.as_ref().is_some_and(|(p, _, _)| *p == km) {
                    self.km_pending = None;
                }
            }
            Control::KmRsp(KmResponse::State(_)) => self.km_pending = None,
            Control::KeepAlive
            | Control::CongestionWarning
            | Control::PeerError(_)
            | Control::Unknown { .. } => {}
        }
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if now.saturating_duration_since(self.last_recv) >= self.config.peer_idle_timeout {
            self.close_with(CloseReason::Timeout);
            return;
        }
        self.release(now);
        let rtt = (self.rtt.rtt_us(), self.rtt.var_us());
        if let Some((number, ack_seq, info)) = self.recv.poll_full_ack(now, rtt, self.rtt.timeout())
        {
            self.queue(Control::Ack(Ack {
                number,
                ack_seq,
                info: Some(info),
            }));
        }
        if let Some(ranges) = self.recv.poll_periodic_nak(now, self.nak_interval()) {
            if !ranges.is_empty() {
                self.stats.naks_sent += 1;
                self.queue(Control::Nak(LossList(ranges)));
            }
        }
        self.send.drop_old(now, &mut self.stats);
        self.send.handle_rto(now, self.rto());
        self.check_flushed(now);
        if self.closed {
            return;
        }
        if let Some((km, last, tries)) = self.km_pending.clone() {
            if now >= last + self.km_retry_interval() {
                if tries >= KM_RETRIES {
                    self.km_pending = None;
                } else {
                    self.km_pending = Some((km.clone(), now, tries + 1));
                    self.queue(Control::KmReq(km));
                }
            }
        }
        if now.saturating_duration_since(self.last_send) >= KEEPALIVE_INTERVAL
            && self.control.is_empty()
            && !self.send.has_pending()
        {
            self.queue(Control::KeepAlive);
        }
    }

    /// How long a loss waits before the periodic NAK repeats it.
    ///
    /// libsrt's sender (RETRANSMITALGO 1, its default) ignores a NAK for a packet it
    /// retransmitted less than SRTT - 4 RTTVar ago, with SRTT and RTTVar taken from our
    /// full ACKs. A repeat sooner than that is wasted when the first NAK arrived, so the
    /// repeat comes just after that window (a margin of 2 RTTVar + 2 ms absorbs the NAKs'
    /// own jitter), and never sooner than libsrt's 20 ms floor. That is before the
    /// retransmission is due (RTT + 4 RTTVar, libsrt's own receiver waits that long): a
    /// repeat that turns out needless costs one small NAK, a late one can cost the packet
    /// when a NAK or a retransmission was lost and the latency is a few RTTs.
    fn nak_interval(&self) -> Duration {
        nak_interval(self.rtt.rtt_us(), self.rtt.var_us())
    }

    /// Retransmission timeout for tail loss: RTT + 4 RTTVar + two ACK periods (a
    /// receiver acknowledges every 10 ms, so one period races the ACK it waits for).
    fn rto(&self) -> Duration {
        self.rtt.timeout() + Duration::from_millis(20)
    }

    fn km_retry_interval(&self) -> Duration {
        self.rtt.timeout().max(Duration::from_millis(100))
    }

    fn release(&mut self, now: Instant) {
        while let Some(r) = self.recv.poll_release(now, &mut self.stats) {
            self.released(r);
        }
    }

    fn released(&mut self, r: Release) {
        match r {
            Release::Packet { payload, timestamp } => {
                if !payload.is_empty() {
                    self.events.push_back(Event::Message { payload, timestamp });
                }
            }
            Release::Dropped { first, count } => {
                self.events.push_back(Event::Dropped { first, count })
            }
        }
    }

    /// Ends a [`Connection::shutdown`] once everything sent was acknowledged and the
    /// peer's TSBPD had time to play the last payload out (a receiver that sees the
    /// shutdown drops what it still holds back), or at the flush deadline.
    fn check_flushed(&mut self, now: Instant) {
        let Some(deadline) = self.closing else { return };
        if now >= deadline || now >= self.flushed_at().unwrap_or(deadline) {
            self.close(now);
        }
    }

    /// When the flush of a shutdown is complete, if everything was acknowledged: when the
    /// peer has played the last payload out. The peer's TSBPD clock runs behind ours by
    /// the one-way delay of our handshake reply, whatever delayed its handling and its
    /// drift correction: shut down at exactly the latency, FFmpeg players on a loaded
    /// machine lost up to the last 150 ms of the stream (1 s latency, a 20-30 ms path).
    /// RTT + 4 RTTVar and a quarter of the latency cover that, within the linger.
    fn flushed_at(&self) -> Option<Instant> {
        (self.send.buffered() == 0)
            .then(|| self.last_payload + self.send_latency * 5 / 4 + self.rtt.timeout())
    }

    // ---- mutators ----

    /// Sends one payload (live mode: one message per packet, e.g. 7 TS packets).
    pub fn send(&mut self, now: Instant, payload: Bytes) -> Result<(), SendError> {
        if self.closed || self.closing.is_some() {
            return Err(SendError::Closed);
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(SendError::TooLarge(payload.len()));
        }
        let ts = self.timestamp(now);
        let (key, payload) = match self.tx_keys.as_mut() {
            None => (EncryptionKey::None, payload),
            Some(keys) => {
                let mut buf = match payload.try_into_mut() {
                    Ok(b) => b,
                    Err(shared) => BytesMut::from(&shared[..]),
                };
                let (key, announce) =
                    keys.encrypt(self.send.next_seq().get(), &mut buf, &mut *self.rng);
                if let Some(km) = announce {
                    self.km_pending = Some((km.clone(), now, 1));
                    self.queue(Control::KmReq(km));
                    self.events.push_back(Event::KeysAnnounced);
                }
                (key, buf.freeze())
            }
        };
        if self.send.push(now, ts, key, payload) {
            self.last_payload = now;
            Ok(())
        } else {
            Err(SendError::BufferFull)
        }
    }

    /// Ends the connection in order: takes no more payloads, keeps retransmitting until
    /// the peer acknowledged everything and played it out, then sends a shutdown and
    /// closes; after `linger` it closes regardless. A live receiver that gets a shutdown
    /// discards what its latency buffer still holds, so [`Connection::close`] right
    /// after the last payload would cut the stream's end.
    pub fn shutdown(&mut self, now: Instant, linger: Duration) {
        if self.closed || self.closing.is_some() {
            return;
        }
        self.closing = Some(now + linger);
        self.check_flushed(now);
    }

    /// Sends a shutdown and closes.
    pub fn close(&mut self, _now: Instant) {
        if !self.closed {
            // Nothing answers a shutdown, and a lost one leaves the peer waiting for its
            // idle timeout: a few copies (a closed peer ignores the rest).
            for _ in 0..SHUTDOWN_COPIES {
                self.queue(Control::Shutdown);
            }
            self.close_with(CloseReason::Local);
        }
    }

    fn close_with(&mut self, reason: CloseReason) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(Event::Closed(reason));
        }
    }

    fn timestamp(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.start).as_micros() as u32
    }

    fn queue(&mut self, control: Control) {
        let p = ControlPacket {
            timestamp: 0,
            destination: self.peer_id,
            control,
        };
        // The timestamp is stamped when the packet leaves (poll_transmit).
        self.scratch.clear();
        Packet::Control(p).encode(&mut self.scratch);
        self.control.push_back(self.scratch.split());
    }

    // ---- outputs ----

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        let ts = self.timestamp(now).to_be_bytes();
        if let Some(mut c) = self.control.pop_front() {
            self.last_send = now;
            c[8..12].copy_from_slice(&ts);
            return Some(c.freeze());
        }
        if self.closed {
            return None;
        }
        let data = self.send.poll(now, self.peer_id, &mut self.stats)?;
        self.last_send = now;
        self.scratch.clear();
        Packet::Data(data).encode(&mut self.scratch);
        Some(self.scratch.split().freeze())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Connection::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut t = self.last_recv + self.config.peer_idle_timeout;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        consider(self.recv.next_release());
        consider(self.recv.next_ack(self.rtt.timeout()));
        consider(self.recv.next_periodic_nak(self.nak_interval()));
        consider(self.send.next_drop());
        consider(self.send.next_rto(self.rto()));
        consider(
            self.km_pending
                .as_ref()
                .map(|(_, at, _)| *at + self.km_retry_interval()),
        );
        consider(Some(self.last_send + KEEPALIVE_INTERVAL));
        if let Some(deadline) = self.closing {
            consider(Some(deadline));
            consider(self.flushed_at());
        }
        Some(t)
    }
}

/// See [`Connection::nak_interval`].
fn nak_interval(rtt_us: u32, var_us: u32) -> Duration {
    let (rtt, var) = (u64::from(rtt_us), u64::from(var_us));
    let honoured = (rtt + 2_000).saturating_sub(2 * var);
    Duration::from_micros(honoured).max(recv::MIN_NAK_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nak_repeats_after_the_senders_suppression_window() {
        let ms = Duration::from_millis;
        // Steady 60 ms path: libsrt ignores repeats for 60 - 4 * 2 = 52 ms.
        assert_eq!(nak_interval(60_000, 2_000), ms(58));
        // Jittery path: its window is shorter, and so is the repeat.
        assert_eq!(nak_interval(60_000, 10_000), ms(42));
        // Variance beyond RTT / 4: libsrt answers every NAK; 20 ms floor.
        assert_eq!(nak_interval(60_000, 30_000), ms(20));
        // Short path: the floor.
        assert_eq!(nak_interval(10_000, 1_000), ms(20));
        // No jitter at all: still after the window, not on its edge.
        assert_eq!(nak_interval(100_000, 0), ms(102));
    }

    struct Zero;
    impl Random for Zero {
        fn fill(&mut self, buf: &mut [u8]) {
            buf.fill(0)
        }
    }

    const US: u32 = 0x2222;
    const PEER: u32 = 0x1111;

    /// A receiving connection whose peer's clock started at `t0` (one-way delay zero).
    fn receiver(t0: Instant) -> Connection {
        Connection::new(Params {
            now: t0,
            start: t0,
            local_id: US,
            peer_id: PEER,
            isn: SeqNo::new(0),
            recv_latency: Duration::from_millis(120),
            send_latency: Duration::from_millis(120),
            peer_timestamp: 0,
            rx_keys: None,
            tx_keys: None,
            rng: Box::new(Zero),
            config: Config::default(),
            handshake_reply: None,
        })
    }

    fn data(seq: u32, sent_ms: u64, retransmitted: bool) -> Bytes {
        let mut out = BytesMut::new();
        Packet::Data(crate::srt::packet::DataPacket {
            seq: SeqNo::new(seq),
            position: crate::srt::packet::PacketPosition::Only,
            in_order: false,
            key: EncryptionKey::None,
            retransmitted,
            msg: MsgNo::new(seq + 1),
            timestamp: (sent_ms * 1000) as u32,
            destination: US,
            payload: Bytes::from(vec![seq as u8; 188]),
        })
        .encode(&mut out);
        out.freeze()
    }

    fn control(c: Control) -> Bytes {
        let mut out = BytesMut::new();
        Packet::Control(ControlPacket {
            timestamp: 0,
            destination: US,
            control: c,
        })
        .encode(&mut out);
        out.freeze()
    }

    /// A NAK the receiver sent: when, and its ranges.
    type SentNak = (Instant, Vec<(u32, u32)>);

    /// Runs the receiver's timers up to `until` and returns (when, ranges) of every NAK
    /// it sent, and the full ACKs (number, when) so the test can answer them.
    fn run_until(
        c: &mut Connection,
        now: &mut Instant,
        until: Instant,
    ) -> (Vec<SentNak>, Vec<(u32, Instant)>) {
        let (mut naks, mut acks) = (Vec::new(), Vec::new());
        loop {
            while let Some(d) = c.poll_transmit(*now) {
                if let Ok(Packet::Control(p)) = Packet::decode(d) {
                    match p.control {
                        Control::Nak(l) => {
                            naks.push((*now, l.0.iter().map(|(a, b)| (a.get(), b.get())).collect()))
                        }
                        Control::Ack(Ack { number, .. }) if number != 0 => {
                            acks.push((number, *now))
                        }
                        _ => {}
                    }
                }
            }
            let next = c.poll_timeout().unwrap();
            if next > until {
                *now = until;
                return (naks, acks);
            }
            *now = next.max(*now);
            c.handle_timeout(*now);
        }
    }

    fn delivered(c: &mut Connection) -> Vec<u8> {
        std::iter::from_fn(|| c.poll_event())
            .filter_map(|e| match e {
                Event::Message { payload, .. } => Some(payload[0]),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lost_naks_and_lost_retransmissions_are_asked_again_until_recovered() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = receiver(t0);
        let mut now = t0;
        // 20 ms RTT measured from two ACK/ACKACK exchanges.
        for i in 0..2 {
            c.handle_datagram(now, data(i, (now - t0).as_millis() as u64, false));
            let until = now + ms(10);
            let (_, acks) = run_until(&mut c, &mut now, until);
            let (n, at) = *acks.last().expect("a full ACK");
            now = at + ms(20);
            c.handle_datagram(now, control(Control::AckAck(n)));
        }
        assert_eq!(c.stats().rtt_us, 20_000);
        let t = now;
        let sent = (t - t0).as_millis() as u64;
        // 3 is lost: the NAK goes out at once.
        c.handle_datagram(now, data(2, sent, false));
        c.handle_datagram(now, data(4, sent, false));
        let (naks, _) = run_until(&mut c, &mut now, t + ms(1));
        assert_eq!(naks, vec![(t, vec![(3, 3)])]);
        // That NAK is lost, then the retransmission its repeat asked for is lost too:
        // each repeat comes one suppression window (RTT - 4 RTTVar, + margin) later.
        let (naks, _) = run_until(&mut c, &mut now, t + ms(100));
        let at: Vec<Duration> = naks.iter().map(|(w, _)| *w - t).collect();
        assert!(naks.iter().all(|(_, r)| r == &vec![(3, 3)]), "{naks:?}");
        assert!(at.len() >= 3, "only {at:?} before 100 ms");
        for w in at.windows(2) {
            assert!(w[1] - w[0] >= ms(20) && w[1] - w[0] <= ms(25), "{at:?}");
        }
        // The third request gets through: delivered in order, nothing dropped.
        c.handle_datagram(now, data(3, sent, true));
        let (_, _) = run_until(&mut c, &mut now, t + ms(130));
        assert_eq!(delivered(&mut c), vec![0, 1, 2, 3, 4]);
        let s = c.stats();
        assert_eq!(
            (s.recv_lost, s.recv_dropped, s.recv_retransmitted),
            (1, 0, 1)
        );
        // Recovered: no more NAKs.
        let (naks, _) = run_until(&mut c, &mut now, t + ms(300));
        assert!(naks.is_empty(), "{naks:?}");
    }

    #[test]
    fn an_ack_the_peer_answered_is_not_repeated_and_an_unanswered_one_is() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = receiver(t0);
        let mut now = t0;
        c.handle_datagram(now, data(0, 0, false));
        let (_, acks) = run_until(&mut c, &mut now, t0 + ms(20));
        let (_, last) = *acks.last().expect("a full ACK");
        // Unanswered: repeated once stale (RTT + 4 RTTVar: 300 ms before any sample).
        let (_, acks) = run_until(&mut c, &mut now, t0 + ms(400));
        let (n, at) = *acks.first().expect("the ACK repeated");
        assert!(at - last >= ms(300), "repeated after {:?}", at - last);
        c.handle_datagram(now, control(Control::AckAck(n)));
        // Answered, and nothing new arrives: no ACK in the next 500 ms (50 ACK periods),
        // and no timer for one (the next is the keepalive, a second after the last send).
        let (_, acks) = run_until(&mut c, &mut now, t0 + ms(900));
        assert!(
            c.poll_timeout().unwrap() >= at + ms(1000),
            "{:?}",
            c.poll_timeout().unwrap() - now
        );
        assert!(acks.is_empty(), "{acks:?}");
        // A new packet is acknowledged at the next period.
        c.handle_datagram(now, data(1, 900, false));
        let (_, acks) = run_until(&mut c, &mut now, t0 + ms(911));
        assert_eq!(acks.len(), 1, "{acks:?}");
    }

    #[test]
    fn a_loss_outlasting_the_latency_is_dropped_when_the_next_packet_is_due() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = receiver(t0);
        let mut now = t0;
        c.handle_datagram(now, data(0, 0, false));
        c.handle_datagram(now, data(2, 0, false));
        let (naks, _) = run_until(&mut c, &mut now, t0 + ms(119));
        assert!(naks.len() >= 4, "{naks:?}");
        assert_eq!(delivered(&mut c), Vec::<u8>::new());
        run_until(&mut c, &mut now, t0 + ms(121));
        assert_eq!(delivered(&mut c), vec![0, 2]);
        assert_eq!(c.stats().recv_dropped, 1);
        // Too late: counted as belated, never delivered.
        c.handle_datagram(now, data(1, 0, true));
        assert_eq!(delivered(&mut c), Vec::<u8>::new());
        assert_eq!(c.stats().recv_belated, 1);
    }

    #[test]
    fn receive_buffer_counts_held_packets_with_holes_and_their_time_span() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = receiver(t0);
        let buffer = |c: &Connection| (c.stats().recv_buffer_packets, c.stats().recv_buffer_ms);
        assert_eq!(buffer(&c), (0, 0));
        c.handle_datagram(t0, data(0, 0, false));
        c.handle_datagram(t0 + ms(40), data(2, 40, false));
        assert_eq!(buffer(&c), (3, 40));
        // Packet 0 is played out at 120 ms; the hole and packet 2 stay.
        let mut now = t0;
        run_until(&mut c, &mut now, t0 + ms(121));
        assert_eq!(delivered(&mut c), vec![0]);
        assert_eq!(buffer(&c), (2, 0));
    }

    #[test]
    fn shutdown_delivers_what_arrived_and_counts_the_holes() {
        let t0 = Instant::now();
        let mut c = receiver(t0);
        c.handle_datagram(t0, data(0, 0, false));
        c.handle_datagram(t0, data(2, 0, false));
        c.handle_datagram(t0, control(Control::Shutdown));
        let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
        let first = |e: &Event| match e {
            Event::Message { payload, .. } => format!("m{}", payload[0]),
            Event::Dropped { first, count } => format!("d{}x{count}", first.get()),
            Event::Closed(r) => format!("{r:?}"),
            other => format!("{other:?}"),
        };
        assert_eq!(
            events.iter().map(first).collect::<Vec<_>>(),
            ["m0", "d1x1", "m2", "PeerShutdown"]
        );
        assert_eq!(c.stats().recv_dropped, 1);
    }
}
