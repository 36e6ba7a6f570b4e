//! E-RTMP reconnect requests end to end, under the real supervisor: SIGUSR1 and a graceful
//! shutdown send `NetConnection.Connect.ReconnectRequest` with the hub's configured tcUrl
//! to the byte-level E-RTMP clients that announced the capability (a publisher and a
//! player); they reconnect, and the player misses no frame beyond the publisher's switch
//! keyframe's GOP. FFmpeg, a legacy client, is left alone until the shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::ffmpeg::{self, Codecs, PublishOpts};
use e2e::http;
use e2e::reconnect::{
    index_of, open, player, publisher, request, video, Played, Published, Request, AVC_CONFIG, GOP,
};
use e2e::rtmp_client::RtmpClient;
use e2e::supervised::Supervised;
use e2e::{deadline_in, Server, ServerOpts};

/// Frames the player must get on its new connection.
const AFTER: usize = 40;

fn profile(addr: std::net::SocketAddr, ingest_extra: &str) -> String {
    format!(
        "[supervisor]\nshutdown_timeout = \"10s\"\n\n[hub]\nreconnect-tc-url = \
         \"rtmp://{addr}/live\"\n\n[ingest-rtmp]\nlisten = \"{addr}\"\n{ingest_extra}\n"
    )
}

fn wait(sup: &Supervised, from: usize, what: &str, pred: impl Fn(&str) -> bool) -> String {
    sup.wait_line(from, Duration::from_secs(30), pred)
        .unwrap_or_else(|| panic!("never logged: {what}\n{}", sup.describe()))
}

/// Waits until `key` is published on `sup` (the hub's `publish started` line).
fn published(sup: &Supervised, from: usize, key: &str) {
    let k = format!("key={key}");
    wait(sup, from, &format!("publish of {key}"), |l| {
        l.contains("publish started") && l.contains(&k)
    });
}

/// Both clients got one request with the configured tcUrl, the publisher switched once (at
/// a keyframe), and the player missed nothing but frames of the GOP before the switch.
fn check_switch(pubd: &Published, played: &Played, want: &Request, sup: &Supervised) {
    let ctx = || format!("publisher {pubd:?}\nplayer {played:?}\n{}", sup.describe());
    assert_eq!(pubd.requests, vec![want.clone()], "{}", ctx());
    assert_eq!(played.requests, vec![want.clone()], "{}", ctx());
    assert_eq!(pubd.switches.len(), 1, "{}", ctx());
    let k = pubd.switches[0];
    assert_eq!(played.switches.len(), 1, "{}", ctx());
    let missing = played.missing();
    assert!(
        missing.iter().all(|&m| m + GOP >= k && m < k),
        "frames missing beyond the GOP before the switch at {k}: {missing:?}\n{}",
        ctx()
    );
    let last = played.indices.iter().max().copied().unwrap_or(0);
    assert!(
        last >= k + GOP,
        "too few frames after the switch: {}",
        ctx()
    );
}

/// FFmpeg publishing `live/legacy`, a capable publisher of `live/re` and its capable
/// player, all connected to `sup`.
struct Clients {
    legacy: e2e::proc::Proc,
    stop: Arc<AtomicBool>,
    publisher: std::thread::JoinHandle<Published>,
    player: std::thread::JoinHandle<Played>,
}

