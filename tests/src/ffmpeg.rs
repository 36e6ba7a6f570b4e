//! FFmpeg as publisher and as player.
//!
//! Players decode to `-f framemd5 -` on stdout: one line per decoded frame, prefixed by its
//! output stream index, after `#media_type N: video|audio` header lines. Counting those lines
//! per media type tells how many video and audio frames were decoded, live, while the player
//! runs. Logs use `-loglevel level+...` so every line carries its level and decoder errors
//! can be told apart from debug chatter.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::proc::Proc;

/// The FFmpeg binary ([`testenv::ffmpeg`]: `$FFMPEG`, else the one shipped by the
/// `imageio-ffmpeg` Python package). The end-to-end suites cannot run without it, so its
/// absence fails them everywhere.
pub fn ffmpeg_path() -> &'static Path {
    testenv::ffmpeg().expect(
        "FFmpeg not found: install it with `pip install imageio-ffmpeg` or set FFMPEG=/path/to/ffmpeg",
    )
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
    /// Send the video track.
    pub video: bool,
    /// Send the audio track.
    pub audio: bool,
    /// A `title` tag for the stream's `onMetaData` (`-metadata title=...`).
    pub title: Option<&'static str>,
    /// More output options, after the codec options (`-color_primaries bt2020` ...).
    pub extra: Vec<&'static str>,
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
            video: true,
            audio: true,
            title: None,
            extra: Vec::new(),
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
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if opts.video {
        args.extend(owned(&["-f", "lavfi", "-i", &video]));
    }
    if opts.audio {
        args.extend(owned(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ]));
    }
    args.extend(owned(&["-t", &secs]));
    if opts.video {
        args.extend(owned(&["-pix_fmt", "yuv420p"]));
        args.extend(owned(opts.codecs.video_args()));
        args.extend(["-g".to_string(), opts.gop.to_string()]);
    }
    if opts.audio {
        args.extend(owned(opts.codecs.audio_args()));
        args.extend(owned(&["-ac", "2"]));
    }
    if let Some(title) = opts.title {
        args.extend(["-metadata".to_string(), format!("title={title}")]);
    }
    args.extend(owned(&opts.extra));
    args.extend(owned(&["-f", "flv", output]));
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
    /// Options placed before `-i` (e.g. `-ca_file` for an `rtmps://` input).
    pub input_args: Vec<String>,
    /// Decode every stream FFmpeg finds in the input (`-map 0`), not only the one video
    /// and one audio stream it picks by default: what the player was sent, not its choice.
    pub every_stream: bool,
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

/// The time one decoded stream covers, from framemd5 timestamps and time bases.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// Whether it is the video stream.
    pub video: bool,
    /// Presentation time of its earliest frame, seconds.
    pub start: f64,
    /// End of its latest frame (pts + duration), seconds.
    pub end: f64,
    /// Frames.
    pub frames: usize,
}

impl Span {
    /// `end - start`.
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// Per-stream spans of framemd5 output (`#tb N: a/b` and `#media_type N: kind` headers).
pub fn spans(lines: &[String]) -> Vec<Span> {
    let kinds = stream_kinds(lines);
    let tb = |idx: &str| -> f64 {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("#tb "))
            .filter_map(|rest| rest.split_once(':'))
            .find(|(i, _)| i.trim() == idx)
            .and_then(|(_, r)| r.trim().split_once('/'))
            .and_then(|(n, d)| Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?))
            .unwrap_or(0.0)
    };
    let mut out = Vec::new();
    for (idx, video) in &kinds {
        let unit = tb(idx);
        let mut span = Span {
            video: *video,
            start: f64::MAX,
            end: f64::MIN,
            frames: 0,
        };
        for line in lines.iter().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 4 || f[0] != idx {
                continue;
            }
            let (Ok(pts), Ok(dur)) = (f[2].parse::<i64>(), f[3].parse::<i64>()) else {
                continue;
            };
            span.start = span.start.min(pts as f64 * unit);
            span.end = span.end.max((pts + dur) as f64 * unit);
            span.frames += 1;
        }
        if span.frames > 0 {
            out.push(span);
        }
    }
    out
}

