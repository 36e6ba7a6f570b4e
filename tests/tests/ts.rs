//! `proto::ts` against FFmpeg 9.
//!
//! Demuxer: FFmpeg (and GStreamer's mpegtsmux) write TS files of every carried codec pair;
//! FFmpeg lists every packet of them (`-c copy -f framecrc`, timestamps kept with
//! `-copyts`); the demuxer's frames must match it frame for frame (count per stream, DTS,
//! PTS, keyframe flag).
//!
//! Round trip: the frames are written back as TS by the muxer and as FLV by `proto::flv`;
//! FFmpeg decodes both with no errors and exactly as many frames as from the original,
//! and the demuxer reads the muxer's TS back into the very same frames.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::BytesMut;
use e2e::ffmpeg::{decode_file, ffmpeg_path};
use e2e::tools::{gst_has, skip_without, which};
use proto::flv::{self, PacketKind};
use proto::media::Codec;
use proto::ts::{DemuxEvent, Demuxer, FrameReader, MuxOptions, Muxer, TsError, TsEvent};

/// One frame as both sides see it: (dts, pts, keyframe), 90 kHz.
type Row = (i64, i64, bool);

/// Per stream: codec kind (video?) and its rows in decode order.
#[derive(Debug, Default)]
struct View {
    video: Vec<Row>,
    audio: Vec<Row>,
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// FFmpeg encodes 2 s of 64x64 test pattern at 25 fps and a 48 kHz sine into `name`
/// (the container from its extension).
fn ffmpeg_encode(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new(ffmpeg_path());
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", "testsrc=size=64x64:rate=25:duration=2"])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=48000:duration=2"])
        .args(["-pix_fmt", "yuv420p", "-threads", "1"])
        .args(args)
        .arg("-y")
        .arg(&path);
    run(&mut cmd, &format!("ffmpeg writing {name}"));
    path
}

/// FFmpeg's packets of `path`, per media type, as framecrc lists them.
fn ffmpeg_view(path: &Path) -> View {
    let text = run(
        Command::new(ffmpeg_path())
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-copyts",
                "-i",
            ])
            .arg(path)
            .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"]),
        "ffmpeg framecrc",
    );
    let mut kinds = BTreeMap::new();
    let mut view = View::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#media_type ") {
            let (i, k) = rest.split_once(':').expect("media_type line");
            kinds.insert(i.trim().to_string(), k.trim() == "video");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let video = kinds[f[0]];
        let key = !f.iter().any(|x| {
            x.strip_prefix("F=0x")
                .is_some_and(|v| u32::from_str_radix(v, 16).unwrap() & 1 == 0)
        });
        let row = (f[1].parse().unwrap(), f[2].parse().unwrap(), key);
        if video {
            view.video.push(row);
        } else {
            view.audio.push(row);
        }
    }
    view
}

/// What `proto::ts` makes of `path`, fed in uneven pieces; also the codecs it configured.
fn our_view(path: &Path) -> (View, Vec<Codec>) {
    let data = std::fs::read(path).unwrap();
    let mut reader = FrameReader::default();
    let mut view = View::default();
    let mut codecs = Vec::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut pos = 0;
    let mut collect = |reader: &mut FrameReader, view: &mut View| {
        while let Some(e) = reader.poll_event() {
            match e {
                TsEvent::Config { codec, .. } => {
                    if !codecs.contains(&codec) {
                        codecs.push(codec);
                    }
                }
                TsEvent::Frame(f) => {
                    assert_eq!(f.track, 0);
                    let row = (f.dts, f.dts + i64::from(f.cts), f.is_keyframe());
                    if f.is_video() {
                        view.video.push(row);
                    } else {
                        view.audio.push(row);
                    }
                }
                other => panic!("{}: unexpected {other:?}", path.display()),
            }
        }
    };
    while pos < data.len() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 1500) as usize + 1;
        let end = (pos + n).min(data.len());
        reader.handle_input(&data[pos..end]);
        collect(&mut reader, &mut view);
        pos = end;
    }
    reader.finish();
    collect(&mut reader, &mut view);
    (view, codecs)
}

