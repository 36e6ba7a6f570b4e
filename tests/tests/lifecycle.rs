//! Stream lifecycle under attached players: publisher leaving and returning, duplicate
//! publishers in both policies, players that arrive before the publisher, and the timeouts
//! that bound waiting.

use std::time::{Duration, Instant};

use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::flv::{self, Packet};
use e2e::rtmp_client::{msg_type, RtmpClient};
use e2e::scenario::{is_coded_video, raw_publisher, read_until, send_h264_aac, Received};
use e2e::{Server, ServerOpts};

const UNPUBLISH: &str = "NetStream.Play.UnpublishNotify";

fn first_coded_after(rx: &Received, from: usize) -> Option<Packet> {
    rx.messages[from..]
        .iter()
        .find(|m| is_coded_video(m))
        .map(|m| flv::video_packet(&m.payload))
}

/// Hand-built publishers, exact counts: the second publisher restarts its clock at 0, and the
/// player's timestamps still never go backwards.
#[test]
fn raw_publisher_leaves_and_returns() {
    let mut server = Server::start(ServerOpts::default());
    let (mut player, sid) = RtmpClient::open(server.addr(), "live").expect("player connects");
    player.play_started(sid, "ret").expect("play starts");
    let mut rx = Received::default();

    // One GOP of 20 frames: whether the player gets them live or from the GOP cache, it gets
    // all of them.
    let (mut first, psid) = raw_publisher(server.addr(), "ret");
    send_h264_aac(&mut first, psid, 0, 20, 50, 100).expect("first publisher sends");
    read_until(
        &mut player,
        &mut rx,
        deadline_in(10.0),
        "20 frames of the first publisher",
        |r| r.coded_video_since(0) >= 20,
    );
    drop(first);
    read_until(&mut player, &mut rx, deadline_in(10.0), UNPUBLISH, |r| {
        r.statuses().iter().any(|s| s.code == UNPUBLISH)
    });
    let returned_at = rx.messages.len();

    let (mut second, psid) = raw_publisher(server.addr(), "ret");
    send_h264_aac(&mut second, psid, 0, 20, 50, 100).expect("second publisher sends");
    read_until(
        &mut player,
        &mut rx,
        deadline_in(10.0),
        "20 frames after the return",
        |r| r.coded_video_since(returned_at) >= 20,
    );
    assert_eq!(
        first_coded_after(&rx, returned_at),
        Some(Packet::Coded { keyframe: true }),
        "first coded frame after the publisher returned"
    );
    rx.assert_monotonic();
    server.assert_alive();
}

/// The same with FFmpeg publishers: the first one ends, the player is told, the second one
/// starts, the player keeps receiving with monotonic timestamps.
#[test]
fn ffmpeg_publisher_leaves_and_returns() {
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("again");
    let (mut player, sid) = RtmpClient::open(server.addr(), "live").expect("player connects");
    player.play_started(sid, "again").expect("play starts");
    let mut rx = Received::default();

    let mut first = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(3)),
    );
    read_until(
        &mut player,
        &mut rx,
        deadline_in(20.0),
        "frames of the first publisher",
        |r| r.coded_video_since(0) >= 20,
    );
    let (status, killed) = first.wait_or_kill(deadline_in(20.0));
    assert!(
        status.success() && !killed,
        "first publisher\n{}",
        first.describe()
    );
    read_until(&mut player, &mut rx, deadline_in(10.0), UNPUBLISH, |r| {
        r.statuses().iter().any(|s| s.code == UNPUBLISH)
    });
    let returned_at = rx.messages.len();

    let _second = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30)),
    );
    read_until(
        &mut player,
        &mut rx,
        deadline_in(20.0),
        "frames after the return",
        |r| r.coded_video_since(returned_at) >= 30,
    );
    assert_eq!(
        first_coded_after(&rx, returned_at),
        Some(Packet::Coded { keyframe: true }),
        "first coded frame after the publisher returned"
    );
    rx.assert_monotonic();
    server.assert_alive();
}

