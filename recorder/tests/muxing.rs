//! End to end through the real session and writer, without the hub: FFmpeg makes an FLV
//! source, its tags become the messages the hub would send, and FFmpeg must decode what the
//! recorder wrote with no errors, with every track and the right duration.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use recorder::session::Format;

const AV: &[&str] = &["video", "audio"];

fn source(ff: &Path, dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut all: Vec<&str> = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "3",
        "-g",
        "25",
    ];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-f", "flv", out.to_str().unwrap()]);
    make(ff, &all);
    out
}

fn run(name: &str, args: &[&str], format: Format, ext: &str, types: &[&str]) {
    let Some(ff) = ffmpeg() else {
        return;
    };
    let dir = temp_dir(name);
    let src = source(&ff, &dir, "in.flv", args);
    let msgs = read_flv(&src);
    let out_dir = dir.join("rec");
    let files = closed(&record(
        "live/test",
        &msgs,
        settings(&out_dir, format, None),
    ));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), ext);
    assert!(files[0].starts_with(&out_dir));
    assert_plays(&ff, &files[0], types, 3.0);
    cleanup(&dir);
}

#[test]
fn h264_aac_to_flv() {
    run(
        "h264flv",
        &["-c:v", "libx264", "-bf", "2", "-c:a", "aac"],
        Format::Auto,
        "flv",
        AV,
    );
}

#[test]
fn h264_aac_to_mp4() {
    run(
        "h264mp4",
        &["-c:v", "libx264", "-bf", "2", "-c:a", "aac"],
        Format::Mp4,
        "mp4",
        AV,
    );
}

#[test]
fn h264_mp3_to_flv() {
    run(
        "mp3",
        &["-c:v", "libx264", "-c:a", "libmp3lame", "-ar", "44100"],
        Format::Auto,
        "flv",
        AV,
    );
}

#[test]
fn hevc_aac_to_mp4() {
    run(
        "hevc",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-c:a",
            "aac",
        ],
        Format::Auto,
        "mp4",
        AV,
    );
}

#[test]
fn av1_opus_to_mp4() {
    run(
        "av1",
        &[
            "-c:v",
            "libsvtav1",
            "-svtav1-params",
            "log-level=0",
            "-c:a",
            "libopus",
        ],
        Format::Auto,
        "mp4",
        AV,
    );
}

#[test]
fn vp9_opus_to_mp4() {
    run(
        "vp9",
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-c:a",
            "libopus",
        ],
        Format::Auto,
        "mp4",
        AV,
    );
}

#[test]
fn h264_ac3_to_mp4() {
    run(
        "ac3",
        &["-c:v", "libx264", "-c:a", "ac3"],
        Format::Auto,
        "mp4",
        AV,
    );
}

#[test]
fn h264_flac_to_mp4() {
    run(
        "flac",
        &["-c:v", "libx264", "-c:a", "flac"],
        Format::Auto,
        "mp4",
        AV,
    );
}

#[test]
fn audio_only_aac_to_flv() {
    run(
        "aonly",
        &["-map", "1", "-c:a", "aac"],
        Format::Auto,
        "flv",
        &["audio"],
    );
}

#[test]
fn audio_only_opus_to_mp4() {
    run(
        "aonlyopus",
        &["-map", "1", "-c:a", "libopus"],
        Format::Auto,
        "mp4",
        &["audio"],
    );
}

#[test]
fn video_only_to_mp4() {
    run(
        "vonly",
        &[
            "-map",
            "0",
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
        ],
        Format::Auto,
        "mp4",
        &["video"],
    );
}

