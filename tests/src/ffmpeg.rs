//! FFmpeg as publisher and as player.
//!
//! Players decode to `-f framemd5 -` on stdout: one line per decoded frame, prefixed by its
//! output stream index, after `#media_type N: video|audio` header lines. Counting those lines
//! per media type tells how many video and audio frames were decoded, live, while the player
//! runs. Logs use `-loglevel level+...` so every line carries its level and decoder errors
//! can be told apart from debug chatter.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::proc::Proc;

/// The FFmpeg binary: `$FFMPEG`, else the one shipped by the `imageio-ffmpeg` Python package.
pub fn ffmpeg_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("FFMPEG").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let out = Command::new("python3")
            .args([
                "-c",
                "import imageio_ffmpeg;print(imageio_ffmpeg.get_ffmpeg_exe())",
            ])
            .output()
            .expect("run python3 to locate FFmpeg (set FFMPEG=/path/to/ffmpeg instead)");
        assert!(
            out.status.success(),
            "python3 -c 'import imageio_ffmpeg' failed: install it with \
             `pip install imageio-ffmpeg` or set FFMPEG=/path/to/ffmpeg\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// The codec pairs the tests publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codecs {
    /// H.264 (libx264) + AAC: legacy FLV codec ids.
    H264Aac,
    /// HEVC (libx265) + AAC: Enhanced RTMP `hvc1`.
    HevcAac,
    /// AV1 (libsvtav1) + Opus: Enhanced RTMP `av01` and `Opus`.
    Av1Opus,
    /// VP9 (libvpx-vp9) + Opus: Enhanced RTMP `vp09` and `Opus`.
    Vp9Opus,
}

impl Codecs {
    fn video_args(self) -> &'static [&'static str] {
        match self {
            Codecs::H264Aac => &[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-threads",
                "1",
            ],
            Codecs::HevcAac => &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-x265-params",
                "log-level=error:pools=1:frame-threads=1",
            ],
            Codecs::Av1Opus => &[
                "-c:v",
                "libsvtav1",
                "-preset",
                "12",
                "-svtav1-params",
                "lp=1",
            ],
            Codecs::Vp9Opus => &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-threads",
                "1",
                "-b:v",
                "300k",
            ],
        }
    }

    fn audio_args(self) -> &'static [&'static str] {
        match self {
            Codecs::H264Aac | Codecs::HevcAac => &["-c:a", "aac", "-b:a", "64k"],
            Codecs::Av1Opus | Codecs::Vp9Opus => &["-c:a", "libopus", "-b:a", "48k"],
        }
    }
}

/// What a synthetic publisher sends.
#[derive(Clone, Debug)]
pub struct PublishOpts {
    /// Codec pair.
    pub codecs: Codecs,
    /// How long the stream lasts (media time, sent in real time with `-re`).
    pub duration: Duration,
    /// Video frame rate.
    pub fps: u32,
    /// Keyframe interval in frames (`-g`).
    pub gop: u32,
    /// Video size, `WxH`.
    pub size: &'static str,
    /// The lavfi video source (`testsrc2`, `smptebars`, ...).
    pub source: &'static str,
}

impl PublishOpts {
    /// A small stream of `codecs`: 320x240 at 20 fps, a keyframe every second.
    pub fn new(codecs: Codecs, duration: Duration) -> Self {
        PublishOpts {
            codecs,
            duration,
            fps: 20,
            gop: 20,
            size: "320x240",
            source: "testsrc2",
        }
    }
}