/// What a finished player saw.
#[derive(Debug)]
pub struct Report {
    /// Frames decoded per media type.
    pub counts: Counts,
    /// Time covered per decoded stream.
    pub spans: Vec<Span>,
    /// Lines FFmpeg logged at error level or worse.
    pub errors: Vec<String>,
    /// Whether it exited with status 0 on its own.
    pub success: bool,
    /// Whether the deadline killed it.
    pub killed: bool,
    /// Its logs, for failure messages.
    pub description: String,
    /// Its standard output (the framemd5 listing).
    pub stdout: Vec<String>,
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
        cmd.args(&opts.input_args);
        cmd.args(["-i", input]);
        if let Some(d) = opts.duration {
            cmd.args(["-t", &format!("{:.3}", d.as_secs_f64())]);
        }
        if opts.every_stream {
            cmd.args(["-map", "0"]);
        }
        if opts.copy {
            cmd.args(["-c", "copy"]);
        }
        cmd.args(["-f", "framemd5", "-"]);
        Player {
            proc: Proc::spawn(&format!("ffmpeg play {input}"), &mut cmd),
        }
    }

    /// An FFmpeg player (decoding, no duration) of stream `name` on `server`, which has no
    /// publisher yet: returns once the hub says the player waits for one, so it gets the
    /// stream from its first message.
    pub fn waiting(server: &crate::Server, name: &str) -> Player {
        Player::waiting_with(server, name, &PlayOpts::default())
    }

    /// As [`Player::waiting`], with `opts`.
    pub fn waiting_with(server: &crate::Server, name: &str, opts: &PlayOpts) -> Player {
        let marks = server.log_marks();
        let player = Player::spawn(&server.url(name), opts);
        server
            .wait_log(marks, Duration::from_secs(30), |l| {
                l.contains("player waiting for a publisher")
            })
            .unwrap_or_else(|| panic!("the player never waited\n{}", server.describe()));
        player
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
            spans: spans(&self.proc.stdout.lines()),
            errors: error_lines(&self.proc.stderr.lines()),
            success,
            killed,
            description: self.proc.describe(),
            stdout: self.proc.stdout.lines(),
        }
    }
}

impl Report {
    /// Panics unless the player exited cleanly, logged no error and decoded at least the
    /// given numbers of video and audio frames.
    pub fn assert_decoded(&self, what: &str, min_video: usize, min_audio: usize) {
        self.assert_clean(what);
        assert!(
            self.counts.video >= min_video && self.counts.audio >= min_audio,
            "{what}: decoded {:?}, wanted at least {min_video} video and {min_audio} audio frames\n{}",
            self.counts,
            self.description
        );
    }

    /// Panics unless the player exited cleanly, logged no error and decoded exactly
    /// `video` video and `audio` audio frames (every frame of a stream it played whole).
    pub fn assert_decoded_exactly(&self, what: &str, video: usize, audio: usize) {
        self.assert_clean(what);
        assert_eq!(
            (self.counts.video, self.counts.audio),
            (video, audio),
            "{what}: decoded (video, audio) frames\n{}",
            self.description
        );
    }

    fn assert_clean(&self, what: &str) {
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
    }
}

/// Decodes a media file with FFmpeg and reports (bounded to two minutes).
pub fn decode_file(path: &Path) -> Report {
    Player::spawn(&path.to_string_lossy(), &PlayOpts::default())
        .finish(Instant::now() + Duration::from_secs(120))
}

/// What FFmpeg's `Input #0` listing says about an input: its streams and its metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Each `Stream #0:N: Kind: details` line as `(Kind, details)`, in order.
    pub streams: Vec<(String, String)>,
    /// The input's `Metadata:` entries (`key : value`).
    pub metadata: Vec<(String, String)>,
}

impl Listing {
    /// The kinds of the listed streams (`Video`, `Audio`, `Subtitle`, `Data`), sorted.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.streams.iter().map(|(k, _)| k.as_str()).collect();
        kinds.sort_unstable();
        kinds
    }

    /// The details of the first stream of `kind`.
    pub fn stream(&self, kind: &str) -> Option<&str> {
        self.streams
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, d)| d.as_str())
    }

    /// The value of metadata entry `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the `Input #0` section of FFmpeg's log (at `-loglevel info`).
