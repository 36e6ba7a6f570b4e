//! Independent RTMP implementations against the server: rtmpdump (librtmp) and GStreamer
//! (rtmp2src / rtmp2sink). Skipped with a message when a tool is missing, except in CI.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::flv;
use e2e::proc::Proc;
use e2e::tools::{gst_has, skip_without, which};
use e2e::{Server, ServerOpts};

/// Checks a recorded FLV file: starts with headers and a keyframe, and decodes with no
/// errors to at least `min_video` video and `min_audio` audio frames. A truncated last tag
/// (the recorder was stopped mid-write) is cut off first.
fn check_recording(path: &Path, min_video: usize, min_audio: usize) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (tags, complete) =
        flv::read_tags(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    flv::check_start(tags.iter().map(|t| (t.kind, t.body.as_slice())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let clean = path.with_extension("complete.flv");
    std::fs::write(&clean, &data[..complete]).expect("write trimmed copy");
    ffmpeg::decode_file(&clean).assert_decoded(&path.display().to_string(), min_video, min_audio);
}

#[test]
fn rtmpdump_plays() {
    if skip_without("rtmpdump", which("rtmpdump").is_some()) {
        return;
    }
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("dump");
    let out = server.dir().join("rtmpdump.flv");
    // Started before the publisher so it records the whole stream. librtmp ignores `--stop`
    // on live streams but ends on NetStream.Play.UnpublishNotify, which the server sends
    // when the publisher leaves.
    let mut dump = Proc::spawn(
        "rtmpdump",
        Command::new("rtmpdump")
            .args(["-q", "-r", &url, "--live", "-o"])
            .arg(&out),
    );
    let mut publisher = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(5)),
    );
    let (status, killed) = publisher.wait_or_kill(deadline_in(40.0));
    assert!(
        status.success() && !killed,
        "publisher\n{}",
        publisher.describe()
    );
    let (_status, killed) = dump.wait_or_kill(deadline_in(20.0));
    assert!(
        !killed,
        "rtmpdump still running 20 s after the publisher left (no UnpublishNotify?)\n{}",
        dump.describe()
    );
    // 5 s at 20 fps = 100 video frames; keep a margin for the start.
    check_recording(&out, 60, 60);
    server.assert_alive();
}

#[test]
fn gstreamer_rtmp2src_plays() {
    if skip_without("GStreamer rtmp2src", gst_has("rtmp2src")) {
        return;
    }
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("gstplay");
    let out = server.dir().join("rtmp2src.flv");
    let _publisher = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30)),
    );
    let mut gst = Proc::spawn(
        "gst-launch rtmp2src",
        Command::new("gst-launch-1.0").args([
            "-e",
            "rtmp2src",
            &format!("location={url}"),
            "!",
            "filesink",
            &format!("location={}", out.display()),
        ]),
    );
    // Poll the recording until it holds 3 s of video (a bounded poll on a file).
    let deadline = deadline_in(40.0);
    while flv::coded_video_in(&out) < 60 {
        assert!(
            gst.is_running() && std::time::Instant::now() < deadline,
            "rtmp2src recorded {} frames\n{}",
            flv::coded_video_in(&out),
            gst.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    gst.signal(libc::SIGINT);
    gst.wait_or_kill(deadline_in(10.0));
    check_recording(&out, 50, 50);
    server.assert_alive();
}

#[test]
fn gstreamer_rtmp2sink_publishes() {
    if skip_without("GStreamer rtmp2sink/flvmux/h264parse", {
        ["rtmp2sink", "flvmux", "flvdemux", "h264parse", "aacparse"]
            .iter()
            .all(|e| gst_has(e))
    }) {
        return;
    }
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("gstpub");
    let source = server.dir().join("source.flv");
    ffmpeg::encode_file(
        &source,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(10)),
    );

    let player = Player::spawn(
        &url,
        &PlayOpts {
            duration: Some(Duration::from_secs(3)),
            debug: true,
            ..PlayOpts::default()
        },
    );
    let mut player = player;
    assert!(
        player
            .proc()
            .stderr
            .wait_for(0, deadline_in(15.0), |l| l.contains("Sending play command"))
            .is_some(),
        "player never sent play\n{}",
        player.proc().describe()
    );
    // GStreamer remuxes the file and publishes it in real time (rtmp2sink syncs on the clock).
    let _gst = e2e::gst::rtmp2sink(&source, &url, &[]);
    player
        .finish(deadline_in(40.0))
        .assert_decoded("player of rtmp2sink", 40, 40);
    server.assert_alive();
}
