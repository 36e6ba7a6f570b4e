//! Tag-body headers and FLV file framing: golden bytes.

use bytes::{Bytes, BytesMut};
use proto::flv::{
    write_audio_header, write_file_header, write_media_header, write_previous_tag_size,
    write_tag_header, write_video_header, PacketKind, FILE_HEADER_LEN, TAG_HEADER_LEN,
};
use proto::media::Codec;

fn vh(codec: Codec, track: u8, kind: PacketKind) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_video_header(codec, track, kind, &mut out);
    out.to_vec()
}

fn ah(codec: Codec, track: u8, kind: PacketKind) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_audio_header(codec, track, kind, &mut out);
    out.to_vec()
}

const KEY: PacketKind = PacketKind::Frame {
    keyframe: true,
    disposable: false,
    cts: 0,
};

fn inter(cts: i32) -> PacketKind {
    PacketKind::Frame {
        keyframe: false,
        disposable: false,
        cts,
    }
}

#[test]
fn h264_uses_the_legacy_form_on_track_0() {
    assert_eq!(vh(Codec::H264, 0, PacketKind::Config), [0x17, 0, 0, 0, 0]);
    assert_eq!(vh(Codec::H264, 0, KEY), [0x17, 1, 0, 0, 0]);
    assert_eq!(vh(Codec::H264, 0, inter(200)), [0x27, 1, 0, 0, 0xc8]);
    assert_eq!(vh(Codec::H264, 0, inter(-1)), [0x27, 1, 0xff, 0xff, 0xff]);
    assert_eq!(
        vh(
            Codec::H264,
            0,
            PacketKind::Frame {
                keyframe: false,
                disposable: true,
                cts: 0
            }
        ),
        [0x37, 1, 0, 0, 0]
    );
    assert_eq!(
        vh(Codec::H264, 0, PacketKind::EndOfSequence),
        [0x17, 2, 0, 0, 0]
    );
}

#[test]
fn cts_is_clamped_to_24_bits() {
    assert_eq!(
        vh(Codec::H264, 0, inter(0x80_0000)),
        [0x27, 1, 0x7f, 0xff, 0xff]
    );
    assert_eq!(vh(Codec::H264, 0, inter(i32::MIN)), [0x27, 1, 0x80, 0, 0]);
    assert_eq!(
        vh(Codec::H265, 0, inter(-0x80_0000)),
        b"\xa1hvc1\x80\x00\x00"
    );
}

#[test]
fn enhanced_video_headers() {
    assert_eq!(vh(Codec::H265, 0, PacketKind::Config), b"\x90hvc1");
    assert_eq!(vh(Codec::H265, 0, KEY), b"\x93hvc1");
    assert_eq!(vh(Codec::H265, 0, inter(100)), b"\xa1hvc1\x00\x00\x64");
    assert_eq!(vh(Codec::H265, 0, PacketKind::EndOfSequence), b"\x92hvc1");
    assert_eq!(vh(Codec::H266, 0, inter(0)), b"\xa3vvc1");
    assert_eq!(vh(Codec::H266, 0, inter(-2)), b"\xa1vvc1\xff\xff\xfe");
    // AV1, VP9, VP8: CodedFrames with no cts, whatever the cts.
    assert_eq!(vh(Codec::Av1, 0, PacketKind::Config), b"\x90av01");
    assert_eq!(vh(Codec::Av1, 0, inter(33)), b"\xa1av01");
    assert_eq!(vh(Codec::Vp9, 0, KEY), b"\x91vp09");
    assert_eq!(
        vh(
            Codec::Vp8,
            0,
            PacketKind::Frame {
                keyframe: false,
                disposable: true,
                cts: 0
            }
        ),
        b"\xb1vp08"
    );
}

#[test]
fn other_tracks_use_a_one_track_multitrack_header() {
    assert_eq!(vh(Codec::H264, 1, PacketKind::Config), b"\x96\x00avc1\x01");
    assert_eq!(
        vh(Codec::H264, 1, inter(200)),
        b"\xa6\x01avc1\x01\x00\x00\xc8"
    );
    assert_eq!(vh(Codec::H264, 2, inter(0)), b"\xa6\x03avc1\x02");
    assert_eq!(vh(Codec::Av1, 7, KEY), b"\x96\x01av01\x07");
    assert_eq!(
        vh(Codec::Vp9, 255, PacketKind::EndOfSequence),
        b"\x96\x02vp09\xff"
    );
    assert_eq!(ah(Codec::Aac, 1, PacketKind::Config), b"\x95\x00mp4a\x01");
    assert_eq!(ah(Codec::Opus, 3, KEY), b"\x95\x01Opus\x03");
    assert_eq!(ah(Codec::Mp3, 2, KEY), b"\x95\x01.mp3\x02");
}

#[test]
fn legacy_video_writes_its_byte() {
    let h263 = Codec::LegacyVideo { codec_id: 2 };
    assert_eq!(vh(h263, 0, KEY), [0x12]);
    assert_eq!(vh(h263, 0, inter(0)), [0x22]);
    assert_eq!(
        vh(
            Codec::LegacyVideo { codec_id: 4 },
            3,
            PacketKind::Frame {
                keyframe: false,
                disposable: true,
                cts: 9
            }
        ),
        [0x34]
    );
}

