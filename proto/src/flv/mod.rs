//! FLV audio and video tag bodies (RTMP message types 8 and 9), legacy and Enhanced RTMP v2,
//! to and from the normalized media form of [`crate::media`].
//!
//! ```text
//!  tag body (Bytes) --> parse_video / parse_audio --> [MediaPacket] (payloads sliced, not copied)
//!  Codec, track, PacketKind --> write_video_header / write_audio_header --> header bytes
//!                                                 (the caller chains the payload after them)
//! ```
//!
//! Parsing follows the E-RTMP v2 bitstream description: `IsExHeader` / `SoundFormat 9`,
//! ModEx prefixes, Multitrack in its three forms, and the per-codec bodies. Nothing a
//! publisher sends is dropped silently. Choices where the spec leaves room:
//!
//! - An empty body yields nothing (the RTMP "audio silence" message; the video analogue).
//! - Video info/command frames (frame type 5) yield nothing.
//! - A ModEx TimestampOffsetNano yields a [`MediaPacket::TimestampOffset`] before each
//!   frame of the tag (a zero offset yields nothing).
//! - `MPEG2TSSequenceStart` for AV1 yields a [`MediaPacket::Config`] whose `config` is the
//!   AV1CodecConfigurationRecord translated from the AV1 video descriptor of the MPEG-2 TS
//!   mapping it carries (no configOBUs); for the other FourCCs the spec defines no body and
//!   the packet yields nothing.
//! - Audio `MultichannelConfig` yields a [`MediaPacket::ChannelConfig`] (checked first, so
//!   a malformed one is refused).
//! - A FourCC this parser does not know yields packets of [`Codec::Unknown`], their bodies
//!   untouched (see there), so it can be passed on to peers that know it.
//! - Legacy video CodecID 12 is HEVC laid out like AVC (CodecID 7), as several forks send.
//! - Frame type 4 (generated keyframe) counts as a keyframe; types 0, 6 and 7 are refused.
//! - On error nothing is appended to `out`, even when earlier tracks of a multitrack body
//!   were valid.

mod audio;
pub mod convert;
mod file;
mod file_reader;
mod reader;
mod video;
mod write;

use bytes::Bytes;
use thiserror::Error;

use crate::media::Codec;

pub use audio::parse_audio;
pub use file::{
    write_file_header, write_previous_tag_size, write_tag_header, FILE_HEADER_LEN, TAG_AUDIO,
    TAG_HEADER_LEN, TAG_SCRIPT, TAG_VIDEO,
};
pub use file_reader::{read_file, FileTag, FlvFile, FlvFileError};
pub use video::parse_video;
pub use write::{
    audio_fourcc, legacy_form, video_fourcc, write_audio_header, write_media_header,
    write_video_header,
};

/// The FourCC codes of Enhanced RTMP v2.
pub mod fourcc {
    /// H.264/AVC.
    pub const AVC: [u8; 4] = *b"avc1";
    /// H.265/HEVC.
    pub const HEVC: [u8; 4] = *b"hvc1";
    /// H.266/VVC.
    pub const VVC: [u8; 4] = *b"vvc1";
    /// AV1.
    pub const AV1: [u8; 4] = *b"av01";
    /// VP9.
    pub const VP9: [u8; 4] = *b"vp09";
    /// VP8.
    pub const VP8: [u8; 4] = *b"vp08";
    /// AAC.
    pub const AAC: [u8; 4] = *b"mp4a";
    /// Opus.
    pub const OPUS: [u8; 4] = *b"Opus";
    /// FLAC.
    pub const FLAC: [u8; 4] = *b"fLaC";
    /// MP3.
    pub const MP3: [u8; 4] = *b".mp3";
    /// AC-3.
    pub const AC3: [u8; 4] = *b"ac-3";
    /// E-AC-3.
    pub const EAC3: [u8; 4] = *b"ec-3";
}

/// One normalized item from an FLV audio or video tag body (a multitrack tag yields several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaPacket {
    /// Decoder configuration (AVC/HEVC/AV1/VVC/VP config record, AudioSpecificConfig,
    /// OpusHead, FLAC blocks...).
    Config {
        /// Track id (0 outside multitrack).
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// The configuration record, as carried.
        config: Bytes,
    },
    /// A coded frame in normalized form (see [`Codec`]): for AVC/HEVC/VVC the
    /// length-prefixed NALUs; for legacy codecs the body after the first byte.
    Frame {
        /// Track id (0 outside multitrack).
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// Composition time offset in milliseconds (0 for audio).
        cts: i32,
        /// Random access point (always true for audio).
        keyframe: bool,
        /// FLV disposable inter frame.
        disposable: bool,
        /// The frame.
        data: Bytes,
    },
    /// End of sequence for a track.
    EndOfSequence {
        /// Track id.
        track: u8,
        /// Codec of the track.
        codec: Codec,
    },
    /// E-RTMP video metadata packet (AMF payload, e.g. colorInfo), passed through.
    VideoMetadata {
        /// Track id.
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// The AMF0 values, as carried.
        data: Bytes,
    },
    /// E-RTMP audio MultichannelConfig: the speaker layout of a track.
    ChannelConfig {
        /// Track id.
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// The body as carried: AudioChannelOrder, channelCount, then the channel mapping
        /// (Custom) or the 32-bit channel flags (Native).
        config: Bytes,
    },
    /// A ModEx TimestampOffsetNano: the [`MediaPacket::Frame`] of the same track that
    /// follows is presented this many nanoseconds after its millisecond timestamp.
    TimestampOffset {
        /// Track id.
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// 1 to 999 999 (larger values are clamped to 999 999).
        nanos: u32,
    },
}

