//! Tag-body headers for sending normalized media over RTMP/FLV. The caller chains the
//! payload (config record or frame, unchanged) after the header.

use bytes::{BufMut, Bytes, BytesMut};

use super::{fourcc, PacketKind};
use crate::media::{Codec, TrackKind};

/// The E-RTMP FourCC of a video codec (`None` for audio and legacy codecs).
pub fn video_fourcc(codec: Codec) -> Option<[u8; 4]> {
    Some(match codec {
        Codec::H264 => fourcc::AVC,
        Codec::H265 => fourcc::HEVC,
        Codec::H266 => fourcc::VVC,
        Codec::Av1 => fourcc::AV1,
        Codec::Vp9 => fourcc::VP9,
        Codec::Vp8 => fourcc::VP8,
        Codec::Unknown {
            video: true,
            fourcc,
        } => fourcc,
        _ => return None,
    })
}

/// The E-RTMP FourCC of an audio codec (`None` for video and legacy codecs).
pub fn audio_fourcc(codec: Codec) -> Option<[u8; 4]> {
    Some(match codec {
        Codec::Aac => fourcc::AAC,
        Codec::Opus => fourcc::OPUS,
        Codec::Flac => fourcc::FLAC,
        Codec::Mp3 => fourcc::MP3,
        Codec::Ac3 => fourcc::AC3,
        Codec::Eac3 => fourcc::EAC3,
        Codec::Unknown {
            video: false,
            fourcc,
        } => fourcc,
        _ => return None,
    })
}

/// Whether a message of `codec` on `track` of `kind` (without a nanosecond offset) goes
/// out with a legacy FLV codec tag rather than an E-RTMP FourCC header: H.264 on the
/// default track (but its video metadata), AAC configurations and frames and MP3 frames
/// on the default track, and the legacy FLV codecs.
pub fn legacy_form(codec: Codec, track: u8, kind: PacketKind) -> bool {
    match (codec, track, kind) {
        (Codec::LegacyVideo { .. } | Codec::LegacyAudio { .. }, _, _) => true,
        (Codec::H264, 0, PacketKind::Metadata | PacketKind::ChannelConfig) => false,
        (Codec::H264, 0, _) => true,
        (Codec::Aac, 0, PacketKind::Config | PacketKind::Frame { .. }) => true,
        (Codec::Mp3, 0, PacketKind::Frame { .. }) => true,
        _ => false,
    }
}

const MODEX: u8 = 7;
const VIDEO_MULTITRACK: u8 = 6;
const AUDIO_MULTITRACK: u8 = 5;

fn video_frame_type(kind: PacketKind) -> u8 {
    match kind {
        PacketKind::Frame { keyframe: true, .. } => 1,
        PacketKind::Frame {
            disposable: true, ..
        } => 3,
        PacketKind::Frame { .. } => 2,
        // Metadata as a command frame, as FFmpeg writes it (the spec leaves it open).
        PacketKind::Metadata => 5,
        // Sequence start and end are written as keyframes, as encoders do.
        PacketKind::Config | PacketKind::EndOfSequence | PacketKind::ChannelConfig => 1,
    }
}

fn put_si24(cts: i32, out: &mut BytesMut) {
    let v = cts.clamp(-0x80_0000, 0x7f_ffff);
    out.put_slice(&v.to_be_bytes()[1..]);
}

/// Writes an E-RTMP header: `first` is the first byte without its packet type nibble
/// (`0x80|FrameType<<4` for video, `0x90` for audio), then an optional ModEx
/// TimestampOffsetNano, then the packet type, FourCC and (for a track other than 0) a
/// Multitrack OneTrack header.
fn ex_header(
    first: u8,
    packet_type: u8,
    code: [u8; 4],
    track: u8,
    multitrack: u8,
    nanos: u32,
    out: &mut BytesMut,
) {
    let outer = if track == 0 { packet_type } else { multitrack };
    if nanos > 0 {
        out.put_u8(first | MODEX);
        // modExDataSize - 1, then the 24-bit offset; the next byte is
        // ModExType (0, TimestampOffsetNano) << 4 | the packet type.
        out.put_u8(2);
        out.put_slice(&nanos.min(0xff_ffff).to_be_bytes()[1..]);
        out.put_u8(outer);
    } else {
        out.put_u8(first | outer);
    }
    if track == 0 {
        out.put_slice(&code);
    } else {
        // OneTrack << 4 | packet type, FourCC, track id.
        out.put_u8(packet_type);
        out.put_slice(&code);
        out.put_u8(track);
    }
}

/// Appends the tag-body header to put before the payload when sending `codec` on `track`:
///
/// - H.264 on track 0: legacy form, `FrameType|7`, AVCPacketType, SI24 cts (5 bytes).
/// - H.265, H.266, AV1, VP9, VP8 (and H.264 on another track): Enhanced RTMP v2 form,
///   `IsExHeader|FrameType|PacketType` then the FourCC; coded frames of H.264/H.265/H.266
///   use CodedFrames with the SI24 cts when `cts != 0`, CodedFramesX otherwise; AV1/VP9/VP8
///   use CodedFrames with no cts.
/// - Any track other than 0: a Multitrack OneTrack header (`PacketType 6`, then
///   `OneTrack<<4|PacketType`, FourCC, track id).
/// - `LegacyVideo`: the single `FrameType|CodecID` byte, whatever the kind (these codecs have
///   no configuration nor end of sequence), and always on the default track.
///
/// Audio codecs write nothing. See [`write_media_header`] for nanosecond offsets and
/// unknown FourCCs.
pub fn write_video_header(codec: Codec, track: u8, kind: PacketKind, out: &mut BytesMut) {
    video_header(codec, track, kind, 0, None, out);
}

