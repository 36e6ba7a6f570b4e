//! What every container writer shares: the tracks it is given, the samples it is fed and
//! the byte chunks it hands back for the file writer. Writers are sans-IO: they never touch
//! a file, so they are tested by collecting their chunks into a `Vec`.

use bytes::Bytes;
use proto::media::{Codec, TrackKind};

use crate::codecs::color::ColorInfo;

/// One track of a file, with what the container header needs to describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    /// Codec.
    pub codec: Codec,
    /// Decoder configuration record as proto carries it (may be empty).
    pub config: Bytes,
    /// Picture width in pixels (video; 0 when unknown).
    pub width: u32,
    /// Picture height in pixels (video; 0 when unknown).
    pub height: u32,
    /// Sample rate in Hz (audio; 0 when unknown).
    pub sample_rate: u32,
    /// Channel count (audio; 0 when unknown).
    pub channels: u16,
    /// Frames per second from the source metadata (video; 0.0 when unknown).
    pub frame_rate: f64,
    /// Colour description from the publisher's E-RTMP `colorInfo` (video).
    pub color: Option<ColorInfo>,
    /// ISO 639-2/T language from the publisher's track info map (`mdhd` language).
    pub language: Option<[u8; 3]>,
    /// Track name from the publisher's track info map (MP4 `udta` title).
    pub name: Option<String>,
}

impl TrackInfo {
    /// A track with only its codec and configuration known.
    pub fn new(codec: Codec, config: Bytes) -> Self {
        TrackInfo {
            codec,
            config,
            width: 0,
            height: 0,
            sample_rate: 0,
            channels: 0,
            frame_rate: 0.0,
            color: None,
            language: None,
            name: None,
        }
    }

    /// Audio or video.
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }
}

/// One media sample, its timestamps relative to the start of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Decode time in the file's timescale, >= 0 and non-decreasing per track.
    pub dts: u64,
    /// Presentation minus decode time.
    pub cts: i32,
    /// Random access point.
    pub keyframe: bool,
    /// The normalized sample (shared, never copied).
    pub data: Bytes,
}

/// A piece of output for the file writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Bytes appended at the end of the file.
    Append(Bytes),
    /// Bytes written over earlier bytes of the same length (sizes, durations).
    Patch {
        /// Absolute file offset.
        offset: u64,
        /// Replacement bytes.
        data: Bytes,
    },
}

/// A container writer. Tracks are addressed by their index in the slice given at creation.
pub trait Muxer: Send {
    /// The file header (FLV header and metadata, or ftyp+moov), written first.
    fn header(&mut self, out: &mut Vec<Chunk>);
    /// Adds one sample of `track`. Returns `true` when the chunks pushed complete a
    /// self-contained unit (an FLV tag, an MP4 fragment) worth flushing.
    fn push(&mut self, track: usize, sample: Sample, out: &mut Vec<Chunk>) -> bool;
    /// Writes whatever is pending and the final patches; the muxer is done afterwards.
    fn finish(&mut self, out: &mut Vec<Chunk>);
    /// File extension (`flv`, `mp4`).
    fn extension(&self) -> &'static str;
}

/// Total appended bytes of `chunks`.
pub fn appended_len(chunks: &[Chunk]) -> u64 {
    chunks
        .iter()
        .map(|c| match c {
            Chunk::Append(b) => b.len() as u64,
            Chunk::Patch { .. } => 0,
        })
        .sum()
}

/// Applies `chunks` to an in-memory file (tests and tools).
pub fn apply(file: &mut Vec<u8>, chunks: &[Chunk]) {
    for c in chunks {
        match c {
            Chunk::Append(b) => file.extend_from_slice(b),
            Chunk::Patch { offset, data } => {
                let start = *offset as usize;
                if let Some(dst) = file.get_mut(start..start + data.len()) {
                    dst.copy_from_slice(data);
                }
            }
        }
    }
}
