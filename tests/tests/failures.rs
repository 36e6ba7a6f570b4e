//! The process split paying off: real processes killed with -9 under the real supervisor.
//!
//! - The hub dies during a live stream: the publisher's connection stays up, ingest-rtmp
//!   reconnects to the restarted hub and re-announces the stream, and a new player plays it
//!   (its first keyframe comes well before the hub's publisher wait would end).
//! - ingest-rtmp dies: players already handed to the hub keep their connections; when the
//!   publisher comes back, they continue on the same connections.
//! - The hub dies while the recorder and the relayer serve a live stream: both processes
//!   stay, end what the lost hub fed, subscribe to the new hub and take the re-announced
//!   stream up again (a new file, a new push).
//! - The hub dies under an SRT publisher: ingest-srt re-announces the stream with what its
//!   `--hub-replay` kept (`gop`: a new player starts at once at the kept keyframe;
//!   `headers`: the configurations only, and video waits for the next keyframe).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::flv;
use e2e::rtmp_client::{msg_type, ClientError, Message, RtmpClient};
use e2e::scenario::{is_coded_video, Received};
use e2e::srt::{ffmpeg_send, make_ts_gop, url_with_stream_id, TsCodecs};
use e2e::supervised::Supervised;
use e2e::{hub_events, Server, ServerOpts};

/// How soon after the hub is back a new player must get its first keyframe: a generous
/// bound on an event (ingest re-announces and the next 1 s GOP arrives), not a speed
/// claim; it stays well below the hub's 30 s publisher wait, so a stream that was not
/// re-announced cannot pass.
const REJOIN_BOUND: Duration = Duration::from_secs(15);

fn publish_opts() -> PublishOpts {
    // 1 s GOPs: a late joiner never waits long for a keyframe.
    PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60))
}

#[test]
fn hub_killed_during_live_stream() {
    let s = Supervised::start("");
    let hub = s.child_pid("hub", 1);
    let ingest = s.child_pid("ingest-rtmp", 1);
    let mut publisher = ffmpeg::publish(&s.url("cam"), &publish_opts());
    // The stream is live once a player gets coded video.
    let (mut first, sid) = RtmpClient::open(s.addr(), "live").expect("player connects");
    first.play(sid, "cam").expect("play");
    first
        .wait_message(deadline_in(30.0), is_coded_video)
        .unwrap_or_else(|e| panic!("stream never live: {e}\n{}", s.describe()));
    drop(first);

    let mark = s.mark();
    Supervised::kill9(hub);
    let line = |what: &str, pred: &dyn Fn(&str) -> bool| {
        s.wait_line(mark, Duration::from_secs(20), pred)
            .unwrap_or_else(|| panic!("supervisor never logged {what}\n{}", s.describe()))
    };
    let exited = line("the hub's death", &|l| {
        l.contains("hub exited unexpectedly")
    });
    assert!(exited.contains("9") || exited.contains("KILL"), "{exited}");
    line("the hub's restart", &|l| l.contains("restarting hub"));
    line("the new hub ready", &|l| l.contains("hub is ready"));
    let ready = Instant::now();

    // A new player, right away: it waits for the stream if ingest has not re-announced.
    let (mut player, sid) = RtmpClient::open(s.addr(), "live").expect("new player connects");
    player.play(sid, "cam").expect("play");
    let mut media = Vec::new();
    let first_coded = loop {
        let m = player
            .next_message(deadline_in(30.0))
            .unwrap_or_else(|e| panic!("new player: {e}\n{}", s.describe()));
        if is_coded_video(&m) {
            media.push(m);
            break ready.elapsed();
        }
        if m.is_media() {
            media.push(m);
        }
    };
    flv::check_start(media.iter().map(|m| (m.type_id, m.payload.as_slice())))
        .unwrap_or_else(|e| panic!("new player after the hub restart: {e}"));
    eprintln!("first keyframe {first_coded:?} after the hub was back");
    assert!(
        first_coded <= REJOIN_BOUND,
        "first keyframe {first_coded:?} after the hub was back (bound {REJOIN_BOUND:?})\n{}",
        s.describe()
    );
    line("ingest's re-announce", &|l| {
        l.starts_with("[ingest-rtmp]") && l.contains("re-announced the stream")
    });

    // The publisher never noticed: same FFmpeg, same ingest process, and what it sends
    // after the restart decodes cleanly.
    assert!(
        publisher.is_running(),
        "publisher dropped\n{}",
        publisher.describe()
    );
    assert_eq!(s.child_pid("ingest-rtmp", 1), ingest);
    assert!(
        !s.sup
            .stderr
            .lines()
            .iter()
            .any(|l| l.contains("restarting ingest-rtmp")),
        "ingest-rtmp was restarted\n{}",
        s.describe()
    );
    assert_plays(&s.url("cam"), "player after the hub restart");
}

