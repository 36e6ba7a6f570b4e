//! The relayer pushing one FFmpeg stream to Debian's nginx-rtmp and to a second server of
//! ours at once: both play with FFmpeg with no decode errors; nginx killed and restarted
//! is reconnected while the second server's player and a local player miss no frame;
//! nginx stopped (SIGSTOP) keeps the relayer's queue for it bounded (whole GOPs skipped,
//! reported in `relay` events) while the others play on.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use e2e::bins::bin;
use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::proc::Proc;
use e2e::server::Which;
use e2e::srt::SrtIngest;
use e2e::test_ca::TestCa;
use e2e::tools::{skip_without, which};
use e2e::{Server, ServerOpts};
use proto::ipc::{self, Event, FrameDecoder, Header, Role, FORMAT_VERSION};

/// A free loopback port (bound then released; nginx binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("ephemeral port")
        .port()
}

/// nginx-rtmp with a private prefix and config, serving `live` on `port`.
fn nginx(dir: &Path, port: u16) -> Proc {
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).expect("nginx dir");
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {p}/logs/error.log info;\npid {p}/nginx.pid;\n\
             load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n\
             application live {{ live on; wait_key on; wait_video on; }} }} }}\n",
            p = prefix.display()
        ),
    )
    .expect("nginx.conf");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf);
    let p = Proc::spawn("nginx", &mut cmd);
    let deadline = deadline_in(10.0);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nginx did not listen on {port}\n{}",
            p.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

/// Collects the hub's events (a subscriber with `events` set and no media).
fn events(socket: &Path) -> Arc<Mutex<Vec<Event>>> {
    let mut sock = UnixStream::connect(socket).expect("hub socket");
    let mut out = BytesMut::new();
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Subscriber,
            name: "relay-test".into(),
        },
        &[],
        &mut out,
    );
    ipc::encode(
        &Header::Subscribe {
            patterns: vec!["-none-".into()],
            media: false,
            events: true,
        },
        &[],
        &mut out,
    );
    sock.write_all(&out).expect("subscribe");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    std::thread::spawn(move || {
        let decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match sock.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            while let Ok(Some(m)) = decoder.decode(&mut buf) {
                if let Header::Event(e) = m.header {
                    store.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                }
            }
        }
    });
    seen
}

fn field<'a>(e: &'a Event, name: &str) -> Option<&'a str> {
    e.fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Video presentation times (seconds) of a framemd5 listing, in output order.
fn video_pts(lines: &[String]) -> Vec<f64> {
    let video = lines
        .iter()
        .filter_map(|l| l.strip_prefix("#media_type "))
        .find_map(|r| r.split_once(':').filter(|(_, k)| k.trim() == "video"))
        .map(|(i, _)| i.trim().to_owned());
    let Some(idx) = video else { return Vec::new() };
    let tb = lines
        .iter()
        .filter_map(|l| l.strip_prefix("#tb "))
        .filter_map(|r| r.split_once(':'))
        .find(|(i, _)| i.trim() == idx)
        .and_then(|(_, r)| r.trim().split_once('/'))
        .and_then(|(n, d)| Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?))
        .unwrap_or(0.001);
    lines
        .iter()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f.len() > 3 && f[0] == idx).then(|| f[2].parse::<i64>().ok())?
        })
        .map(|p| p as f64 * tb)
        .collect()
}

/// Panics if consecutive video frames a player decoded are further apart than 1.5
/// frame intervals (a frame missed on the way).
fn assert_no_gap(what: &str, r: &ffmpeg::Report, fps: f64) {
    let mut pts = video_pts(&r.stdout);
    assert!(
        pts.len() > 20,
        "{what}: only {} video frames\n{}",
        pts.len(),
        r.description
    );
    pts.sort_by(f64::total_cmp);
    for w in pts.windows(2) {
        assert!(
            w[1] - w[0] < 1.5 / fps,
            "{what}: {:.3} s of video missing after {:.3} s ({} frames)",
            w[1] - w[0],
            w[0],
            pts.len()
        );
    }
}

