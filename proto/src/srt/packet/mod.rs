//! The SRT packet codec: one datagram is one [`Packet`], either data or control.
//!
//! ```text
//!  datagram --> Packet::decode --> Packet::Data(DataPacket)        (payload sliced, no copy)
//!                              \-> Packet::Control(ControlPacket)  (Handshake, Ack, Nak, ...)
//!  Packet::encode --> datagram
//! ```
//!
//! Layouts follow the SRT Internet-Draft, section 3, and were checked byte for byte against
//! datagrams captured from libsrt 1.5 (see `proto/tests/vectors/srt/`).

mod ack;
mod control;
mod data;
mod handshake;
mod km;

pub use ack::{Ack, AckInfo, LossList};
pub use control::{Control, ControlPacket, KmResponse};
pub use data::{DataPacket, EncryptionKey, PacketPosition};
pub use handshake::{
    Handshake, HandshakeExtension, HandshakeType, SrtFlags, SrtHandshake, EXT_CONFIG, EXT_HSREQ,
    EXT_KMREQ, HSV5_MAGIC, MAX_STREAM_ID_LEN,
};
pub use km::{KeyMaterial, KeyPresence};

use bytes::{Bytes, BytesMut};

/// Size of the header every SRT packet starts with.
pub const HEADER_LEN: usize = 16;

/// A decoded SRT datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// A data packet (first bit 0).
    Data(DataPacket),
    /// A control packet (first bit 1).
    Control(ControlPacket),
}

/// Why a datagram is not a valid SRT packet. Every variant drops the datagram; none of them
/// is a reason to close a connection by itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The datagram or one of its fields ends early.
    #[error("truncated SRT packet: {what} needs {need} bytes, {got} left")]
    Truncated {
        /// The part being read.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes that were left.
        got: usize,
    },
    /// A handshake extension is malformed.
    #[error("bad handshake extension {ext}: {why}")]
    BadExtension {
        /// Extension type code.
        ext: u16,
        /// What is wrong.
        why: &'static str,
    },
    /// A key material message is malformed.
    #[error("bad key material: {0}")]
    BadKeyMaterial(&'static str),
    /// A loss list entry is malformed.
    #[error("bad loss list: {0}")]
    BadLossList(&'static str),
}

impl Packet {
    /// Decodes one datagram. Data payloads are slices of `datagram`.
    pub fn decode(datagram: Bytes) -> Result<Packet, PacketError> {
        need("header", HEADER_LEN, datagram.len())?;
        if datagram[0] & 0x80 == 0 {
            DataPacket::decode(datagram).map(Packet::Data)
        } else {
            ControlPacket::decode(datagram).map(Packet::Control)
        }
    }

    /// The destination socket id of a datagram without decoding the rest (for demultiplexing);
    /// `None` when it is shorter than a header.
    pub fn peek_destination(datagram: &[u8]) -> Option<u32> {
        datagram
            .get(12..16)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Appends the encoded packet to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Packet::Data(d) => d.encode(out),
            Packet::Control(c) => c.encode(out),
        }
    }

    /// The destination socket id.
    pub fn destination(&self) -> u32 {
        match self {
            Packet::Data(d) => d.destination,
            Packet::Control(c) => c.destination,
        }
    }
}

pub(crate) fn need(what: &'static str, need: usize, got: usize) -> Result<(), PacketError> {
    if got < need {
        Err(PacketError::Truncated { what, need, got })
    } else {
        Ok(())
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
