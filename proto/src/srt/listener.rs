//! The listener side of the caller-listener handshake (draft 4.3.1).
//!
//! An induction is answered with a SYN cookie derived from a secret, the caller's address
//! and the current minute, and nothing is remembered: a spoofed source never makes the
//! listener allocate. A conclusion carrying a valid cookie becomes a [`ConnectRequest`] the
//! application accepts (choosing the passphrase from the stream id) or rejects with a code.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::srt::connection::{Connection, Params};
use crate::srt::crypto::{CryptoError, Passphrase, RxKeys};
use crate::srt::packet::{
    Control, ControlPacket, Handshake, HandshakeExtension, HandshakeType, KmResponse, Packet,
    SrtFlags, SrtHandshake, EXT_HSREQ, EXT_KMREQ, HSV5_MAGIC,
};
use crate::srt::{Config, Random, RejectReason, OUR_FLAGS, SRT_VERSION};

const COOKIE_PERIOD: Duration = Duration::from_secs(60);

/// What to do with a datagram addressed to the listener (destination socket id 0).
#[derive(Debug)]
pub enum ListenerOutput {
    /// Send this back to the source (the induction response).
    Reply(Bytes),
    /// A conclusion with a valid cookie: [`Listener::accept`] or [`Listener::reject`] it.
    Request(Box<ConnectRequest>),
    /// Refused by protocol checks: send `reply` and log `reason`.
    Reject {
        /// The code sent.
        reason: RejectReason,
        /// Why, for the log.
        detail: &'static str,
        /// The rejection datagram.
        reply: Bytes,
    },
    /// Not answered (not a handshake, malformed, bad cookie).
    Ignore(&'static str),
}

/// A caller that completed the cookie exchange and asks to connect.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// Its address.
    pub peer: SocketAddr,
    /// The conclusion handshake.
    pub handshake: Handshake,
    /// The header timestamp of the conclusion (the caller's clock).
    pub timestamp: u32,
    /// When it arrived.
    pub arrived: Instant,
}

impl ConnectRequest {
    /// The caller's socket id.
    pub fn peer_socket_id(&self) -> u32 {
        self.handshake.socket_id
    }

    /// The raw stream id, if any.
    pub fn stream_id(&self) -> Option<&[u8]> {
        self.handshake.stream_id().map(|b| &b[..])
    }

    /// Whether the caller sent key material (wants encryption).
    pub fn wants_encryption(&self) -> bool {
        self.handshake.km_req().is_some()
    }
}

/// How to accept a request.
pub struct Accept {
    /// Our socket id for this connection (unique among live connections, never 0).
    pub local_id: u32,
    /// The stream's passphrase, if it has one.
    pub passphrase: Option<Passphrase>,
    /// Refuse callers without encryption even when there is no passphrase.
    pub enforce_encryption: bool,
    /// Randomness for the connection's own key refreshes.
    pub rng: Box<dyn Random>,
}

/// A refused request: send `reply` to the caller.
#[derive(Debug)]
pub struct Rejected {
    /// The code.
    pub reason: RejectReason,
    /// Why, for the log.
    pub detail: String,
    /// The rejection datagram.
    pub reply: Bytes,
}

/// The listening endpoint's handshake logic.
pub struct Listener {
    /// The HMAC keyed with the cookie secret, cloned per cookie: the key schedule is
    /// computed once, not once per handshake datagram (a flood of them is the case
    /// cookies exist for).
    mac: Hmac<Sha256>,
    epoch: Instant,
    config: Config,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// A listener; `rng` seeds the cookie secret.
    pub fn new(now: Instant, config: Config, rng: &mut dyn Random) -> Self {
        let mut secret = [0u8; 32];
        rng.fill(&mut secret);
        Listener {
            mac: Hmac::<Sha256>::new_from_slice(&secret).expect("any key length"),
            epoch: now,
            config,
        }
    }