fn relayer(hub: &Path, rules: &[String], extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("relayer"));
    cmd.arg("--hub").arg(hub);
    for r in rules {
        cmd.arg("--push").arg(r);
    }
    cmd.args(extra).env_remove("RUST_LOG").env("NO_COLOR", "1");
    let p = Proc::spawn("relayer", &mut cmd);
    assert!(
        p.stderr
            .wait_for(0, deadline_in(20.0), |l| l.contains("connected to the hub"))
            .is_some(),
        "relayer did not connect to the hub\n{}",
        p.describe()
    );
    p
}

/// Waits until the relayer logs a destination going live.
fn wait_destination_live(relay: &Proc) {
    assert!(
        relay
            .stderr
            .wait_for(0, deadline_in(30.0), |l| l.contains("destination live"))
            .is_some(),
        "{}",
        relay.describe()
    );
}

/// FFmpeg plays `url` for 3 s and decodes at least 40 frames with no error.
fn decodes_3s(url: &str, what: &str) {
    let play = PlayOpts {
        duration: Some(Duration::from_secs(3)),
        ..PlayOpts::default()
    };
    Player::spawn(url, &play)
        .finish(deadline_in(30.0))
        .assert_decoded(what, 40, 40);
}

fn tmp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("relay-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp");
    d
}