#[test]
fn audio_before_first_video_frame_is_kept() {
    let Some(ff) = ffmpeg() else { return };
    let dir = temp_dir("early-audio");
    let src = source(&ff, &dir, "in.flv", &["-c:v", "libx264", "-c:a", "aac"]);
    let mut msgs = read_flv(&src);
    // Shift video 500 ms later, as an encoder whose video starts late would send it.
    for m in &mut msgs {
        if let Msg::Frame {
            video: true, dts, ..
        } = m
        {
            *dts += 500;
        }
    }
    msgs.sort_by_key(|m| match m {
        Msg::Frame { dts, .. } => *dts,
        _ => -1,
    });
    let out = dir.join("rec");
    let files = closed(&record(
        "live/early",
        &msgs,
        settings(&out, Format::Mp4, None),
    ));
    let d = decode(&ff, &files[0]);
    assert!(d.errors.trim().is_empty(), "{}", d.errors);
    let (v, a) = (&d.streams[0], &d.streams[1]);
    assert!(a.1 < 0.05, "audio starts at {}", a.1);
    assert!(
        (v.1 - 0.5).abs() < 0.1,
        "video starts at {} (A/V offset lost)",
        v.1
    );
    cleanup(&dir);
}

#[test]
fn segments_each_play_alone() {
    let Some(ff) = ffmpeg() else { return };
    let dir = temp_dir("segments");
    let src = source(&ff, &dir, "in.flv", &["-c:v", "libx264", "-c:a", "aac"]);
    let msgs = read_flv(&src);
    for (format, ext) in [(Format::Auto, "flv"), (Format::Mp4, "mp4")] {
        let out = dir.join(ext);
        let s = settings(&out, format, Some(Duration::from_secs(1)));
        let files = closed(&record("live/seg", &msgs, s));
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert_plays(&ff, f, AV, 1.0);
        }
    }
    cleanup(&dir);
}

#[test]
fn truncated_mp4_plays_up_to_the_last_whole_fragment() {
    let Some(ff) = ffmpeg() else { return };
    let dir = temp_dir("truncated");
    let src = source(&ff, &dir, "in.flv", &["-c:v", "libx264", "-c:a", "aac"]);
    let msgs = read_flv(&src);
    let files = closed(&record(
        "live/cut",
        &msgs,
        settings(&dir.join("rec"), Format::Mp4, None),
    ));
    let full = std::fs::read(&files[0]).unwrap();
    // Top-level boxes: find the moofs.
    let mut pos = 0;
    let mut moofs = Vec::new();
    while pos + 8 <= full.len() {
        let size = u32::from_be_bytes(full[pos..pos + 4].try_into().unwrap()) as usize;
        if &full[pos + 4..pos + 8] == b"moof" {
            moofs.push(pos);
        }
        pos += size;
    }
    assert!(moofs.len() >= 3, "{moofs:?}");
    // Cut in the middle of the third fragment, as a kill -9 during its write would.
    let cut = (moofs[2] + moofs[3.min(moofs.len() - 1)].max(moofs[2] + 200)) / 2;
    let truncated = dir.join("cut.mp4");
    std::fs::write(&truncated, &full[..cut]).unwrap();
    let d = decode(&ff, &truncated);
    assert_eq!(d.streams.len(), 2, "{d:?}");
    for s in &d.streams {
        assert!(s.2 >= 1.9, "{} decodes only to {}", s.0, s.2);
    }
    cleanup(&dir);
}

#[test]
fn hostile_key_stays_in_the_directory() {
    let Some(ff) = ffmpeg() else { return };
    let dir = temp_dir("hostile");
    let src = source(&ff, &dir, "in.flv", &["-c:v", "libx264", "-c:a", "aac"]);
    let msgs: Vec<Msg> = read_flv(&src).into_iter().take(40).collect();
    let out = dir.join("a/b/rec");
    for key in [
        "../../../escape",
        "/etc/passwd",
        "..",
        "live/..\\..\\x",
        "li\nve/\u{1}x",
    ] {
        let files = closed(&record(key, &msgs, settings(&out, Format::Auto, None)));
        assert_eq!(files.len(), 1, "{key:?}");
        assert!(files[0].starts_with(&out), "{key:?} -> {:?}", files[0]);
        assert!(std::fs::canonicalize(&files[0])
            .unwrap()
            .starts_with(std::fs::canonicalize(&out).unwrap()));
    }
    // Nothing was written next to the recording directory.
    let outside: Vec<_> = std::fs::read_dir(dir.join("a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("rec")]);
    cleanup(&dir);
}