/// Compares both views; FFmpeg's timestamps are absolute, ours start at 0, so ours are
/// shifted by the difference of the first video DTS.
fn compare(path: &Path, want_codecs: &[Codec], bframes: bool) {
    let theirs = ffmpeg_view(path);
    let (ours, codecs) = our_view(path);
    let name = path.file_name().unwrap().to_string_lossy();
    let mut codecs = codecs;
    let mut want_codecs = want_codecs.to_vec();
    codecs.sort_by_key(|c| c.name());
    want_codecs.sort_by_key(|c| c.name());
    assert_eq!(codecs, want_codecs, "{name}: codecs");
    eprintln!(
        "{name}: {} video ({} keyframes), {} audio frames equal to FFmpeg's",
        theirs.video.len(),
        theirs.video.iter().filter(|r| r.2).count(),
        theirs.audio.len()
    );
    assert!(
        theirs.video.len() >= 45,
        "{name}: FFmpeg saw {} video frames",
        theirs.video.len()
    );
    assert!(
        theirs.audio.len() >= 40,
        "{name}: FFmpeg saw {} audio frames",
        theirs.audio.len()
    );
    let shift = theirs.video[0].0 - ours.video[0].0;
    for (kind, t, o) in [
        ("video", &theirs.video, &ours.video),
        ("audio", &theirs.audio, &ours.audio),
    ] {
        let shifted: Vec<Row> = o
            .iter()
            .map(|&(d, p, k)| (d + shift, p + shift, k))
            .collect();
        assert_eq!(
            shifted.len(),
            t.len(),
            "{name}: {kind} frame count: ours {}, FFmpeg's {}",
            shifted.len(),
            t.len()
        );
        for (i, (a, b)) in shifted.iter().zip(t.iter()).enumerate() {
            assert_eq!(
                a, b,
                "{name}: {kind} frame {i} (dts, pts, key): ours vs FFmpeg's"
            );
        }
    }
    // Keyframes are where FFmpeg put them (every 10th frame), not only the first.
    assert!(
        ours.video.iter().filter(|r| r.2).count() >= 4,
        "{name}: keyframes"
    );
    assert_eq!(
        ours.video.iter().any(|r| r.1 > r.0),
        bframes,
        "{name}: composition offsets present iff B-frames"
    );
    round_trip(path, 0);
}

/// All events of a file, read in one piece.
fn events(path: &Path) -> Vec<TsEvent> {
    let mut reader = FrameReader::default();
    reader.handle_input(&std::fs::read(path).unwrap());
    reader.finish();
    std::iter::from_fn(|| reader.poll_event()).collect()
}

/// Writes the frames of `path` as TS (muxer) and FLV; FFmpeg decodes each cleanly and
/// gets as many frames as from the original (less `lost_video` frames the reader dropped
/// as damaged); the TS reads back to the same events.
fn round_trip(path: &Path, lost_video: usize) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let original = decode_file(path);
    assert!(
        original.success && original.errors.is_empty(),
        "{name}: {}",
        original.description
    );
    // Only configurations and frames are written; damage reports (a joined file has
    // continuity errors at the joint) are not.
    let events: Vec<TsEvent> = events(path)
        .into_iter()
        .filter(|e| matches!(e, TsEvent::Config { .. } | TsEvent::Frame(_)))
        .collect();

    let mut mux = Muxer::new(90_000, MuxOptions::default());
    let mut ts = BytesMut::new();
    let mut flv_out = BytesMut::new();
    flv::write_file_header(true, true, &mut flv_out);
    let mut tag = BytesMut::new();
    for e in &events {
        tag.clear();
        let (video, ms) = match e {
            TsEvent::Config {
                track,
                codec,
                config,
            } => {
                mux.set_config(*track, *codec, config).unwrap();
                let video = codec.kind() == proto::media::TrackKind::Video;
                if video {
                    flv::write_video_header(*codec, *track, PacketKind::Config, &mut tag);
                } else {
                    flv::write_audio_header(*codec, *track, PacketKind::Config, &mut tag);
                }
                tag.extend_from_slice(config);
                (video, None)
            }
            TsEvent::Frame(f) => {
                mux.write_frame(f, &mut ts).unwrap();
                let codec = current_codec(&events, e);
                let ms = f.dts.div_euclid(90);
                let kind = PacketKind::Frame {
                    keyframe: f.is_keyframe(),
                    disposable: false,
                    cts: ((f.dts + i64::from(f.cts)).div_euclid(90) - ms) as i32,
                };
                if f.is_video() {
                    flv::write_video_header(codec, f.track, kind, &mut tag);
                } else {
                    flv::write_audio_header(codec, f.track, kind, &mut tag);
                }
                tag.extend_from_slice(&f.payload);
                (f.is_video(), Some(ms))
            }
            other => panic!("{name}: {other:?}"),
        };
        let kind = if video {
            flv::TAG_VIDEO
        } else {
            flv::TAG_AUDIO
        };
        let ms = ms.unwrap_or(0).max(0) as u32;
        flv::write_tag_header(kind, tag.len() as u32, ms, &mut flv_out);
        flv_out.extend_from_slice(&tag);
        flv::write_previous_tag_size(tag.len() as u32, &mut flv_out);
    }
    let dir = path.parent().unwrap();
    for (ext, bytes) in [("rt.ts", &ts), ("rt.flv", &flv_out)] {
        let out = dir.join(format!("{name}.{ext}"));
        std::fs::write(&out, bytes).unwrap();
        let report = decode_file(&out);
        assert!(
            report.success && report.errors.is_empty(),
            "{name} -> {ext}: FFmpeg reported errors\n{}",
            report.description
        );
        let mut want = original.counts;
        want.video -= lost_video;
        assert_eq!(
            report.counts, want,
            "{name} -> {ext}: decoded frames (original: {:?})",
            original.counts
        );
        eprintln!(
            "{name} -> {ext}: FFmpeg decoded {:?}, as from the original",
            report.counts
        );
        if ext == "rt.ts" {
            assert_eq!(
                self::events(&out),
                events,
                "{name}: TS written and read back"
            );
        }
    }
}