    /// The connection configuration accepted connections get.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn cookie(&self, peer: SocketAddr, period: u64) -> u32 {
        let mut mac = self.mac.clone();
        match peer.ip() {
            std::net::IpAddr::V4(a) => mac.update(&a.octets()),
            std::net::IpAddr::V6(a) => mac.update(&a.octets()),
        }
        mac.update(&peer.port().to_be_bytes());
        mac.update(&period.to_be_bytes());
        let out = mac.finalize().into_bytes();
        u32::from_be_bytes([out[0], out[1], out[2], out[3]])
    }

    fn period(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / COOKIE_PERIOD.as_secs()
    }

    fn cookie_valid(&self, now: Instant, peer: SocketAddr, cookie: u32) -> bool {
        let p = self.period(now);
        cookie == self.cookie(peer, p) || (p > 0 && cookie == self.cookie(peer, p - 1))
    }

    /// Handles a datagram whose destination socket id is 0.
    pub fn handle(&self, now: Instant, from: SocketAddr, datagram: Bytes) -> ListenerOutput {
        let Ok(Packet::Control(ControlPacket {
            timestamp,
            control: Control::Handshake(hs),
            ..
        })) = Packet::decode(datagram)
        else {
            return ListenerOutput::Ignore("not a handshake");
        };
        match hs.kind {
            HandshakeType::Induction => {
                let reply = Handshake {
                    version: 5,
                    encryption: 0,
                    extension: HSV5_MAGIC,
                    isn: hs.isn,
                    mtu: hs.mtu.min(self.config.mtu),
                    flow_window: hs.flow_window,
                    kind: HandshakeType::Induction,
                    socket_id: 0,
                    cookie: self.cookie(from, self.period(now)),
                    peer_ip: Handshake::encode_peer_ip(from.ip()),
                    extensions: Vec::new(),
                };
                ListenerOutput::Reply(encode(timestamp_of(now, self.epoch), hs.socket_id, reply))
            }
            HandshakeType::Conclusion => {
                if !self.cookie_valid(now, from, hs.cookie) {
                    return ListenerOutput::Ignore("conclusion with an invalid cookie");
                }
                let refuse = |reason, detail| ListenerOutput::Reject {
                    reason,
                    detail,
                    reply: rejection(&hs, reason, timestamp_of(now, self.epoch)),
                };
                if hs.version < 5 {
                    return refuse(RejectReason::Version, "HSv4 caller (SRT before 1.3)");
                }
                let Some(req) = hs.hs_req() else {
                    return refuse(RejectReason::Rogue, "conclusion without HSREQ");
                };
                if req.flags.has(SrtFlags::STREAM) {
                    return refuse(RejectReason::MessageApi, "caller uses buffer (file) mode");
                }
                let congestion = hs.extensions.iter().find_map(|e| match e {
                    HandshakeExtension::Congestion(c) => Some(c.clone()),
                    _ => None,
                });
                if congestion.is_some_and(|c| &c[..] != b"live") {
                    return refuse(
                        RejectReason::Congestion,
                        "caller asks for file congestion control",
                    );
                }
                ListenerOutput::Request(Box::new(ConnectRequest {
                    peer: from,
                    handshake: hs,
                    timestamp,
                    arrived: now,
                }))
            }
            _ => ListenerOutput::Ignore("handshake type a listener does not answer"),
        }
    }

    /// The rejection datagram for `req`.
    pub fn reject(&self, now: Instant, req: &ConnectRequest, reason: RejectReason) -> Bytes {
        rejection(&req.handshake, reason, timestamp_of(now, self.epoch))
    }

    /// Accepts `req`: checks encryption, negotiates latency, and builds the connection and
    /// the conclusion response to send.
    pub fn accept(
        &self,
        now: Instant,
        req: &ConnectRequest,
        accept: Accept,
    ) -> Result<(Connection, Bytes), Rejected> {
        let hs = &req.handshake;
        let refuse = |reason: RejectReason, detail: String| Rejected {
            reason,
            detail,
            reply: self.reject(now, req, reason),
        };
        let rx_keys = match (&accept.passphrase, hs.km_req()) {
            (Some(pass), Some(km)) => {
                let mut keys = RxKeys::new(pass.clone());
                match keys.handle_key_material(km) {
                    Ok(()) => Some(keys),
                    Err(CryptoError::BadSecret) => {
                        return Err(refuse(RejectReason::BadSecret, "wrong passphrase".into()))
                    }
                    Err(e) => return Err(refuse(RejectReason::Crypto, e.to_string())),
                }
            }
            (Some(_), None) => {
                return Err(refuse(
                    RejectReason::Unsecure,
                    "the stream requires a passphrase and the caller sent none".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(refuse(
                    RejectReason::Unsecure,
                    "the caller encrypts but the stream has no passphrase".into(),
                ))
            }
            (None, None) if accept.enforce_encryption => {
                return Err(refuse(
                    RejectReason::Unsecure,
                    "encryption is enforced and the caller sent no key material".into(),
                ))
            }
            (None, None) => None,
        };
        let peer_hs = hs
            .hs_req()
            .copied()
            .ok_or_else(|| refuse(RejectReason::Rogue, "conclusion without HSREQ".into()))?;
        let ours = self.config.latency.as_millis().min(u128::from(u16::MAX)) as u16;
        let recv_latency = ours.max(peer_hs.send_latency_ms);
        let send_latency = peer_hs.recv_latency_ms.max(ours);
        let mut extensions = vec![HandshakeExtension::HsRsp(SrtHandshake {
            version: SRT_VERSION,
            flags: SrtFlags(OUR_FLAGS),
            recv_latency_ms: recv_latency,
            send_latency_ms: send_latency,
        })];
        let mut extension = EXT_HSREQ;
        let mut encryption = 0;
        if let Some(km) = hs.km_req() {
            extensions.push(HandshakeExtension::KmRsp(KmResponse::Echo(km.clone())));
            extension |= EXT_KMREQ;
            encryption = crate::srt::crypto::KeyLength::from_bytes(km.key_len)
                .map_or(0, |l| l.handshake_field());
        }
        let response = Handshake {
            version: 5,
            encryption,
            extension,
            isn: hs.isn,
            mtu: hs.mtu.min(self.config.mtu),
            flow_window: self.config.flow_window,
            kind: HandshakeType::Conclusion,
            socket_id: accept.local_id,
            cookie: hs.cookie,
            peer_ip: Handshake::encode_peer_ip(req.peer.ip()),
            extensions,
        };
        // The connection's clock starts now, and the caller derives our start time from
        // this packet's timestamp (the time base of the data we send it): 0.
        let reply = encode(0, hs.socket_id, response);
        // HSv5 "reverse KMX": what we send is encrypted with the caller's keys.
        let tx_keys = rx_keys
            .as_ref()
            .and_then(|k| k.sender_keys(self.config.km_refresh_rate, self.config.km_preannounce));
        let conn = Connection::new(Params {
            now,
            start: now,
            local_id: accept.local_id,
            peer_id: hs.socket_id,
            isn: hs.isn,
            recv_latency: Duration::from_millis(u64::from(recv_latency)),
            send_latency: Duration::from_millis(u64::from(send_latency)),
            peer_timestamp: req.timestamp,
            rx_keys,
            tx_keys,
            rng: accept.rng,
            config: self.config.clone(),
            handshake_reply: Some(reply.clone()),
        });
        Ok((conn, reply))
    }
}

fn timestamp_of(now: Instant, epoch: Instant) -> u32 {
    now.saturating_duration_since(epoch).as_micros() as u32
}

pub(crate) fn encode(timestamp: u32, destination: u32, hs: Handshake) -> Bytes {
    let mut out = BytesMut::with_capacity(256);
    Packet::Control(ControlPacket {
        timestamp,
        destination,
        control: Control::Handshake(hs),
    })
    .encode(&mut out);
    out.freeze()
}

fn rejection(req: &Handshake, reason: RejectReason, timestamp: u32) -> Bytes {
    let hs = Handshake {
        version: 5,
        encryption: 0,
        extension: 0,
        isn: req.isn,
        mtu: req.mtu,
        flow_window: req.flow_window,
        kind: HandshakeType::Rejection(reason.wire()),
        socket_id: 0,
        cookie: req.cookie,
        peer_ip: [0; 16],
        extensions: Vec::new(),
    };
    encode(timestamp, req.socket_id, hs)
}
