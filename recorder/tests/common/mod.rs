//! Test helpers: FFmpeg from imageio_ffmpeg, a small FLV file reader that turns legacy and
//! Enhanced FLV tags into the normalized messages the hub sends, and a harness that drives
//! the real session and writer with them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use proto::media::Codec;
use recorder::naming::{Namer, DEFAULT_PATTERN};
use recorder::session::{Format, Settings, StreamRecorder};
use recorder::writer::{self, Report, WriterOptions};
use tokio::sync::mpsc;

/// The FFmpeg 9 binary, or `None` when not installed (the test is skipped with a message,
/// or fails under CI: see [`testenv::require_ffmpeg`]).
pub fn ffmpeg() -> Option<PathBuf> {
    testenv::require_ffmpeg().map(Path::to_path_buf)
}

/// A fresh empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("recorder-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs FFmpeg with `args` (after `-v error -y`), panicking on failure.
pub fn make(ff: &Path, args: &[&str]) {
    let out = Command::new(ff)
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A message as the hub would send it.
#[derive(Debug, Clone)]
pub enum Msg {
    Config {
        codec: Codec,
        data: Bytes,
    },
    Metadata(Bytes),
    Frame {
        video: bool,
        dts: i64,
        cts: i32,
        key: bool,
        data: Bytes,
    },
}

fn video_fourcc(f: &[u8]) -> Option<Codec> {
    Some(match f {
        b"avc1" => Codec::H264,
        b"hvc1" => Codec::H265,
        b"av01" => Codec::Av1,
        b"vp09" => Codec::Vp9,
        b"vp08" => Codec::Vp8,
        _ => return None,
    })
}

fn audio_fourcc(f: &[u8]) -> Option<Codec> {
    Some(match f {
        b"mp4a" => Codec::Aac,
        b"Opus" => Codec::Opus,
        b"fLaC" => Codec::Flac,
        b".mp3" => Codec::Mp3,
        b"ac-3" => Codec::Ac3,
        b"ec-3" => Codec::Eac3,
        _ => return None,
    })
}

fn i24(b: &[u8]) -> i32 {
    let v = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
    (v << 8) >> 8
}

/// Reads an FLV file into hub messages (legacy H.264/AAC/MP3 and Enhanced FLV).
pub fn read_flv(path: &Path) -> Vec<Msg> {
    let f = Bytes::from(std::fs::read(path).unwrap());
    let file = proto::flv::read_file(&f).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut vcodec = None;
    for tag in file.tags {
        let (kind, ts, body) = (tag.tag_type, i64::from(tag.timestamp_ms), tag.body);
        if body.is_empty() {
            continue;
        }
        match kind {
            18 => out.push(Msg::Metadata(body)),
            9 => {
                let b0 = body[0];
                let frame_type = (b0 >> 4) & 7;
                if b0 & 0x80 != 0 {
                    let pt = b0 & 0x0f;
                    let Some(codec) = video_fourcc(&body[1..5]) else {
                        continue;
                    };
                    let key = frame_type == 1;
                    match pt {
                        0 => out.push(Msg::Config {
                            codec,
                            data: body.slice(5..),
                        }),
                        1 => {
                            let (cts, data) = if matches!(codec, Codec::H264 | Codec::H265) {
                                (i24(&body[5..8]), body.slice(8..))
                            } else {
                                (0, body.slice(5..))
                            };
                            out.push(Msg::Frame {
                                video: true,
                                dts: ts,
                                cts,
                                key,
                                data,
                            });
                        }
                        3 => out.push(Msg::Frame {
                            video: true,
                            dts: ts,
                            cts: 0,
                            key,
                            data: body.slice(5..),
                        }),
                        _ => {}
                    }
                } else if b0 & 0x0f == 7 {
                    vcodec = Some(Codec::H264);
                    match body[1] {
                        0 => out.push(Msg::Config {
                            codec: Codec::H264,
                            data: body.slice(5..),
                        }),
                        1 => out.push(Msg::Frame {
                            video: true,
                            dts: ts,
                            cts: i24(&body[2..5]),
                            key: frame_type == 1,
                            data: body.slice(5..),
                        }),
                        _ => {}
                    }
                }
            }
            8 => {
                let b0 = body[0];
                let fmt = b0 >> 4;
                if fmt == 9 {
                    let pt = b0 & 0x0f;
                    let Some(codec) = audio_fourcc(&body[1..5]) else {
                        continue;
                    };
                    match pt {
                        0 => out.push(Msg::Config {
                            codec,
                            data: body.slice(5..),
                        }),
                        1 => out.push(Msg::Frame {
                            video: false,
                            dts: ts,
                            cts: 0,
                            key: true,
                            data: body.slice(5..),
                        }),
                        _ => {}
                    }
                } else if fmt == 10 {
                    match body[1] {
                        0 => out.push(Msg::Config {
                            codec: Codec::Aac,
                            data: body.slice(2..),
                        }),
                        _ => out.push(Msg::Frame {
                            video: false,
                            dts: ts,
                            cts: 0,
                            key: true,
                            data: body.slice(2..),
                        }),
                    }
                } else if fmt == 2 {
                    if !out.iter().any(|m| {
                        matches!(
                            m,
                            Msg::Config {
                                codec: Codec::Mp3,
                                ..
                            }
                        )
                    }) {
                        out.push(Msg::Config {
                            codec: Codec::Mp3,
                            data: Bytes::new(),
                        });
                    }
                    out.push(Msg::Frame {
                        video: false,
                        dts: ts,
                        cts: 0,
                        key: true,
                        data: body.slice(1..),
                    });
                }
            }
            _ => {}
        }
    }
    let _ = vcodec;
    // The hub sends every track's config before the frames: move configs found late
    // (MP3 has none in FLV, so one is made up on its first frame) to the front.
    let first_frame = out
        .iter()
        .position(|m| matches!(m, Msg::Frame { .. }))
        .unwrap_or(0);
    let late: Vec<Msg> = out[first_frame..]
        .iter()
        .filter(|m| {
            matches!(
                m,
                Msg::Config {
                    codec: proto::media::Codec::Mp3,
                    ..
                }
            )
        })
        .cloned()
        .collect();
    out.retain(|m| {
        !matches!(
            m,
            Msg::Config {
                codec: proto::media::Codec::Mp3,
                ..
            }
        )
    });
    for (i, m) in late.into_iter().enumerate() {
        out.insert(first_frame + i, m);
    }
    out
}

/// Settings for tests.
pub fn settings(dir: &Path, format: Format, segment: Option<Duration>) -> Arc<Settings> {
    Arc::new(Settings {
        namer: Namer::new(dir, DEFAULT_PATTERN).unwrap(),
        format,
        segment,
        fragment: Duration::from_secs(1),
        retry_after: Duration::from_millis(0),
    })
}

/// Drives a StreamRecorder and the real writer thread with `msgs`; returns the reports.
pub fn record(key: &str, msgs: &[Msg], settings: Arc<Settings>) -> Vec<Report> {
    let (ctx, crx) = mpsc::channel(64);
    let (rtx, mut rrx) = mpsc::channel(1024);
    let w = std::thread::spawn(move || {
        writer::run(
            WriterOptions::default(),
            crx,
            rtx,
            writer::WriterStats::new(&telemetry::Metrics::new()),
        )
    });
    let mut s = StreamRecorder::new(key.to_owned(), 1000, settings);
    let mut cmds = Vec::new();
    for m in msgs {
        match m {
            Msg::Config { codec, data } => s.on_track_config(0, *codec, data.clone(), &mut cmds),
            Msg::Metadata(b) => s.on_metadata(b),
            Msg::Frame {
                video,
                dts,
                cts,
                key,
                data,
            } => {
                let frame = proto::media::Frame {
                    track: 0,
                    kind: proto::media::TrackKind::from_video(*video),
                    dts: *dts,
                    cts: *cts,
                    flags: proto::media::FrameFlags::new(*key, false),
                    payload: data.clone(),
                };
                s.on_frame(Instant::now(), SystemTime::now(), frame, &mut cmds)
            }
        }
        for c in cmds.drain(..) {
            ctx.blocking_send(c).unwrap();
        }
    }
    s.on_end("unpublish", &mut cmds);
    for c in cmds.drain(..) {
        ctx.blocking_send(c).unwrap();
    }
    drop(ctx);
    w.join().unwrap();
    let mut reports = Vec::new();
    while let Ok(r) = rrx.try_recv() {
        reports.push(r);
    }
    reports
}

/// Paths of the files closed normally, in order.
pub fn closed(reports: &[Report]) -> Vec<PathBuf> {
    reports
        .iter()
        .filter_map(|r| match r {
            Report::Closed { path, .. } => Some(path.clone()),
            Report::Failed { path, error, .. } => panic!("write failed {path:?}: {error}"),
            _ => None,
        })
        .collect()
}

/// What FFmpeg decoded from a file: per stream (media type, first pts, end time) in seconds.
#[derive(Debug)]
pub struct Decoded {
    pub streams: Vec<(String, f64, f64, usize)>,
    pub errors: String,
}

/// Decodes every stream of `path` with FFmpeg (`framecrc`), collecting decoder errors.
pub fn decode(ff: &Path, path: &Path) -> Decoded {
    let out = Command::new(ff)
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0", "-f", "framecrc", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tb: Vec<(f64, String)> = Vec::new();
    let mut streams: Vec<(String, f64, f64, usize)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#tb ") {
            let (_, frac) = rest.split_once(": ").unwrap();
            let (n, d) = frac.split_once('/').unwrap();
            tb.push((
                n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap(),
                String::new(),
            ));
        } else if let Some(rest) = line.strip_prefix("#media_type ") {
            let (i, t) = rest.split_once(": ").unwrap();
            tb[i.parse::<usize>().unwrap()].1 = t.to_owned();
        } else if !line.starts_with('#') && !line.is_empty() {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let i: usize = f[0].parse().unwrap();
            let pts: f64 = f[2].parse().unwrap();
            let dur: f64 = f[3].parse().unwrap();
            while streams.len() <= i {
                streams.push((String::new(), f64::MAX, 0.0, 0));
            }
            let s = &mut streams[i];
            s.0 = tb[i].1.clone();
            s.1 = s.1.min(pts * tb[i].0);
            s.2 = s.2.max((pts + dur) * tb[i].0);
            s.3 += 1;
        }
    }
    let mut errors = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        errors.push_str("\nffmpeg failed");
    }
    Decoded { streams, errors }
}

/// Asserts a clean decode with the given media types, each lasting `secs` within 0.5 s.
pub fn assert_plays(ff: &Path, path: &Path, types: &[&str], secs: f64) {
    let d = decode(ff, path);
    assert!(
        d.errors.trim().is_empty(),
        "{}: decoder errors:\n{}",
        path.display(),
        d.errors
    );
    let got: Vec<&str> = d.streams.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(got, types, "{}: {d:?}", path.display());
    for s in &d.streams {
        let len = s.2 - s.1;
        assert!(
            (len - secs).abs() <= 0.5,
            "{}: {} lasts {len:.3}s, want {secs}s",
            path.display(),
            s.0
        );
    }
}

/// Removes a test directory unless RECORDER_KEEP_TEST_FILES is set (to inspect outputs).
pub fn cleanup(dir: &Path) {
    if std::env::var_os("RECORDER_KEEP_TEST_FILES").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
