//! Data packets (draft section 3.1).

use bytes::{BufMut, Bytes, BytesMut};

use super::{be32, PacketError, HEADER_LEN};
use crate::srt::seq::{MsgNo, SeqNo};

/// Where a packet sits in its message (the FF bits). Live mode sends every packet `Only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketPosition {
    /// `10`: first packet of a multi-packet message.
    First,
    /// `00`: inside a message.
    Middle,
    /// `01`: last packet of a multi-packet message.
    Last,
    /// `11`: a message in a single packet.
    Only,
}

/// Which stream encrypting key encrypted the payload (the KK bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncryptionKey {
    /// `00`: plain text.
    None,
    /// `01`: the even key.
    Even,
    /// `10`: the odd key.
    Odd,
    /// `11`: not valid in a data packet; kept so that decode/encode is lossless.
    Both,
}

impl EncryptionKey {
    pub(crate) fn from_bits(b: u32) -> Self {
        match b & 3 {
            0 => EncryptionKey::None,
            1 => EncryptionKey::Even,
            2 => EncryptionKey::Odd,
            _ => EncryptionKey::Both,
        }
    }

    pub(crate) fn bits(self) -> u32 {
        match self {
            EncryptionKey::None => 0,
            EncryptionKey::Even => 1,
            EncryptionKey::Odd => 2,
            EncryptionKey::Both => 3,
        }
    }
}

/// One data packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPacket {
    /// Packet sequence number.
    pub seq: SeqNo,
    /// Position in the message.
    pub position: PacketPosition,
    /// The O bit: deliver in order.
    pub in_order: bool,
    /// The KK bits.
    pub key: EncryptionKey,
    /// The R bit: this is a retransmission.
    pub retransmitted: bool,
    /// Message number.
    pub msg: MsgNo,
    /// Sender timestamp, microseconds since the sender's connection start (wrapping).
    pub timestamp: u32,
    /// Destination socket id.
    pub destination: u32,
    /// The payload (a slice of the received datagram).
    pub payload: Bytes,
}

impl DataPacket {
    pub(super) fn decode(d: Bytes) -> Result<Self, PacketError> {
        let w1 = be32(&d, 4);
        let position = match w1 >> 30 {
            0b10 => PacketPosition::First,
            0b00 => PacketPosition::Middle,
            0b01 => PacketPosition::Last,
            _ => PacketPosition::Only,
        };
        Ok(DataPacket {
            seq: SeqNo::new(be32(&d, 0)),
            position,
            in_order: w1 & (1 << 29) != 0,
            key: EncryptionKey::from_bits(w1 >> 27),
            retransmitted: w1 & (1 << 26) != 0,
            msg: MsgNo::new(w1),
            timestamp: be32(&d, 8),
            destination: be32(&d, 12),
            payload: d.slice(HEADER_LEN..),
        })
    }

    /// Appends the 16-byte header only (for writing the payload separately).
    pub fn encode_header(&self, out: &mut BytesMut) {
        let ff = match self.position {
            PacketPosition::First => 0b10,
            PacketPosition::Middle => 0b00,
            PacketPosition::Last => 0b01,
            PacketPosition::Only => 0b11,
        };
        out.put_u32(self.seq.get());
        out.put_u32(
            ff << 30
                | u32::from(self.in_order) << 29
                | self.key.bits() << 27
                | u32::from(self.retransmitted) << 26
                | self.msg.get(),
        );
        out.put_u32(self.timestamp);
        out.put_u32(self.destination);
    }

    pub(super) fn encode(&self, out: &mut BytesMut) {
        out.reserve(HEADER_LEN + self.payload.len());
        self.encode_header(out);
        out.put_slice(&self.payload);
    }
}