/// The codec of the track `frame` belongs to: the last `Config` for it before it.
fn current_codec(events: &[TsEvent], frame: &TsEvent) -> Codec {
    let TsEvent::Frame(f) = frame else {
        unreachable!()
    };
    let at = events.iter().position(|e| std::ptr::eq(e, frame)).unwrap();
    events[..at]
        .iter()
        .rev()
        .find_map(|e| match e {
            TsEvent::Config { track, codec, .. } if *track == f.track && codec.kind() == f.kind => {
                Some(*codec)
            }
            _ => None,
        })
        .expect("a config before every frame")
}

/// Audio PES packets and audio frames in a file (to tell one frame per PES from several).
fn audio_pes_and_frames(path: &Path) -> (usize, usize) {
    let mut d = Demuxer::default();
    d.handle_input(&std::fs::read(path).unwrap());
    d.finish();
    let mut pes = 0;
    while let Some(e) = d.poll_event() {
        if let DemuxEvent::Pes(p) = e {
            pes += usize::from(!p.kind.is_video());
        }
    }
    (pes, our_view(path).0.audio.len())
}

const X264: &[&str] = &[
    "-c:v", "libx264", "-preset", "veryfast", "-g", "10", "-bf", "0",
];

#[test]
fn h264_aac_bframes_several_adts_per_pes() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = X264.to_vec();
    args.extend(["-bf", "2", "-c:a", "aac", "-b:a", "32k"]);
    let ts = ffmpeg_encode(dir.path(), "h264_aac.ts", &args);
    compare(&ts, &[Codec::H264, Codec::Aac], true);
    let (pes, frames) = audio_pes_and_frames(&ts);
    assert!(pes * 3 < frames, "{pes} audio PES for {frames} frames");
}

#[test]
fn h264_aac_no_bframes_one_adts_per_pes() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = X264.to_vec();
    args.extend([
        "-bf",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "32k",
        "-pes_payload_size",
        "0",
    ]);
    let ts = ffmpeg_encode(dir.path(), "h264_aac_nob.ts", &args);
    compare(&ts, &[Codec::H264, Codec::Aac], false);
    let (pes, frames) = audio_pes_and_frames(&ts);
    // FFmpeg still pairs a few frames at the start; the rest go one per PES.
    assert!(
        pes * 10 >= frames * 8,
        "{pes} audio PES for {frames} frames"
    );
}

#[test]
fn hevc_aac_bframes() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-g",
        "10",
        "-x265-params",
        "log-level=error:pools=1:frame-threads=1:bframes=2",
        "-c:a",
        "aac",
        "-b:a",
        "32k",
    ];
    compare(
        &ffmpeg_encode(dir.path(), "hevc_aac.ts", &args),
        &[Codec::H265, Codec::Aac],
        true,
    );
}

/// libx264 video (B-frames when `bframes`) with `audio` from FFmpeg's encoder `encoder`.
fn x264_with(name: &str, encoder: &str, audio: Codec, bframes: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = X264.to_vec();
    args.extend(["-bf", if bframes { "2" } else { "0" }]);
    args.extend(["-c:a", encoder, "-b:a", "64k"]);
    compare(
        &ffmpeg_encode(dir.path(), name, &args),
        &[Codec::H264, audio],
        bframes,
    );
}

#[test]
fn h264_aac_latm() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = X264.to_vec();
    args.extend(["-c:a", "aac", "-b:a", "32k", "-mpegts_flags", "latm"]);
    compare(
        &ffmpeg_encode(dir.path(), "h264_latm.ts", &args),
        &[Codec::H264, Codec::Aac],
        false,
    );
}

#[test]
fn h264_mp3() {
    x264_with("h264_mp3.ts", "libmp3lame", Codec::Mp3, false);
}

#[test]
fn h264_ac3_and_eac3() {
    x264_with("h264_ac3.ts", "ac3", Codec::Ac3, true);
    x264_with("h264_eac3.ts", "eac3", Codec::Eac3, true);
}

#[test]
fn h264_opus() {
    x264_with("h264_opus.ts", "libopus", Codec::Opus, false);
}