#[test]
fn pushes_to_nginx_and_ours_reconnects_and_stays_bounded() {
    if skip_without(
        "nginx with libnginx-mod-rtmp",
        which("nginx").is_some() && Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists(),
    ) {
        return;
    }
    let origin = Server::start(ServerOpts::default());
    let dir = tmp_dir();
    let second = Server::start_second(ServerOpts::default());
    let port = free_port();
    let mut nginx_proc = nginx(&dir, port);
    let rule = format!(
        "live/*=rtmp://127.0.0.1:{port}/live/{{name}} rtmp://{}/live/{{name}}",
        second.addr()
    );
    let seen = events(origin.socket());
    let relay = relayer(
        origin.socket(),
        &[rule],
        &[
            "--reconnect-min",
            "200ms",
            "--reconnect-max",
            "1s",
            "--queue-bytes",
            "300000",
            "--write-timeout",
            "30s",
            "--stats-interval",
            "500ms",
        ],
    );

    let fps = 20.0;
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60));
    let mut publisher = ffmpeg::publish(&origin.url("show"), &opts);
    assert!(
        relay
            .stderr
            .wait_count(2, deadline_in(30.0), |l| l.contains("destination live")),
        "both destinations should go live\n{}",
        relay.describe()
    );

    // Both destinations play and decode.
    let three = PlayOpts {
        duration: Some(Duration::from_secs(3)),
        ..PlayOpts::default()
    };
    let nginx_url = format!("rtmp://127.0.0.1:{port}/live/show");
    let at_nginx = Player::spawn(&nginx_url, &three);
    let at_second = Player::spawn(&second.url("show"), &three);
    at_nginx
        .finish(deadline_in(30.0))
        .assert_decoded("player at nginx-rtmp", 40, 40);
    at_second
        .finish(deadline_in(30.0))
        .assert_decoded("player at the second server", 40, 40);

    // Long players at the second server and at the origin span the next two acts.
    let long = PlayOpts {
        duration: Some(Duration::from_secs(14)),
        ..PlayOpts::default()
    };
    let watch_second = Player::spawn(&second.url("show"), &long);
    let watch_local = Player::spawn(&origin.url("show"), &long);
    assert!(watch_second.wait_frames(20, 1, deadline_in(20.0)));
    assert!(watch_local.wait_frames(20, 1, deadline_in(20.0)));

    // Act 1: nginx killed and restarted on the same port is reconnected.
    let lives = relay.stderr.count(|l| l.contains("destination live"));
    nginx_proc.kill();
    assert!(
        relay
            .stderr
            .wait_for(0, deadline_in(20.0), |l| l.contains("destination failed"))
            .is_some(),
        "the relayer should notice nginx is gone\n{}",
        relay.describe()
    );
    nginx_proc = nginx(&dir, port);
    assert!(
        relay.stderr.wait_count(lives + 1, deadline_in(30.0), |l| l
            .contains("destination live")),
        "the relayer should reconnect to nginx\n{}",
        relay.describe()
    );
    Player::spawn(&nginx_url, &three)
        .finish(deadline_in(30.0))
        .assert_decoded("player at the restarted nginx-rtmp", 40, 40);

    // Act 2: nginx stops reading; its queue stays bounded and GOPs are skipped.
    nginx_proc.signal(libc::SIGSTOP);
    let bounded = deadline_in(30.0);
    let dropping = loop {
        let hit = seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find_map(|e| {
                let dropped: u64 = field(e, "dropped_frames")?.parse().ok()?;
                (e.kind == "relay" && e.remote.contains(&format!(":{port}/")) && dropped > 0)
                    .then(|| e.clone())
            });
        if let Some(e) = hit {
            break e;
        }
        assert!(
            std::time::Instant::now() < bounded,
            "no relay event with drops for the stopped nginx\n{:#?}\n{}",
            seen.lock().unwrap_or_else(|p| p.into_inner()),
            relay.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let queued: usize = field(&dropping, "queued_bytes").unwrap().parse().unwrap();
    // The budget plus one keyframe of this small stream.
    assert!(queued <= 300_000 + 100_000, "queue grew to {queued} bytes");
    // The second destination dropped nothing meanwhile.
    for e in seen.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if e.kind == "relay" && e.remote.contains(&second.addr().to_string()) {
            assert_eq!(field(e, "dropped_frames"), Some("0"), "{e:?}");
        }
    }
    // The same numbers as per-destination series at the origin hub's /metrics.
    let reported: f64 = field(&dropping, "dropped_frames").unwrap().parse().unwrap();
    let nginx_series =
        |name: &str| format!("{name}{{destination=\"rtmp://127.0.0.1:{port}/live/***\"}}");
    let second_series = |name: &str| {
        format!(
            "{name}{{destination=\"rtmp://{}/live/***\"}}",
            second.addr()
        )
    };
    let deadline = deadline_in(10.0);
    loop {
        let scrape = e2e::prom::parse(&e2e::http::get(origin.http_addr(), "/metrics").text());
        let dropped = scrape.get(&nginx_series("mediaserver_relay_dropped_frames_total"));
        if dropped >= reported {
            assert_eq!(
                scrape.get(&second_series("mediaserver_relay_dropped_frames_total")),
                0.0
            );
            assert!(scrape.get(&second_series("mediaserver_relay_bytes_total")) > 0.0);
            assert!(scrape.get(&nginx_series("mediaserver_relay_connects_total")) >= 2.0);
            assert!(scrape.get(&nginx_series("mediaserver_relay_failures_total")) >= 1.0);
            assert!(scrape.get(&nginx_series("mediaserver_relay_queued_bytes")) <= 400_000.0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "relay series at /metrics: {scrape:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nginx_proc.signal(libc::SIGCONT);

    let r_second = watch_second.finish(deadline_in(40.0));
    let r_local = watch_local.finish(deadline_in(40.0));
    assert!(r_second.errors.is_empty(), "{:?}", r_second.errors);
    assert!(r_local.errors.is_empty(), "{:?}", r_local.errors);
    assert_no_gap("player at the second server", &r_second, fps);
    assert_no_gap("local player at the origin", &r_local, fps);

    assert!(publisher.is_running(), "{}", publisher.describe());
    publisher.kill();
    assert!(
        relay
            .stderr
            .wait_count(2, deadline_in(20.0), |l| l.contains("destination stopped")),
        "destinations stop when the stream ends\n{}",
        relay.describe()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An origin with a live `live/feed`, and an edge whose relayer pulls `live/*` from it
/// for players (grace 1 s), nothing pulled yet.
struct PullSetup {
    origin: Server,
    edge: Server,
    relay: Proc,
    publisher: Proc,
}

impl PullSetup {
    fn start() -> PullSetup {
        let origin = Server::start(ServerOpts::default());
        let edge = Server::start_second(ServerOpts::default());
        let template = format!("rtmp://{}/{{app}}/{{name}}", origin.addr());
        let relay = relayer(
            edge.socket(),
            &[],
            &[
                "--pull",
                &template,
                "--pull-grace",
                "1s",
                "--pull-match",
                "live/*",
            ],
        );
        let publisher = ffmpeg::publish(
            &origin.url("feed"),
            &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60)),
        );
        assert!(
            origin
                .wait_log(origin.log_marks(), Duration::from_secs(20), |l| l
                    .contains("publish started"))
                .is_some(),
            "{}",
            origin.describe()
        );
        // Nothing is pulled before a player asks.
        assert_eq!(relay.stderr.count(|l| l.contains("pull started")), 0);
        PullSetup {
            origin,
            edge,
            relay,
            publisher,
        }
    }
}

/// The relayer pulled `live/feed` once, and stops the pull after the grace period now
/// that its players left; `more` is added to a failure's description.
fn assert_one_pull_that_stops(relay: &Proc, more: &str) {
    assert_eq!(
        relay.stderr.count(|l| l.contains("pulling key=live/feed")),
        1,
        "one pull for the key\n{}\n{more}",
        relay.describe()
    );
    assert!(
        relay
            .stderr
            .wait_for(0, deadline_in(20.0), |l| l.contains("pull stopped"))
            .is_some(),
        "the pull should stop after the last player left\n{}\n{more}",
        relay.describe()
    );
}

/// Origin -> edge: a player on the edge makes the edge's relayer pull the key from the
/// origin; the player decodes it; after the last player leaves and the grace period, the
/// pull stops (the origin sees its player leave) and the edge's stream ends.
#[test]
fn edge_pulls_from_the_origin_while_players_watch() {
    let dir = tmp_dir();
    let PullSetup {
        origin,
        edge,
        relay,
        mut publisher,
    } = PullSetup::start();

    let three = PlayOpts {
        duration: Some(Duration::from_secs(3)),
        ..PlayOpts::default()
    };
    Player::spawn(&edge.url("feed"), &three)
        .finish(deadline_in(40.0))
        .assert_decoded("player at the edge", 40, 40);
    // The last player left: after the grace period the pull ends.
    assert_one_pull_that_stops(&relay, "");
    assert!(
        origin
            .wait_log((0, 0), Duration::from_secs(10), |l| l
                .contains("player left"))
            .is_some(),
        "the origin should see the edge's pull leave\n{}",
        origin.describe()
    );
    assert!(
        edge.log(Which::Hub)
            .wait_for(0, deadline_in(10.0), |l| l.contains("publisher left"))
            .is_some(),
        "the edge's pulled stream should end\n{}",
        edge.describe()
    );
    assert!(publisher.is_running(), "{}", publisher.describe());
    publisher.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Origin -> edge, played over SRT: ingest-srt's subscription for an SRT player on the
/// edge counts as a player of the key while it waits (`Header::Player`), so the edge's
/// relayer pulls the key for it as for an RTMP player; the player decodes what was
/// pulled, and the pull stops after it left.
#[test]
fn an_srt_player_on_the_edge_starts_the_pull() {
    let PullSetup {
        origin: _origin,
        edge,
        relay,
        mut publisher,
    } = PullSetup::start();
    // The pull has to be live within --play-wait for the caller to be accepted.
    let ingest = SrtIngest::start(&edge, &["--play-wait", "15s"]);
    let url = format!(
        "srt://{}?streamid=%23%21%3A%3Ar%3Dlive%2Ffeed%2Cm%3Drequest&connect_timeout=20000",
        ingest.addr
    );
    let three = PlayOpts {
        duration: Some(Duration::from_secs(3)),
        ..PlayOpts::default()
    };
    let report = Player::spawn(&url, &three).finish(deadline_in(40.0));
    assert!(
        report.counts.video >= 40 && report.counts.audio >= 40 && !report.killed,
        "SRT player at the edge: decoded {:?}\n{}\n{}\n{}",
        report.counts,
        report.description,
        ingest.proc.describe(),
        relay.describe()
    );
    assert_one_pull_that_stops(&relay, &ingest.proc.describe());
    assert!(publisher.is_running(), "{}", publisher.describe());
    publisher.kill();
}

/// A free loopback UDP port.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("ephemeral port")
        .port()
}

/// An SRT destination (proto's SRT caller, encrypted): srt-live-transmit listens and
/// forwards the MPEG-TS to UDP, where FFmpeg decodes it with no error.
#[test]
fn pushes_to_an_srt_listener() {
    if skip_without("srt-live-transmit", which("srt-live-transmit").is_some()) {
        return;
    }
    let origin = Server::start(ServerOpts::default());
    let (srt_port, udp_port) = (free_udp_port(), free_udp_port());
    let play = PlayOpts {
        duration: Some(Duration::from_secs(3)),
        ..PlayOpts::default()
    };
    let player = Player::spawn(
        &format!("udp://127.0.0.1:{udp_port}?fifo_size=100000&overrun_nonfatal=1"),
        &play,
    );
    let mut slt_cmd = Command::new("srt-live-transmit");
    slt_cmd.args([
        format!("srt://:{srt_port}?mode=listener&passphrase=relay-test-secret"),
        format!("udp://127.0.0.1:{udp_port}"),
    ]);
    let _slt = Proc::spawn("srt-live-transmit", &mut slt_cmd);
    let rule =
        format!("live/*=srt://127.0.0.1:{srt_port}?streamid={{key}}&passphrase=relay-test-secret");
    let relay = relayer(origin.socket(), &[rule], &["--reconnect-min", "200ms"]);
    let mut publisher = ffmpeg::publish(
        &origin.url("srt"),
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60)),
    );
    player.finish(deadline_in(40.0)).assert_decoded(
        "FFmpeg reading what srt-live-transmit received",
        40,
        40,
    );
    assert!(
        relay.stderr.count(|l| l.contains("destination live")) >= 1,
        "{}",
        relay.describe()
    );
    publisher.kill();
}

/// The destination callback: asked with the stream key when the stream starts, its answer
/// (one URL) is pushed to, and FFmpeg plays it there.
#[test]
fn pushes_where_the_callback_says() {
    let origin = Server::start(ServerOpts::default());
    let dir = tmp_dir();
    let second = Server::start_second(ServerOpts::default());
    let listener = TcpListener::bind("127.0.0.1:0").expect("callback listener");
    let callback = format!("http://{}/destinations", listener.local_addr().unwrap());
    let answer = second.url("from-callback");
    let asked = Arc::new(Mutex::new(String::new()));
    let seen = asked.clone();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut req = [0u8; 2048];
            let n = s.read(&mut req).unwrap_or(0);
            *seen.lock().unwrap_or_else(|p| p.into_inner()) =
                String::from_utf8_lossy(&req[..n]).into_owned();
            let body = format!("# where to push\n{answer}\n");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let relay = relayer(origin.socket(), &[], &["--callback", &callback]);
    let mut publisher = ffmpeg::publish(
        &origin.url("cb"),
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60)),
    );
    wait_destination_live(&relay);
    let request = asked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        request.starts_with("GET /destinations?key=live%2Fcb&app=live&name=cb HTTP/1.1"),
        "{request}"
    );
    decodes_3s(
        &second.url("from-callback"),
        "player at the callback's destination",
    );
    publisher.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// HEVC to a server that declared no Enhanced RTMP codecs (nginx-rtmp): the video track is
