//! Control packets (draft 3.2): the header and one variant per control type.

use bytes::{BufMut, Bytes, BytesMut};

use super::{be32, Ack, Handshake, KeyMaterial, LossList, PacketError, HEADER_LEN};
use crate::srt::seq::{MsgNo, SeqNo};

const TYPE_HANDSHAKE: u16 = 0;
const TYPE_KEEPALIVE: u16 = 1;
const TYPE_ACK: u16 = 2;
const TYPE_NAK: u16 = 3;
const TYPE_CONGESTION: u16 = 4;
const TYPE_SHUTDOWN: u16 = 5;
const TYPE_ACKACK: u16 = 6;
const TYPE_DROPREQ: u16 = 7;
const TYPE_PEERERROR: u16 = 8;
const TYPE_EXT: u16 = 0x7FFF;
const EXT_KMREQ: u16 = 3;
const EXT_KMRSP: u16 = 4;

/// A key material response: the responder echoes the key material it accepted, or sends a
/// single state word saying why it could not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KmResponse {
    /// The key material, echoed: the keys were unwrapped.
    Echo(KeyMaterial),
    /// A failure state: 0 unsecured, 3 no secret, 4 bad secret, 5 bad crypto mode.
    State(u32),
}

impl KmResponse {
    /// State: the peer has no passphrase.
    pub const NO_SECRET: u32 = 3;
    /// State: the passphrase does not unwrap the keys.
    pub const BAD_SECRET: u32 = 4;

    pub(crate) fn decode(body: &Bytes) -> Result<Self, PacketError> {
        if body.len() == 4 {
            Ok(KmResponse::State(be32(body, 0)))
        } else {
            KeyMaterial::decode(body).map(KmResponse::Echo)
        }
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        match self {
            KmResponse::Echo(km) => km.encode(out),
            KmResponse::State(s) => out.put_u32(*s),
        }
    }
}

/// The body of a control packet, by control type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Type 0.
    Handshake(Handshake),
    /// Type 1.
    KeepAlive,
    /// Type 2.
    Ack(Ack),
    /// Type 3.
    Nak(LossList),
    /// Type 4.
    CongestionWarning,
    /// Type 5.
    Shutdown,
    /// Type 6: the number of the full ACK being acknowledged.
    AckAck(u32),
    /// Type 7: the sender will not retransmit these packets.
    DropRequest {
        /// Message number, 0 when unknown.
        msg: MsgNo,
        /// First dropped packet.
        first: SeqNo,
        /// Last dropped packet.
        last: SeqNo,
    },
    /// Type 8.
    PeerError(u32),
    /// Type 0x7FFF subtype 3: key material refresh.
    KmReq(KeyMaterial),
    /// Type 0x7FFF subtype 4: answer to a refresh.
    KmRsp(KmResponse),
    /// Anything else (HSv4 extension messages, future types), kept as read.
    Unknown {
        /// Control type.
        kind: u16,
        /// Subtype.
        subtype: u16,
        /// Type-specific information.
        info: u32,
        /// Control information field.
        body: Bytes,
    },
}

/// A control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPacket {
    /// Sender timestamp, microseconds since its connection start (wrapping).
    pub timestamp: u32,
    /// Destination socket id (0 in a caller's handshake).
    pub destination: u32,
    /// The body.
    pub control: Control,
}

impl ControlPacket {
    pub(super) fn decode(d: Bytes) -> Result<Self, PacketError> {
        let kind = ((be32(&d, 0) >> 16) & 0x7FFF) as u16;
        let subtype = be32(&d, 0) as u16;
        let info = be32(&d, 4);
        let cif = d.slice(HEADER_LEN..);
        let control = match (kind, subtype) {
            (TYPE_HANDSHAKE, _) => Control::Handshake(Handshake::decode(&cif)?),
            (TYPE_KEEPALIVE, _) => Control::KeepAlive,
            (TYPE_ACK, _) => Control::Ack(Ack::decode(info, &cif)?),
            (TYPE_NAK, _) => Control::Nak(LossList::decode(&cif)?),
            (TYPE_CONGESTION, _) => Control::CongestionWarning,
            (TYPE_SHUTDOWN, _) => Control::Shutdown,
            (TYPE_ACKACK, _) => Control::AckAck(info),
            (TYPE_DROPREQ, _) => {
                super::need("drop request", 8, cif.len())?;
                Control::DropRequest {
                    msg: MsgNo::new(info),
                    first: SeqNo::new(be32(&cif, 0)),
                    last: SeqNo::new(be32(&cif, 4)),
                }
            }
            (TYPE_PEERERROR, _) => Control::PeerError(info),
            (TYPE_EXT, EXT_KMREQ) => Control::KmReq(KeyMaterial::decode(&cif)?),
            (TYPE_EXT, EXT_KMRSP) => Control::KmRsp(KmResponse::decode(&cif)?),
            (kind, subtype) => Control::Unknown {
                kind,
                subtype,
                info,
                body: cif,
            },
        };
        Ok(ControlPacket {
            timestamp: be32(&d, 8),
            destination: be32(&d, 12),
            control,
        })
    }

    pub(super) fn encode(&self, out: &mut BytesMut) {
        let (kind, subtype, info) = match &self.control {
            Control::Handshake(_) => (TYPE_HANDSHAKE, 0, 0),
            Control::KeepAlive => (TYPE_KEEPALIVE, 0, 0),
            Control::Ack(a) => (TYPE_ACK, 0, a.number),
            Control::Nak(_) => (TYPE_NAK, 0, 0),
            Control::CongestionWarning => (TYPE_CONGESTION, 0, 0),
            Control::Shutdown => (TYPE_SHUTDOWN, 0, 0),
            Control::AckAck(n) => (TYPE_ACKACK, 0, *n),
            Control::DropRequest { msg, .. } => (TYPE_DROPREQ, 0, msg.get()),
            Control::PeerError(e) => (TYPE_PEERERROR, 0, *e),
            Control::KmReq(_) => (TYPE_EXT, EXT_KMREQ, 0),
            Control::KmRsp(_) => (TYPE_EXT, EXT_KMRSP, 0),
            Control::Unknown {
                kind,
                subtype,
                info,
                ..
            } => (*kind, *subtype, *info),
        };
        out.put_u32(0x8000_0000 | u32::from(kind) << 16 | u32::from(subtype));
        out.put_u32(info);
        out.put_u32(self.timestamp);
        out.put_u32(self.destination);
        match &self.control {
            Control::Handshake(h) => h.encode(out),
            Control::Ack(a) => a.encode_cif(out),
            Control::Nak(l) => l.encode(out),
            Control::DropRequest { first, last, .. } => {
                out.put_u32(first.get());
                out.put_u32(last.get());
            }
            Control::KmReq(km) => km.encode(out),
            Control::KmRsp(r) => r.encode(out),
            Control::Unknown { body, .. } => out.put_slice(body),
            // libsrt pads body-less control packets with one zero word.
            Control::KeepAlive
            | Control::CongestionWarning
            | Control::Shutdown
            | Control::AckAck(_)
            | Control::PeerError(_) => out.put_u32(0),
        }
    }
}
