//! The handshake control packet (draft 3.2.1) and its HSv5 extensions.

use bytes::{BufMut, Bytes, BytesMut};

use super::{be32, need, KeyMaterial, PacketError};
use crate::srt::packet::control::KmResponse;
use crate::srt::seq::SeqNo;

/// Extension field flag: the conclusion carries HSREQ/HSRSP.
pub const EXT_HSREQ: u16 = 0x1;
/// Extension field flag: the conclusion carries KMREQ/KMRSP.
pub const EXT_KMREQ: u16 = 0x2;
/// Extension field flag: the conclusion carries configuration (stream id, congestion, ...).
pub const EXT_CONFIG: u16 = 0x4;
/// What an HSv5 listener puts in the extension field of its induction response.
pub const HSV5_MAGIC: u16 = 0x4A17;
/// Longest stream id the protocol allows, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 512;
/// Most extensions read from one handshake (libsrt sends at most five).
const MAX_EXTENSIONS: usize = 16;
const CIF_LEN: usize = 48;

/// The handshake type field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeType {
    /// 1: first phase of caller-listener.
    Induction,
    /// 0: rendezvous waving.
    WaveAHand,
    /// 0xFFFFFFFF: second phase.
    Conclusion,
    /// 0xFFFFFFFE: rendezvous agreement.
    Agreement,
    /// 0xFFFFFFFD: done.
    Done,
    /// 1000 and above: the connection is refused; the value is the wire code (API code +
    /// 1000, see [`crate::srt::RejectReason`]).
    Rejection(u32),
    /// Anything else.
    Other(u32),
}

impl HandshakeType {
    fn from_u32(v: u32) -> Self {
        match v {
            1 => HandshakeType::Induction,
            0 => HandshakeType::WaveAHand,
            0xFFFF_FFFF => HandshakeType::Conclusion,
            0xFFFF_FFFE => HandshakeType::Agreement,
            0xFFFF_FFFD => HandshakeType::Done,
            1000..=0xFFFF_FFF0 => HandshakeType::Rejection(v),
            v => HandshakeType::Other(v),
        }
    }

    fn to_u32(self) -> u32 {
        match self {
            HandshakeType::Induction => 1,
            HandshakeType::WaveAHand => 0,
            HandshakeType::Conclusion => 0xFFFF_FFFF,
            HandshakeType::Agreement => 0xFFFF_FFFE,
            HandshakeType::Done => 0xFFFF_FFFD,
            HandshakeType::Rejection(v) | HandshakeType::Other(v) => v,
        }
    }
}

/// SRT flags of HSREQ/HSRSP (draft 3.2.1.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SrtFlags(pub u32);

impl SrtFlags {
    /// TSBPD used for sending.
    pub const TSBPD_SND: u32 = 0x01;
    /// TSBPD used for receiving.
    pub const TSBPD_RCV: u32 = 0x02;
    /// Understands the KK bits (must be set).
    pub const CRYPT: u32 = 0x04;
    /// Too-late packet drop.
    pub const TLPKTDROP: u32 = 0x08;
    /// Periodic NAK reports.
    pub const PERIODIC_NAK: u32 = 0x10;
    /// Understands the R bit (must be set).
    pub const REXMIT: u32 = 0x20;
    /// Buffer (stream) mode instead of message mode.
    pub const STREAM: u32 = 0x40;
    /// Packet filter support.
    pub const PACKET_FILTER: u32 = 0x80;

    /// Whether every bit of `f` is set.
    pub fn has(self, f: u32) -> bool {
        self.0 & f == f
    }
}

/// The body of HSREQ and HSRSP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrtHandshake {
    /// Library version, major * 0x10000 + minor * 0x100 + patch.
    pub version: u32,
    /// Flags.
    pub flags: SrtFlags,
    /// The TSBPD delay the sender of this message uses when receiving, ms.
    pub recv_latency_ms: u16,
    /// The TSBPD delay it proposes for its peer's receiving, ms.
    pub send_latency_ms: u16,
}

