//! FLV / Enhanced RTMP v2 tag body parsing: hand-written golden vectors for every path of
//! the spec, and negative vectors.

use bytes::Bytes;
use proto::flv::{parse_audio, parse_video, FlvError, MediaPacket};
use proto::media::Codec;

fn video(body: &[u8]) -> Result<Vec<MediaPacket>, FlvError> {
    let mut out = Vec::new();
    parse_video(&Bytes::copy_from_slice(body), &mut out).map(|()| out)
}

fn audio(body: &[u8]) -> Result<Vec<MediaPacket>, FlvError> {
    let mut out = Vec::new();
    parse_audio(&Bytes::copy_from_slice(body), &mut out).map(|()| out)
}

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

fn frame(track: u8, codec: Codec, cts: i32, keyframe: bool, data: &'static [u8]) -> MediaPacket {
    MediaPacket::Frame {
        track,
        codec,
        cts,
        keyframe,
        disposable: false,
        data: b(data),
    }
}

fn config(track: u8, codec: Codec, data: &'static [u8]) -> MediaPacket {
    MediaPacket::Config {
        track,
        codec,
        config: b(data),
    }
}

fn audio_frame(track: u8, codec: Codec, data: &'static [u8]) -> MediaPacket {
    frame(track, codec, 0, true, data)
}

// ---- legacy video ----

#[test]
fn legacy_avc_sequence_header() {
    let got = video(&[0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1f]).unwrap();
    assert_eq!(got, vec![config(0, Codec::H264, &[0x01, 0x64, 0x00, 0x1f])]);
}

