//! The caller side of the caller-listener handshake: induction, then conclusion with
//! HSREQ, the stream id and key material; the result is a [`Connection`] or the listener's
//! rejection.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::srt::connection::{Connection, Params};
use crate::srt::crypto::{KeyLength, Passphrase, RxKeys, TxKeys};
use crate::srt::listener::encode;
use crate::srt::packet::{
    Control, ControlPacket, Handshake, HandshakeExtension, HandshakeType, KmResponse, Packet,
    SrtFlags, SrtHandshake, EXT_CONFIG, EXT_HSREQ, EXT_KMREQ, HSV5_MAGIC,
};
use crate::srt::seq::SeqNo;
use crate::srt::{Config, Random, RejectReason, OUR_FLAGS, SRT_VERSION};

/// Handshakes are repeated this often until answered.
const RESEND: Duration = Duration::from_millis(250);

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct CallerOptions {
    /// Our socket id (never 0).
    pub local_id: u32,
    /// The listener's address (written into the handshake).
    pub peer_ip: IpAddr,
    /// The stream id to send, if any.
    pub stream_id: Option<String>,
    /// Encrypt with this passphrase.
    pub passphrase: Option<Passphrase>,
    /// Key length when encrypting.
    pub key_length: KeyLength,
}

/// Why connecting failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The listener refused.
    #[error("rejected by the listener: {0}")]
    Rejected(RejectReason),
    /// No answer within the connect timeout.
    #[error("no answer from the listener")]
    Timeout,
    /// The listener answered something unusable.
    #[error("bad handshake response: {0}")]
    Protocol(&'static str),
}

enum Phase {
    Induction,
    Conclusion(Box<Handshake>),
    Done,
}

/// A connecting caller.
pub struct Caller {
    config: Config,
    opts: CallerOptions,
    isn: SeqNo,
    start: Instant,
    phase: Phase,
    last_sent: Instant,
    tx_keys: Option<TxKeys>,
    rng: Option<Box<dyn Random>>,
    out: VecDeque<Bytes>,
    result: Option<Result<Connection, ConnectError>>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("local_id", &self.opts.local_id)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// Starts connecting: the induction is ready in [`Caller::poll_transmit`].
    pub fn new(
        now: Instant,
        config: Config,
        opts: CallerOptions,
        mut rng: Box<dyn Random>,
    ) -> Self {
        let isn = SeqNo::new(rng.next_u32());
        let tx_keys = opts.passphrase.clone().map(|p| {
            TxKeys::new(
                p,
                opts.key_length,
                config.km_refresh_rate,
                config.km_preannounce,
                &mut *rng,
            )
        });
        let mut c = Caller {
            config,
            opts,
            isn,
            start: now,
            phase: Phase::Induction,
            last_sent: now,
            tx_keys,
            rng: Some(rng),
            out: VecDeque::new(),
            result: None,
        };
        c.send_induction(now);
        c
    }

    fn base(&self, kind: HandshakeType) -> Handshake {
        Handshake {
            version: 4,
            encryption: 0,
            extension: 2,
            isn: self.isn,
            mtu: self.config.mtu,
            flow_window: self.config.flow_window,
            kind,
            socket_id: self.opts.local_id,
            cookie: 0,
            peer_ip: Handshake::encode_peer_ip(self.opts.peer_ip),
            extensions: Vec::new(),
        }
    }