/// reported as `relay_codec_unsupported` and not sent; the AAC track still goes.
#[test]
fn a_codec_the_destination_cannot_take_is_reported_not_sent() {
    if skip_without(
        "nginx with libnginx-mod-rtmp",
        which("nginx").is_some() && Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists(),
    ) {
        return;
    }
    let origin = Server::start(ServerOpts::default());
    let dir = tmp_dir();
    let port = free_port();
    let _nginx = nginx(&dir.join(format!("n{port}")), port);
    let seen = events(origin.socket());
    let rule = format!("live/*=rtmp://127.0.0.1:{port}/live/{{name}}");
    let mut relay = relayer(origin.socket(), &[rule], &[]);
    let mut publisher = ffmpeg::publish(
        &origin.url("hevc"),
        &PublishOpts::new(Codecs::HevcAac, Duration::from_secs(60)),
    );
    let deadline = deadline_in(30.0);
    let report = loop {
        let hit = seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|e| e.kind == "relay_codec_unsupported")
            .cloned();
        if let Some(e) = hit {
            break e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no relay_codec_unsupported event\n{}",
            relay.describe()
        );
        // A publisher gone before its first video frame cannot show the refusal.
        assert!(publisher.is_running(), "{}", publisher.describe());
        assert!(relay.is_running(), "{}", relay.describe());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(field(&report, "codec"), Some("h265"), "{report:?}");
    assert_eq!(field(&report, "track"), Some("0"), "{report:?}");
    assert!(
        relay
            .stderr
            .count(|l| l.contains("does not take this codec"))
            == 1,
        "{}",
        relay.describe()
    );
    publisher.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An `rtmps://` destination: our own ingest-rtmp's RTMPS listener with a certificate of
/// an rcgen test CA, trusted through `--ca-file`; FFmpeg decodes the stream there. A
/// relayer without `--ca-file` is refused by certificate verification.
#[test]
fn pushes_to_an_rtmps_destination() {
    let origin = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("relay test CA");
    let ca_file = tmp.path().join("ca.pem");
    ca.write_ca(&ca_file);
    let cert = ca.issue(&tmp.path().join("cert.pem"), &tmp.path().join("key.pem"));
    let dest = Server::start_second(ServerOpts::default().ingest(&[
        "--tls-listen=127.0.0.1:0",
        &format!("--tls-cert={}", cert.cert.display()),
        &format!("--tls-key={}", cert.key.display()),
    ]));
    let line = dest
        .log(Which::Ingest)
        .wait_for(0, deadline_in(10.0), |l| {
            l.contains("listening on rtmps://")
        })
        .expect("ingest-rtmp logs its RTMPS address");
    let addr = e2e::server::parse_addr(&line, "listening on rtmps://").expect("RTMPS address");
    // By name: the certificate is checked for `localhost`.
    let rule = format!("live/*=rtmps://localhost:{}/live/{{name}}", addr.port());
    let relay = relayer(
        origin.socket(),
        std::slice::from_ref(&rule),
        &["--ca-file", ca_file.to_str().unwrap()],
    );
    let untrusting = relayer(
        origin.socket(),
        &[format!(
            "live/*=rtmps://localhost:{}/live/{{name}}-x",
            addr.port()
        )],
        &["--reconnect-min", "200ms"],
    );
    let mut publisher = ffmpeg::publish(
        &origin.url("sec"),
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60)),
    );
    wait_destination_live(&relay);
    decodes_3s(&dest.url("sec"), "player at the rtmps destination");
    let refused = untrusting
        .stderr
        .wait_for(0, deadline_in(30.0), |l| l.contains("destination failed"))
        .unwrap_or_else(|| panic!("{}", untrusting.describe()));
    assert!(refused.contains("tls"), "{refused}");
    // Both relayers' series for the destination (the same redacted URL) at the origin
    // hub's /metrics: bytes and a connection from one, failures from the other.
    let series = |name: &str| {
        format!(
            "{name}{{destination=\"rtmps://localhost:{}/live/***\"}}",
            addr.port()
        )
    };
    let deadline = deadline_in(20.0);
    loop {
        let scrape = e2e::prom::parse(&e2e::http::get(origin.http_addr(), "/metrics").text());
        if scrape.get(&series("mediaserver_relay_bytes_total")) > 10_000.0
            && scrape.get(&series("mediaserver_relay_connects_total")) >= 1.0
            && scrape.get(&series("mediaserver_relay_failures_total")) >= 1.0
            && scrape.get("mediaserver_relay_destinations{state=\"live\"}") == 1.0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "relay series at /metrics: {scrape:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        untrusting
            .stderr
            .wait_for(0, deadline_in(0.1), |l| l.contains("destination live"))
            .is_none(),
        "{}",
        untrusting.describe()
    );
    publisher.kill();
}