pub fn input_listing(lines: &[String]) -> Listing {
    let mut listing = Listing::default();
    let Some(start) = lines.iter().position(|l| l.starts_with("Input #0")) else {
        return listing;
    };
    // Only the input's own `Metadata:` block (two spaces in), not a stream's (four).
    let mut in_metadata = false;
    for line in lines[start + 1..].iter().take_while(|l| l.starts_with(' ')) {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if let Some(rest) = text.strip_prefix("Stream #0:") {
            in_metadata = false;
            if let Some((_, rest)) = rest.split_once(": ") {
                let (kind, details) = rest.split_once(": ").unwrap_or((rest, ""));
                listing
                    .streams
                    .push((kind.to_string(), details.to_string()));
            }
        } else if indent == 2 {
            in_metadata = text == "Metadata:";
        } else if in_metadata && indent == 4 {
            if let Some((k, v)) = text.split_once(':') {
                listing
                    .metadata
                    .push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    listing
}

/// Copies `duration` of `input` into `output` with `-c copy` (the container follows the
/// file name). Returns the input listing and the finished FFmpeg; bounded to two
/// minutes.
pub fn copy_to_file(input: &str, output: &Path, duration: Duration) -> (Listing, Proc) {
    let mut cmd = Command::new(ffmpeg_path());
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "info", "-i", input]);
    cmd.args(["-t", &format!("{:.3}", duration.as_secs_f64())]);
    cmd.args(["-c", "copy", "-y"]).arg(output);
    let mut proc = Proc::spawn(&format!("ffmpeg copy {input}"), &mut cmd);
    proc.wait_or_kill(Instant::now() + Duration::from_secs(120));
    (input_listing(&proc.stderr.lines()), proc)
}

/// FFmpeg's listing of a media file (`ffmpeg -i FILE` with no output).
pub fn list_file(path: &Path) -> Listing {
    let mut cmd = Command::new(ffmpeg_path());
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "info", "-i"])
        .arg(path);
    let mut proc = Proc::spawn("ffmpeg list", &mut cmd);
    proc.wait_or_kill(Instant::now() + Duration::from_secs(60));
    input_listing(&proc.stderr.lines())
}

/// Decodes every stream of a media file (`-map 0`, FFmpeg alone picks one per kind).
/// Returns the decoded frames per stream index and the lines logged at error level;
/// bounded to two minutes.
pub fn decode_every_stream(path: &Path) -> (Vec<usize>, Vec<String>) {
    let mut cmd = Command::new(ffmpeg_path());
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "level+error",
        "-threads",
        "1",
    ]);
    cmd.arg("-i").arg(path);
    cmd.args(["-map", "0", "-f", "framemd5", "-"]);
    let mut proc = Proc::spawn("ffmpeg decode every stream", &mut cmd);
    let (status, killed) = proc.wait_or_kill(Instant::now() + Duration::from_secs(120));
    assert!(status.success() && !killed, "{}", proc.describe());
    let mut counts = Vec::new();
    for line in proc.stdout.lines().iter().filter(|l| !l.starts_with('#')) {
        let Some(Ok(idx)) = line.split_once(',').map(|(i, _)| i.trim().parse::<usize>()) else {
            continue;
        };
        if counts.len() <= idx {
            counts.resize(idx + 1, 0);
        }
        counts[idx] += 1;
    }
    (counts, error_lines(&proc.stderr.lines()))
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
    fn spans_from_time_bases() {
        let lines: Vec<String> = [
            "#tb 0: 1/20",
            "#media_type 0: video",
            "#tb 1: 1/48000",
            "#media_type 1: audio",
            "0,          2,          2,        1,   115200, 4b0b",
            "0,          3,          3,        1,   115200, 4b0b",
            "1,       1024,       1024,     1024,     4096, 9e1f",
            "1,       2048,       2048,     1024,     4096, 9e1f",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = spans(&lines);
        assert_eq!(s.len(), 2);
        assert!(s[0].video && (s[0].start - 0.1).abs() < 1e-9 && (s[0].end - 0.2).abs() < 1e-9);
        assert_eq!(s[0].frames, 2);
        assert!(!s[1].video && (s[1].duration() - 2048.0 / 48000.0).abs() < 1e-9);
    }

    #[test]
    fn parses_input_listing() {
        let lines: Vec<String> = [
            "Input #0, flv, from 'rtmp://127.0.0.1:1935/live/t':",
            "  Metadata:",
            "    title           : hello",
            "    encoder         : Lavf63.1.102",
            "  Duration: 00:00:20.00, start: 4.023000, bitrate: N/A",
            "  Stream #0:0: Subtitle: text, start 4.023000",
            "  Stream #0:1: Audio: aac (LC), 44100 Hz, mono, fltp, 69 kb/s",
            "    Metadata:",
            "      DURATION        : 00:00:02.014000000",
            "  Stream #0:2: Video: h264 (Constrained Baseline), yuv420p(progressive), 320x240",
            "Stream mapping:",
            "  Stream #0:2 -> #0:0 (copy)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let l = input_listing(&lines);
        assert_eq!(l.kinds(), ["Audio", "Subtitle", "Video"]);
        assert_eq!(l.stream("Subtitle"), Some("text, start 4.023000"));
        assert!(l.stream("Video").is_some_and(|v| v.contains("320x240")));
        assert_eq!(l.meta("title"), Some("hello"));
        assert_eq!(l.meta("DURATION"), None);
        assert_eq!(l.metadata.len(), 2);
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