/// One GStreamer case: FFmpeg encodes with `video` / `audio` arguments into MP4 (which,
/// unlike Matroska, keeps decode timestamps), GStreamer parses each elementary stream
/// with the named parser and remuxes with mpegtsmux; the demuxer agrees with FFmpeg on
/// the result.
struct Gst {
    video: &'static str,
    video_parser: &'static str,
    audio: &'static str,
    audio_parser: &'static str,
    codecs: [Codec; 2],
}

fn gstreamer(case: Gst) {
    let elements = [
        "mpegtsmux",
        "matroskademux",
        case.video_parser,
        case.audio_parser,
    ];
    if skip_without(
        "GStreamer mpegtsmux, matroskademux and the parsers",
        which("gst-launch-1.0").is_some() && elements.iter().all(|e| gst_has(e)),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = case.video.split(' ').collect();
    args.extend(case.audio.split(' '));
    let mp4 = ffmpeg_encode(dir.path(), "in.mp4", &args);
    let ts = dir.path().join("gst.ts");
    let pipeline = format!(
        "filesrc location={} ! qtdemux name=d mpegtsmux name=m ! filesink location={} \
         d.video_0 ! queue ! {} ! m. d.audio_0 ! queue ! {} ! m.",
        mp4.display(),
        ts.display(),
        case.video_parser,
        case.audio_parser,
    );
    run(
        Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split_whitespace()),
        "gst-launch mpegtsmux",
    );
    compare(&ts, &case.codecs, true);
}

const GST_X264: &str = "-c:v libx264 -preset veryfast -g 10 -bf 2";

#[test]
fn gstreamer_h264_aac() {
    gstreamer(Gst {
        video: GST_X264,
        video_parser: "h264parse",
        audio: "-c:a aac -b:a 32k",
        audio_parser: "aacparse",
        codecs: [Codec::H264, Codec::Aac],
    });
}

#[test]
fn gstreamer_hevc_aac() {
    gstreamer(Gst {
        video: "-c:v libx265 -preset ultrafast -g 10 -x265-params log-level=error:pools=1:frame-threads=1:bframes=2",
        video_parser: "h265parse",
        audio: "-c:a aac -b:a 32k",
        audio_parser: "aacparse",
        codecs: [Codec::H265, Codec::Aac],
    });
}

#[test]
fn gstreamer_h264_mp3_ac3_opus() {
    for (audio, audio_parser, codec) in [
        ("-c:a libmp3lame -b:a 64k", "mpegaudioparse", Codec::Mp3),
        ("-c:a ac3 -b:a 64k", "ac3parse", Codec::Ac3),
        ("-c:a libopus -b:a 32k", "opusparse", Codec::Opus),
    ] {
        gstreamer(Gst {
            video: GST_X264,
            video_parser: "h264parse",
            audio,
            audio_parser,
            codecs: [Codec::H264, codec],
        });
    }
}

/// An encoder restarting with new settings: two FFmpeg files of different picture sizes
/// back to back (new SPS/PPS, timestamps starting over). The reader sends a second
/// H.264 configuration at the change, keeps time going forward, and the round trip to TS
/// and FLV still decodes cleanly with every frame.
#[test]
fn parameter_set_change_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut joined = Vec::new();
    for size in ["64x64", "96x80"] {
        let path = dir.path().join(format!("{size}.ts"));
        let mut cmd = Command::new(ffmpeg_path());
        cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!("testsrc=size={size}:rate=25:duration=1"))
            .args(["-f", "lavfi", "-i", "sine=sample_rate=48000:duration=1"])
            .args(["-pix_fmt", "yuv420p", "-threads", "1"])
            .args(X264)
            .args(["-c:a", "aac", "-b:a", "32k", "-y"])
            .arg(&path);
        run(&mut cmd, "ffmpeg writing a part");
        joined.extend_from_slice(&std::fs::read(&path).unwrap());
    }
    let path = dir.path().join("joined.ts");
    std::fs::write(&path, &joined).unwrap();
    let events = events(&path);
    let h264_configs = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                TsEvent::Config {
                    codec: Codec::H264,
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        h264_configs, 2,
        "one configuration per parameter set change"
    );
    let video: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Frame(f) if f.is_video() => Some(f.dts),
            _ => None,
        })
        .collect();
    assert!(video.windows(2).all(|w| w[0] <= w[1]), "{video:?}");
    assert!(video.len() >= 48, "{} video frames", video.len());
    // The first part's last video PES (unbounded) ends where the counters jump: it is
    // dropped as possibly truncated, as the issue asks of continuity errors.
    assert!(events
        .iter()
        .any(|e| matches!(e, TsEvent::Error(TsError::Continuity { .. }))));
    round_trip(&path, 1);
}
