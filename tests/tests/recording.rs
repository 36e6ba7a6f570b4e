//! The recorder against the real hub and ingest-rtmp, fed by FFmpeg 9: what it writes is
//! decoded end to end by FFmpeg, with the published duration and both tracks; segments,
//! kill -9, hostile keys, falling behind and its events.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use e2e::deadline_in;
use e2e::ffmpeg::{self, decode_file, Codecs, PublishOpts, Report, Span};
use e2e::recorder::{files_under, recorder, wait_done};
use e2e::rtmp_client::RtmpClient;
use e2e::scenario::{is_coded_video, raw_publisher, send_h264_aac, wait_media_time};
use e2e::{Server, ServerOpts};
use proto::ipc::{self, Event, FrameDecoder, Header, Role, FORMAT_VERSION};

/// Published media time of the codec tests.
const SECS: f64 = 4.0;
/// How far a recorded track's duration may be from what was published.
const TOLERANCE: f64 = 0.5;

/// Publishes `opts` with FFmpeg to `live/<name>` and waits for it to finish.
fn publish_all(server: &Server, name: &str, opts: &PublishOpts) {
    let mut p = ffmpeg::publish(&server.url(name), opts);
    let (status, killed) = p.wait_or_kill(deadline_in(30.0 + opts.duration.as_secs_f64()));
    assert!(
        status.success() && !killed,
        "publisher failed\n{}",
        p.describe()
    );
}

fn span(report: &Report, video: bool) -> Span {
    *report
        .spans
        .iter()
        .find(|s| s.video == video)
        .unwrap_or_else(|| panic!("no {} stream decoded: {report:?}", kind(video)))
}

fn kind(video: bool) -> &'static str {
    if video {
        "video"
    } else {
        "audio"
    }
}