fn video_header(
    codec: Codec,
    track: u8,
    kind: PacketKind,
    nanos: u32,
    raw_type: Option<u8>,
    out: &mut BytesMut,
) {
    let frame_type = video_frame_type(kind);
    if let Codec::LegacyVideo { codec_id } = codec {
        out.put_u8(frame_type << 4 | (codec_id & 0x0f));
        return;
    }
    let Some(code) = video_fourcc(codec) else {
        return;
    };
    let cts_field = super::video::has_cts(codec);
    if codec == Codec::H264 && nanos == 0 && legacy_form(codec, track, kind) {
        let (packet_type, cts) = match kind {
            PacketKind::Frame { cts, .. } => (1, cts),
            PacketKind::EndOfSequence => (2, 0),
            _ => (0, 0),
        };
        out.put_u8(frame_type << 4 | 7);
        out.put_u8(packet_type);
        put_si24(cts, out);
        return;
    }
    let (packet_type, cts) = match kind {
        PacketKind::Config => (0, None),
        PacketKind::Frame { .. } if raw_type.is_some() => (raw_type.unwrap_or(1), None),
        PacketKind::Frame { cts, .. } if cts_field && cts != 0 => (1, Some(cts)),
        PacketKind::Frame { .. } if cts_field => (3, None),
        PacketKind::Frame { .. } => (1, None),
        PacketKind::EndOfSequence => (2, None),
        PacketKind::Metadata => (4, None),
        PacketKind::ChannelConfig => return,
    };
    let first = 0x80 | frame_type << 4;
    ex_header(
        first,
        packet_type,
        code,
        track,
        VIDEO_MULTITRACK,
        nanos,
        out,
    );
    if let Some(cts) = cts {
        put_si24(cts, out);
    }
}

/// Appends the tag-body header to put before the payload when sending `codec` on `track`:
///
/// - AAC on track 0: legacy `0xAF` then AACPacketType 0 (config) or 1 (frame).
/// - MP3 frames on track 0: legacy `0x2F` (MP3, 44 kHz, 16-bit, stereo: decoders read the
///   real values from the frame headers).
/// - `LegacyAudio`: its header byte, whatever the kind and track.
/// - Opus, FLAC, AC-3, E-AC-3, an AAC end of sequence, an MP3 config or end of sequence,
///   a MultichannelConfig, and AAC/MP3 on another track: Enhanced RTMP v2 form,
///   `0x90|AudioPacketType` then the FourCC, or for a track other than 0 a Multitrack
///   OneTrack header (`0x95`, `OneTrack<<4|PacketType`, FourCC, track id).
///
/// Audio has no composition offset: a `cts` in `kind` is ignored. Video codecs write
/// nothing. See [`write_media_header`] for nanosecond offsets and unknown FourCCs.
pub fn write_audio_header(codec: Codec, track: u8, kind: PacketKind, out: &mut BytesMut) {
    audio_header(codec, track, kind, 0, None, out);
}

fn audio_header(
    codec: Codec,
    track: u8,
    kind: PacketKind,
    nanos: u32,
    raw_type: Option<u8>,
    out: &mut BytesMut,
) {
    if let Codec::LegacyAudio { header } = codec {
        out.put_u8(header);
        return;
    }
    if nanos == 0 && legacy_form(codec, track, kind) {
        match (codec, kind) {
            (Codec::Aac, PacketKind::Config) => return out.put_slice(&[0xaf, 0]),
            (Codec::Aac, _) => return out.put_slice(&[0xaf, 1]),
            (Codec::Mp3, _) => return out.put_u8(0x2f),
            _ => {}
        }
    }
    let Some(code) = audio_fourcc(codec) else {
        return;
    };
    let packet_type = match kind {
        PacketKind::Config => 0,
        PacketKind::Frame { .. } => raw_type.unwrap_or(1),
        PacketKind::EndOfSequence => 2,
        PacketKind::ChannelConfig => 4,
        PacketKind::Metadata => return,
    };
    ex_header(0x90, packet_type, code, track, AUDIO_MULTITRACK, nanos, out);
}

/// Appends the tag-body header for `payload` of `codec` on `track` and returns the payload
/// to chain after it. As [`write_video_header`] / [`write_audio_header`], and besides:
///
/// - `nanos` > 0 on a frame: a ModEx TimestampOffsetNano prefix (which needs the E-RTMP
///   form, so H.264 and AAC on track 0 switch to it).
/// - A frame of [`Codec::Unknown`]: its payload starts with the E-RTMP packet type, which
///   goes into the header; the rest of the payload is returned.
pub fn write_media_header(
    codec: Codec,
    track: u8,
    kind: PacketKind,
    nanos: u32,
    payload: &Bytes,
    out: &mut BytesMut,
) -> Bytes {
    let (raw_type, payload) = match (codec, kind) {
        (Codec::Unknown { .. }, PacketKind::Frame { .. }) if !payload.is_empty() => {
            (Some(payload[0] & 0x0f), payload.slice(1..))
        }
        _ => (None, payload.clone()),
    };
    let nanos = match kind {
        PacketKind::Frame { .. } => nanos,
        _ => 0,
    };
    if codec.kind() == TrackKind::Video {
        video_header(codec, track, kind, nanos, raw_type, out);
    } else {
        audio_header(codec, track, kind, nanos, raw_type, out);
    }
    payload
}