/// The FFmpeg arguments that encode a synthetic stream to `-f flv <output>`.
pub fn encode_args(opts: &PublishOpts, realtime: bool, output: &str) -> Vec<String> {
    let secs = format!("{:.3}", opts.duration.as_secs_f64());
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "level+error"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if realtime {
        args.push("-re".into());
    }
    let video = format!("{}=size={}:rate={}", opts.source, opts.size, opts.fps);
    for a in [
        "-f",
        "lavfi",
        "-i",
        &video,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &secs,
        "-pix_fmt",
        "yuv420p",
    ] {
        args.push(a.to_string());
    }
    args.extend(opts.codecs.video_args().iter().map(|s| s.to_string()));
    args.extend(["-g".to_string(), opts.gop.to_string()]);
    args.extend(opts.codecs.audio_args().iter().map(|s| s.to_string()));
    args.extend(
        ["-ac", "2", "-f", "flv", output]
            .iter()
            .map(|s| s.to_string()),
    );
    args
}

/// Starts FFmpeg publishing a synthetic stream to `url` in real time.
pub fn publish(url: &str, opts: &PublishOpts) -> Proc {
    let mut cmd = Command::new(ffmpeg_path());
    cmd.args(encode_args(opts, true, url));
    Proc::spawn(&format!("ffmpeg publish {url}"), &mut cmd)
}

/// Encodes a synthetic stream into an FLV file as fast as possible; panics on failure.
pub fn encode_file(path: &Path, opts: &PublishOpts) {
    let mut cmd = Command::new(ffmpeg_path());
    cmd.args(encode_args(opts, false, &path.to_string_lossy()));
    let mut proc = Proc::spawn("ffmpeg encode", &mut cmd);
    let (status, killed) = proc.wait_or_kill(Instant::now() + Duration::from_secs(120));
    assert!(
        status.success() && !killed,
        "encoding {} failed\n{}",
        path.display(),
        proc.describe()
    );
}

/// Options of a player.
#[derive(Clone, Debug, Default)]
pub struct PlayOpts {
    /// Stop after this much media time (`-t`); `None` plays until the stream ends.
    pub duration: Option<Duration>,
    /// Log at debug level (to observe e.g. `Sending play command`).
    pub debug: bool,
    /// Copy packets instead of decoding them (`-c copy`): counts packets.
    pub copy: bool,
}

/// Decoded frame counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Video frames.
    pub video: usize,
    /// Audio frames.
    pub audio: usize,
}

/// An FFmpeg process reading `url` (an RTMP URL or a file) and decoding it to framemd5.
pub struct Player {
    proc: Proc,
}

/// What a finished player saw.
#[derive(Debug)]
pub struct Report {
    /// Frames decoded per media type.
    pub counts: Counts,
    /// Lines FFmpeg logged at error level or worse.
    pub errors: Vec<String>,
    /// Whether it exited with status 0 on its own.
    pub success: bool,
    /// Whether the deadline killed it.
    pub killed: bool,
    /// Its logs, for failure messages.
    pub description: String,
}

impl Player {
    /// Starts FFmpeg reading `input`.
    pub fn spawn(input: &str, opts: &PlayOpts) -> Player {
        let level = if opts.debug {
            "level+debug"
        } else {
            "level+error"
        };
        let mut cmd = Command::new(ffmpeg_path());
        cmd.args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            level,
            "-threads",
            "1",
        ]);
        cmd.args(["-i", input]);
        if let Some(d) = opts.duration {
            cmd.args(["-t", &format!("{:.3}", d.as_secs_f64())]);
        }
        if opts.copy {
            cmd.args(["-c", "copy"]);
        }
        cmd.args(["-f", "framemd5", "-"]);
        Player {
            proc: Proc::spawn(&format!("ffmpeg play {input}"), &mut cmd),
        }
    }

    /// The underlying process.
    pub fn proc(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// Frames decoded so far.
    pub fn counts(&self) -> Counts {
        count_framemd5(&self.proc.stdout.lines())
    }

    /// Waits until at least `video` video frames and `audio` audio frames were decoded.
    /// Returns whether that happened before the deadline.
    pub fn wait_frames(&self, video: usize, audio: usize, deadline: Instant) -> bool {
        let streams = |lines: &[String]| stream_kinds(lines);
        loop {
            let lines = self.proc.stdout.lines();
            let c = count_with(&lines, &streams(&lines));
            if c.video >= video && c.audio >= audio {
                return true;
            }
            // Wake on the next line (or the deadline).
            if self
                .proc
                .stdout
                .wait_for(lines.len(), deadline, |_| true)
                .is_none()
            {
                let c = self.counts();
                return c.video >= video && c.audio >= audio;
            }
        }
    }

    /// Waits for the player to exit (killing it at the deadline) and reports.
    pub fn finish(mut self, deadline: Instant) -> Report {
        let (status, killed) = self.proc.wait_or_kill(deadline);
        self.report(status.success(), killed)
    }

    /// Kills the player now and reports what it decoded so far.
    pub fn stop(&mut self) -> Report {
        self.proc.kill();
        self.report(false, true)
    }

    fn report(&self, success: bool, killed: bool) -> Report {
        Report {
            counts: self.counts(),
            errors: error_lines(&self.proc.stderr.lines()),
            success,
            killed,
            description: self.proc.describe(),
        }
    }
}

