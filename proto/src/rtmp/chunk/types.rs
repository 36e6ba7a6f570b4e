//! Limits, messages, errors and constants of the chunk stream.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The timestamp field value that announces an extended timestamp.
pub const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;
/// Chunk size every connection starts with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size the spec allows (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Smallest chunk stream id (0 and 1 are basic-header escapes; 2 is for control).
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id the 3-byte basic header can carry.
pub const MAX_CSID: u32 = 65599;

/// Bounds enforced by [`ChunkDecoder`] on what a peer can make it hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest chunk size the peer may set. Default and maximum: 0x7FFF_FFFF.
    pub max_chunk_size: u32,
    /// Largest message length accepted. Default 16 MiB.
    pub max_message_size: u32,
    /// Largest command (types 17, 20) or protocol control message (types 1 to 6)
    /// accepted, checked at its first chunk before anything is buffered. Default 64 KiB:
    /// a command has no business being megabytes long.
    pub max_command_size: u32,
    /// Most chunk streams with state at once. Default 64.
    pub max_chunk_streams: usize,
    /// Most bytes held in partial messages across all chunk streams. Default 32 MiB.
    pub max_buffered_bytes: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_chunk_size: MAX_CHUNK_SIZE,
            max_message_size: 16 << 20,
            max_command_size: 64 << 10,
            max_chunk_streams: 64,
            max_buffered_bytes: 32 << 20,
        }
    }
}

/// Inbound chunk header state of one chunk stream, carried across a player handoff so the
/// hub can decode FMT 1-3 chunks the client sends afterwards
/// ([`super::ChunkDecoder::export_state`], [`super::ChunkDecoder::from_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkStreamState {
    /// Chunk stream id.
    pub csid: u32,
    /// Timestamp of the last message (absolute).
    pub timestamp: u32,
    /// Last timestamp delta (for FMT 3 after FMT 1/2).
    pub delta: u32,
    /// Last message length.
    pub length: u32,
    /// Last message type id.
    pub type_id: u8,
    /// Last message stream id.
    pub stream_id: u32,
    /// Whether the last header used an extended timestamp.
    pub extended: bool,
}

/// One reassembled RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpMessage {
    /// Chunk stream it arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds (wrapping at 2^32).
    pub timestamp: u32,
    /// Message type id (see `message::types`).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// Message body.
    pub payload: Bytes,
}

/// Why a chunk stream could not be decoded. All of these are connection-scoped: the
/// decoder's state is unreliable afterwards and the connection must be closed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkError {
    /// A chunk size of 0, with bit 31 set, or above the configured maximum.
    #[error("invalid chunk size {got}")]
    ChunkSizeInvalid {
        /// The requested size.
        got: u32,
    },
    /// A message longer than the configured maximum.
    #[error("message of {got} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// Declared length.
        got: u32,
        /// The configured limit.
        max: u32,
    },
    /// A new chunk stream beyond the configured number.
    #[error("more than {max} chunk streams")]
    TooManyChunkStreams {
        /// The configured limit.
        max: usize,
    },
    /// Partial messages would hold more bytes than the configured budget.
    #[error("partial messages exceed the buffer budget of {max} bytes")]
    BufferBudgetExceeded {
        /// The configured limit.
        max: usize,
    },
    /// A FMT 1, 2 or 3 chunk on a chunk stream that never had a FMT 0 header.
    #[error("chunk stream {csid} used before any full header")]
    UnknownChunkStream {
        /// The chunk stream id.
        csid: u32,
    },
    /// The extended timestamp of a FMT 3 continuation chunk differs from its header's.
    #[error("chunk stream {csid}: FMT 3 extended timestamp {got:#x}, header had {expected:#x}")]
    BadFmt3Timestamp {
        /// The chunk stream id.
        csid: u32,
        /// Value from the message header.
        expected: u32,
        /// Value in the continuation chunk.
        got: u32,
    },
    /// A FMT 0 or 1 header changed the message length while a message was incomplete.
    #[error("chunk stream {csid}: message length changed from {was} to {got} mid-message")]
    LengthChangedMidMessage {
        /// The chunk stream id.
        csid: u32,
        /// Length of the incomplete message.
        was: u32,
        /// Length in the new header.
        got: u32,
    },
    /// A FMT 0, 1 or 2 header arrived while a message was incomplete on that chunk stream.
    #[error("chunk stream {csid}: FMT {fmt} header in the middle of a message")]
    HeaderMidMessage {
        /// The chunk stream id.
        csid: u32,
        /// The header format.
        fmt: u8,
    },
    /// A SetChunkSize or Abort message whose body is too short.
    #[error("protocol control message type {type_id} with a {len}-byte body")]
    BadControlBody {
        /// Message type id.
        type_id: u8,
        /// Body length.
        len: usize,
    },
}