/// Publishes `codecs` for [`SECS`] and checks the single file the recorder wrote: its
/// extension, a clean decode, each track's duration and the A/V alignment.
fn record_codecs(codecs: Codecs, ext: &str, extra: &[&str]) {
    let server = Server::start(ServerOpts::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = recorder(&server, dir.path(), extra);
    publish_all(
        &server,
        "rec",
        &PublishOpts::new(codecs, Duration::from_secs_f64(SECS)),
    );
    wait_done(&rec, 1);
    let files = files_under(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        name.starts_with("live_rec_") && name.ends_with(&format!(".{ext}")),
        "{name}"
    );
    let report = decode_file(&files[0]);
    // 20 fps; AAC ~47 and Opus 50 frames/s: most of SECS of each.
    report.assert_decoded(&format!("{codecs:?} recording"), 70, 150);
    let (v, a) = (span(&report, true), span(&report, false));
    for s in [v, a] {
        assert!(
            (s.duration() - SECS).abs() <= TOLERANCE,
            "{} track covers {:.3} s, published {SECS} s: {report:?}",
            kind(s.video),
            s.duration()
        );
    }
    // The source's tracks start together; so must the file's (encoder priming aside).
    assert!(
        (v.start - a.start).abs() <= 0.1,
        "A/V out of sync in the file: video starts at {:.3}, audio at {:.3}",
        v.start,
        a.start
    );
}

#[test]
fn h264_aac_to_flv() {
    record_codecs(Codecs::H264Aac, "flv", &[]);
}

#[test]
fn h264_aac_to_mp4_when_asked() {
    record_codecs(Codecs::H264Aac, "mp4", &["--format", "mp4"]);
}

#[test]
fn hevc_aac_to_mp4() {
    record_codecs(Codecs::HevcAac, "mp4", &[]);
}

#[test]
fn av1_opus_to_mp4() {
    record_codecs(Codecs::Av1Opus, "mp4", &[]);
}

#[test]
fn audio_only_and_video_only() {
    let server = Server::start(ServerOpts::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = recorder(&server, dir.path(), &[]);
    for (name, video, audio) in [("audio", false, true), ("video", true, false)] {
        let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(3));
        opts.video = video;
        opts.audio = audio;
        publish_all(&server, name, &opts);
    }
    wait_done(&rec, 2);
    let files = files_under(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        let video = name.starts_with("live_video_");
        let report = decode_file(f);
        let (min_v, min_a) = if video { (45, 0) } else { (0, 100) };
        report.assert_decoded(name, min_v, min_a);
        assert_eq!(report.spans.len(), 1, "{name}: one track only: {report:?}");
        let s = span(&report, video);
        assert!((s.duration() - 3.0).abs() <= TOLERANCE, "{name}: {s:?}");
    }
}

#[test]
fn segments_each_decode_alone() {
    let server = Server::start(ServerOpts::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = recorder(
        &server,
        dir.path(),
        &["--segment", "2s", "--pattern", "{app}_{stream}_{seq}.{ext}"],
    );
    // 1 s GOPs: a new file at the first keyframe after 2 s, so about 3 s per piece.
    publish_all(
        &server,
        "seg",
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(7)),
    );
    rec.stderr
        .wait_for(0, deadline_in(30.0), |l| l.contains("stream ended"))
        .unwrap_or_else(|| panic!("stream never ended\n{}", rec.describe()));
    let files = files_under(dir.path());
    // Every file is finished (the last one when the stream ended).
    wait_done(&rec, files.len());
    assert!(files.len() >= 3, "7 s in 2 s segments: {files:?}");
    let mut total = 0.0;
    for f in &files {
        let report = decode_file(f);
        report.assert_decoded(&f.display().to_string(), 15, 30);
        total += span(&report, true).duration();
    }
    assert!(
        (total - 7.0).abs() <= TOLERANCE,
        "segments cover {total:.3} s of video, published 7 s"
    );
}

#[test]
fn killed_recorder_leaves_a_file_that_decodes() {
    for (ext, codecs, extra) in [
        ("flv", Codecs::H264Aac, &[][..]),
        ("mp4", Codecs::HevcAac, &["--fragment", "500ms"][..]),
    ] {
        let server = Server::start(ServerOpts::default());
        let dir = tempfile::tempdir().expect("temp dir");
        let mut rec = recorder(&server, dir.path(), extra);
        let _publisher = ffmpeg::publish(
            &server.url("kill"),
            &PublishOpts::new(codecs, Duration::from_secs(60)),
        );
        rec.stderr
            .wait_for(0, deadline_in(30.0), |l| l.contains("recording started"))
            .unwrap_or_else(|| panic!("never started\n{}", rec.describe()));
        // A player joined after the recording started sees at most what was recorded: once
        // 4 s of media reached it, kill the recorder without warning.
        let (mut player, sid) = RtmpClient::open(server.addr(), "live").expect("player");
        player.play(sid, "kill").expect("play");
        let seen_ms = wait_media_time(&mut player, 4000, deadline_in(60.0));
        rec.signal(libc::SIGKILL);
        let recorded = f64::from(seen_ms) / 1000.0;
        let files = files_under(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with(ext));
        let report = decode_file(&files[0]);
        assert!(
            report.errors.is_empty() && report.success,
            "{ext} after kill -9: {report:?}"
        );
        let v = span(&report, true);
        // The measurement docs/recording.md quotes for what a kill -9 loses.
        eprintln!(
            "kill -9 {ext}: {:.2} s of video in the file, about {recorded:.2} s recorded",
            v.duration()
        );
        assert!(span(&report, false).frames > 0, "{ext}: audio lost");
        // At most a few seconds lost (the MP4 fragment or the FLV tail being written).
        assert!(
            v.duration() >= recorded - 2.5,
            "{ext}: {:.2} s of video survived of about {recorded:.2} s",
            v.duration()
        );
    }
}

#[test]
fn hostile_keys_stay_inside_the_directory() {
    let server = Server::start(ServerOpts::default());
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("rec");
    // `{key}` puts the whole key, slashes included, into the path.
    let rec = recorder(&server, &dir, &["--pattern", "{key}/{stream}.{ext}"]);
    let long = "n".repeat(400);
    let names = [
        "../../escape",
        "..",
        "a/../../../escape",
        "/abs/olute",
        "ctl\u{1}\nname",
        "back\\..\\slash",
        "~root",
        "$HOME",
        "-rf",
        "sp ace",
        long.as_str(),
        "unicode-ünï",
    ];
    let mut accepted = 0;
    for name in names {
        let Ok((mut client, sid)) = RtmpClient::open(server.addr(), "live") else {
            panic!("connect failed\n{}", server.describe());
        };
        let status = client.publish(sid, name).expect("publish answered");
        if status.code != "NetStream.Publish.Start" {
            // Refused at the door: nothing to record.
            continue;
        }
        accepted += 1;
        send_h264_aac(&mut client, sid, 0, 25, 40, 25).expect("frames sent");
    }
    assert!(
        accepted >= 6,
        "too few hostile keys reached the recorder to test it"
    );
    wait_done(&rec, accepted);
    let inside = files_under(&dir);
    assert_eq!(
        inside.len(),
        accepted,
        "one file per accepted key: {inside:?}"
    );
    for f in &inside {
        let rel = f.strip_prefix(&dir).expect("inside --dir");
        assert!(
            rel.components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{}",
            f.display()
        );
        assert!(
            !f.to_string_lossy().chars().any(char::is_control),
            "control character in {f:?}"
        );
    }
    // Nothing appeared next to the directory either.
    let beside: Vec<_> = std::fs::read_dir(root.path())
        .expect("root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("rec")]);
}

/// A hub subscriber for events only, speaking the framed format over the hub socket.
struct EventTap {
    sock: UnixStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl EventTap {
    fn connect(socket: &Path) -> EventTap {
        let mut sock = UnixStream::connect(socket).expect("hub socket");
        let mut out = BytesMut::new();
        let hello = Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Subscriber,
            name: "event-tap".into(),
        };
        ipc::encode(&hello, &[], &mut out);
        let subscribe = Header::Subscribe {
            patterns: vec![],
            media: false,
            events: true,
        };
        ipc::encode(&subscribe, &[], &mut out);
        sock.write_all(&out).expect("subscribe");
        EventTap {
            sock,
            buf: BytesMut::new(),
            decoder: FrameDecoder::default(),
        }
    }

    /// The next event of kind `kind`, within the deadline.
    fn next(&mut self, kind: &str, deadline: Instant) -> Event {
        loop {
            while let Some(m) = self.decoder.decode(&mut self.buf).expect("valid ipc") {
                if let Header::Event(e) = m.header {
                    if e.kind == kind {
                        return e;
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {kind} event in time");
            self.sock.set_read_timeout(Some(left)).expect("timeout");
            let mut tmp = [0u8; 16 * 1024];
            let n = self.sock.read(&mut tmp).expect("read events");
            assert!(n > 0, "hub closed the event subscription");
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }
}

fn field<'a>(e: &'a Event, name: &str) -> &'a str {
    e.fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{} event without {name}: {e:?}", e.kind))
}

#[test]
fn record_events_reach_the_hub() {
    let server = Server::start(ServerOpts::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut tap = EventTap::connect(server.socket());
    let _rec = recorder(&server, dir.path(), &[]);
    publish_all(
        &server,
        "ev",
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(2)),
    );
    let start = tap.next("record_start", deadline_in(30.0));
    assert_eq!(start.key, "live/ev");
    let done = tap.next("record_done", deadline_in(30.0));
    assert_eq!(done.key, "live/ev");
    let path = field(&done, "path");
    assert_eq!(path, field(&start, "path"));
    let bytes: u64 = field(&done, "bytes").parse().expect("bytes");
    assert_eq!(bytes, std::fs::metadata(path).expect("file").len());
    let secs: f64 = field(&done, "duration").parse().expect("duration");
    assert!((secs - 2.0).abs() <= TOLERANCE, "duration {secs}");
    assert!(!field(&done, "reason").is_empty());
}

/// A recorder that stops reading (SIGSTOP) while a fast stream goes on is told what was
/// dropped when it resumes; it closes the file and starts a new one at a keyframe, and a
/// player of the same stream never notices.
#[test]
fn recorder_falling_behind_starts_a_new_file() {
    const FRAMES: usize = 550;
    let server = Server::start(ServerOpts::default().hub(&["--player-queue-bytes", "1048576"]));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rec = recorder(&server, dir.path(), &[]);
    let (mut publisher, sid) = raw_publisher(server.addr(), "fast");
    // A raw player of the same stream counts the frames it gets.
    let (mut player, psid) = RtmpClient::open(server.addr(), "live").expect("player");
    player.play_started(psid, "fast").expect("play starts");
    let watching = std::thread::spawn(move || {
        let deadline = deadline_in(90.0);
        let mut coded = 0usize;
        while coded < FRAMES {
            match player.next_message(deadline) {
                Ok(m) => coded += usize::from(is_coded_video(&m)),
                Err(e) => return Err(format!("player: {e} after {coded} frames")),
            }
        }
        Ok(coded)
    });
    // Big stand-in frames at a high rate so that a stopped reader falls behind quickly.
    let big = vec![0x41u8; 60_000];
    let key = vec![0x65u8; 60_000];
    let header = e2e::flv::avc_sequence_header(e2e::flv::SPS_64X64, e2e::flv::PPS_64X64);
    publisher.send_video(sid, 0, &header).expect("header");
    let mut ts = 0;
    let mut send = |n: u32, publisher: &mut RtmpClient| {
        for _ in 0..n {
            let keyframe = ts % 500 == 0;
            let nalu = if keyframe { &key } else { &big };
            let body = e2e::flv::avc_frame(keyframe, 0, &[nalu]);
            publisher
                .send_video(sid, ts, &body)
                .expect("publisher undisturbed");
            ts += 20;
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    send(50, &mut publisher);
    rec.stderr
        .wait_for(0, deadline_in(20.0), |l| l.contains("recording started"))
        .unwrap_or_else(|| panic!("never started\n{}", rec.describe()));
    rec.signal(libc::SIGSTOP);
    send(400, &mut publisher); // about 24 MB
    rec.signal(libc::SIGCONT);
    send(100, &mut publisher);
    rec.stderr
        .wait_for(0, deadline_in(30.0), |l| {
            l.contains("hub dropped data for the recorder, starting a new file")
        })
        .unwrap_or_else(|| panic!("recorder never reported the gap\n{}", rec.describe()));
    drop(publisher);
    wait_done(&rec, 2);
    assert!(
        files_under(dir.path()).len() >= 2,
        "a new file after the gap"
    );
    let coded = watching.join().expect("player thread");
    assert_eq!(coded, Ok(FRAMES), "the player must get every frame");
}