/// FFmpeg plays two seconds of `url` and decodes video and audio cleanly.
fn assert_plays(url: &str, what: &str) {
    let opts = PlayOpts {
        duration: Some(Duration::from_secs(2)),
        ..PlayOpts::default()
    };
    Player::spawn(url, &opts)
        .finish(deadline_in(30.0))
        .assert_decoded(what, 20, 20);
}

/// The subscribers' side of a hub restart: the recorder's file ends (`hub_disconnected`)
/// and a new one starts from the new hub's announcement; the relayer's push ends and starts
/// again, and the destination plays the stream; neither process is restarted.
#[test]
fn recorder_and_relayer_resubscribe_after_a_hub_restart() {
    let second = Server::start_second(ServerOpts::default());
    let dest = hub_events::subscribe(second.socket());
    let rec = tempfile::tempdir().expect("temp dir");
    let to = second.addr();
    let s = Supervised::start(&format!(
        "[recorder]\ndir = \"{}\"\n[relayer]\npush = [\"live/*=rtmp://{to}/live/{{name}}\"]\n",
        rec.path().display()
    ));
    let (recorder, relayer) = (s.child_pid("recorder", 1), s.child_pid("relayer", 1));
    let _publisher = ffmpeg::publish(&s.url("cam"), &publish_opts());
    let from = |component: &str, mark: usize, what: &str| {
        let tag = format!("[{component}]");
        s.wait_line(mark, Duration::from_secs(30), |l| {
            l.starts_with(&tag) && l.contains(what)
        })
        .unwrap_or_else(|| panic!("{component} never logged {what:?}\n{}", s.describe()))
    };
    let published = |l: &str| l.starts_with("publish key=live/cam ");
    from("recorder", 0, "recording started");
    hub_events::wait_event(&dest, "relayed publish", published);

    let mark = s.mark();
    Supervised::kill9(s.child_pid("hub", 1));
    s.wait_line(mark, Duration::from_secs(30), |l| {
        l.contains("hub is ready")
    })
    .unwrap_or_else(|| panic!("hub not restarted\n{}", s.describe()));
    let done = from("recorder", mark, "recording done");
    assert!(done.contains("hub_disconnected"), "{done}");
    for component in ["recorder", "relayer"] {
        from(component, mark, "connected to the hub");
    }
    from("recorder", mark, "recording started");
    assert!(
        dest.wait_count(2, deadline_in(30.0), published),
        "the relayer never pushed again; events:\n{}",
        dest.tail(30)
    );
    assert_plays(&second.url("cam"), "the destination after the hub restart");

    // The same processes subscribed again: the supervisor restarted neither.
    assert_eq!(s.child_pid("recorder", 1), recorder);
    assert_eq!(s.child_pid("relayer", 1), relayer);
    let lines = s.sup.stderr.lines();
    for component in ["recorder", "relayer"] {
        let restarting = format!("restarting {component}");
        assert!(
            !lines.iter().any(|l| l.contains(&restarting)),
            "{component} was restarted\n{}",
            s.describe()
        );
    }
}

/// A raw player reading on its own thread until told to stop.
struct Watcher {
    coded: Arc<AtomicUsize>,
    thread: JoinHandle<(Received, Option<ClientError>)>,
}

