//! WebSocket-FLV players (`ws://HOST:PORT/{app}/{name}.flv`): a real WebSocket client
//! (Python's `websockets`) receives the stream as binary messages, one FLV tag each, the
//! server answers its ping and its close; what it received starts with the sequence
//! headers and a keyframe and FFmpeg 9 decodes it with no errors; the player is counted
//! under `ws-flv`. A key that is not live refuses the handshake with 404.

use std::process::Command;
use std::time::Duration;

use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::flv::{check_start, read_tags};
use e2e::proc::Proc;
use e2e::tools::skip_without;
use e2e::{deadline_in, http, Server, ServerOpts};

/// Connects to `argv[2]` (expects 404), then plays `argv[1]` for `argv[4]` seconds while
/// pinging, writes every binary message to `argv[3]`, closes normally, and prints a JSON
/// summary.
const CLIENT: &str = r#"
import asyncio, json, sys, time
import websockets

async def main(url, missing, out, secs):
    r = {}
    try:
        async with websockets.connect(missing, open_timeout=10):
            r["missing"] = "opened"
    except websockets.exceptions.InvalidStatus as e:
        r["missing"] = e.response.status_code
    sizes = []
    async with websockets.connect(url, open_timeout=10, max_size=None, ping_interval=None) as ws:
        pong = await ws.ping(b"are you there")
        end = time.monotonic() + secs
        with open(out, "wb") as f:
            while time.monotonic() < end:
                msg = await asyncio.wait_for(ws.recv(), 10)
                if not isinstance(msg, bytes):
                    r["text_message"] = msg
                    break
                f.write(msg)
                sizes.append(len(msg))
        r["pong"] = pong.done() and not pong.cancelled()
    r["close_code"] = ws.close_code
    r["messages"] = len(sizes)
    r["first_message"] = sizes[0] if sizes else 0
    print(json.dumps(r))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
"#;

fn websockets_available() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn websocket_client_plays_flv_from_a_keyframe_and_ffmpeg_decodes_it() {
    if skip_without(
        "python websockets (pip install websockets)",
        websockets_available(),
    ) {
        return;
    }
    let mut server = Server::start(ServerOpts::default());
    let addr = server.http_addr();
    let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60));
    opts.gop = 20;
    let _publisher = ffmpeg::publish(&server.url("ws"), &opts);
    server.wait_live("ws");

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("received.flv");
    let mut client = Proc::spawn(
        "websockets client",
        Command::new("python3").args([
            "-c",
            CLIENT,
            &format!("ws://{addr}/live/ws.flv"),
            &format!("ws://{addr}/live/nothing.flv"),
            out.to_str().expect("utf-8 path"),
            "4",
        ]),
    );
    let (status, killed) = client.wait_or_kill(deadline_in(60.0));
    assert!(
        status.success() && !killed,
        "{}\n{}",
        client.describe(),
        server.describe()
    );
    let summary: serde_json::Value =
        serde_json::from_str(&client.stdout.lines().last().cloned().unwrap_or_default())
            .unwrap_or_else(|e| panic!("summary: {e}\n{}", client.describe()));
    assert_eq!(summary["missing"], 404, "{summary}");
    assert_eq!(summary["pong"], true, "the ping was answered: {summary}");
    assert_eq!(summary["close_code"], 1000, "close echoed: {summary}");
    assert!(summary.get("text_message").is_none(), "{summary}");
    assert_eq!(
        summary["first_message"], 13,
        "the FLV file header alone first: {summary}"
    );

    let data = std::fs::read(&out).expect("received stream");
    let (tags, complete) = read_tags(&data).expect("FLV");
    assert_eq!(complete, data.len(), "every message ends on a tag boundary");
    assert_eq!(
        summary["messages"].as_u64(),
        Some(tags.len() as u64 + 1),
        "one message per tag: {summary}"
    );
    check_start(tags.iter().map(|t| (t.kind, &t.body[..]))).expect("GOP-cache start");

    let report =
        Player::spawn(out.to_str().expect("utf-8"), &PlayOpts::default()).finish(deadline_in(60.0));
    report.assert_decoded("FFmpeg on what the WebSocket carried", 40, 40);

    let metrics = http::get(addr, "/metrics").text();
    for series in [
        "mediaserver_plays_total{protocol=\"ws-flv\"} 1",
        "mediaserver_plays_total{protocol=\"http-flv\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    let bytes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mediaserver_player_bytes_total{protocol=\"ws-flv\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        bytes >= data.len() as f64,
        "{bytes} bytes counted for {} received",
        data.len()
    );
    server.assert_alive();
}

/// Play auth decides for WebSocket-FLV as for HTTP-FLV: no token is a 401 before any
/// upgrade, the right token gets `101 Switching Protocols`.
#[test]
fn websocket_flv_handshake_goes_through_play_auth() {
    let server = Server::start(
        ServerOpts::default().hub(&["--play-auth=token", "--play-token=live/*=viewSecret7"]),
    );
    let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30));
    opts.gop = 20;
    let _publisher = ffmpeg::publish(&server.url("wsauth"), &opts);
    server.wait_live("wsauth");
    let open = |query: &str| {
        let mut sock = std::net::TcpStream::connect(server.http_addr()).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        std::io::Write::write_all(
            &mut sock,
            format!(
                "GET /live/wsauth.flv{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("request");
        let mut buf = [0u8; 12];
        std::io::Read::read_exact(&mut sock, &mut buf).expect("status line");
        String::from_utf8_lossy(&buf).into_owned()
    };
    assert_eq!(open(""), "HTTP/1.1 401");
    assert_eq!(open("?token=wrong"), "HTTP/1.1 403");
    assert_eq!(open("?token=viewSecret7"), "HTTP/1.1 101");
}
