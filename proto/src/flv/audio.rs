//! Audio tag bodies: legacy AudioTagHeader (FLV 10.1 E.4.2.1) and ExAudioTagHeader (E-RTMP v2).

use bytes::Bytes;

use super::reader::{for_each_track, read_modex, ExTrack, Reader};
use super::video::{push_offset, unknown_frame};
use super::{fourcc, FlvError, MediaPacket};
use crate::media::Codec;

const FORMAT_MP3: u8 = 2;
const FORMAT_EX_HEADER: u8 = 9;
const FORMAT_AAC: u8 = 10;
const FORMAT_MP3_8K: u8 = 14;

const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;
const MULTICHANNEL_CONFIG: u8 = 4;
const MULTITRACK: u8 = 5;

const CHANNEL_ORDER_NATIVE: u8 = 1;
const CHANNEL_ORDER_CUSTOM: u8 = 2;

/// Parses an audio tag body (RTMP message type 8). Appends to `out` (the caller reuses the
/// Vec). Every audio frame is a keyframe with a cts of 0. On error nothing is appended.
pub fn parse_audio(body: &Bytes, out: &mut Vec<MediaPacket>) -> Result<(), FlvError> {
    let start = out.len();
    let result = parse(body, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn frame(track: u8, codec: Codec, data: Bytes) -> MediaPacket {
    MediaPacket::Frame {
        track,
        codec,
        cts: 0,
        keyframe: true,
        disposable: false,
        data,
    }
}

fn parse(body: &Bytes, out: &mut Vec<MediaPacket>) -> Result<(), FlvError> {
    let mut r = Reader::new(body);
    if r.remaining() == 0 {
        // The RTMP "audio silence" message: nothing to carry.
        return Ok(());
    }
    let b0 = r.u8()?;
    match b0 >> 4 {
        FORMAT_EX_HEADER => {
            let (packet_type, nanos) = read_modex(&mut r, b0 & 0x0f)?;
            for_each_track(r, packet_type, MULTITRACK, |packet_type, t| {
                ex_track(packet_type, nanos, t, out)
            })
        }
        FORMAT_AAC => {
            let packet = match r.u8()? {
                0 => MediaPacket::Config {
                    track: 0,
                    codec: Codec::Aac,
                    config: r.rest(),
                },
                1 => frame(0, Codec::Aac, r.rest()),
                other => return Err(FlvError::UnknownPacketType(other)),
            };
            out.push(packet);
            Ok(())
        }
        FORMAT_MP3 | FORMAT_MP3_8K => {
            out.push(frame(0, Codec::Mp3, r.rest()));
            Ok(())
        }
        _ => {
            out.push(frame(0, Codec::LegacyAudio { header: b0 }, r.rest()));
            Ok(())
        }
    }
}

/// The codec of an audio FourCC.
pub(super) fn codec_of(code: [u8; 4]) -> Result<Codec, FlvError> {
    Ok(match code {
        fourcc::AAC => Codec::Aac,
        fourcc::OPUS => Codec::Opus,
        fourcc::FLAC => Codec::Flac,
        fourcc::MP3 => Codec::Mp3,
        fourcc::AC3 => Codec::Ac3,
        fourcc::EAC3 => Codec::Eac3,
        other => return Err(FlvError::UnknownFourCc(other)),
    })
}

fn ex_track(
    packet_type: u8,
    nanos: Option<u32>,
    t: ExTrack<'_>,
    out: &mut Vec<MediaPacket>,
) -> Result<(), FlvError> {
    let codec = super::codec_of_fourcc(t.fourcc, false)?;
    let track = t.track;
    let mut r = t.body;
    let packet = match packet_type {
        SEQUENCE_START => MediaPacket::Config {
            track,
            codec,
            config: r.rest(),
        },
        CODED_FRAMES => {
            push_offset(nanos, track, codec, out);
            let data = match codec {
                Codec::Unknown { .. } => unknown_frame(packet_type, &r.rest()),
                _ => r.rest(),
            };
            frame(track, codec, data)
        }
        SEQUENCE_END => MediaPacket::EndOfSequence { track, codec },
        MULTICHANNEL_CONFIG => MediaPacket::ChannelConfig {
            track,
            codec,
            config: multichannel_config(r)?,
        },
        other => return Err(FlvError::UnknownPacketType(other)),
    };
    out.push(packet);
    Ok(())
}

/// Checks the layout of a MultichannelConfig and returns it, without trailing bytes.
fn multichannel_config(mut r: Reader<'_>) -> Result<Bytes, FlvError> {
    let whole = r.clone();
    let order = r.u8()?;
    let channels = r.u8()?;
    match order {
        CHANNEL_ORDER_CUSTOM => r.skip(usize::from(channels))?,
        CHANNEL_ORDER_NATIVE => r.skip(4)?,
        _ => {}
    }
    let used = whole.remaining() - r.remaining();
    let mut whole = whole;
    Ok(whole.take(used))
}