/// Data messages other than `onMetaData` (cue points, text) reach a destination in order
/// with the media around them, byte for byte; frames larger than the chunk size (sent from
/// the shared frame buffers as chunk slices) arrive whole.
#[test]
fn data_messages_reach_the_destination_in_order_with_media() {
    use e2e::rtmp_client::amf0::{encode_all, Amf0};
    use e2e::rtmp_client::{is_stream_message, msg_type, RtmpClient};

    let origin = Server::start(ServerOpts::default());
    let second = Server::start_second(ServerOpts::default());
    let rule = format!("live/*=rtmp://{}/live/{{name}}", second.addr());
    let relay = relayer(origin.socket(), &[rule], &[]);
    // This player waits for the relayed stream, so it sees it from the first message.
    let (mut player, psid) = RtmpClient::open(second.addr(), "live").expect("player");
    player.play_started(psid, "cues").expect("play starts");

    let (v, d) = (msg_type::VIDEO, msg_type::DATA);
    let avcc = b"\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x02\x68\xee";
    let frame = |key: bool, len: usize, fill: u8| {
        let mut b = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        b.extend_from_slice(&(len as u32 - 4).to_be_bytes());
        b.push(if key { 0x65 } else { 0x41 });
        b.resize(5 + len, fill);
        b
    };
    let data = |name: &str, text: &str| {
        encode_all(&[Amf0::str(name), Amf0::object(&[("text", Amf0::str(text))])])
    };
    let script: Vec<(u8, u32, Vec<u8>)> = vec![
        (v, 0, [&b"\x17\x00\x00\x00\x00"[..], &avcc[..]].concat()),
        (v, 0, frame(true, 10_000, 1)),
        (d, 10, data("onCuePoint", "cue1")),
        (v, 40, frame(false, 300, 2)),
        (d, 50, data("onTextData", "hello")),
        (v, 80, frame(false, 5_000, 3)),
        (d, 80, data("onCaptionInfo", "cc")),
        (v, 120, frame(true, 9_000, 4)),
        (d, 130, data("onCuePoint", "cue2")),
        (v, 160, frame(false, 200, 5)),
    ];
    let (mut publisher, sid) = RtmpClient::open(origin.addr(), "live").expect("publisher");
    publisher.publish(sid, "cues").expect("publish");
    for (type_id, ts, body) in &script {
        let csid = if *type_id == d { 5 } else { 6 };
        publisher
            .send_message(csid, *type_id, sid, *ts, body)
            .expect("send");
    }
    wait_destination_live(&relay);
    // Everything comes once, in order: the sequence header the relayer sends a new
    // connection first is not sent again from its queue.
    let deadline = deadline_in(30.0);
    let mut got: Vec<(u8, Vec<u8>)> = Vec::new();
    while got.len() < script.len() {
        let m = player
            .next_message(deadline)
            .unwrap_or_else(|e| panic!("after {} messages: {e}\n{}", got.len(), relay.describe()));
        if is_stream_message(&m) {
            got.push((m.type_id, m.payload));
        }
    }
    for (i, ((t, body), (wt, _, wbody))) in got.iter().zip(&script).enumerate() {
        assert_eq!(
            (t, body.len()),
            (wt, wbody.len()),
            "message {i}\n{}",
            relay.describe()
        );
        assert!(body == wbody, "message {i} differs\n{}", relay.describe());
    }
    drop(publisher);
}