#[test]
fn audio_headers() {
    assert_eq!(ah(Codec::Aac, 0, PacketKind::Config), [0xaf, 0x00]);
    assert_eq!(ah(Codec::Aac, 0, KEY), [0xaf, 0x01]);
    assert_eq!(ah(Codec::Aac, 0, PacketKind::EndOfSequence), b"\x92mp4a");
    assert_eq!(ah(Codec::Mp3, 0, KEY), [0x2f]);
    assert_eq!(ah(Codec::Mp3, 0, PacketKind::Config), b"\x90.mp3");
    assert_eq!(ah(Codec::Opus, 0, PacketKind::Config), b"\x90Opus");
    assert_eq!(ah(Codec::Opus, 0, inter(40)), b"\x91Opus");
    assert_eq!(ah(Codec::Flac, 0, PacketKind::Config), b"\x90fLaC");
    assert_eq!(ah(Codec::Ac3, 0, KEY), b"\x91ac-3");
    assert_eq!(ah(Codec::Eac3, 0, PacketKind::EndOfSequence), b"\x92ec-3");
    let pcm = Codec::LegacyAudio { header: 0x3e };
    assert_eq!(ah(pcm, 0, KEY), [0x3e]);
    assert_eq!(ah(pcm, 4, PacketKind::Config), [0x3e]);
}

#[test]
fn the_wrong_kind_writes_nothing() {
    assert_eq!(vh(Codec::Aac, 0, KEY), b"");
    assert_eq!(vh(Codec::LegacyAudio { header: 0x2f }, 0, KEY), b"");
    assert_eq!(ah(Codec::H264, 0, KEY), b"");
    assert_eq!(ah(Codec::LegacyVideo { codec_id: 2 }, 0, KEY), b"");
}

#[test]
fn file_framing() {
    let mut out = BytesMut::new();
    write_file_header(true, true, &mut out);
    assert_eq!(&out[..], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
    assert_eq!(out.len(), FILE_HEADER_LEN);
    out.clear();
    write_file_header(true, false, &mut out);
    assert_eq!(out[4], 0x04);
    out.clear();
    write_file_header(false, true, &mut out);
    assert_eq!(out[4], 0x01);

    out.clear();
    write_tag_header(9, 0x12_3456, 0x0102_0304, &mut out);
    assert_eq!(
        &out[..],
        [0x09, 0x12, 0x34, 0x56, 0x02, 0x03, 0x04, 0x01, 0, 0, 0]
    );
    assert_eq!(out.len(), TAG_HEADER_LEN);

    out.clear();
    write_previous_tag_size(100, &mut out);
    assert_eq!(&out[..], [0, 0, 0, 111]);
}

fn mh(codec: Codec, track: u8, kind: PacketKind, nanos: u32, payload: &'static [u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let rest = write_media_header(
        codec,
        track,
        kind,
        nanos,
        &Bytes::from_static(payload),
        &mut out,
    );
    out.extend_from_slice(&rest);
    out.to_vec()
}

#[test]
fn nano_offsets_are_written_as_modex() {
    // H.264 leaves the legacy form for it: ModEx, size-1 2, 1000 ns, then type 0 <<4 |
    // CodedFrames, avc1, cts 2, payload.
    assert_eq!(
        mh(Codec::H264, 0, inter(2), 1000, b"\xaa"),
        b"\xa7\x02\x00\x03\xe8\x01avc1\x00\x00\x02\xaa"
    );
    // On another track the ModEx wraps the Multitrack header.
    assert_eq!(
        mh(Codec::Opus, 3, KEY, 5, b"\xbb"),
        b"\x97\x02\x00\x00\x05\x05\x01Opus\x03\xbb"
    );
    // AAC too, and only frames carry it.
    assert_eq!(
        mh(Codec::Aac, 0, KEY, 7, b"\x01"),
        b"\x97\x02\x00\x00\x07\x01mp4a\x01"
    );
    assert_eq!(
        mh(Codec::Aac, 0, PacketKind::Config, 7, b"\x12"),
        b"\xaf\x00\x12"
    );
}

#[test]
fn metadata_channel_config_and_unknown_fourccs() {
    // Video Metadata on H.264 track 0 needs the E-RTMP form.
    assert_eq!(
        mh(Codec::H264, 0, PacketKind::Metadata, 0, b"\x02"),
        b"\xd4avc1\x02"
    );
    assert_eq!(
        mh(Codec::H265, 2, PacketKind::Metadata, 0, b"\x02"),
        b"\xd6\x04hvc1\x02\x02"
    );
    assert_eq!(mh(Codec::Aac, 0, PacketKind::Metadata, 0, b"\x02"), b"\x02");
    assert_eq!(
        mh(Codec::Opus, 0, PacketKind::ChannelConfig, 0, b"\x00\x02"),
        b"\x94Opus\x00\x02"
    );
    assert_eq!(
        mh(Codec::H265, 0, PacketKind::ChannelConfig, 0, b"\x00"),
        b"\x00"
    );
    let v = Codec::Unknown {
        video: true,
        fourcc: *b"xyz1",
    };
    // The packet type comes from the payload's first byte.
    assert_eq!(mh(v, 0, inter(0), 0, b"\x03\xaa"), b"\xa3xyz1\xaa");
    assert_eq!(
        mh(v, 0, KEY, 0, b"\x01\x00\x00\x01\xaa"),
        b"\x91xyz1\x00\x00\x01\xaa"
    );
    assert_eq!(mh(v, 0, PacketKind::Config, 0, b"\x01"), b"\x90xyz1\x01");
    let a = Codec::Unknown {
        video: false,
        fourcc: *b"ipcm",
    };
    assert_eq!(mh(a, 1, KEY, 0, b"\x01\x10"), b"\x95\x01ipcm\x01\x10");
}