impl MediaPacket {
    /// The track the packet belongs to.
    pub fn track(&self) -> u8 {
        match self {
            MediaPacket::Config { track, .. }
            | MediaPacket::Frame { track, .. }
            | MediaPacket::EndOfSequence { track, .. }
            | MediaPacket::VideoMetadata { track, .. }
            | MediaPacket::ChannelConfig { track, .. }
            | MediaPacket::TimestampOffset { track, .. } => *track,
        }
    }

    /// The codec of the packet's track.
    pub fn codec(&self) -> Codec {
        match self {
            MediaPacket::Config { codec, .. }
            | MediaPacket::Frame { codec, .. }
            | MediaPacket::EndOfSequence { codec, .. }
            | MediaPacket::VideoMetadata { codec, .. }
            | MediaPacket::ChannelConfig { codec, .. }
            | MediaPacket::TimestampOffset { codec, .. } => *codec,
        }
    }
}

/// What kind of packet a header is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// A decoder configuration (sequence start / sequence header).
    Config,
    /// A coded frame.
    Frame {
        /// Random access point.
        keyframe: bool,
        /// Disposable inter frame.
        disposable: bool,
        /// Composition time offset in milliseconds (video only; clamped to 24 bits).
        cts: i32,
    },
    /// End of sequence.
    EndOfSequence,
    /// E-RTMP video Metadata (the payload is its AMF values, e.g. `colorInfo`); always
    /// written in the E-RTMP form. Audio codecs write nothing for it.
    Metadata,
    /// E-RTMP audio MultichannelConfig (the payload is its body); always written in the
    /// E-RTMP form. Video codecs write nothing for it.
    ChannelConfig,
}

/// Why a tag body was refused. Message-scoped: the caller drops the message (and may
/// decide to close the connection).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlvError {
    /// The body ends before a field it announces.
    #[error("FLV tag body truncated: need {need} more bytes, have {have}")]
    Truncated {
        /// Bytes the next field needs.
        need: usize,
        /// Bytes left in the body (or in the multitrack track).
        have: usize,
    },
    /// An E-RTMP FourCC that is not one of this media kind.
    #[error("unknown FourCC {}", show_fourcc(.0))]
    UnknownFourCc([u8; 4]),
    /// An E-RTMP packet type, or a legacy AVC/AAC packet type, that is reserved.
    #[error("unknown packet type {0}")]
    UnknownPacketType(u8),
    /// A legacy video CodecID that is reserved.
    #[error("unknown video codec id {0}")]
    UnknownCodecId(u8),
    /// A reserved video frame type (0, 6 or 7).
    #[error("unknown video frame type {0}")]
    UnknownFrameType(u8),
    /// A reserved AvMultitrackType.
    #[error("unknown multitrack type {0}")]
    UnknownMultitrackType(u8),
    /// The packet type inside a Multitrack header is Multitrack or ModEx again.
    #[error("packet type {0} inside a multitrack header")]
    NestedMultitrack(u8),
    /// An AV1 video descriptor (MPEG2TSSequenceStart) whose marker/version byte is not
    /// 0x81.
    #[error("AV1 video descriptor with marker/version byte {0:#04x}, need 0x81")]
    BadAv1Descriptor(u8),
    /// A TimestampOffsetNano ModEx whose data is shorter than its 3-byte value.
    #[error("ModEx TimestampOffsetNano of {len} bytes, need 3")]
    ModExTooShort {
        /// Bytes of ModEx data present.
        len: usize,
    },
}

/// The codec of a FourCC in a video (`video`) or audio message: [`Codec::Unknown`] for a
/// FourCC of neither kind; one of the other kind is a mistake, not a new codec.
fn codec_of_fourcc(fourcc: [u8; 4], video: bool) -> Result<Codec, FlvError> {
    let (ours, theirs) = if video {
        (video::codec_of(fourcc), audio::codec_of(fourcc))
    } else {
        (audio::codec_of(fourcc), video::codec_of(fourcc))
    };
    match ours {
        Ok(c) => Ok(c),
        Err(e) if theirs.is_ok() => Err(e),
        Err(_) => Ok(Codec::Unknown { video, fourcc }),
    }
}

fn show_fourcc(code: &[u8; 4]) -> String {
    code.iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}