#[test]
fn legacy_avc_frames_with_signed_cts() {
    // Keyframe, cts +200.
    let got = video(&[0x17, 0x01, 0x00, 0x00, 0xc8, 0, 0, 0, 1, 0x65]).unwrap();
    assert_eq!(
        got,
        vec![frame(0, Codec::H264, 200, true, &[0, 0, 0, 1, 0x65])]
    );
    // Inter frame, cts -1 (0xffffff).
    let got = video(&[0x27, 0x01, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0x41]).unwrap();
    assert_eq!(
        got,
        vec![frame(0, Codec::H264, -1, false, &[0, 0, 0, 1, 0x41])]
    );
    // Most negative SI24.
    let got = video(&[0x27, 0x01, 0x80, 0x00, 0x00]).unwrap();
    assert_eq!(got, vec![frame(0, Codec::H264, -0x80_0000, false, &[])]);
    // Disposable inter frame.
    let got = video(&[0x37, 0x01, 0x00, 0x00, 0x00, 0xaa]).unwrap();
    assert_eq!(
        got,
        vec![MediaPacket::Frame {
            track: 0,
            codec: Codec::H264,
            cts: 0,
            keyframe: false,
            disposable: true,
            data: b(&[0xaa]),
        }]
    );
    // Generated keyframe (type 4) counts as a keyframe.
    let got = video(&[0x47, 0x01, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(got, vec![frame(0, Codec::H264, 0, true, &[])]);
}

#[test]
fn legacy_avc_end_of_sequence() {
    let got = video(&[0x17, 0x02, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(
        got,
        vec![MediaPacket::EndOfSequence {
            track: 0,
            codec: Codec::H264
        }]
    );
}

#[test]
fn legacy_hevc_codec_id_12_uses_the_avc_layout() {
    let got = video(&[0x1c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02]).unwrap();
    assert_eq!(got, vec![config(0, Codec::H265, &[0x01, 0x02])]);
    let got = video(&[0x2c, 0x01, 0x00, 0x00, 0x28, 0xab]).unwrap();
    assert_eq!(got, vec![frame(0, Codec::H265, 40, false, &[0xab])]);
    let got = video(&[0x1c, 0x02, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(
        got,
        vec![MediaPacket::EndOfSequence {
            track: 0,
            codec: Codec::H265
        }]
    );
}

#[test]
fn legacy_video_codecs_pass_the_body_through() {
    for codec_id in 2..=6u8 {
        let got = video(&[0x10 | codec_id, 0xde, 0xad]).unwrap();
        assert_eq!(
            got,
            vec![frame(
                0,
                Codec::LegacyVideo { codec_id },
                0,
                true,
                &[0xde, 0xad]
            )]
        );
    }
    // Sorenson H.263 disposable inter frame.
    let got = video(&[0x32, 0x01]).unwrap();
    assert_eq!(
        got,
        vec![MediaPacket::Frame {
            track: 0,
            codec: Codec::LegacyVideo { codec_id: 2 },
            cts: 0,
            keyframe: false,
            disposable: true,
            data: b(&[0x01]),
        }]
    );
}

#[test]
fn command_frames_and_empty_bodies_yield_nothing() {
    assert_eq!(video(&[]).unwrap(), vec![]);
    assert_eq!(audio(&[]).unwrap(), vec![]);
    // Legacy AVC video info frame (start of seek).
    assert_eq!(video(&[0x57, 0x00]).unwrap(), vec![]);
    // Ex header command frame: IsExHeader | Command | CodedFrames, VideoCommand 1.
    assert_eq!(video(&[0xd1, 0x01]).unwrap(), vec![]);
    // A command frame under a ModEx prefix.
    assert_eq!(video(&[0xd7, 0x02, 0, 0, 1, 0x01, 0x00]).unwrap(), vec![]);
}

// ---- enhanced video ----

#[test]
fn ex_sequence_start_for_every_fourcc() {
    let cases: [(&[u8; 4], Codec); 6] = [
        (b"avc1", Codec::H264),
        (b"hvc1", Codec::H265),
        (b"vvc1", Codec::H266),
        (b"av01", Codec::Av1),
        (b"vp09", Codec::Vp9),
        (b"vp08", Codec::Vp8),
    ];
    for (code, codec) in cases {
        let mut body = vec![0x90];
        body.extend_from_slice(code);
        body.extend_from_slice(&[0x01, 0x02, 0x03]);
        assert_eq!(video(&body).unwrap(), vec![config(0, codec, &[1, 2, 3])]);
        // Sequence end.
        let mut body = vec![0x92];
        body.extend_from_slice(code);
        assert_eq!(
            video(&body).unwrap(),
            vec![MediaPacket::EndOfSequence { track: 0, codec }]
        );
    }
}

#[test]
fn ex_coded_frames_carry_cts_only_for_nal_codecs() {
    // hvc1 CodedFrames: SI24 cts 0x000064 = 100.
    let got = video(b"\x91hvc1\x00\x00\x64\x00\x00\x00\x02\x26\x01").unwrap();
    assert_eq!(
        got,
        vec![frame(0, Codec::H265, 100, true, &[0, 0, 0, 2, 0x26, 0x01])]
    );
    // vvc1 and avc1 CodedFrames, negative cts.
    let got = video(b"\xa1vvc1\xff\xff\xf6\x07").unwrap();
    assert_eq!(got, vec![frame(0, Codec::H266, -10, false, &[7])]);
    let got = video(b"\xa1avc1\x00\x00\x01\x07").unwrap();
    assert_eq!(got, vec![frame(0, Codec::H264, 1, false, &[7])]);
    // av01 / vp09 / vp08 CodedFrames have no cts.
    let got = video(b"\x91av01\x12\x00\x0a").unwrap();
    assert_eq!(
        got,
        vec![frame(0, Codec::Av1, 0, true, &[0x12, 0x00, 0x0a])]
    );
    let got = video(b"\xa1vp09\x86\x01").unwrap();
    assert_eq!(got, vec![frame(0, Codec::Vp9, 0, false, &[0x86, 0x01])]);
    let got = video(b"\xb1vp08\x9d\x01").unwrap();
    assert_eq!(
        got,
        vec![MediaPacket::Frame {
            track: 0,
            codec: Codec::Vp8,
            cts: 0,
            keyframe: false,
            disposable: true,
            data: b(&[0x9d, 0x01]),
        }]
    );
    // CodedFramesX: cts implied 0.
    let got = video(b"\xa3hvc1\x00\x00\x00\x01\x02").unwrap();
    assert_eq!(got, vec![frame(0, Codec::H265, 0, false, &[0, 0, 0, 1, 2])]);
}

#[test]
fn ex_metadata_ignores_the_frame_type() {
    // FFmpeg writes colorInfo metadata with frame type 5 (command): still metadata.
    let got = video(b"\xd4hvc1\x02\x00\x09colorInfo\x03").unwrap();
    assert_eq!(
        got,
        vec![MediaPacket::VideoMetadata {
            track: 0,
            codec: Codec::H265,
            data: b(b"\x02\x00\x09colorInfo\x03"),
        }]
    );
    // Frame type 0 is reserved, but ignored for metadata.
    let got = video(b"\x84av01\x05").unwrap();
    assert_eq!(
        got,
        vec![MediaPacket::VideoMetadata {
            track: 0,
            codec: Codec::Av1,
            data: b(&[5]),
        }]
    );
}

#[test]
fn ex_mpeg2ts_sequence_start() {
    // AV1: the AV1 video descriptor (tag 0x80, length 4) becomes an av1C record.
    // Descriptor: marker|version 0x81; seq_profile 0, seq_level_idx_0 8 (0x08); tier 0,
    // high_bitdepth 1, twelve_bit 0, monochrome 0, subsampling 1 1, position 0 (0x4c);
    // hdr_wcg_idc 1, reserved 1, initial_presentation_delay_present 1, delay-1 = 3
    // (0b01_1_1_0011 = 0x73).
    let got = video(b"\x95av01\x80\x04\x81\x08\x4c\x73").unwrap();
    // av1C: the same three bytes, then 3 reserved zero bits, the delay flag and value.
    assert_eq!(got, vec![config(0, Codec::Av1, &[0x81, 0x08, 0x4c, 0x13])]);
    // Without its tag and length the descriptor reads the same.
    let got = video(b"\x95av01\x81\x08\x4c\x80").unwrap();
    assert_eq!(got, vec![config(0, Codec::Av1, &[0x81, 0x08, 0x4c, 0x00])]);
    // A descriptor that is not one is refused, not passed on as av1C.
    assert_eq!(
        video(b"\x95av01\x80\x01\x02").unwrap_err(),
        FlvError::Truncated { need: 4, have: 1 }
    );
    assert_eq!(
        video(b"\x95av01\x01\x08\x4c\x80").unwrap_err(),
        FlvError::BadAv1Descriptor(0x01)
    );
    // Undefined for the other FourCCs: skipped.
    assert_eq!(video(b"\x95vp09\x01").unwrap(), vec![]);
}

fn offset(track: u8, codec: Codec, nanos: u32) -> MediaPacket {
    MediaPacket::TimestampOffset {
        track,
        codec,
        nanos,
    }
}

#[test]
fn modex_timestamp_offset_nano_precedes_the_frame() {
    // ModEx: size-1 = 2 (3 bytes), 999_999 ns, then type 0 (TimestampOffsetNano) <<4 |
    // CodedFramesX, then hvc1 and the frame.
    let got = video(b"\x97\x02\x0f\x42\x3f\x03hvc1\xaa").unwrap();
    assert_eq!(
        got,
        vec![
            offset(0, Codec::H265, 999_999),
            frame(0, Codec::H265, 0, true, &[0xaa])
        ]
    );
    // Audio: same ModEx then CodedFrames of Opus.
    let got = audio(b"\x97\x02\x00\x00\x01\x01Opus\xfc").unwrap();
    assert_eq!(
        got,
        vec![
            offset(0, Codec::Opus, 1),
            audio_frame(0, Codec::Opus, &[0xfc])
        ]
    );
    // Out of range values are clamped below a millisecond; 0 yields nothing.
    let got = video(b"\x97\x02\xff\xff\xff\x03hvc1\xaa").unwrap();
    assert_eq!(got[0], offset(0, Codec::H265, 999_999));
    let got = video(b"\x97\x02\x00\x00\x00\x03hvc1\xaa").unwrap();
    assert_eq!(got, vec![frame(0, Codec::H265, 0, true, &[0xaa])]);
    // A sequence start under a ModEx has no offset to carry.
    let got = video(b"\x97\x02\x00\x00\x05\x00hvc1\xaa").unwrap();
    assert_eq!(got, vec![config(0, Codec::H265, &[0xaa])]);
}

#[test]
fn modex_chains_and_long_sizes() {
    // Two ModEx: an unknown type 5 with 1 byte, then TimestampOffsetNano with 4 bytes.
    let got = video(b"\x97\x00\xee\x57\x03\x00\x00\x01\xff\x01vp09\x01").unwrap();
    assert_eq!(
        got,
        vec![
            offset(0, Codec::Vp9, 1),
            frame(0, Codec::Vp9, 0, true, &[1])
        ]
    );
    // UI8 = 255 switches to a UI16 size: 0x0100 + 1 = 257 bytes of data.
    let mut body = vec![0x97, 0xff, 0x01, 0x00];
    body.extend_from_slice(&[0u8; 257]);
    body.push(0x10); // unknown ModEx type 1, then SequenceStart
    body.extend_from_slice(b"av01\x81");
    assert_eq!(video(&body).unwrap(), vec![config(0, Codec::Av1, &[0x81])]);
    // A ModEx in front of a Multitrack header.
    let got = video(b"\x97\x02\x00\x00\x01\x06\x03avc1\x05\x01").unwrap();
    assert_eq!(
        got,
        vec![
            offset(5, Codec::H264, 1),
            frame(5, Codec::H264, 0, true, &[1])
        ]
    );
}

#[test]
fn modex_timestamp_offset_nano_shorter_than_3_bytes_is_refused() {
    assert_eq!(
        video(b"\x97\x01\x00\x00\x03hvc1").unwrap_err(),
        FlvError::ModExTooShort { len: 2 }
    );
    assert_eq!(
        audio(b"\x97\x00\x00\x01Opus").unwrap_err(),
        FlvError::ModExTooShort { len: 1 }
    );
}

#[test]
fn multitrack_one_track() {
    // IsExHeader|Key|Multitrack, OneTrack<<4|CodedFrames, avc1, track 1, cts 200, data.
    let got = video(b"\x96\x01avc1\x01\x00\x00\xc8\x00\x00\x00\x01\x65").unwrap();
    assert_eq!(
        got,
        vec![frame(1, Codec::H264, 200, true, &[0, 0, 0, 1, 0x65])]
    );
    let got = video(b"\x96\x00hvc1\x02\x01\x02").unwrap();
    assert_eq!(got, vec![config(2, Codec::H265, &[1, 2])]);
}

#[test]
fn multitrack_many_tracks() {
    // ManyTracks<<4|CodedFramesX, av01, then (track, UI24 size, data) twice.
    let got = video(b"\xa6\x13av01\x00\x00\x00\x02\xaa\xbb\x01\x00\x00\x01\xcc").unwrap();
    assert_eq!(
        got,
        vec![
            frame(0, Codec::Av1, 0, false, &[0xaa, 0xbb]),
            frame(1, Codec::Av1, 0, false, &[0xcc]),
        ]
    );
    // CodedFrames with cts per track: the size covers the cts.
    let got =
        video(b"\x96\x11hvc1\x00\x00\x00\x04\x00\x00\x0a\xaa\x03\x00\x00\x03\xff\xff\xfe").unwrap();
    assert_eq!(
        got,
        vec![
            frame(0, Codec::H265, 10, true, &[0xaa]),
            frame(3, Codec::H265, -2, true, &[]),
        ]
    );
}

#[test]
fn multitrack_many_tracks_many_codecs() {
    let got = video(
        b"\x96\x20avc1\x00\x00\x00\x02\x01\x64hvc1\x01\x00\x00\x03\x01\x02\x03vp09\x02\x00\x00\x00",
    )
    .unwrap();
    assert_eq!(
        got,
        vec![
            config(0, Codec::H264, &[0x01, 0x64]),
            config(1, Codec::H265, &[1, 2, 3]),
            config(2, Codec::Vp9, &[]),
        ]
    );
    let got = audio(b"\x95\x22Opus\x00\x00\x00\x00fLaC\x01\x00\x00\x00").unwrap();
    assert_eq!(
        got,
        vec![
            MediaPacket::EndOfSequence {
                track: 0,
                codec: Codec::Opus
            },
            MediaPacket::EndOfSequence {
                track: 1,
                codec: Codec::Flac
            },
        ]
    );
}

// ---- audio ----

#[test]
fn legacy_aac() {
    let got = audio(&[0xaf, 0x00, 0x11, 0x90]).unwrap();
    assert_eq!(got, vec![config(0, Codec::Aac, &[0x11, 0x90])]);
    let got = audio(&[0xaf, 0x01, 0x21, 0x10]).unwrap();
    assert_eq!(got, vec![audio_frame(0, Codec::Aac, &[0x21, 0x10])]);
    // Whatever rate/size/type bits an encoder puts, SoundFormat 10 is AAC.
    let got = audio(&[0xa0, 0x01]).unwrap();
    assert_eq!(got, vec![audio_frame(0, Codec::Aac, &[])]);
}

#[test]
fn legacy_mp3_and_others() {
    let got = audio(&[0x2f, 0xff, 0xfb]).unwrap();
    assert_eq!(got, vec![audio_frame(0, Codec::Mp3, &[0xff, 0xfb])]);
    let got = audio(&[0xe2, 0xff, 0xf3]).unwrap();
    assert_eq!(got, vec![audio_frame(0, Codec::Mp3, &[0xff, 0xf3])]);
    for header in [
        0x0e, 0x1a, 0x3f, 0x4a, 0x52, 0x6e, 0x72, 0x82, 0xb2, 0xc0, 0xd0, 0xf0,
    ] {
        let got = audio(&[header, 0x01, 0x02]).unwrap();
        assert_eq!(
            got,
            vec![audio_frame(0, Codec::LegacyAudio { header }, &[1, 2])],
            "{header:#x}"
        );
    }
}

#[test]
fn ex_audio_every_fourcc() {
    let cases: [(&[u8; 4], Codec); 6] = [
        (b"mp4a", Codec::Aac),
        (b"Opus", Codec::Opus),
        (b"fLaC", Codec::Flac),
        (b".mp3", Codec::Mp3),
        (b"ac-3", Codec::Ac3),
        (b"ec-3", Codec::Eac3),
    ];
    for (code, codec) in cases {
        let with = |b0: u8, tail: &[u8]| {
            let mut v = vec![b0];
            v.extend_from_slice(code);
            v.extend_from_slice(tail);
            v
        };
        assert_eq!(
            audio(&with(0x90, &[9])).unwrap(),
            vec![config(0, codec, &[9])]
        );
        assert_eq!(
            audio(&with(0x90, &[])).unwrap(),
            vec![config(0, codec, &[])]
        );
        assert_eq!(
            audio(&with(0x91, &[7, 8])).unwrap(),
            vec![audio_frame(0, codec, &[7, 8])]
        );
        assert_eq!(
            audio(&with(0x92, &[])).unwrap(),
            vec![MediaPacket::EndOfSequence { track: 0, codec }]
        );
    }
}

fn channels(track: u8, codec: Codec, data: &'static [u8]) -> MediaPacket {
    MediaPacket::ChannelConfig {
        track,
        codec,
        config: b(data),
    }
}

#[test]
fn ex_audio_multichannel_config_is_carried() {
    // Native order, 2 channels, FrontLeft|FrontRight.
    assert_eq!(
        audio(b"\x94Opus\x01\x02\x00\x00\x00\x03").unwrap(),
        vec![channels(0, Codec::Opus, b"\x01\x02\x00\x00\x00\x03")]
    );
    // Custom order, 3 channels with their mapping; a trailing byte is not carried.
    assert_eq!(
        audio(b"\x94Opus\x02\x03\x00\x01\x03\xee").unwrap(),
        vec![channels(0, Codec::Opus, b"\x02\x03\x00\x01\x03")]
    );
    // Unspecified order: the channel count alone.
    assert_eq!(
        audio(b"\x94fLaC\x00\x06").unwrap(),
        vec![channels(0, Codec::Flac, b"\x00\x06")]
    );
    // Truncated mappings are refused.
    assert_eq!(
        audio(b"\x94Opus\x02\x03\x00\x01").unwrap_err(),
        FlvError::Truncated { need: 3, have: 2 }
    );
    assert_eq!(
        audio(b"\x94Opus\x01\x02\x00\x00").unwrap_err(),
        FlvError::Truncated { need: 4, have: 2 }
    );
}

#[test]
fn unknown_fourccs_pass_through() {
    let v = Codec::Unknown {
        video: true,
        fourcc: *b"avc2",
    };
    assert_eq!(
        video(b"\x90avc2\x01\x02").unwrap(),
        vec![config(0, v, b"\x01\x02")]
    );
    // Frames keep their packet type in front: the body may hold a composition offset.
    assert_eq!(
        video(b"\x91avc2\x00\x00\x01\xaa").unwrap(),
        vec![frame(0, v, 0, true, b"\x01\x00\x00\x01\xaa")]
    );
    assert_eq!(
        video(b"\xa3avc2\xaa").unwrap(),
        vec![MediaPacket::Frame {
            track: 0,
            codec: v,
            cts: 0,
            keyframe: false,
            disposable: false,
            data: b(b"\x03\xaa"),
        }]
    );
    assert_eq!(
        video(b"\x92avc2").unwrap(),
        vec![MediaPacket::EndOfSequence { track: 0, codec: v }]
    );
    let a = Codec::Unknown {
        video: false,
        fourcc: *b"ipcm",
    };
    assert_eq!(
        audio(b"\x95\x01ipcm\x02\x10").unwrap(),
        vec![audio_frame(2, a, b"\x01\x10")]
    );
}

#[test]
fn ex_audio_multitrack() {
    // OneTrack, as FFmpeg writes the second AAC track.
    let got = audio(b"\x95\x00mp4a\x01\x11\x88").unwrap();
    assert_eq!(got, vec![config(1, Codec::Aac, &[0x11, 0x88])]);
    // ManyTracks CodedFrames of Opus.
    let got = audio(b"\x95\x11Opus\x00\x00\x00\x01\xaa\x01\x00\x00\x02\xbb\xcc").unwrap();
    assert_eq!(
        got,
        vec![
            audio_frame(0, Codec::Opus, &[0xaa]),
            audio_frame(1, Codec::Opus, &[0xbb, 0xcc]),
        ]
    );
    // MultichannelConfig inside a multitrack body, for each track.
    let got = audio(b"\x95\x14Opus\x00\x00\x00\x02\x00\x02\x01\x00\x00\x02\x00\x01").unwrap();
    assert_eq!(
        got,
        vec![
            channels(0, Codec::Opus, b"\x00\x02"),
            channels(1, Codec::Opus, b"\x00\x01")
        ]
    );
}

// ---- negative vectors ----

#[test]
fn truncated_headers_are_refused() {
    let cases: &[(&[u8], usize, usize)] = &[
        (&[0x17], 1, 0),
        (&[0x17, 0x01, 0x00, 0x00], 3, 2),
        (b"\x91hvc", 4, 3),
        (b"\x91hvc1\x00\x00", 3, 2),
        (b"\x96", 1, 0),
        (b"\x96\x11hvc1", 1, 0),
        (b"\x96\x11hvc1\x00\x00\x00", 3, 2),
        (b"\x96\x11hvc1\x00\x00\x00\x05\x01", 5, 1),
        (b"\x96\x20avc1\x00\x00\x00\x00hvc", 4, 3),
        (b"\x97", 1, 0),
        (b"\x97\x05\x00", 6, 1),
        (b"\x97\xff\x01", 2, 1),
        (b"\x97\x00\x00", 1, 0),
    ];
    for (body, need, have) in cases {
        assert_eq!(
            video(body).unwrap_err(),
            FlvError::Truncated {
                need: *need,
                have: *have
            },
            "{body:02x?}"
        );
    }
    assert_eq!(
        audio(&[0xaf]).unwrap_err(),
        FlvError::Truncated { need: 1, have: 0 }
    );
    assert_eq!(
        audio(b"\x90Op").unwrap_err(),
        FlvError::Truncated { need: 4, have: 2 }
    );
    assert_eq!(
        audio(b"\x95\x10Opus\x00\x00\x00\x09\x01").unwrap_err(),
        FlvError::Truncated { need: 9, have: 1 }
    );
}

#[test]
fn unknown_values_are_refused() {
    // An audio FourCC in a video tag and the reverse.
    assert_eq!(
        video(b"\x90Opus").unwrap_err(),
        FlvError::UnknownFourCc(*b"Opus")
    );
    assert_eq!(
        audio(b"\x90hvc1").unwrap_err(),
        FlvError::UnknownFourCc(*b"hvc1")
    );
    for packet_type in 8..=15u8 {
        let mut body = vec![0x90 | packet_type];
        body.extend_from_slice(b"hvc1");
        assert_eq!(
            video(&body).unwrap_err(),
            FlvError::UnknownPacketType(packet_type)
        );
    }
    for packet_type in [3u8, 6, 8, 15] {
        let mut body = vec![0x90 | packet_type];
        body.extend_from_slice(b"Opus");
        assert_eq!(
            audio(&body).unwrap_err(),
            FlvError::UnknownPacketType(packet_type)
        );
    }
    for codec_id in [0u8, 1, 8, 9, 10, 11, 13, 14, 15] {
        assert_eq!(
            video(&[0x10 | codec_id, 0, 0, 0, 0]).unwrap_err(),
            FlvError::UnknownCodecId(codec_id)
        );
    }
    for frame_type in [0u8, 6, 7] {
        assert_eq!(
            video(&[frame_type << 4 | 7, 1, 0, 0, 0]).unwrap_err(),
            FlvError::UnknownFrameType(frame_type)
        );
        let mut body = vec![0x80 | frame_type << 4 | 1];
        body.extend_from_slice(b"av01");
        assert_eq!(
            video(&body).unwrap_err(),
            FlvError::UnknownFrameType(frame_type)
        );
    }
    assert_eq!(
        video(&[0x17, 0x03, 0, 0, 0]).unwrap_err(),
        FlvError::UnknownPacketType(3)
    );
    assert_eq!(
        audio(&[0xaf, 0x02]).unwrap_err(),
        FlvError::UnknownPacketType(2)
    );
    assert_eq!(
        video(b"\x96\x31avc1\x00").unwrap_err(),
        FlvError::UnknownMultitrackType(3)
    );
    assert_eq!(
        video(b"\x96\x06avc1\x00").unwrap_err(),
        FlvError::NestedMultitrack(6)
    );
    assert_eq!(
        video(b"\x96\x07avc1\x00").unwrap_err(),
        FlvError::NestedMultitrack(7)
    );
    assert_eq!(
        audio(b"\x95\x05Opus\x00").unwrap_err(),
        FlvError::NestedMultitrack(5)
    );
}

#[test]
fn an_error_appends_nothing() {
    let mut out = vec![MediaPacket::EndOfSequence {
        track: 9,
        codec: Codec::Vp8,
    }];
    // First track valid, second track's FourCC an audio one.
    let body = Bytes::from_static(b"\x96\x20avc1\x00\x00\x00\x01\x01Opus\x01\x00\x00\x00");
    assert_eq!(
        parse_video(&body, &mut out).unwrap_err(),
        FlvError::UnknownFourCc(*b"Opus")
    );
    assert_eq!(out.len(), 1);
    let body = Bytes::from_static(b"\x95\x11Opus\x00\x00\x00\x01\xaa\x01\x00\x00\x09");
    assert!(parse_audio(&body, &mut out).is_err());
    assert_eq!(out.len(), 1);
}

#[test]
fn errors_display_clearly() {
    assert_eq!(
        FlvError::UnknownFourCc(*b"a\x00\xffz").to_string(),
        "unknown FourCC a\\x00\\xffz"
    );
    assert_eq!(
        FlvError::Truncated { need: 3, have: 1 }.to_string(),
        "FLV tag body truncated: need 3 more bytes, have 1"
    );
}