/// One handshake extension block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeExtension {
    /// 1: the initiator's SRT parameters.
    HsReq(SrtHandshake),
    /// 2: the responder's SRT parameters.
    HsRsp(SrtHandshake),
    /// 3: the initiator's key material.
    KmReq(KeyMaterial),
    /// 4: the responder's key material answer.
    KmRsp(KmResponse),
    /// 5: the stream id (UTF-8 is not enforced here; the listener checks it).
    StreamId(Bytes),
    /// 6: the congestion controller name (`live` or `file`).
    Congestion(Bytes),
    /// Any other type, kept as read.
    Other {
        /// Extension type.
        kind: u16,
        /// Contents, as on the wire.
        body: Bytes,
    },
}

/// A handshake packet's control information field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// 4 in a caller's induction, 5 afterwards.
    pub version: u32,
    /// Encryption field: 0 none, 2/3/4 AES-128/192/256.
    pub encryption: u16,
    /// Extension field: [`HSV5_MAGIC`] in an induction response, `EXT_*` flags in a
    /// conclusion, 2 (UDT_DGRAM) in an HSv4 induction.
    pub extension: u16,
    /// Initial sequence number of the sender of this handshake.
    pub isn: SeqNo,
    /// Maximum transmission unit.
    pub mtu: u32,
    /// Flow window, packets.
    pub flow_window: u32,
    /// Handshake type.
    pub kind: HandshakeType,
    /// Socket id of the sender of this handshake.
    pub socket_id: u32,
    /// SYN cookie.
    pub cookie: u32,
    /// The peer's address as libsrt writes it (each 32-bit word little-endian).
    pub peer_ip: [u8; 16],
    /// HSv5 extensions, in order.
    pub extensions: Vec<HandshakeExtension>,
}

impl Handshake {
    pub(super) fn decode(cif: &Bytes) -> Result<Self, PacketError> {
        need("handshake", CIF_LEN, cif.len())?;
        let mut peer_ip = [0u8; 16];
        peer_ip.copy_from_slice(&cif[32..48]);
        let mut hs = Handshake {
            version: be32(cif, 0),
            encryption: (be32(cif, 4) >> 16) as u16,
            extension: be32(cif, 4) as u16,
            isn: SeqNo::new(be32(cif, 8)),
            mtu: be32(cif, 12),
            flow_window: be32(cif, 16),
            kind: HandshakeType::from_u32(be32(cif, 20)),
            socket_id: be32(cif, 24),
            cookie: be32(cif, 28),
            peer_ip,
            extensions: Vec::new(),
        };
        let mut at = CIF_LEN;
        while at + 4 <= cif.len() {
            if hs.extensions.len() == MAX_EXTENSIONS {
                return Err(PacketError::BadExtension {
                    ext: 0,
                    why: "too many extensions",
                });
            }
            let kind = (be32(cif, at) >> 16) as u16;
            let len = (be32(cif, at) & 0xFFFF) as usize * 4;
            at += 4;
            need("handshake extension", len, cif.len() - at)?;
            let body = cif.slice(at..at + len);
            at += len;
            hs.extensions.push(decode_extension(kind, body)?);
        }
        Ok(hs)
    }

    pub(super) fn encode(&self, out: &mut BytesMut) {
        out.put_u32(self.version);
        out.put_u16(self.encryption);
        out.put_u16(self.extension);
        out.put_u32(self.isn.get());
        out.put_u32(self.mtu);
        out.put_u32(self.flow_window);
        out.put_u32(self.kind.to_u32());
        out.put_u32(self.socket_id);
        out.put_u32(self.cookie);
        out.put_slice(&self.peer_ip);
        for ext in &self.extensions {
            encode_extension(ext, out);
        }
    }

    /// The HSREQ extension, if present.
    pub fn hs_req(&self) -> Option<&SrtHandshake> {
        self.extensions.iter().find_map(|e| match e {
            HandshakeExtension::HsReq(h) => Some(h),
            _ => None,
        })
    }

    /// The HSRSP extension, if present.
    pub fn hs_rsp(&self) -> Option<&SrtHandshake> {
        self.extensions.iter().find_map(|e| match e {
            HandshakeExtension::HsRsp(h) => Some(h),
            _ => None,
        })
    }

    /// The KMREQ extension, if present.
    pub fn km_req(&self) -> Option<&KeyMaterial> {
        self.extensions.iter().find_map(|e| match e {
            HandshakeExtension::KmReq(k) => Some(k),
            _ => None,
        })
    }

