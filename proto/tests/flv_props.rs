//! Properties: no input makes the parsers panic or return a payload outside the body, and
//! every header this side writes parses back to the packet it was written for.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::flv::{
    parse_audio, parse_video, write_audio_header, write_media_header, write_video_header,
    MediaPacket, PacketKind,
};
use proto::media::{Codec, TrackKind};

fn payloads(p: &MediaPacket) -> Option<&Bytes> {
    match p {
        MediaPacket::Config { config, .. } => Some(config),
        // The one copied payload: the packet type goes in front of the body.
        MediaPacket::Frame {
            codec: Codec::Unknown { .. },
            ..
        } => None,
        MediaPacket::Frame { data, .. } | MediaPacket::VideoMetadata { data, .. } => Some(data),
        MediaPacket::ChannelConfig { config, .. } => Some(config),
        MediaPacket::EndOfSequence { .. } | MediaPacket::TimestampOffset { .. } => None,
    }
}

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![
        Just(Codec::H264),
        Just(Codec::H265),
        Just(Codec::H266),
        Just(Codec::Av1),
        Just(Codec::Vp9),
        Just(Codec::Vp8),
        Just(Codec::Aac),
        Just(Codec::Opus),
        Just(Codec::Flac),
        Just(Codec::Mp3),
        Just(Codec::Ac3),
        Just(Codec::Eac3),
        (2u8..=6).prop_map(|codec_id| Codec::LegacyVideo { codec_id }),
        // SoundFormats that are neither MP3 (2, 14), ExHeader (9) nor AAC (10).
        (
            prop::sample::select(vec![0u8, 1, 3, 4, 5, 6, 7, 8, 11, 12, 13, 15]),
            0u8..16
        )
            .prop_map(|(f, low)| Codec::LegacyAudio {
                header: f << 4 | low
            }),
    ]
}

fn kind() -> impl Strategy<Value = PacketKind> {
    prop_oneof![
        Just(PacketKind::Config),
        Just(PacketKind::EndOfSequence),
        (any::<bool>(), any::<bool>(), -0x80_0000i32..=0x7f_ffff).prop_map(
            |(keyframe, disposable, cts)| PacketKind::Frame {
                keyframe,
                disposable,
                cts
            }
        ),
    ]
}

/// What parsing the written header followed by `payload` must give.
fn expected(codec: Codec, track: u8, kind: PacketKind, payload: Bytes) -> MediaPacket {
    let video = codec.kind() == TrackKind::Video;
    let (legacy, track) = match codec {
        Codec::LegacyVideo { .. } | Codec::LegacyAudio { .. } => (true, 0),
        _ => (false, track),
    };
    match kind {
        PacketKind::Metadata | PacketKind::ChannelConfig => unreachable!("not generated"),
        // Legacy codecs have no config nor end of sequence: their byte reads as a frame.
        _ if legacy => MediaPacket::Frame {
            track,
            codec,
            cts: 0,
            keyframe: !video
                || !matches!(
                    kind,
                    PacketKind::Frame {
                        keyframe: false,
                        ..
                    }
                ),
            disposable: video
                && matches!(
                    kind,
                    PacketKind::Frame {
                        keyframe: false,
                        disposable: true,
                        ..
                    }
                ),
            data: payload,
        },
        PacketKind::Config => MediaPacket::Config {
            track,
            codec,
            config: payload,
        },
        PacketKind::EndOfSequence => MediaPacket::EndOfSequence { track, codec },
        PacketKind::Frame {
            keyframe,
            disposable,
            cts,
        } => MediaPacket::Frame {
            track,
            codec,
            cts: if matches!(codec, Codec::H264 | Codec::H265 | Codec::H266) {
                cts
            } else {
                0
            },
            keyframe: keyframe || !video,
            disposable: video && disposable && !keyframe,
            data: payload,
        },
    }
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
        let body = Bytes::from(body);
        let range = body.as_ptr_range();
        for parse in [parse_video, parse_audio] {
            let mut out = Vec::new();
            if parse(&body, &mut out).is_err() {
                prop_assert!(out.is_empty());
            }
            for p in &out {
                if let Some(b) = payloads(p) {
                    // The other built payload: the av1C an MPEG2TSSequenceStart's AV1
                    // descriptor translates to (tests/fuzz_regressions/flv-av1-*).
                    let translated = matches!(p, MediaPacket::Config { codec: Codec::Av1, .. })
                        && !range.contains(&b.as_ptr())
                        && b.len() == 4
                        && b[0] == 0x81;
                    prop_assert!(b.is_empty() || translated || (range.contains(&b.as_ptr())
                        && b.as_ptr() as usize + b.len() <= range.end as usize));
                }
            }
        }
    }

    /// Bodies that start like E-RTMP headers, to reach ModEx and multitrack paths often.
    #[test]
    fn arbitrary_ex_bodies_never_panic(
        b0 in prop::sample::select(vec![0x96u8, 0x97, 0x95, 0x91, 0xa6]),
        b1 in any::<u8>(),
        code in prop::sample::select(vec![*b"avc1", *b"hvc1", *b"av01", *b"Opus", *b"mp4a"]),
        tail in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut body = vec![b0, b1];
        body.extend_from_slice(&code);
        body.extend_from_slice(&tail);
        let body = Bytes::from(body);
        let mut out = Vec::new();
        let _ = parse_video(&body, &mut out);
        let _ = parse_audio(&body, &mut out);
    }

    #[test]
    fn written_headers_parse_back(
        codec in codec(),
        track in any::<u8>(),
        kind in kind(),
        payload in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let video = codec.kind() == TrackKind::Video;
        let mut body = BytesMut::new();
        if video {
            write_video_header(codec, track, kind, &mut body);
        } else {
            write_audio_header(codec, track, kind, &mut body);
        }
        let header_len = body.len();
        body.extend_from_slice(&payload);
        let body = body.freeze();
        let mut out = Vec::new();
        if video {
            parse_video(&body, &mut out).unwrap();
        } else {
            parse_audio(&body, &mut out).unwrap();
        }
        let payload = match kind {
            PacketKind::EndOfSequence if !matches!(codec, Codec::LegacyVideo { .. } | Codec::LegacyAudio { .. }) => Bytes::new(),
            _ => body.slice(header_len..),
        };
        prop_assert_eq!(out, vec![expected(codec, track, kind, payload)]);
    }

    #[test]
    fn nano_offsets_parse_back(
        codec in codec(),
        track in any::<u8>(),
        kind in kind(),
        nanos in 1u32..=999_999,
        payload in prop::collection::vec(any::<u8>(), 1..32),
    ) {
        prop_assume!(!matches!(codec, Codec::LegacyVideo { .. } | Codec::LegacyAudio { .. }));
        prop_assume!(matches!(kind, PacketKind::Frame { .. }));
        let payload = Bytes::from(payload);
        let mut body = BytesMut::new();
        let rest = write_media_header(codec, track, kind, nanos, &payload, &mut body);
        body.extend_from_slice(&rest);
        let body = body.freeze();
        let mut out = Vec::new();
        if codec.kind() == TrackKind::Video {
            parse_video(&body, &mut out).unwrap();
        } else {
            parse_audio(&body, &mut out).unwrap();
        }
        prop_assert_eq!(out.len(), 2);
        prop_assert_eq!(&out[0], &MediaPacket::TimestampOffset { track, codec, nanos });
        prop_assert_eq!(&out[1], &expected(codec, track, kind, payload));
    }
}
