//! FLV files written by FFmpeg 9 (tests/vectors/flv/README.md): every audio and video tag
//! parses, yields the codecs expected, and writing the header for what was parsed then
//! appending the payload gives back FFmpeg's exact tag body.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use proto::flv::{
    parse_audio, parse_video, read_file, write_audio_header, write_video_header, FileTag,
    MediaPacket, PacketKind, TAG_AUDIO, TAG_VIDEO,
};
use proto::media::Codec;

fn read_tags(name: &str) -> Vec<FileTag> {
    let path = format!("{}/tests/vectors/flv/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
    let file = read_file(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(file.complete_len, data.len(), "{name}: trailing bytes");
    file.tags
}

/// Header for a parsed packet, or `None` for packets this side never writes.
fn rewrite(p: &MediaPacket, video: bool) -> Option<(BytesMut, Bytes)> {
    let (codec, track, kind, payload) = match p {
        MediaPacket::Config {
            track,
            codec,
            config,
        } => (*codec, *track, PacketKind::Config, config.clone()),
        MediaPacket::Frame {
            track,
            codec,
            cts,
            keyframe,
            disposable,
            data,
        } => (
            *codec,
            *track,
            PacketKind::Frame {
                keyframe: *keyframe,
                disposable: *disposable,
                cts: *cts,
            },
            data.clone(),
        ),
        MediaPacket::EndOfSequence { track, codec } => {
            (*codec, *track, PacketKind::EndOfSequence, Bytes::new())
        }
        MediaPacket::VideoMetadata { track, codec, data } => {
            (*codec, *track, PacketKind::Metadata, data.clone())
        }
        MediaPacket::ChannelConfig {
            track,
            codec,
            config,
        } => (*codec, *track, PacketKind::ChannelConfig, config.clone()),
        MediaPacket::TimestampOffset { .. } => return None,
    };
    let mut out = BytesMut::new();
    if video {
        write_video_header(codec, track, kind, &mut out);
    } else {
        write_audio_header(codec, track, kind, &mut out);
    }
    Some((out, payload))
}

struct Summary {
    codecs: BTreeSet<(u8, &'static str)>,
    configs: usize,
    frames: usize,
    keyframes: usize,
    metadata: usize,
}

fn check(name: &str) -> Summary {
    let mut s = Summary {
        codecs: BTreeSet::new(),
        configs: 0,
        frames: 0,
        keyframes: 0,
        metadata: 0,
    };
    let mut out = Vec::new();
    // Per (kind, track): whether a config or frame was seen, to check configs come first.
    let mut started = BTreeSet::new();
    for (i, tag) in read_tags(name).iter().enumerate() {
        out.clear();
        let video = match tag.tag_type {
            TAG_VIDEO => true,
            TAG_AUDIO => false,
            _ => continue,
        };
        let r = if video {
            parse_video(&tag.body, &mut out)
        } else {
            parse_audio(&tag.body, &mut out)
        };
        r.unwrap_or_else(|e| panic!("{name} tag {i}: {e}"));
        for p in &out {
            s.codecs.insert((p.track(), p.codec().name()));
            match p {
                MediaPacket::Config { .. } => {
                    s.configs += 1;
                    started.insert((video, p.track()));
                }
                MediaPacket::Frame { keyframe, .. } => {
                    s.frames += 1;
                    s.keyframes += usize::from(*keyframe);
                    let legacy = matches!(p.codec(), Codec::Mp3 | Codec::LegacyVideo { .. });
                    assert!(
                        legacy || started.contains(&(video, p.track())),
                        "{name} tag {i}: frame before config"
                    );
                }
                MediaPacket::VideoMetadata { .. } => s.metadata += 1,
                MediaPacket::EndOfSequence { .. }
                | MediaPacket::ChannelConfig { .. }
                | MediaPacket::TimestampOffset { .. } => {}
            }
        }
        // Whole-tag identity: one packet, header + payload == body. FFmpeg's MP3 header
        // byte carries the real rate/size/channels where this side writes a fixed 0x2F.
        if let [p] = &out[..] {
            if p.codec() == Codec::Mp3 {
                continue;
            }
            if let Some((mut header, payload)) = rewrite(p, video) {
                header.extend_from_slice(&payload);
                assert_eq!(
                    &header[..],
                    &tag.body[..],
                    "{name} tag {i}: rewritten body differs"
                );
            }
        }
        // Payloads are slices of the tag body, not copies.
        let range = tag.body.as_ptr_range();
        for p in &out {
            if let MediaPacket::Frame { data, .. } = p {
                assert!(data.is_empty() || range.contains(&data.as_ptr()));
            }
        }
    }
    s
}

fn codecs(s: &Summary) -> Vec<(u8, &'static str)> {
    s.codecs.iter().copied().collect()
}

#[test]
fn h264_aac() {
    let s = check("h264_aac.flv");
    assert_eq!(codecs(&s), [(0, "aac"), (0, "h264")]);
    assert_eq!(s.configs, 2);
    assert!(s.frames > 5 && s.keyframes > 1);
}

#[test]
fn hevc_aac() {
    let s = check("hevc_aac.flv");
    assert_eq!(codecs(&s), [(0, "aac"), (0, "h265")]);
    assert_eq!(s.configs, 2);
    assert_eq!(s.metadata, 1);
}

#[test]
fn av1_opus() {
    let s = check("av1_opus.flv");
    assert_eq!(codecs(&s), [(0, "av1"), (0, "opus")]);
    // FFmpeg sends an empty AV1 sequence start, then the real one with the first frame.
    assert_eq!(s.configs, 3);
    assert_eq!(s.metadata, 1);
}

#[test]
fn vp9_flac() {
    let s = check("vp9_flac.flv");
    assert_eq!(codecs(&s), [(0, "flac"), (0, "vp9")]);
    // FFmpeg repeats the FLAC STREAMINFO at the end, with the sample count filled in.
    assert_eq!(s.configs, 3);
}

#[test]
fn vvc() {
    let s = check("vvc.flv");
    assert_eq!(codecs(&s), [(0, "h266")]);
    assert_eq!(s.configs, 1);
}

#[test]
fn ac3_eac3_mp3() {
    assert_eq!(codecs(&check("h264_ac3.flv")), [(0, "ac3"), (0, "h264")]);
    assert_eq!(codecs(&check("h264_eac3.flv")), [(0, "eac3"), (0, "h264")]);
    assert_eq!(codecs(&check("h264_mp3.flv")), [(0, "h264"), (0, "mp3")]);
}

#[test]
fn sorenson_h263() {
    let s = check("h263.flv");
    assert_eq!(codecs(&s), [(0, "flv-video")]);
    assert_eq!(s.keyframes, 1);
}

#[test]
fn multitrack() {
    let s = check("multitrack.flv");
    assert_eq!(
        codecs(&s),
        [(0, "aac"), (0, "h264"), (1, "aac"), (1, "h264")]
    );
    assert_eq!(s.configs, 4);
}
