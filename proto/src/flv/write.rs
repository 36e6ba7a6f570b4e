//! Tag-body headers for sending normalized media over RTMP/FLV. The caller chains the
//! payload (config record or frame, unchanged) after the header.

use bytes::{BufMut, BytesMut};

use super::{fourcc, PacketKind};
use crate::media::Codec;

/// The E-RTMP FourCC of a video codec (`None` for audio and legacy codecs).
pub fn video_fourcc(codec: Codec) -> Option<[u8; 4]> {
    Some(match codec {
        Codec::H264 => fourcc::AVC,
        Codec::H265 => fourcc::HEVC,
        Codec::H266 => fourcc::VVC,
        Codec::Av1 => fourcc::AV1,
        Codec::Vp9 => fourcc::VP9,
        Codec::Vp8 => fourcc::VP8,
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
        _ => return None,
    })
}

fn video_frame_type(kind: PacketKind) -> u8 {
    match kind {
        PacketKind::Frame { keyframe: true, .. } => 1,
        PacketKind::Frame {
            disposable: true, ..
        } => 3,
        PacketKind::Frame { .. } => 2,
        // Sequence start and end are written as keyframes, as encoders do.
        PacketKind::Config | PacketKind::EndOfSequence => 1,
    }
}

fn put_si24(cts: i32, out: &mut BytesMut) {
    let v = cts.clamp(-0x80_0000, 0x7f_ffff);
    out.put_slice(&v.to_be_bytes()[1..]);
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
/// Audio codecs write nothing.
pub fn write_video_header(codec: Codec, track: u8, kind: PacketKind, out: &mut BytesMut) {
    let frame_type = video_frame_type(kind);
    if let Codec::LegacyVideo { codec_id } = codec {
        out.put_u8(frame_type << 4 | (codec_id & 0x0f));
        return;
    }
    let Some(code) = video_fourcc(codec) else {
        return;
    };
    let cts_field = super::video::has_cts(codec);
    if codec == Codec::H264 && track == 0 {
        let (packet_type, cts) = match kind {
            PacketKind::Config => (0, 0),
            PacketKind::Frame { cts, .. } => (1, cts),
            PacketKind::EndOfSequence => (2, 0),
        };
        out.put_u8(frame_type << 4 | 7);
        out.put_u8(packet_type);
        put_si24(cts, out);
        return;
    }
    let (packet_type, cts) = match kind {
        PacketKind::Config => (0, None),
        PacketKind::Frame { cts, .. } if cts_field && cts != 0 => (1, Some(cts)),
        PacketKind::Frame { .. } if cts_field => (3, None),
        PacketKind::Frame { .. } => (1, None),
        PacketKind::EndOfSequence => (2, None),
    };
    let b0 = 0x80 | frame_type << 4;
    if track == 0 {
        out.put_u8(b0 | packet_type);
        out.put_slice(&code);
    } else {
        out.put_u8(b0 | 6);
        out.put_u8(packet_type);
        out.put_slice(&code);
        out.put_u8(track);
    }
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
///   and AAC/MP3 on another track: Enhanced RTMP v2 form, `0x90|AudioPacketType` then the
///   FourCC, or for a track other than 0 a Multitrack OneTrack header (`0x95`,
///   `OneTrack<<4|PacketType`, FourCC, track id).
///
/// Audio has no composition offset: a `cts` in `kind` is ignored. Video codecs write nothing.
pub fn write_audio_header(codec: Codec, track: u8, kind: PacketKind, out: &mut BytesMut) {
    match (codec, track, kind) {
        (Codec::LegacyAudio { header }, _, _) => {
            out.put_u8(header);
            return;
        }
        (Codec::Aac, 0, PacketKind::Config) => {
            out.put_slice(&[0xaf, 0]);
            return;
        }
        (Codec::Aac, 0, PacketKind::Frame { .. }) => {
            out.put_slice(&[0xaf, 1]);
            return;
        }
        (Codec::Mp3, 0, PacketKind::Frame { .. }) => {
            out.put_u8(0x2f);
            return;
        }
        _ => {}
    }
    let Some(code) = audio_fourcc(codec) else {
        return;
    };
    let packet_type = match kind {
        PacketKind::Config => 0,
        PacketKind::Frame { .. } => 1,
        PacketKind::EndOfSequence => 2,
    };
    if track == 0 {
        out.put_u8(0x90 | packet_type);
        out.put_slice(&code);
    } else {
        out.put_u8(0x95);
        out.put_u8(packet_type);
        out.put_slice(&code);
        out.put_u8(track);
    }
}
