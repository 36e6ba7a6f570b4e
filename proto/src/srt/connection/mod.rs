//! An established SRT connection in live mode, both directions, as a sans-IO state machine.
//!
//! ```text
//!  handle_datagram(now, bytes) --> recv.rs (reorder, loss list, TSBPD) --> poll_event: Message
//!                              \-> send.rs (ACK, NAK -> retransmit)
//!  send(now, payload) ----------> crypto (TxKeys) --> send.rs --> poll_transmit --> datagrams
//!  handle_timeout(now) --> ACK every 10 ms, periodic NAK, TSBPD release + too-late drop,
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
        s
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

    /// Feeds one datagram addressed to this connection.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        if self.closed {
            return;
        }
        let Ok(packet) = Packet::decode(datagram) else {
            return;
        };
        if packet.destination() != self.local_id {
            return;
        }
        self.last_recv = now;
        match packet {
            Packet::Data(mut d) => {
                if d.key != EncryptionKey::None {
                    let seq = d.seq.get();
                    let mut buf = match std::mem::take(&mut d.payload).try_into_mut() {
                        Ok(b) => b,
                        Err(shared) => BytesMut::from(&shared[..]),
                    };
                    let ok = self
                        .rx_keys
                        .as_ref()
                        .is_some_and(|k| k.decrypt(d.key, seq, &mut buf));
                    if ok {
                        d.payload = buf.freeze();
                    } else {
                        // Kept as an empty slot so it is not reported lost, never delivered.
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
                    if let Release::Packet { payload, timestamp } = r {
                        if !payload.is_empty() {
                            self.events.push_back(Event::Message { payload, timestamp });
                        }
                    }
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

    /// libsrt's (RTT + 4 RTTVar) / 2, but at most a third of the latency: until the first
    /// RTT sample the estimate is a 100 ms guess, and a repeat that cannot arrive before
    /// the packet is due is wasted.
    fn nak_interval(&self) -> Duration {
        (self.rtt.timeout() / 2).min(self.recv.tsbpd.latency() / 3)
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

    /// When the flush of a shutdown is complete, if everything was acknowledged.
    fn flushed_at(&self) -> Option<Instant> {
        (self.send.buffered() == 0).then(|| self.last_payload + self.send_latency)
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
            self.queue(Control::Shutdown);
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
        consider(self.recv.next_ack());
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
