//! Video tag bodies: legacy VideoTagHeader (FLV 10.1 E.4.3.1) and ExVideoTagHeader (E-RTMP v2).

use bytes::Bytes;

use super::reader::{for_each_track, read_modex, ExTrack, Reader};
use super::{fourcc, FlvError, MediaPacket};
use crate::media::Codec;

const FRAME_KEY: u8 = 1;
const FRAME_DISPOSABLE: u8 = 3;
const FRAME_GENERATED_KEY: u8 = 4;
const FRAME_COMMAND: u8 = 5;

const CODEC_AVC: u8 = 7;
/// Not in the FLV spec: HEVC in the AVC layout, as several Chinese forks send it.
const CODEC_HEVC_LEGACY: u8 = 12;

const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;
const CODED_FRAMES_X: u8 = 3;
const METADATA: u8 = 4;
const MPEG2TS_SEQUENCE_START: u8 = 5;
const MULTITRACK: u8 = 6;

/// Parses a video tag body (RTMP message type 9). Appends to `out` (the caller reuses the
/// Vec: no allocation per frame in steady state). Ignores video info/command frames (frame
/// type 5) and returns Ok with nothing appended. On error nothing is appended.
pub fn parse_video(body: &Bytes, out: &mut Vec<MediaPacket>) -> Result<(), FlvError> {
    let start = out.len();
    let result = parse(body, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn parse(body: &Bytes, out: &mut Vec<MediaPacket>) -> Result<(), FlvError> {
    let mut r = Reader::new(body);
    if r.remaining() == 0 {
        return Ok(());
    }
    let b0 = r.u8()?;
    if b0 & 0x80 == 0 {
        return parse_legacy(b0, r, out);
    }
    let frame_type = (b0 >> 4) & 0x07;
    let (packet_type, nanos) = read_modex(&mut r, b0 & 0x0f)?;
    if packet_type != METADATA && frame_type == FRAME_COMMAND {
        // The body is a one-byte VideoCommand (client-side seeking): nothing to carry.
        return Ok(());
    }
    for_each_track(r, packet_type, MULTITRACK, |packet_type, t| {
        ex_track(frame_type, packet_type, nanos, t, out)
    })
}

fn check_frame_type(frame_type: u8) -> Result<(), FlvError> {
    if (FRAME_KEY..=FRAME_GENERATED_KEY).contains(&frame_type) {
        Ok(())
    } else {
        Err(FlvError::UnknownFrameType(frame_type))
    }
}

fn is_key(frame_type: u8) -> bool {
    frame_type == FRAME_KEY || frame_type == FRAME_GENERATED_KEY
}

fn parse_legacy(b0: u8, mut r: Reader<'_>, out: &mut Vec<MediaPacket>) -> Result<(), FlvError> {
    let frame_type = b0 >> 4;
    let codec_id = b0 & 0x0f;
    if frame_type == FRAME_COMMAND {
        return Ok(());
    }
    check_frame_type(frame_type)?;
    let codec = match codec_id {
        2..=6 => {
            out.push(MediaPacket::Frame {
                track: 0,
                codec: Codec::LegacyVideo { codec_id },
                cts: 0,
                keyframe: is_key(frame_type),
                disposable: frame_type == FRAME_DISPOSABLE,
                data: r.rest(),
            });
            return Ok(());
        }
        CODEC_AVC => Codec::H264,
        CODEC_HEVC_LEGACY => Codec::H265,
        other => return Err(FlvError::UnknownCodecId(other)),
    };
    let packet_type = r.u8()?;
    let cts = r.si24()?;
    let packet = match packet_type {
        0 => MediaPacket::Config {
            track: 0,
            codec,
            config: r.rest(),
        },
        1 => MediaPacket::Frame {
            track: 0,
            codec,
            cts,
            keyframe: is_key(frame_type),
            disposable: frame_type == FRAME_DISPOSABLE,
            data: r.rest(),
        },
        2 => MediaPacket::EndOfSequence { track: 0, codec },
        other => return Err(FlvError::UnknownPacketType(other)),
    };
    out.push(packet);
    Ok(())
}

/// The codec of a video FourCC.
pub(super) fn codec_of(code: [u8; 4]) -> Result<Codec, FlvError> {
    Ok(match code {
        fourcc::AVC => Codec::H264,
        fourcc::HEVC => Codec::H265,
        fourcc::VVC => Codec::H266,
        fourcc::AV1 => Codec::Av1,
        fourcc::VP9 => Codec::Vp9,
        fourcc::VP8 => Codec::Vp8,
        other => return Err(FlvError::UnknownFourCc(other)),
    })
}

/// Whether CodedFrames of this codec start with an SI24 composition time offset.
pub(super) fn has_cts(codec: Codec) -> bool {
    matches!(codec, Codec::H264 | Codec::H265 | Codec::H266)
}

fn ex_track(
    frame_type: u8,
    packet_type: u8,
    nanos: Option<u32>,
    t: ExTrack<'_>,
    out: &mut Vec<MediaPacket>,
) -> Result<(), FlvError> {
    let codec = super::codec_of_fourcc(t.fourcc, true)?;
    if packet_type != METADATA {
        check_frame_type(frame_type)?;
    }
    let track = t.track;
    let mut r = t.body;
    let packet = match packet_type {
        SEQUENCE_START => MediaPacket::Config {
            track,
            codec,
            config: r.rest(),
        },
        CODED_FRAMES | CODED_FRAMES_X => {
            let cts = if packet_type == CODED_FRAMES && has_cts(codec) {
                r.si24()?
            } else {
                0
            };
            let data = match codec {
                Codec::Unknown { .. } => unknown_frame(packet_type, &r.rest()),
                _ => r.rest(),
            };
            push_offset(nanos, track, codec, out);
            MediaPacket::Frame {
                track,
                codec,
                cts,
                keyframe: is_key(frame_type),
                disposable: frame_type == FRAME_DISPOSABLE,
                data,
            }
        }
        SEQUENCE_END => MediaPacket::EndOfSequence { track, codec },
        METADATA => MediaPacket::VideoMetadata {
            track,
            codec,
            data: r.rest(),
        },
        MPEG2TS_SEQUENCE_START if codec == Codec::Av1 => MediaPacket::Config {
            track,
            codec,
            config: av1c_from_ts_descriptor(&r.rest())?,
        },
        MPEG2TS_SEQUENCE_START => return Ok(()),
        other => return Err(FlvError::UnknownPacketType(other)),
    };
    out.push(packet);
    Ok(())
}

/// The [`MediaPacket::TimestampOffset`] that precedes a frame, when the tag had one.
pub(super) fn push_offset(nanos: Option<u32>, track: u8, codec: Codec, out: &mut Vec<MediaPacket>) {
    if let Some(nanos) = nanos.filter(|&n| n > 0) {
        out.push(MediaPacket::TimestampOffset {
            track,
            codec,
            nanos,
        });
    }
}

/// The normalized frame of an unknown FourCC: its packet type, then the body. The one
/// copy per frame is the price of not knowing whether the body starts with a
/// composition offset (only the packet type says so to a peer that knows the codec).
pub(super) fn unknown_frame(packet_type: u8, body: &Bytes) -> Bytes {
    let mut data = Vec::with_capacity(body.len() + 1);
    data.push(packet_type);
    data.extend_from_slice(body);
    data.into()
}

/// Tag of the AV1 video descriptor of the MPEG-2 TS mapping (AOM, "Carriage of AV1 in
/// MPEG-2 TS", section 2.2).
const AV1_DESCRIPTOR_TAG: u8 = 0x80;

/// An AV1CodecConfigurationRecord (no configOBUs: the sequence header comes in the first
/// keyframe) from the AV1 video descriptor an `MPEG2TSSequenceStart` carries, with or
/// without its tag and length. The first three bytes have the same layout in both; the
/// fourth keeps the initial presentation delay and drops `hdr_wcg_idc`, which av1C has no
/// room for (the colour is in the sequence header).
fn av1c_from_ts_descriptor(body: &Bytes) -> Result<Bytes, FlvError> {
    let d = match body.first() {
        Some(&AV1_DESCRIPTOR_TAG) if body.len() >= 2 && usize::from(body[1]) == body.len() - 2 => {
            &body[2..]
        }
        _ => &body[..],
    };
    if d.len() < 4 {
        return Err(FlvError::Truncated {
            need: 4,
            have: d.len(),
        });
    }
    // marker (1) and version (1).
    if d[0] != 0x81 {
        return Err(FlvError::BadAv1Descriptor(d[0]));
    }
    // hdr_wcg_idc (2 bits) and a reserved bit leave; 3 reserved zero bits take their place.
    Ok(Bytes::copy_from_slice(&[d[0], d[1], d[2], d[3] & 0x1f]))
}
