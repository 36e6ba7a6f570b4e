//! The JSON API (docs/api.md) against what real clients see: FFmpeg publishes and plays;
//! the lists show them; an unauthorized kick changes nothing for the player; an
//! authorized kick ends the player's FFmpeg, and a publisher kick ends the publisher's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::http::{self, Response};
use e2e::{deadline_in, Server, ServerOpts};
use serde_json::Value;

const TOKEN: &str = "s3cret-token";

fn call(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http::request(addr, method, path, &headers).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Polls `GET path` until `pred` holds on its JSON (bounded).
fn wait_json(addr: SocketAddr, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http::get(addr, path);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        if pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen in {path}: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn players_of(conns: &Value) -> Vec<Value> {
    conns["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter(|c| c["kind"] == "player")
        .cloned()
        .collect()
}

#[test]
fn list_kick_and_unauthorized_kick_as_clients_see_them() {
    let mut server = Server::start(ServerOpts::default().hub(&["--api-token", TOKEN]));
    let addr = server.http_addr();
    let url = server.url("a");
    let mut publisher = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60)),
    );
    let mut player = Player::spawn(&url, &PlayOpts::default());
    assert!(
        player.wait_frames(20, 20, deadline_in(30.0)),
        "player decodes\n{}",
        server.describe()
    );

    // Lists.
    let streams = wait_json(
        addr,
        "/api/v1/streams",
        "a live stream with its player and bitrate",
        |v| {
            v["streams"][0]["players"]["rtmp"] == 1
                && v["streams"][0]["bitrate_kbps"].as_u64() > Some(0)
        },
    );
    let s = &streams["streams"][0];
    assert_eq!(s["key"], "live/a");
    assert_eq!(s["live"], true);
    assert_eq!(s["video"]["codec"], "h264");
    assert_eq!(s["video"]["width"], 320);
    assert_eq!(s["video"]["height"], 240);
    assert_eq!(s["audio"]["codec"], "aac");
    assert!(s["audio"]["sample_rate"].as_u64().is_some(), "{s:#}");
    assert!(s["uptime_seconds"].as_u64().is_some(), "{s:#}");
    assert!(
        s["publisher"]["protocol"]
            .as_str()
            .is_some_and(|p| p.starts_with("ingest-rtmp/")),
        "{s:#}"
    );
    assert_eq!(
        http::get(addr, "/api/v1/streams/live/a").json()["key"],
        "live/a"
    );
    assert_eq!(http::get(addr, "/api/v1/streams/live/nope").status, 404);

    let conns = http::get(addr, "/api/v1/connections").json();
    let players = players_of(&conns);
    assert_eq!(players.len(), 1, "{conns:#}");
    let p = &players[0];
    assert_eq!(p["protocol"], "rtmp");
    assert_eq!(p["key"], "live/a");
    assert!(
        p["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{p:#}"
    );
    let id = p["id"].as_u64().expect("id");
    let kick_path = format!("/api/v1/connections/{id}");

    // Unauthorized kicks: refused, and the player keeps playing.
    let before = player.counts().video;
    let r = call(addr, "DELETE", &kick_path, None);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Bearer")));
    assert_eq!(call(addr, "DELETE", &kick_path, Some("wrong")).status, 401);
    assert!(
        player.wait_frames(before + 20, 0, deadline_in(20.0)),
        "the player kept decoding after the refused kick\n{}",
        server.describe()
    );
    assert!(player.proc().is_running(), "{}", player.proc().describe());

    // Authorized kick: the player's connection ends, FFmpeg exits.
    let r = call(addr, "DELETE", &kick_path, Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["kicked"]["id"], id);
    let exited = player.proc().wait_until(deadline_in(15.0));
    assert!(
        exited.is_some(),
        "the kicked player still runs\n{}",
        server.describe()
    );
    wait_json(addr, "/api/v1/connections", "the kicked player gone", |v| {
        players_of(v).is_empty()
    });
    assert_eq!(call(addr, "DELETE", &kick_path, Some(TOKEN)).status, 404);
    assert!(
        publisher.is_running(),
        "the publisher is untouched\n{}",
        publisher.describe()
    );

    // Publisher kick: FFmpeg's publish ends early, the stream is no longer live.
    let r = call(
        addr,
        "DELETE",
        "/api/v1/streams/live/a/publisher",
        Some(TOKEN),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, killed) = publisher.wait_or_kill(deadline_in(15.0));
    assert!(
        !killed,
        "the kicked publisher still runs\n{}",
        server.describe()
    );
    wait_json(addr, "/api/v1/streams", "no live stream", |v| {
        v["streams"]
            .as_array()
            .is_some_and(|a| a.iter().all(|s| s["live"] == false))
    });
    assert_eq!(
        call(
            addr,
            "DELETE",
            "/api/v1/streams/live/a/publisher",
            Some(TOKEN)
        )
        .status,
        404
    );

    // The effective configuration, without the token.
    let cfg = http::get(addr, "/api/v1/config");
    assert_eq!(cfg.status, 200);
    assert!(!cfg.text().contains(TOKEN));
    let cfg = cfg.json();
    assert_eq!(cfg["http"]["api_token"], true);
    assert_eq!(cfg["gop_cache_bytes"], 16 << 20);
    assert_eq!(cfg["on_duplicate"], "takeover");
    let metrics = http::get(addr, "/metrics").text();
    assert!(
        metrics.contains(
            "mediaserver_player_disconnects_total{protocol=\"rtmp\",reason=\"kicked\"} 1"
        ),
        "{metrics}"
    );
    server.assert_alive();
}

#[test]
fn reads_can_be_protected_and_kicks_need_a_configured_token() {
    let server = Server::start(ServerOpts::default());
    let addr = server.http_addr();
    let r = call(addr, "DELETE", "/api/v1/connections/1", Some("anything"));
    assert_eq!(
        r.status,
        403,
        "no --api-token: mutating calls are off\n{}",
        r.text()
    );
    assert_eq!(http::get(addr, "/api/v1/streams").status, 200);
    drop(server);

    let server =
        Server::start(ServerOpts::default().hub(&["--api-token", TOKEN, "--api-protect-reads"]));
    let addr = server.http_addr();
    for path in [
        "/api/v1/streams",
        "/api/v1/connections",
        "/api/v1/config",
        "/metrics",
        "/debug/vars",
    ] {
        assert_eq!(
            http::get(addr, path).status,
            401,
            "{path} without the token"
        );
        assert_eq!(
            call(addr, "GET", path, Some(TOKEN)).status,
            200,
            "{path} with the token"
        );
    }
}