    /// The KMRSP extension, if present.
    pub fn km_rsp(&self) -> Option<&KmResponse> {
        self.extensions.iter().find_map(|e| match e {
            HandshakeExtension::KmRsp(k) => Some(k),
            _ => None,
        })
    }

    /// The stream id extension's bytes, if present.
    pub fn stream_id(&self) -> Option<&Bytes> {
        self.extensions.iter().find_map(|e| match e {
            HandshakeExtension::StreamId(s) => Some(s),
            _ => None,
        })
    }

    /// Encodes an IP address the way libsrt fills the peer address field.
    pub fn encode_peer_ip(ip: std::net::IpAddr) -> [u8; 16] {
        let mut raw = [0u8; 16];
        match ip {
            std::net::IpAddr::V4(v4) => raw[..4].copy_from_slice(&v4.octets()),
            std::net::IpAddr::V6(v6) => raw.copy_from_slice(&v6.octets()),
        }
        for w in raw.chunks_exact_mut(4) {
            w.reverse();
        }
        raw
    }
}

fn decode_srt_hs(kind: u16, body: &[u8]) -> Result<SrtHandshake, PacketError> {
    if body.len() < 12 {
        return Err(PacketError::BadExtension {
            ext: kind,
            why: "HSREQ/HSRSP shorter than 12 bytes",
        });
    }
    let lat = be32(body, 8);
    Ok(SrtHandshake {
        version: be32(body, 0),
        flags: SrtFlags(be32(body, 4)),
        recv_latency_ms: (lat >> 16) as u16,
        send_latency_ms: lat as u16,
    })
}

/// Undoes libsrt's string packing: each 32-bit word carries four characters little-endian,
/// and the tail is zero padding.
fn unswap_string(body: &[u8]) -> Bytes {
    let mut s: Vec<u8> = body
        .chunks_exact(4)
        .flat_map(|w| [w[3], w[2], w[1], w[0]])
        .collect();
    while s.last() == Some(&0) {
        s.pop();
    }
    Bytes::from(s)
}

fn swap_string(s: &[u8], out: &mut BytesMut) {
    for w in s.chunks(4) {
        let mut word = [0u8; 4];
        word[..w.len()].copy_from_slice(w);
        word.reverse();
        out.put_slice(&word);
    }
}

fn decode_extension(kind: u16, body: Bytes) -> Result<HandshakeExtension, PacketError> {
    Ok(match kind {
        1 => HandshakeExtension::HsReq(decode_srt_hs(kind, &body)?),
        2 => HandshakeExtension::HsRsp(decode_srt_hs(kind, &body)?),
        3 => HandshakeExtension::KmReq(KeyMaterial::decode(&body)?),
        4 => HandshakeExtension::KmRsp(KmResponse::decode(&body)?),
        5 => {
            if body.len() > MAX_STREAM_ID_LEN {
                return Err(PacketError::BadExtension {
                    ext: kind,
                    why: "stream id longer than 512 bytes",
                });
            }
            HandshakeExtension::StreamId(unswap_string(&body))
        }
        6 => HandshakeExtension::Congestion(unswap_string(&body)),
        kind => HandshakeExtension::Other { kind, body },
    })
}

fn encode_extension(ext: &HandshakeExtension, out: &mut BytesMut) {
    let header_at = out.len();
    out.put_u32(0);
    let kind = match ext {
        HandshakeExtension::HsReq(h) | HandshakeExtension::HsRsp(h) => {
            out.put_u32(h.version);
            out.put_u32(h.flags.0);
            out.put_u16(h.recv_latency_ms);
            out.put_u16(h.send_latency_ms);
            if matches!(ext, HandshakeExtension::HsReq(_)) {
                1
            } else {
                2
            }
        }
        HandshakeExtension::KmReq(km) => {
            km.encode(out);
            3
        }
        HandshakeExtension::KmRsp(r) => {
            r.encode(out);
            4
        }
        HandshakeExtension::StreamId(s) => {
            swap_string(s, out);
            5
        }
        HandshakeExtension::Congestion(s) => {
            swap_string(s, out);
            6
        }
        HandshakeExtension::Other { kind, body } => {
            out.put_slice(body);
            *kind
        }
    };
    let words = ((out.len() - header_at - 4) / 4) as u32;
    out[header_at..header_at + 4].copy_from_slice(&(u32::from(kind) << 16 | words).to_be_bytes());
}
