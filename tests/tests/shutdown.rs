//! Stopping the real server under the supervisor while a stream is live and recorded:
//! SIGTERM stops everything in order and leaves a finished recording; SIGKILL of the
//! supervisor itself leaves no component running. SIGTERM to ingest-rtmp alone ends its
//! streams in order: clients are told why, the hub sees an unpublish.

use std::time::{Duration, Instant};

use e2e::deadline_in;
use e2e::ffmpeg::{self, decode_file, Codecs, PublishOpts};
use e2e::rtmp_client::RtmpClient;
use e2e::scenario::is_coded_video;
use e2e::scenario::{raw_publisher, send_h264_aac, wait_media_time};
use e2e::server::Which;
use e2e::supervised::Supervised;
use e2e::{Server, ServerOpts};

const COMPONENTS: [&str; 3] = ["hub", "recorder", "ingest-rtmp"];

/// Whether `pid` is gone (no such process, or a zombie nobody reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesized command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

fn wait_gone(pids: &[(&str, i32)], within: Duration, s: &Supervised) {
    let deadline = Instant::now() + within;
    while let Some((name, pid)) = pids.iter().find(|(_, p)| !gone(*p)) {
        assert!(
            Instant::now() < deadline,
            "{name} (pid {pid}) still running after {within:?}\n{}",
            s.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Hub, ingest-rtmp and a recorder into `dir`, a live FFmpeg publish being recorded.
fn live_and_recording(dir: &std::path::Path) -> (Supervised, Vec<(&'static str, i32)>) {
    let s = Supervised::start(&format!("[recorder]\ndir = \"{}\"\n", dir.display()));
    let pids: Vec<(&str, i32)> = COMPONENTS.iter().map(|c| (*c, s.child_pid(c, 1))).collect();
    (s, pids)
}

/// Waits until the stream is live and recorded; the returned player joined after the
/// recording started.
fn wait_live(s: &Supervised) -> RtmpClient {
    s.wait_line(0, Duration::from_secs(30), |l| {
        l.contains("recording started")
    })
    .unwrap_or_else(|| panic!("recording never started\n{}", s.describe()));
    let (mut player, sid) = RtmpClient::open(s.addr(), "live").expect("player connects");
    player.play(sid, "cam").expect("play");
    player
        .wait_message(deadline_in(30.0), is_coded_video)
        .unwrap_or_else(|e| panic!("stream never live: {e}\n{}", s.describe()));
    player
}

#[test]
fn sigterm_stops_in_order_and_finishes_the_recording() {
    let rec = tempfile::tempdir().expect("temp dir");
    let (mut s, pids) = live_and_recording(rec.path());
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60));
    let _publisher = ffmpeg::publish(&s.url("cam"), &opts);
    let mut player = wait_live(&s);
    // Let some media be recorded (the decode below asks for 1.5 s of it): 3 s of stream
    // time seen by a player that joined after the recording started.
    wait_media_time(&mut player, 3000, deadline_in(60.0));

    let mark = s.mark();
    s.signal_supervisor(libc::SIGTERM);
    let (status, killed) = s.sup.wait_or_kill(deadline_in(30.0));
    assert!(
        status.success() && !killed,
        "supervisor exit {status:?}\n{}",
        s.describe()
    );
    wait_gone(&pids, Duration::from_secs(5), &s);
    // Order: ingest stops first, then the recorder, the hub last.
    let lines = s.sup.stderr.lines();
    let at = |name: &str| {
        lines[mark..]
            .iter()
            .position(|l| l.contains(&format!("stopping {name} ")))
            .unwrap_or_else(|| panic!("no `stopping {name}` line\n{}", lines.join("\n")))
    };
    assert!(at("ingest-rtmp") < at("recorder") && at("recorder") < at("hub"));
    assert!(
        lines[mark..]
            .iter()
            .any(|l| l.starts_with("[recorder]") && l.contains("recording done")),
        "the recorder did not finish its file\n{}",
        lines.join("\n")
    );

    let files: Vec<_> = std::fs::read_dir(rec.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // At least 1.5 of the 3 s waited after the start, at 20 fps and ~47 AAC frames/s.
    decode_file(&files[0]).assert_decoded("recording finished at shutdown", 30, 70);
}

#[test]
fn sigkill_of_the_supervisor_leaves_no_component_running() {
    let rec = tempfile::tempdir().expect("temp dir");
    let (s, pids) = live_and_recording(rec.path());
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60));
    let _publisher = ffmpeg::publish(&s.url("cam"), &opts);
    wait_live(&s);
    s.signal_supervisor(libc::SIGKILL);
    wait_gone(&pids, Duration::from_secs(10), &s);
}

#[test]
fn sigterm_to_ingest_unpublishes_and_tells_the_clients() {
    let mut server = Server::start(ServerOpts::default());
    let (mut publisher, sid) = raw_publisher(server.addr(), "bye");
    send_h264_aac(&mut publisher, sid, 0, 10, 40, 10).expect("send media");
    // A player that is connected but not playing gets told as well.
    let (mut idle, _) = RtmpClient::open(server.addr(), "live").expect("second client");
    let marks = server.log_marks();
    server
        .wait_log((0, 0), Duration::from_secs(10), |l| {
            l.contains("publishing")
        })
        .unwrap_or_else(|| panic!("never published\n{}", server.describe()));

    server.signal_ingest(libc::SIGTERM);
    let unpublished = publisher
        .wait_status(deadline_in(10.0), |s| {
            s.code == "NetStream.Unpublish.Success"
        })
        .unwrap_or_else(|e| panic!("no unpublish status: {e}\n{}", server.describe()));
    assert!(
        unpublished.description.contains("shutting down"),
        "{unpublished:?}"
    );
    publisher
        .wait_status(deadline_in(10.0), |s| {
            s.code == "NetConnection.Connect.Closed"
        })
        .unwrap_or_else(|e| panic!("publisher not told: {e}\n{}", server.describe()));
    publisher
        .expect_closed(deadline_in(10.0))
        .expect("publisher's connection closed");
    idle.wait_status(deadline_in(10.0), |s| {
        s.code == "NetConnection.Connect.Closed"
    })
    .unwrap_or_else(|e| panic!("idle client not told: {e}\n{}", server.describe()));

    // The hub saw the stream end as an unpublish with its reason, not a lost connection.
    let (_, line) = server
        .wait_log(marks, Duration::from_secs(10), |l| {
            l.contains("publisher left") && l.contains("shutdown")
        })
        .unwrap_or_else(|| panic!("hub did not see EndOfStream\n{}", server.describe()));
    assert!(!line.contains("disconnect"), "{line}");
    let status = server
        .wait_ingest_exit(deadline_in(10.0))
        .unwrap_or_else(|| panic!("ingest-rtmp still running\n{}", server.describe()));
    assert!(status.success(), "ingest-rtmp exit {status:?}");
    let log = server.log(Which::Ingest).lines().join("\n");
    assert!(
        !log.contains("still open at shutdown"),
        "connections were cut, not ended:\n{log}"
    );
}