impl Report {
    /// Panics unless the player exited cleanly, logged no error and decoded at least the
    /// given numbers of video and audio frames.
    pub fn assert_decoded(&self, what: &str, min_video: usize, min_audio: usize) {
        assert!(
            self.errors.is_empty(),
            "{what}: FFmpeg logged errors: {:#?}\n{}",
            self.errors,
            self.description
        );
        assert!(
            self.success && !self.killed,
            "{what}: player did not finish cleanly (killed at deadline: {})\n{}",
            self.killed,
            self.description
        );
        assert!(
            self.counts.video >= min_video && self.counts.audio >= min_audio,
            "{what}: decoded {:?}, wanted at least {min_video} video and {min_audio} audio frames\n{}",
            self.counts,
            self.description
        );
    }
}

/// Decodes a media file with FFmpeg and reports (bounded to two minutes).
pub fn decode_file(path: &Path) -> Report {
    Player::spawn(&path.to_string_lossy(), &PlayOpts::default())
        .finish(Instant::now() + Duration::from_secs(120))
}

/// Stream index -> is video, from `#media_type N: video` header lines.
fn stream_kinds(lines: &[String]) -> Vec<(String, bool)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("#media_type "))
        .filter_map(|rest| {
            let (idx, kind) = rest.split_once(':')?;
            Some((idx.trim().to_string(), kind.trim() == "video"))
        })
        .collect()
}

fn count_with(lines: &[String], kinds: &[(String, bool)]) -> Counts {
    let mut counts = Counts::default();
    for line in lines.iter().filter(|l| !l.starts_with('#')) {
        let Some((idx, _)) = line.split_once(',') else {
            continue;
        };
        match kinds.iter().find(|(i, _)| i == idx.trim()) {
            Some((_, true)) => counts.video += 1,
            Some((_, false)) => counts.audio += 1,
            None => {}
        }
    }
    counts
}

/// Counts framemd5 lines per media type.
pub fn count_framemd5(lines: &[String]) -> Counts {
    count_with(lines, &stream_kinds(lines))
}

/// Lines logged at error level or worse (with `-loglevel level+...`).
pub fn error_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains("[error]") || l.contains("[fatal]") || l.contains("[panic]"))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_framemd5_streams() {
        let lines: Vec<String> = [
            "#format: frame checksums",
            "#media_type 0: video",
            "#media_type 1: audio",
            "#stream#, dts,        pts, duration,     size, hash",
            "0,          0,          0,        1,   115200, 4b0b",
            "1,          0,          0,     1024,     4096, 9e1f",
            "1,       1024,       1024,     1024,     4096, 9e1f",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(count_framemd5(&lines), Counts { video: 1, audio: 2 });
    }

    #[test]
    fn finds_error_lines() {
        let lines = vec![
            "[h264 @ 0x1] [debug] nal_unit_type: 5".to_string(),
            "[h264 @ 0x1] [error] non-existing PPS 0 referenced".to_string(),
        ];
        assert_eq!(error_lines(&lines).len(), 1);
    }
}