fn watch(s: &Supervised, name: &str, stop: Arc<AtomicBool>) -> Watcher {
    let (mut client, sid) = RtmpClient::open(s.addr(), "live").expect("player connects");
    client.play(sid, name).expect("play");
    let coded = Arc::new(AtomicUsize::new(0));
    let count = coded.clone();
    let thread = thread::spawn(move || {
        let mut rx = Received::default();
        while !stop.load(Ordering::Relaxed) {
            match client.next_message(deadline_in(0.2)) {
                Ok(m) => {
                    if is_coded_video(&m) {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    rx.messages.push(m);
                }
                Err(ClientError::Timeout) => {}
                Err(e) => return (rx, Some(e)),
            }
        }
        (rx, None)
    });
    Watcher { coded, thread }
}

fn wait_coded(watchers: &[Watcher], at_least: usize, what: &str, s: &Supervised) {
    let deadline = deadline_in(40.0);
    while watchers
        .iter()
        .any(|w| w.coded.load(Ordering::Relaxed) < at_least)
    {
        assert!(
            Instant::now() < deadline,
            "players never reached {at_least} coded frames {what}\n{}",
            s.describe()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ingest_killed_players_continue() {
    let s = Supervised::start("");
    let url = s.url("cam");
    let mut first_publisher = ffmpeg::publish(&url, &publish_opts());
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<Watcher> = (0..2).map(|_| watch(&s, "cam", stop.clone())).collect();
    wait_coded(&watchers, 20, "before the kill", &s);

    let mark = s.mark();
    Supervised::kill9(s.child_pid("ingest-rtmp", 1));
    s.wait_line(mark, Duration::from_secs(20), |l| {
        l.contains("ingest-rtmp exited unexpectedly")
    })
    .unwrap_or_else(|| panic!("supervisor never logged ingest's death\n{}", s.describe()));
    s.child_pid("ingest-rtmp", 2);
    s.wait_line(mark, Duration::from_secs(20), |l| {
        l.contains("ingest-rtmp is ready")
    })
    .unwrap_or_else(|| panic!("ingest-rtmp never back\n{}", s.describe()));
    // The first publisher lost its TCP connection with ingest; it ends on its own.
    first_publisher.wait_or_kill(deadline_in(20.0));

    // The publisher comes back (as an encoder with reconnect would); the same players go on.
    let before: Vec<usize> = watchers
        .iter()
        .map(|w| w.coded.load(Ordering::Relaxed))
        .collect();
    let mut second_publisher = ffmpeg::publish(&url, &publish_opts());
    let low = before.iter().copied().max().unwrap_or(0);
    wait_coded(&watchers, low + 40, "after the publisher returned", &s);
    assert!(
        second_publisher.is_running(),
        "{}",
        second_publisher.describe()
    );

    stop.store(true, Ordering::Relaxed);
    for (i, w) in watchers.into_iter().enumerate() {
        let (rx, error) = w.thread.join().expect("player thread");
        assert!(
            error.is_none(),
            "player {i} lost its connection: {error:?}\n{}",
            s.describe()
        );
        rx.assert_monotonic();
        let codes: Vec<String> = rx.statuses().into_iter().map(|st| st.code).collect();
        let unpublished = codes
            .iter()
            .position(|c| c == "NetStream.Play.UnpublishNotify")
            .unwrap_or_else(|| panic!("player {i}: no UnpublishNotify in {codes:?}"));
        assert!(
            codes[unpublished..]
                .iter()
                .any(|c| c == "NetStream.Play.PublishNotify"),
            "player {i}: no PublishNotify after the publisher returned: {codes:?}"
        );
        // What arrived after the return starts with headers and a keyframe.
        let publish_notify = rx
            .messages
            .iter()
            .rposition(|m| {
                m.status()
                    .is_some_and(|st| st.code == "NetStream.Play.PublishNotify")
            })
            .expect("PublishNotify message");
        let after = rx.messages[publish_notify..]
            .iter()
            .filter(|m| m.is_media());
        flv::check_start(after.map(|m| (m.type_id, m.payload.as_slice())))
            .unwrap_or_else(|e| panic!("player {i} after the publisher returned: {e}"));
    }
}

/// What a new player of an SRT stream gets after a hub restart, with ingest-srt running
/// `--hub-replay replay` (from the supervisor's profile). The stream's only keyframe is its
/// first frame, so the player gets coded video only if ingest-srt replayed the GOP.
/// Returns the player's media messages up to its first coded video frame, or up to 50
/// coded audio frames (a second) when none came first.
fn srt_player_after_hub_restart(replay: &str) -> Vec<Message> {
    let s = Supervised::start_profile(|addr| {
        format!(
            "[supervisor]\nrestart_backoff_min = \"100ms\"\nrestart_backoff_max = \"1s\"\n\
             shutdown_timeout = \"5s\"\n\n\
             # The whole stream is one GOP, kept however long the test runs.\n\
             [hub]\ngop-cache-duration = \"1m\"\n\n\
             [ingest-rtmp]\nlisten = \"{addr}\"\n\n\
             [ingest-srt]\nlisten = \"127.0.0.1:0\"\nhub-replay = \"{replay}\"\n"
        )
    });
    let listening = s
        .wait_line(0, Duration::from_secs(30), |l| {
            l.starts_with("[ingest-srt]") && l.contains("listening on srt://")
        })
        .unwrap_or_else(|| panic!("ingest-srt never listened\n{}", s.describe()));
    let srt = listening
        .split("srt://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {listening}"));
    let file = s.path("one-gop.ts");
    make_ts_gop(&file, TsCodecs::H264Aac, 30, 10_000);
    // The first player waits for the stream, so it starts at the stream's first frame.
    let (mut first, sid) = RtmpClient::open(s.addr(), "live").expect("player connects");
    first.play(sid, "srtcam").expect("play");
    let mut publisher = ffmpeg_send(
        &file,
        &url_with_stream_id(srt, "#!::r=live/srtcam,m=publish", ""),
    );
    first
        .wait_message(deadline_in(30.0), is_coded_video)
        .unwrap_or_else(|e| panic!("stream never live: {e}\n{}", s.describe()));
    drop(first);

    let mark = s.mark();
    Supervised::kill9(s.child_pid("hub", 1));
    let line = |what: &str, pred: &dyn Fn(&str) -> bool| {
        s.wait_line(mark, Duration::from_secs(20), pred)
            .unwrap_or_else(|| panic!("never logged {what}\n{}", s.describe()))
    };
    line("the new hub ready", &|l| l.contains("hub is ready"));
    line("ingest-srt's re-announce", &|l| {
        l.starts_with("[ingest-srt]") && l.contains("re-announced the stream")
    });

    let (mut player, sid) = RtmpClient::open(s.addr(), "live").expect("new player connects");
    player.play(sid, "srtcam").expect("play");
    let mut media = Vec::new();
    let mut audio = 0;
    while audio < 50 {
        let m = player
            .next_message(deadline_in(30.0))
            .unwrap_or_else(|e| panic!("new player: {e}\n{}", s.describe()));
        if !m.is_media() {
            continue;
        }
        let coded_video = is_coded_video(&m);
        if m.type_id == msg_type::AUDIO
            && flv::audio_packet(&m.payload) != flv::Packet::SequenceHeader
        {
            audio += 1;
        }
        media.push(m);
        if coded_video {
            break;
        }
    }
    assert!(
        publisher.is_running(),
        "the SRT publisher was dropped\n{}\n{}",
        publisher.describe(),
        s.describe()
    );
    media
}

#[test]
fn srt_stream_replayed_with_its_gop_after_a_hub_restart() {
    let media = srt_player_after_hub_restart("gop");
    assert!(
        media.last().is_some_and(is_coded_video),
        "no coded video before 50 audio frames: the GOP was not replayed"
    );
    // The kept GOP starts the player: configurations, then the keyframe.
    flv::check_start(media.iter().map(|m| (m.type_id, m.payload.as_slice())))
        .unwrap_or_else(|e| panic!("new player after the hub restart: {e}"));
}

#[test]
fn srt_stream_replayed_with_headers_only_after_a_hub_restart() {
    let media = srt_player_after_hub_restart("headers");
    let video_config = media.iter().any(|m| {
        m.type_id == msg_type::VIDEO && flv::video_packet(&m.payload) == flv::Packet::SequenceHeader
    });
    assert!(
        video_config,
        "the re-announce carried no video configuration"
    );
    assert!(
        !media.iter().any(is_coded_video),
        "coded video without a keyframe after the restart: frames were replayed"
    );
}
