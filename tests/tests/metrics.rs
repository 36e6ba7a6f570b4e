//! `/metrics` and `/debug/vars` as a scraper sees them: the Prometheus text is read by
//! `prometheus_client`'s parser, and the numbers move as FFmpeg publishes and plays, for
//! the hub's own series and for those ingest-rtmp, the recorder and the supervisor report.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::prom::{self, Scrape};
use e2e::supervised::Supervised;
use e2e::tools::skip_without;
use e2e::{deadline_in, http, Server, ServerOpts};

fn scrape(addr: SocketAddr) -> Scrape {
    let r = http::get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    prom::parse(&r.text())
}

/// Scrapes until `pred` holds (the components report every second), or panics with the
/// last scrape and `describe()`.
fn wait_for(
    addr: SocketAddr,
    what: &str,
    timeout: Duration,
    describe: impl Fn() -> String,
    pred: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + timeout;
    loop {
        let s = scrape(addr);
        if pred(&s) {
            return s;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not seen within {timeout:?}\n{:#?}\n{}",
                s.samples,
                describe()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn prometheus_text_parses_and_counters_move_with_publish_and_play() {
    if skip_without(
        "prometheus_client (pip install prometheus_client)",
        prom::parser_available(),
    ) {
        return;
    }
    let mut server = Server::start(ServerOpts::default());
    let addr = server.http_addr();
    let before = wait_for(
        addr,
        "ingest-rtmp reporting",
        Duration::from_secs(10),
        || server.describe(),
        |s| s.get("mediaserver_component_reporting{component=\"ingest-rtmp\"}") == 1.0,
    );
    assert_eq!(before.types["mediaserver_players"], "gauge");
    assert_eq!(
        before.types["mediaserver_plays"], "counter",
        "{:?}",
        before.types
    );
    assert_eq!(before.types["mediaserver_rtmp_connections_open"], "gauge");
    assert_eq!(before.get("mediaserver_rtmp_publishes_total"), 0.0);
    assert_eq!(before.get("mediaserver_ingest_frames_total"), 0.0);

    let _publisher = ffmpeg::publish(
        &server.url("m"),
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30)),
    );
    // The player plays until the test has seen it in the gauges: a player that ends on
    // its own could be gone before a loaded machine gets a scrape in.
    let mut player = Player::spawn(&server.url("m"), &PlayOpts::default());
    let playing = wait_for(
        addr,
        "a publisher and a player",
        Duration::from_secs(20),
        || server.describe(),
        |s| {
            // Each component reports on its own second: wait for both views, the hub's
            // (players) and ingest-rtmp's (its handoff counted).
            s.get("mediaserver_players{protocol=\"rtmp\"}") == 1.0
                && s.get("mediaserver_rtmp_plays_total") == 1.0
                && s.get("mediaserver_rtmp_publishers") == 1.0
                && s.get("mediaserver_streams_live") == 1.0
        },
    );
    assert_eq!(playing.get("mediaserver_rtmp_publishes_total"), 1.0);
    assert_eq!(playing.get("mediaserver_publishes_total"), 1.0);
    assert_eq!(
        playing.get("mediaserver_plays_total{protocol=\"rtmp\"}"),
        1.0
    );
    assert!(playing.get("mediaserver_rtmp_connections_total") >= 2.0);
    player.wait_frames(20, 20, deadline_in(60.0));
    let report = player.stop();
    assert!(
        report.errors.is_empty() && report.counts.video >= 20 && report.counts.audio >= 20,
        "rtmp player: decoded {:?}, errors {:#?}\n{}",
        report.counts,
        report.errors,
        report.description
    );

    let after = wait_for(
        addr,
        "the player gone, bytes counted",
        Duration::from_secs(10),
        || server.describe(),
        |s| {
            s.get("mediaserver_players{protocol=\"rtmp\"}") == 0.0
                && s.get("mediaserver_rtmp_plays_total") == 1.0
        },
    );
    assert!(
        after.get("mediaserver_ingest_frames_total")
            > playing.get("mediaserver_ingest_frames_total")
    );
    assert!(after.get("mediaserver_ingest_bytes_total") > 10_000.0);
    assert!(
        after.get("mediaserver_rtmp_bytes_in_total")
            > after.get("mediaserver_ingest_bytes_total") / 2.0
    );
    assert!(after.get("mediaserver_player_bytes_total{protocol=\"rtmp\"}") > 10_000.0);
    assert_eq!(after.get("mediaserver_plays_total{protocol=\"rtmp\"}"), 1.0);

    // The same numbers as expvar-style JSON (counters that no longer move).
    let vars = http::get(addr, "/debug/vars").json();
    assert_eq!(vars["mediaserver_publishes_total"], 1);
    assert_eq!(vars["mediaserver_plays_total"]["protocol=rtmp"], 1);
    assert_eq!(vars["mediaserver_rtmp_plays_total"], 1);
    assert!(
        vars["cmdline"][0]
            .as_str()
            .is_some_and(|c| c.ends_with("hub")),
        "{vars}"
    );
    assert!(
        vars["memstats"]["rss_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{vars}"
    );
    server.assert_alive();
}

/// Under the supervisor: the recorder's files and bytes, and a restart of a killed
/// ingest-rtmp, reach the hub's `/metrics`.
#[test]
fn recorder_and_supervisor_restarts_are_reported() {
    if skip_without(
        "prometheus_client (pip install prometheus_client)",
        prom::parser_available(),
    ) {
        return;
    }
    let rec = tempfile::tempdir().expect("temp dir");
    let s = Supervised::start(&format!("[recorder]\ndir = \"{}\"\n", rec.path().display()));
    s.wait_line(0, Duration::from_secs(20), |l| {
        l.contains("recorder is ready")
    })
    .unwrap_or_else(|| panic!("recorder never ready\n{}", s.describe()));
    let addr = s.http_addr();
    wait_for(
        addr,
        "every component reporting",
        Duration::from_secs(10),
        || s.describe(),
        |m| {
            ["ingest-rtmp", "recorder", "supervisor"].iter().all(|c| {
                m.get(&format!(
                    "mediaserver_component_reporting{{component=\"{c}\"}}"
                )) == 1.0
            }) && m.get("mediaserver_component_up{component=\"hub\"}") == 1.0
        },
    );

    let mut publisher = ffmpeg::publish(
        &s.url("rec"),
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(2)),
    );
    let (status, killed) = publisher.wait_or_kill(deadline_in(60.0));
    assert!(status.success() && !killed, "{}", publisher.describe());
    let recorded = wait_for(
        addr,
        "a finished recording",
        Duration::from_secs(20),
        || s.describe(),
        |m| {
            m.get("mediaserver_recorder_files_total") == 1.0
                && m.get("mediaserver_recorder_files_open") == 0.0
        },
    );
    assert!(recorded.get("mediaserver_recorder_bytes_total") > 10_000.0);
    assert_eq!(recorded.get("mediaserver_recorder_errors_total"), 0.0);
    assert_eq!(
        recorded.get("mediaserver_component_restarts_total{component=\"ingest-rtmp\"}"),
        0.0
    );

    Supervised::kill9(s.child_pid("ingest-rtmp", 1));
    s.child_pid("ingest-rtmp", 2);
    wait_for(
        addr,
        "the restart counted",
        Duration::from_secs(20),
        || s.describe(),
        |m| {
            m.get("mediaserver_component_restarts_total{component=\"ingest-rtmp\"}") == 1.0
                && m.get("mediaserver_component_up{component=\"ingest-rtmp\"}") == 1.0
        },
    );
}

/// Every access decision ingest-rtmp makes reaches `/metrics` through its `auth_allowed`
/// / `auth_denied` event, counted by protocol, action and reason, exactly once each.
#[test]
fn auth_decisions_are_counted_by_protocol_action_and_reason() {
    if skip_without(
        "prometheus_client (pip install prometheus_client)",
        prom::parser_available(),
    ) {
        return;
    }
    let mut server = Server::start(ServerOpts::default().ingest(&[
        "--publish-auth=token",
        "--publish-token=live/*=pubSecret1",
        "--play-auth=token",
        "--play-token=live/cam=viewSecret2",
    ]));
    let addr = server.http_addr();
    let url = |q: &str| format!("{}{q}", server.url("cam"));
    let refused = |p: &mut e2e::proc::Proc, what: &str| {
        let (status, killed) = p.wait_or_kill(deadline_in(30.0));
        assert!(
            !killed && !status.success(),
            "{what}: not refused\n{}",
            p.describe()
        );
    };
    let publish = |q: &str, secs| {
        ffmpeg::publish(
            &url(q),
            &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(secs)),
        )
    };
    refused(&mut publish("?token=wrongGuess3", 5), "wrong publish token");
    refused(&mut publish("", 5), "no publish token");
    let _publisher = publish("?token=pubSecret1", 30);
    let mut denied_player = Player::spawn(&url(""), &PlayOpts::default());
    refused(denied_player.proc(), "player without token");
    Player::spawn(
        &url("?token=viewSecret2"),
        &PlayOpts {
            duration: Some(Duration::from_secs(1)),
            ..PlayOpts::default()
        },
    )
    .finish(deadline_in(30.0))
    .assert_decoded("player with the play token", 15, 15);

    let expected = [
        ("mediaserver_auth_allowed_total{action=\"publish\",protocol=\"rtmp\"}", 1.0),
        ("mediaserver_auth_allowed_total{action=\"play\",protocol=\"rtmp\"}", 1.0),
        (
            "mediaserver_auth_denied_total{action=\"publish\",protocol=\"rtmp\",reason=\"invalid_token\"}",
            1.0,
        ),
        (
            "mediaserver_auth_denied_total{action=\"publish\",protocol=\"rtmp\",reason=\"missing_token\"}",
            1.0,
        ),
        (
            "mediaserver_auth_denied_total{action=\"play\",protocol=\"rtmp\",reason=\"missing_token\"}",
            1.0,
        ),
    ];
    let m = wait_for(
        addr,
        "five auth decisions",
        Duration::from_secs(10),
        || server.describe(),
        |m| expected.iter().all(|(s, v)| m.get(s) == *v),
    );
    let counted: f64 = m
        .samples
        .iter()
        .filter(|(k, _)| k.starts_with("mediaserver_auth_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(counted, 5.0, "{:#?}", m.samples);
    assert_eq!(m.types["mediaserver_auth_denied"], "counter");
    server.assert_alive();
}