    fn timestamp(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.start).as_micros() as u32
    }

    fn send_induction(&mut self, now: Instant) {
        let hs = self.base(HandshakeType::Induction);
        self.out.push_back(encode(self.timestamp(now), 0, hs));
        self.last_sent = now;
    }

    fn conclusion(&self, cookie: u32) -> Handshake {
        let ours = self.config.latency.as_millis().min(u128::from(u16::MAX)) as u16;
        let mut hs = self.base(HandshakeType::Conclusion);
        hs.version = 5;
        hs.cookie = cookie;
        hs.extension = EXT_HSREQ;
        hs.extensions.push(HandshakeExtension::HsReq(SrtHandshake {
            version: SRT_VERSION,
            flags: SrtFlags(OUR_FLAGS),
            recv_latency_ms: ours,
            send_latency_ms: ours,
        }));
        if let Some(sid) = &self.opts.stream_id {
            hs.extension |= EXT_CONFIG;
            hs.extensions
                .push(HandshakeExtension::StreamId(Bytes::copy_from_slice(
                    sid.as_bytes(),
                )));
        }
        if let Some(keys) = &self.tx_keys {
            hs.extension |= EXT_KMREQ;
            hs.encryption = keys.key_length().handshake_field();
            hs.extensions
                .push(HandshakeExtension::KmReq(keys.key_material().clone()));
        }
        hs
    }

    /// Feeds a datagram from the listener.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        if self.result.is_some() {
            return;
        }
        let Ok(Packet::Control(ControlPacket {
            timestamp,
            destination,
            control: Control::Handshake(hs),
        })) = Packet::decode(datagram)
        else {
            return;
        };
        if destination != self.opts.local_id {
            return;
        }
        if let HandshakeType::Rejection(code) = hs.kind {
            self.finish(Err(ConnectError::Rejected(RejectReason::from_wire(code))));
            return;
        }
        match (&self.phase, hs.kind) {
            (Phase::Induction, HandshakeType::Induction) => {
                if hs.version < 5 || hs.extension != HSV5_MAGIC {
                    self.finish(Err(ConnectError::Protocol("listener is not HSv5")));
                    return;
                }
                let req = self.conclusion(hs.cookie);
                self.out
                    .push_back(encode(self.timestamp(now), 0, req.clone()));
                self.last_sent = now;
                self.phase = Phase::Conclusion(Box::new(req));
            }
            (Phase::Conclusion(_), HandshakeType::Conclusion) => {
                let r = self.conclude(now, timestamp, hs);
                self.finish(r);
            }
            _ => {}
        }
    }

    fn conclude(
        &mut self,
        now: Instant,
        timestamp: u32,
        hs: Handshake,
    ) -> Result<Connection, ConnectError> {
        let rsp = hs
            .hs_rsp()
            .copied()
            .ok_or(ConnectError::Protocol("conclusion response without HSRSP"))?;
        let mut rx_keys = None;
        if let Some(tx) = &self.tx_keys {
            match hs.km_rsp() {
                Some(KmResponse::Echo(_)) => {
                    let mut keys = RxKeys::new(tx.passphrase().clone());
                    keys.handle_key_material(tx.key_material())
                        .map_err(|_| ConnectError::Protocol("own key material"))?;
                    rx_keys = Some(keys);
                }
                Some(KmResponse::State(KmResponse::BAD_SECRET)) => {
                    return Err(ConnectError::Rejected(RejectReason::BadSecret))
                }
                _ => return Err(ConnectError::Rejected(RejectReason::Unsecure)),
            }
        }
        let ours = self.config.latency.as_millis().min(u128::from(u16::MAX)) as u16;
        Ok(Connection::new(Params {
            now,
            start: self.start,
            local_id: self.opts.local_id,
            peer_id: hs.socket_id,
            isn: self.isn,
            recv_latency: Duration::from_millis(u64::from(ours.max(rsp.send_latency_ms))),
            send_latency: Duration::from_millis(u64::from(rsp.recv_latency_ms.max(ours))),
            peer_timestamp: timestamp,
            rx_keys,
            tx_keys: self.tx_keys.take(),
            rng: self.rng.take().expect("taken once"),
            config: self.config.clone(),
            handshake_reply: None,
        }))
    }

    fn finish(&mut self, r: Result<Connection, ConnectError>) {
        self.phase = Phase::Done;
        self.result = Some(r);
    }

    /// Repeats the current handshake, or gives up after the connect timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.result.is_some() {
            return;
        }
        if now.saturating_duration_since(self.start) >= self.config.connect_timeout {
            self.finish(Err(ConnectError::Timeout));
            return;
        }
        if now.saturating_duration_since(self.last_sent) >= RESEND {
            match &self.phase {
                Phase::Induction => self.send_induction(now),
                Phase::Conclusion(req) => {
                    // Re-stamped: the listener takes its TSBPD time base from this timestamp.
                    let d = encode(self.timestamp(now), 0, (**req).clone());
                    self.out.push_back(d);
                    self.last_sent = now;
                }
                Phase::Done => {}
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    /// When to call [`Caller::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.result.is_some() {
            return None;
        }
        Some((self.last_sent + RESEND).min(self.start + self.config.connect_timeout))
    }

    /// The outcome, once there is one.
    pub fn poll_result(&mut self) -> Option<Result<Connection, ConnectError>> {
        self.result.take()
    }
}
