//! Chunk reassembly: bytes in, whole messages out.

use std::collections::BTreeMap;

use bytes::{Buf, BytesMut};

use super::{
    ChunkError, ChunkLimits, ChunkStreamState, RtmpMessage, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP,
    MAX_CHUNK_SIZE,
};
use crate::rtmp::message::types;

/// Header state of one chunk stream, plus its incomplete message if any.
#[derive(Debug, Clone, Default)]
struct Stream {
    /// Absolute timestamp of the last message.
    timestamp: u32,
    /// Last timestamp field (absolute after FMT 0, delta after FMT 1/2).
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// Whether the last header carried an extended timestamp.
    extended: bool,
    partial: Option<BytesMut>,
}

/// Reassembles RTMP messages from chunks, one message per [`ChunkDecoder::decode`] call.
///
/// Messages that fit in one chunk are sliced out of the input without copying; longer
/// ones are gathered per chunk stream, counted against
/// [`ChunkLimits::max_buffered_bytes`].
#[derive(Debug)]
pub struct ChunkDecoder {
    limits: ChunkLimits,
    chunk_size: u32,
    streams: BTreeMap<u32, Stream>,
    buffered: usize,
    consumed: u64,
}

fn be24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl ChunkDecoder {
    /// A decoder at the start of a connection (chunk size 128, no chunk streams).
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: BTreeMap::new(),
            buffered: 0,
            consumed: 0,
        }
    }

    /// A decoder that continues a connection another process started, from the state
    /// that process exported with [`ChunkDecoder::export_state`]. An invalid `chunk_size`
    /// falls back to 128; streams beyond `limits.max_chunk_streams` are dropped.
    pub fn from_state(limits: ChunkLimits, chunk_size: u32, streams: &[ChunkStreamState]) -> Self {
        let mut d = ChunkDecoder::new(limits);
        if d.set_chunk_size(chunk_size).is_err() {
            d.chunk_size = DEFAULT_CHUNK_SIZE;
        }
        for s in streams.iter().take(d.limits.max_chunk_streams) {
            d.streams.insert(
                s.csid,
                Stream {
                    timestamp: s.timestamp,
                    delta: s.delta,
                    length: s.length,
                    type_id: s.type_id,
                    stream_id: s.stream_id,
                    extended: s.extended,
                    partial: None,
                },
            );
        }
        d
    }

    /// The header state of every chunk stream, ordered by csid. Incomplete messages are
    /// not part of it: export between messages, when [`ChunkDecoder::has_partial`] is
    /// false, or the chunks already consumed for them are lost.
    pub fn export_state(&self) -> Vec<ChunkStreamState> {
        self.streams
            .iter()
            .map(|(&csid, s)| ChunkStreamState {
                csid,
                timestamp: s.timestamp,
                delta: s.delta,
                length: s.length,
                type_id: s.type_id,
                stream_id: s.stream_id,
                extended: s.extended,
            })
            .collect()
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Sets the peer's chunk size (1..=`max_chunk_size`, bit 31 clear).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE || size > self.limits.max_chunk_size {
            return Err(ChunkError::ChunkSizeInvalid { got: size });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Total input bytes consumed so far, for window acknowledgements.
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    /// Whether some chunk stream holds an incomplete message.
    pub fn has_partial(&self) -> bool {
        self.buffered > 0 || self.streams.values().any(|s| s.partial.is_some())
    }

    /// Bytes currently held in incomplete messages.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Takes one whole message off `buf` (Ok(None) = need more bytes). Applies SetChunkSize
    /// (type 1) and Abort (type 2) itself as they are decoded, and still returns them.
    ///
    /// Only whole chunks are consumed, so `buf` may be refilled and the call repeated.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RtmpMessage>, ChunkError> {
        loop {
            match self.decode_chunk(buf)? {
                Step::NeedMore => return Ok(None),
                Step::Partial => {}
                Step::Message(msg) => {
                    self.apply_control(&msg)?;
                    return Ok(Some(msg));
                }
            }
        }
    }

    fn apply_control(&mut self, msg: &RtmpMessage) -> Result<(), ChunkError> {
        if msg.type_id != types::SET_CHUNK_SIZE && msg.type_id != types::ABORT {
            return Ok(());
        }
        let Some(body) = msg.payload.get(..4) else {
            return Err(ChunkError::BadControlBody {
                type_id: msg.type_id,
                len: msg.payload.len(),
            });
        };
        let value = be32(body);
        if msg.type_id == types::SET_CHUNK_SIZE {
            self.set_chunk_size(value)
        } else {
            if let Some(partial) = self.streams.get_mut(&value).and_then(|s| s.partial.take()) {
                self.buffered -= partial.len();
            }
            Ok(())
        }
    }

    /// Decodes one chunk if it is entirely in `buf`, consuming it.
    fn decode_chunk(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        let b = &buf[..];
        let Some(&first) = b.first() else {
            return Ok(Step::NeedMore);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3F {
            0 => match b.get(1) {
                Some(&x) => (64 + u32::from(x), 2),
                None => return Ok(Step::NeedMore),
            },
            1 => match b.get(1..3) {
                Some(x) => (64 + u32::from(x[0]) + (u32::from(x[1]) << 8), 3),
                None => return Ok(Step::NeedMore),
            },
            c => (u32::from(c), 1),
        };
        let mh_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = b.get(pos..pos + mh_len) else {
            return Ok(Step::NeedMore);
        };
        pos += mh_len;

        let prev = match self.streams.get(&csid) {
            Some(s) => Some(s),
            None if fmt != 0 => return Err(ChunkError::UnknownChunkStream { csid }),
            None if self.streams.len() >= self.limits.max_chunk_streams => {
                return Err(ChunkError::TooManyChunkStreams {
                    max: self.limits.max_chunk_streams,
                })
            }
            None => None,
        };
        let field = (fmt < 3).then(|| be24(mh));
        let extended = match field {
            Some(f) => f == EXTENDED_TIMESTAMP,
            None => prev.is_some_and(|s| s.extended),
        };
        let ext_value = if extended {
            let Some(x) = b.get(pos..pos + 4) else {
                return Ok(Step::NeedMore);
            };
            pos += 4;
            Some(be32(x))
        } else {
            None
        };
        let length = (fmt <= 1).then(|| be24(&mh[3..]));

        if let Some(s) = prev.filter(|s| s.partial.is_some()) {
            if fmt != 3 {
                return Err(match length {
                    Some(got) if got != s.length => ChunkError::LengthChangedMidMessage {
                        csid,
                        was: s.length,
                        got,
                    },
                    _ => ChunkError::HeaderMidMessage { csid, fmt },
                });
            }
            if let Some(got) = ext_value.filter(|&v| v != s.delta) {
                return Err(ChunkError::BadFmt3Timestamp {
                    csid,
                    expected: s.delta,
                    got,
                });
            }
            let have = s.partial.as_ref().map_or(0, |p| p.len());
            let piece = (s.length as usize)
                .saturating_sub(have)
                .min(self.chunk_size as usize);
            if b.len() < pos + piece {
                return Ok(Step::NeedMore);
            }
            if self.buffered + piece > self.limits.max_buffered_bytes {
                return Err(ChunkError::BufferBudgetExceeded {
                    max: self.limits.max_buffered_bytes,
                });
            }
            // Both lookups succeeded just above; the else arms only keep this panic-free.
            let Some(s) = self.streams.get_mut(&csid) else {
                return Err(ChunkError::UnknownChunkStream { csid });
            };
            let Some(partial) = s.partial.as_mut() else {
                return Err(ChunkError::UnknownChunkStream { csid });
            };
            partial.extend_from_slice(&b[pos..pos + piece]);
            buf.advance(pos + piece);
            self.consumed += (pos + piece) as u64;
            self.buffered += piece;
            if partial.len() < s.length as usize {
                return Ok(Step::Partial);
            }
            let payload = std::mem::take(partial).freeze();
            s.partial = None;
            self.buffered -= payload.len();
            return Ok(Step::Message(RtmpMessage {
                csid,
                timestamp: s.timestamp,
                type_id: s.type_id,
                stream_id: s.stream_id,
                payload,
            }));
        }

        // A chunk that starts a new message.
        let base = prev.cloned().unwrap_or_default();
        let value = ext_value.or(field).unwrap_or(base.delta);
        let (timestamp, delta) = if fmt == 0 {
            (value, value)
        } else {
            (base.timestamp.wrapping_add(value), value)
        };
        let length = length.unwrap_or(base.length);
        let type_id = if fmt <= 1 { mh[6] } else { base.type_id };
        let stream_id = if fmt == 0 {
            u32::from_le_bytes([mh[7], mh[8], mh[9], mh[10]])
        } else {
            base.stream_id
        };
        let max = match type_id {
            types::COMMAND_AMF0
            | types::COMMAND_AMF3
            | types::SET_CHUNK_SIZE..=types::SET_PEER_BANDWIDTH => self
                .limits
                .max_command_size
                .min(self.limits.max_message_size),
            _ => self.limits.max_message_size,
        };
        if length > max {
            return Err(ChunkError::MessageTooLarge { got: length, max });
        }
        let piece = (length as usize).min(self.chunk_size as usize);
        if b.len() < pos + piece {
            return Ok(Step::NeedMore);
        }
        let whole = piece == length as usize;
        if !whole && self.buffered + piece > self.limits.max_buffered_bytes {
            return Err(ChunkError::BufferBudgetExceeded {
                max: self.limits.max_buffered_bytes,
            });
        }
        let s = self.streams.entry(csid).or_default();
        s.timestamp = timestamp;
        s.delta = delta;
        s.length = length;
        s.type_id = type_id;
        s.stream_id = stream_id;
        s.extended = extended;
        buf.advance(pos);
        let data = buf.split_to(piece);
        self.consumed += (pos + piece) as u64;
        if whole {
            return Ok(Step::Message(RtmpMessage {
                csid,
                timestamp,
                type_id,
                stream_id,
                payload: data.freeze(),
            }));
        }
        self.buffered += piece;
        s.partial = Some(data);
        Ok(Step::Partial)
    }
}

enum Step {
    NeedMore,
    Partial,
    Message(RtmpMessage),
}