/// Default policy: a second publisher of a live key takes it over; players stay attached
/// and keep receiving (now the new publisher's stream, timestamps still monotonic).
#[test]
fn duplicate_publish_takes_over() {
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("dup");
    let _first = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30)),
    );
    let mut watcher = Player::spawn(&url, &PlayOpts::default());
    let (mut player, sid) = RtmpClient::open(server.addr(), "live").expect("player connects");
    player.play(sid, "dup").expect("play");
    let mut rx = Received::default();
    read_until(
        &mut player,
        &mut rx,
        deadline_in(20.0),
        "frames of the first publisher",
        |r| r.coded_video_since(0) >= 20,
    );
    let first_header = rx
        .media()
        .find(|m| m.type_id == msg_type::VIDEO)
        .map(|m| m.payload.clone())
        .expect("a video sequence header");

    // A different frame rate makes a different SPS, so the switch is visible in the stream.
    let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30));
    opts.fps = 25;
    opts.gop = 25;
    opts.source = "smptebars";
    let _second = ffmpeg::publish(&url, &opts);
    read_until(
        &mut player,
        &mut rx,
        deadline_in(20.0),
        "the second publisher's header",
        |r| {
            r.messages.iter().any(|m| {
                m.type_id == msg_type::VIDEO
                    && flv::video_packet(&m.payload) == Packet::SequenceHeader
                    && m.payload != first_header
            })
        },
    );
    let switched_at = rx.messages.len();
    let watched = watcher.counts().video;
    read_until(
        &mut player,
        &mut rx,
        deadline_in(20.0),
        "frames after the takeover",
        |r| r.coded_video_since(switched_at) >= 25,
    );
    assert_eq!(
        first_coded_after(&rx, switched_at),
        Some(Packet::Coded { keyframe: true }),
        "first coded frame after the takeover"
    );
    rx.assert_monotonic();
    assert!(
        watcher.wait_frames(watched + 25, 0, deadline_in(20.0)),
        "FFmpeg player stopped at the takeover (decoded {watched} before)"
    );
    let report = watcher.stop();
    assert!(
        report.errors.is_empty(),
        "FFmpeg player errors: {:#?}",
        report.errors
    );
    server.assert_alive();
}

/// `--on-duplicate reject`: the second publisher gets NetStream.Publish.BadName, and the
/// first keeps its players.
#[test]
fn duplicate_publish_rejected() {
    let mut server = Server::start(ServerOpts::default().hub(&["--on-duplicate", "reject"]));
    let url = server.url("taken");
    let mut first = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30)),
    );
    let mut watcher = Player::spawn(&url, &PlayOpts::default());
    assert!(
        watcher.wait_frames(20, 1, deadline_in(20.0)),
        "{}",
        server.describe()
    );

    let (mut second, sid) = RtmpClient::open(server.addr(), "live").expect("second connects");
    let status = second.publish(sid, "taken").expect("publish answered");
    assert_eq!(status.code, "NetStream.Publish.BadName", "{status:?}");
    assert_eq!(status.level, "error", "{status:?}");

    let watched = watcher.counts().video;
    assert!(
        watcher.wait_frames(watched + 20, 0, deadline_in(20.0)),
        "the first publisher's player stopped after the rejected duplicate"
    );
    assert!(
        first.is_running(),
        "first publisher was disconnected\n{}",
        first.describe()
    );
    let report = watcher.stop();
    assert!(
        report.errors.is_empty(),
        "FFmpeg player errors: {:#?}",
        report.errors
    );
    server.assert_alive();
}

/// A player that asks for a key before anyone publishes it waits, then decodes.
#[test]
fn play_before_publish() {
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("early");
    let player = Player::spawn(
        &url,
        &PlayOpts {
            duration: Some(Duration::from_secs(3)),
            debug: true,
            ..PlayOpts::default()
        },
    );
    // FFmpeg logs this at debug level once its play command is on the wire.
    let mut probe = player;
    assert!(
        probe
            .proc()
            .stderr
            .wait_for(0, deadline_in(15.0), |l| l.contains("Sending play command"))
            .is_some(),
        "player never sent play\n{}",
        probe.proc().describe()
    );
    let _publisher = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30)),
    );
    probe
        .finish(deadline_in(40.0))
        .assert_decoded("early player", 40, 40);
    server.assert_alive();
}

/// `--unpublish-timeout`: players of a stream whose publisher left are released after it.
#[test]
fn players_released_after_unpublish_timeout() {
    let mut server = Server::start(ServerOpts::default().hub(&["--unpublish-timeout", "1s"]));
    let (mut player, sid) = RtmpClient::open(server.addr(), "live").expect("player connects");
    player.play(sid, "gone").expect("play");
    let mut rx = Received::default();
    let (mut publisher, psid) = raw_publisher(server.addr(), "gone");
    send_h264_aac(&mut publisher, psid, 0, 5, 50, 100).expect("publisher sends");
    read_until(&mut player, &mut rx, deadline_in(10.0), "frames", |r| {
        r.coded_video_since(0) >= 5
    });
    drop(publisher);
    match player.expect_closed(Instant::now() + Duration::from_secs(15)) {
        Ok(()) => {}
        Err(e) => panic!("player not released 15 s after its publisher left: {e}"),
    }
    server.assert_alive();
}

/// `--publisher-wait`: a player of a key nobody publishes is not kept forever.
#[test]
fn waiting_player_released_after_publisher_wait() {
    let mut server = Server::start(ServerOpts::default().hub(&["--publisher-wait", "1s"]));
    let (mut player, sid) = RtmpClient::open(server.addr(), "live").expect("player connects");
    player.play(sid, "nobody").expect("play");
    match player.expect_closed(Instant::now() + Duration::from_secs(15)) {
        Ok(()) => {}
        Err(e) => panic!("waiting player not released 15 s into a 1 s publisher wait: {e}"),
    }
    server.assert_alive();
}
