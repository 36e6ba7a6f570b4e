//! The codecs the server carries, independent of the container they came in.

use serde::{Deserialize, Serialize};

/// Whether a track carries audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrackKind {
    /// Video track.
    Video,
    /// Audio track.
    Audio,
}

/// A codec, with its media in the form an MP4 sample has (see FORMAT.md).
///
/// `LegacyVideo` and `LegacyAudio` carry FLV codecs that have no normalized form
/// (Sorenson H.263, VP6, screen video, PCM, ADPCM, Nellymoser, G.711, Speex): their frames are
/// the FLV tag body after the first byte, passed through untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Codec {
    /// H.264/AVC, length-prefixed NAL units; config = AVCDecoderConfigurationRecord.
    H264,
    /// H.265/HEVC, length-prefixed NAL units; config = HEVCDecoderConfigurationRecord.
    H265,
    /// H.266/VVC, length-prefixed NAL units; config = VvcDecoderConfigurationRecord.
    H266,
    /// AV1, low-overhead OBUs; config = AV1CodecConfigurationRecord.
    Av1,
    /// VP9 frames; config = VPCodecConfigurationRecord.
    Vp9,
    /// VP8 frames; config = VPCodecConfigurationRecord.
    Vp8,
    /// AAC raw access units; config = AudioSpecificConfig.
    Aac,
    /// Opus packets; config = OpusHead (may be empty).
    Opus,
    /// FLAC frames; config = FLAC metadata blocks (fLaC streaminfo).
    Flac,
    /// MP3 frames; no config.
    Mp3,
    /// AC-3 frames; config = dac3 box payload (may be empty).
    Ac3,
    /// E-AC-3 frames; config = dec3 box payload (may be empty).
    Eac3,
    /// A legacy FLV video codec by its FLV CodecID (2 to 6).
    LegacyVideo {
        /// FLV VideoTagHeader CodecID.
        codec_id: u8,
    },
    /// A legacy FLV audio codec; `header` is the whole first byte of the FLV audio tag
    /// (SoundFormat, SoundRate, SoundSize, SoundType) so it can be written back as-is.
    LegacyAudio {
        /// The FLV AudioTagHeader byte.
        header: u8,
    },
    /// An Enhanced RTMP FourCC this server does not know, passed through untouched:
    /// config = the SequenceStart body after the FourCC; frame = the E-RTMP packet type
    /// (1 CodedFrames or 3 CodedFramesX) then the body after the FourCC.
    Unknown {
        /// Whether it came in a video message.
        video: bool,
        /// The FourCC.
        fourcc: [u8; 4],
    },
}

impl Codec {
    /// Whether this codec is audio or video.
    pub fn kind(self) -> TrackKind {
        match self {
            Codec::H264
            | Codec::H265
            | Codec::H266
            | Codec::Av1
            | Codec::Vp9
            | Codec::Vp8
            | Codec::LegacyVideo { .. } => TrackKind::Video,
            Codec::Aac
            | Codec::Opus
            | Codec::Flac
            | Codec::Mp3
            | Codec::Ac3
            | Codec::Eac3
            | Codec::LegacyAudio { .. } => TrackKind::Audio,
            Codec::Unknown { video: true, .. } => TrackKind::Video,
            Codec::Unknown { video: false, .. } => TrackKind::Audio,
        }
    }

    /// A short lowercase name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::H266 => "h266",
            Codec::Av1 => "av1",
            Codec::Vp9 => "vp9",
            Codec::Vp8 => "vp8",
            Codec::Aac => "aac",
            Codec::Opus => "opus",
            Codec::Flac => "flac",
            Codec::Mp3 => "mp3",
            Codec::Ac3 => "ac3",
            Codec::Eac3 => "eac3",
            Codec::LegacyVideo { .. } => "flv-video",
            Codec::LegacyAudio { .. } => "flv-audio",
            Codec::Unknown { .. } => "fourcc",
        }
    }
}
