//! What the server tells its user and its clients: one `conn_id` names one client in
//! ingest-rtmp's and the hub's logs, and the common mistakes (a publish without a stream
//! key, a play of a key nobody publishes) are explained on both sides, while a player
//! simply leaving is not reported as an error.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::server::{is_warn, Which};
use e2e::{deadline_in, Server, ServerOpts};

/// Every `conn_id=N` value in a log line.
fn conn_ids(line: &str) -> BTreeSet<u64> {
    line.match_indices("conn_id=")
        .filter_map(|(at, m)| {
            let digits: String = line[at + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// Waits for a line of `which` containing every one of `parts`.
fn wait_line(server: &Server, which: Which, parts: &[&str]) -> String {
    server
        .log(which)
        .wait_for(0, deadline_in(30.0), |l| {
            parts.iter().all(|p| l.contains(p))
        })
        .unwrap_or_else(|| panic!("no {which:?} line with {parts:?}\n{}", server.describe()))
}

/// The one `conn_id` of a line, panicking unless there is exactly one value.
fn one_id(line: &str) -> u64 {
    let ids = conn_ids(line);
    assert_eq!(ids.len(), 1, "expected one conn_id value in {line:?}");
    ids.into_iter().next().expect("one id")
}

#[test]
fn one_conn_id_names_a_client_in_ingest_and_hub() {
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("ids");
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30));
    let _publisher = ffmpeg::publish(&url, &opts);
    let publishing = wait_line(&server, Which::Ingest, &["publishing", "key=live/ids"]);
    let publisher_id = one_id(&publishing);
    let started = wait_line(&server, Which::Hub, &["publish started", "key=live/ids"]);
    assert_eq!(one_id(&started), publisher_id, "{started}");

    let player = Player::spawn(&url, &PlayOpts::default());
    assert!(
        player.wait_frames(5, 1, deadline_in(30.0)),
        "{}",
        server.describe()
    );
    let handed = wait_line(&server, Which::Ingest, &["player handed to the hub"]);
    let player_id = one_id(&handed);
    assert_ne!(player_id, publisher_id);
    let marker = format!("conn_id={player_id}");
    let playing = wait_line(&server, Which::Hub, &["player started", &marker]);
    assert_eq!(one_id(&playing), player_id, "{playing}");

    // No hub line names two different connections.
    for line in server.log(Which::Hub).lines() {
        assert!(conn_ids(&line).len() <= 1, "two conn_ids in {line:?}");
    }
    server.assert_alive();
}

#[test]
fn publishing_without_a_stream_key_is_explained_to_both_sides() {
    let mut server = Server::start(ServerOpts::default());
    // The classic OBS mistake: the server URL with an empty stream key.
    let url = format!("rtmp://{}/live", server.addr());
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(5));
    let mut publisher = ffmpeg::publish(&url, &opts);
    let (status, killed) = publisher.wait_or_kill(deadline_in(30.0));
    assert!(!status.success() && !killed, "{}", publisher.describe());
    // FFmpeg prints the onStatus description as the server's error.
    let said = publisher.stderr.lines().join("\n");
    assert!(
        said.contains("publish without a stream key: publish to rtmp://HOST/live/KEY"),
        "FFmpeg's output:\n{said}"
    );
    let warned = wait_line(
        &server,
        Which::Ingest,
        &["publish refused: publish without a stream key"],
    );
    assert!(is_warn(&warned), "{warned}");
    server.assert_alive();
}

#[test]
fn a_player_waiting_in_vain_is_told_why_and_a_player_leaving_is_no_error() {
    let mut server = Server::start(ServerOpts::default().hub(&["--publisher-wait", "2s"]));
    let mut waiting = Player::spawn(&server.url("nobody"), &PlayOpts::default());
    let line = wait_line(&server, Which::Hub, &["player waiting for a publisher of"]);
    assert!(
        line.contains("waiting for a publisher of live/nobody (up to 2s)"),
        "{line}"
    );
    assert!(!line.contains("player started"), "{line}");
    let line = wait_line(&server, Which::Hub, &["closing player"]);
    assert!(
        line.contains("nobody published the stream within 2s (--publisher-wait)"),
        "{line}"
    );
    let (_, killed) = waiting.proc().wait_or_kill(deadline_in(20.0));
    assert!(
        !killed,
        "FFmpeg kept waiting\n{}",
        waiting.proc().describe()
    );
    let said = waiting.proc().stderr.lines().join("\n");
    assert!(
        said.contains("nobody published live/nobody within 2s"),
        "FFmpeg's output:\n{said}"
    );

    // A player that goes away mid-stream just leaves.
    let url = server.url("leave");
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30));
    let _publisher = ffmpeg::publish(&url, &opts);
    wait_line(&server, Which::Hub, &["publish started", "key=live/leave"]);
    let mut player = Player::spawn(&url, &PlayOpts::default());
    assert!(
        player.wait_frames(5, 1, deadline_in(30.0)),
        "{}",
        server.describe()
    );
    let started = wait_line(&server, Which::Hub, &["player started"]);
    let marker = format!("conn_id={}", one_id(&started));
    player.stop();
    let left = wait_line(&server, Which::Hub, &["player left", &marker]);
    assert!(
        !left.contains("error") && !is_warn(&left) && !left.contains("ERROR"),
        "{left}"
    );
    server.assert_alive();
}
