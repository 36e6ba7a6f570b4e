//! ACK bodies (draft 3.2.4) and the compressed loss list of NAKs (3.2.5, appendix A).

use bytes::{BufMut, BytesMut};

use super::{be32, PacketError};
use crate::srt::seq::SeqNo;

/// What a full or small ACK carries beyond the acknowledged sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AckInfo {
    /// Receiver's RTT estimate, microseconds.
    pub rtt_us: u32,
    /// Receiver's RTT variance, microseconds.
    pub rtt_var_us: u32,
    /// Free space in the receiver's buffer, packets.
    pub available_buffer: u32,
    /// Full ACKs only: packets/s received, estimated link capacity (packets/s) and bytes/s
    /// received.
    pub rates: Option<(u32, u32, u32)>,
}

/// An ACK: every packet before `ack_seq` has arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The full ACK's number, echoed by the ACKACK; 0 for light and small ACKs.
    pub number: u32,
    /// First sequence number not yet received.
    pub ack_seq: SeqNo,
    /// `None` for a light ACK.
    pub info: Option<AckInfo>,
}

impl Ack {
    pub(super) fn decode(number: u32, cif: &[u8]) -> Result<Self, PacketError> {
        super::need("ACK", 4, cif.len())?;
        let ack_seq = SeqNo::new(be32(cif, 0));
        let info = if cif.len() >= 16 {
            let rates = (cif.len() >= 28).then(|| (be32(cif, 16), be32(cif, 20), be32(cif, 24)));
            Some(AckInfo {
                rtt_us: be32(cif, 4),
                rtt_var_us: be32(cif, 8),
                available_buffer: be32(cif, 12),
                rates,
            })
        } else {
            None
        };
        Ok(Ack {
            number,
            ack_seq,
            info,
        })
    }

    pub(super) fn encode_cif(&self, out: &mut BytesMut) {
        out.put_u32(self.ack_seq.get());
        if let Some(i) = &self.info {
            out.put_u32(i.rtt_us);
            out.put_u32(i.rtt_var_us);
            out.put_u32(i.available_buffer);
            if let Some((a, b, c)) = i.rates {
                out.put_u32(a);
                out.put_u32(b);
                out.put_u32(c);
            }
        }
    }
}

/// Lost sequence numbers as inclusive ranges, in the order the NAK lists them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LossList(pub Vec<(SeqNo, SeqNo)>);

impl LossList {
    /// Most ranges read from one NAK: a 1500-byte datagram holds at most 371 words.
    pub const MAX_RANGES: usize = 400;

    pub(super) fn decode(cif: &[u8]) -> Result<Self, PacketError> {
        let mut out = Vec::new();
        let mut words = cif.chunks_exact(4).map(|w| be32(w, 0));
        while let Some(w) = words.next() {
            if out.len() >= Self::MAX_RANGES {
                return Err(PacketError::BadLossList("too many ranges"));
            }
            if w & 0x8000_0000 != 0 {
                let from = SeqNo::new(w);
                let to = words
                    .next()
                    .ok_or(PacketError::BadLossList("range without its end"))?;
                if to & 0x8000_0000 != 0 {
                    return Err(PacketError::BadLossList("range end has the range bit"));
                }
                let to = SeqNo::new(to);
                if to < from {
                    return Err(PacketError::BadLossList("range ends before it starts"));
                }
                out.push((from, to));
            } else {
                out.push((SeqNo::new(w), SeqNo::new(w)));
            }
        }
        if out.is_empty() {
            return Err(PacketError::BadLossList("empty"));
        }
        Ok(LossList(out))
    }

    pub(super) fn encode(&self, out: &mut BytesMut) {
        for &(from, to) in &self.0 {
            if from == to {
                out.put_u32(from.get());
            } else {
                out.put_u32(from.get() | 0x8000_0000);
                out.put_u32(to.get());
            }
        }
    }

    /// Number of sequence numbers listed.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|&(a, b)| b.diff(a) as u64 + 1).sum()
    }
}
