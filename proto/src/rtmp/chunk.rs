//! The RTMP chunk stream (RTMP 1.0 section 5.3): splitting messages into chunks and
//! reassembling them, with per-chunk-stream header compression.
//!
//! Timestamp rules shared by [`ChunkDecoder`] and [`ChunkEncoder`]:
//! - FMT 0 carries an absolute timestamp, FMT 1 and 2 a delta; a FMT 3 chunk that starts a
//!   new message reuses the last timestamp *field* of its chunk stream as the delta. After
//!   a FMT 0 header that field is the absolute timestamp, which is what FFmpeg's writer
//!   assumes when it emits FMT 3 for a message following a FMT 0 one.
//! - A field of 0xFFFFFF means a 4-byte extended timestamp follows the header. Every FMT 3
//!   chunk on a chunk stream whose last header had one carries the 4 bytes again: for a
//!   continuation chunk they must repeat the header's value, and for a FMT 3 chunk that
//!   starts a new message they are its delta (FFmpeg and librtmp behave this way).

mod decoder;
mod encoder;
mod types;

pub use decoder::ChunkDecoder;
pub use encoder::{
    rewrite_fmt0_stream_id, write_continuation_header, write_fmt0, write_fmt0_header,
    write_fmt0_parts, ChunkEncoder,
};
pub use types::{
    ChunkError, ChunkLimits, ChunkStreamState, RtmpMessage, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP,
    MAX_CHUNK_SIZE, MAX_CSID, MIN_CSID,
};