impl Clients {
    fn start(sup: &Supervised) -> Clients {
        let addr = sup.addr();
        let legacy = ffmpeg::publish(
            &sup.url("legacy"),
            &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(120)),
        );
        published(sup, 0, "live/legacy");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let publisher = std::thread::spawn(move || publisher(addr, "re", s));
        published(sup, 0, "live/re");
        let player = std::thread::spawn(move || player(addr, "re", AFTER, deadline_in(60.0)));
        // Listed by the hub (so counted by a request): both publishers and the player,
        // which announced the capability.
        let deadline = deadline_in(30.0);
        loop {
            let v = http::get(sup.http_addr(), "/api/v1/connections").json();
            let conns = v["connections"].as_array().cloned().unwrap_or_default();
            let kind = |k: &str| conns.iter().filter(|c| c["kind"] == k).count();
            let capable = conns
                .iter()
                .any(|c| c["kind"] == "player" && c["reconnect"] == true);
            if kind("publisher") == 2 && capable {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "clients not listed: {v}\n{}",
                sup.describe()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Clients {
            legacy,
            stop,
            publisher,
            player,
        }
    }

    /// Waits for the player to have its frames on a new connection, then stops the
    /// publisher; FFmpeg is handed back.
    fn finish(self) -> (Published, Played, e2e::proc::Proc) {
        let played = self.player.join().expect("player thread");
        self.stop.store(true, Ordering::Relaxed);
        let published = self.publisher.join().expect("publisher thread");
        (published, played, self.legacy)
    }
}

#[test]
fn sigusr1_asks_clients_that_announced_reconnect_and_leaves_ffmpeg_alone() {
    let sup = Supervised::start_profile(|addr| profile(addr, ""));
    let addr = sup.addr();
    let c = Clients::start(&sup);

    let mark = sup.mark();
    sup.signal_supervisor(libc::SIGUSR1);
    let answer = wait(&sup, mark, "the hub's answer", |l| {
        l.contains("SIGUSR1: reconnect requested for every RTMP client")
    });
    assert!(
        answer.contains("players=1 skipped_players=0 publishers=2"),
        "{answer}"
    );
    wait(&sup, mark, "FFmpeg left alone", |l| {
        l.contains("publisher did not announce Reconnect; left alone")
            && l.contains("key=live/legacy")
    });
    let (pubd, played, mut legacy) = c.finish();
    let want = Request {
        tc_url: Some(format!("rtmp://{addr}/live")),
        description: "The server asks clients to reconnect.".into(),
    };
    check_switch(&pubd, &played, &want, &sup);
    // The new connection took the key over from the old one on the same hub.
    wait(&sup, mark, "the takeover", |l| {
        l.contains("stream taken over by another publisher") && l.contains("key=live/re")
    });
    // FFmpeg got nothing: it is still publishing, its stream never ended.
    assert!(legacy.is_running(), "FFmpeg stopped\n{}", sup.describe());
    assert_eq!(
        sup.sup
            .stderr
            .count(|l| l.contains("key=live/legacy") && l.contains("unpublish")),
        0,
        "{}",
        sup.describe()
    );
}

#[test]
fn graceful_shutdown_moves_capable_clients_to_a_new_instance() {
    let grace = "reuse-port = true\nreconnect-grace = \"20s\"";
    let mut old = Supervised::start_profile(|addr| profile(addr, grace));
    let addr = old.addr();
    let c = Clients::start(&old);
    // Every client is connected to the old instance; the new one listens beside it.
    let new = Supervised::start_beside(&old, |addr| profile(addr, "reuse-port = true"));

    let mark = old.mark();
    old.signal_supervisor(libc::SIGTERM);
    let asked = wait(&old, mark, "the grace", |l| {
        l.contains("asked RTMP clients that can reconnect")
    });
    assert!(asked.contains("players=1"), "{asked}");
    wait(&old, mark, "FFmpeg left alone", |l| {
        l.contains("publisher did not announce Reconnect; left alone")
            && l.contains("key=live/legacy")
    });
    let (pubd, played, mut legacy) = c.finish();
    let want = Request {
        tc_url: Some(format!("rtmp://{addr}/live")),
        description: "The server is shutting down; reconnect to continue.".into(),
    };
    check_switch(&pubd, &played, &want, &old);
    // Both moved to the new instance.
    published(&new, 0, "live/re");
    wait(&new, 0, "the player on the new instance", |l| {
        l.contains("player started")
    });
    // The old instance waited for the publisher, not the whole grace, then ended FFmpeg's
    // stream (which it had left alone) and stopped cleanly.
    wait(&old, mark, "the end of the grace", |l| {
        l.contains("every publisher that could reconnect has left")
    });
    let status = old.sup.wait_until(deadline_in(30.0));
    assert!(
        status.is_some_and(|s| s.success()),
        "old supervisor: {status:?}\n{}",
        old.describe()
    );
    assert!(
        legacy.wait_until(deadline_in(30.0)).is_some(),
        "FFmpeg kept running after the old instance stopped"
    );
}

#[test]
fn the_api_asks_one_streams_capable_clients_only() {
    let token = "reconnect-token";
    let server = Server::start(ServerOpts::default().hub(&["--api-token", token]));
    let addr = server.addr();
    // A legacy publisher (no capsEx), a capable player and a legacy one.
    let (mut publ, sid) = RtmpClient::open(addr, "live").expect("publisher");
    publ.publish(sid, "a").expect("publish");
    publ.send_video(sid, 0, AVC_CONFIG).expect("config");
    publ.send_video(sid, 0, &video(0, true)).expect("keyframe");
    server.wait_live("a");
    let (mut capable, s1) = open(addr, "live").expect("capable player");
    capable.play(s1, "a").expect("play");
    let (mut legacy, s2) = RtmpClient::open(addr, "live").expect("legacy player");
    legacy.play(s2, "a").expect("play");
    for p in [&mut capable, &mut legacy] {
        p.wait_message(deadline_in(20.0), |m| index_of(m) == Some(0))
            .expect("the keyframe");
    }
    let h = server.http_addr();
    let path = "/api/v1/streams/live/a/reconnect";
    let auth = format!("Bearer {token}");
    let with_token = [("Authorization", auth.as_str())];
    let call = |method, path, headers: &[(&str, &str)]| {
        http::request(h, method, path, headers).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    assert_eq!(call("POST", path, &[]).status, 401);
    assert_eq!(call("GET", path, &with_token).status, 405);
    let missing = call("POST", "/api/v1/streams/live/none/reconnect", &with_token);
    assert_eq!(missing.status, 404, "{}", missing.text());
    let marks = server.log_marks();
    let r = call("POST", path, &with_token);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let asked = &v["reconnect"];
    assert_eq!(asked["key"], "live/a", "{v}");
    assert_eq!(asked["players"], 1, "{v}");
    assert_eq!(asked["skipped_players"], 1, "{v}");
    assert_eq!(asked["publishers"], 1, "{v}");
    let got = capable
        .wait_message(deadline_in(20.0), |m| request(m).is_some())
        .expect("the capable player's request");
    assert_eq!(
        request(&got),
        Some(Request {
            tc_url: None,
            description: "The server asks clients to reconnect.".into(),
        })
    );
    // The legacy player and publisher get nothing; media goes on for both players.
    server
        .wait_log(marks, Duration::from_secs(20), |l| {
            l.contains("publisher did not announce Reconnect; left alone")
        })
        .unwrap_or_else(|| panic!("publisher not left alone\n{}", server.describe()));
    publ.send_video(sid, 40, &video(1, false)).expect("frame");
    let deadline = deadline_in(20.0);
    loop {
        let m = legacy
            .next_message(deadline)
            .expect("the legacy player's next frame");
        assert!(request(&m).is_none(), "the legacy player was asked");
        if index_of(&m) == Some(1) {
            break;
        }
    }
    capable
        .wait_message(deadline_in(20.0), |m| index_of(m) == Some(1))
        .expect("media after the request");
}
