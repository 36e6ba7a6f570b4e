//! hookd against the real hub, ingest-rtmp and recorder, fed by FFmpeg 9: publish, play,
//! stop and record events reach a webhook (HMAC verified), a program and stdout, once and
//! in order per stream; connection, auth and takeover events; a webhook that is down then
//! up gets everything; a hanging program is killed with its process group at the timeout;
//! under the supervisor, component crashes and restarts (the hub's own included).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::bins::bin;
use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PublishOpts};
use e2e::proc::Proc;
use e2e::rtmp_client::RtmpClient;
use e2e::scenario::{raw_publisher, send_h264_aac};
use e2e::server::Which;
use e2e::supervised::Supervised;
use e2e::{Server, ServerOpts};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "test-secret";

/// One request the test endpoint received: its path, headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

/// A tiny HTTP endpoint answering 200 to every request and keeping what it got.
struct Endpoint {
    got: Arc<Mutex<Vec<Received>>>,
}

impl Endpoint {
    fn serve(listener: TcpListener) -> Endpoint {
        Endpoint::serve_with(listener, Some)
    }

    /// An `https` endpoint presenting `cert` (chain and key PEM files).
    fn serve_tls(listener: TcpListener, cert: &e2e::test_ca::ServerCert) -> Endpoint {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(&cert.cert)
            .expect("cert file")
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = PrivateKeyDer::from_pem_file(&cert.key).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let config = Arc::new(config);
        Endpoint::serve_with(listener, move |tcp| {
            let conn = rustls::ServerConnection::new(config.clone()).ok()?;
            Some(rustls::StreamOwned::new(conn, tcp))
        })
    }

    /// Serves each connection through `wrap` (plain or TLS), one at a time.
    fn serve_with<S: Read + Write + Send + 'static>(
        listener: TcpListener,
        wrap: impl Fn(std::net::TcpStream) -> Option<S> + Send + 'static,
    ) -> Endpoint {
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(conn) = wrap(conn) else { continue };
                let mut r = BufReader::new(conn);
                let mut headers = HashMap::new();
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    continue;
                }
                keep.lock().unwrap().push(Received {
                    path,
                    headers,
                    body: String::from_utf8(body).expect("utf-8 body"),
                });
                let _ = r.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = r.get_mut().flush();
            }
        });
        Endpoint { got }
    }

    fn events(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until a received event satisfies `pred`.
    fn wait(&self, what: &str, deadline: Instant, pred: impl Fn(&Value) -> bool) {
        while Instant::now() < deadline {
            if self.events().iter().any(|r| pred(&json(&r.body))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("webhook never got {what}: {:#?}", self.events());
    }
}

/// The `X-Hook-Signature` a body must carry under [`SECRET`].
fn signature(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn hookd(server: &Server, args: &[String]) -> Proc {
    let mut cmd = Command::new(bin("hookd"));
    cmd.arg("--hub")
        .arg(server.socket())
        .args(args)
        .env("HOOKD_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    let p = Proc::spawn("hookd", &mut cmd);
    p.stderr
        .wait_for(0, deadline_in(20.0), |l| l.contains("connected to the hub"))
        .unwrap_or_else(|| panic!("hookd never subscribed\n{}", p.describe()));
    p
}

fn is(v: &Value, kind: &str, key: &str) -> bool {
    v["kind"] == kind && v["key"] == key
}

/// The events of `key` in the order given, checked to be seq 1, 2, 3, ... with unique ids.
fn of_key(events: &[Value], key: &str) -> Vec<Value> {
    let mine: Vec<Value> = events.iter().filter(|v| v["key"] == key).cloned().collect();
    for (i, v) in mine.iter().enumerate() {
        assert_eq!(
            v["seq"].as_u64(),
            Some(i as u64 + 1),
            "seq of {v} in {mine:#?}"
        );
    }
    let mut ids: Vec<&str> = mine.iter().map(|v| v["id"].as_str().expect("id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), mine.len(), "ids unique: {mine:#?}");
    mine
}

/// Asserts that no two of `got` share an `id`.
fn no_event_twice(got: &[Value]) {
    let mut ids: Vec<&str> = got.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "an event delivered twice: {got:#?}");
}

fn position(events: &[Value], kind: &str) -> usize {
    events
        .iter()
        .position(|v| v["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {events:#?}"))
}

#[test]
fn publish_play_record_events_reach_webhook_program_and_stdout() {
    let server = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::serve(listener);
    let out = tmp.path().join("program.jsonl");
    let hook = hookd(
        &server,
        &[
            "--stdout".into(),
            "--webhook".into(),
            format!("*@live/*=http://127.0.0.1:{port}/hook"),
            "--exec".into(),
            format!("*@live/hk=cat >> '{}'", out.display()),
            "--exec-concurrency".into(),
            "1".into(),
        ],
    );
    let mut rec_cmd = Command::new(bin("recorder"));
    rec_cmd
        .arg("--hub")
        .arg(server.socket())
        .arg("--dir")
        .arg(tmp.path().join("rec"))
        .env("NO_COLOR", "1");
    let rec = Proc::spawn("recorder", &mut rec_cmd);
    rec.stderr
        .wait_for(0, deadline_in(20.0), |l| l.contains("connected to the hub"))
        .expect("recorder connected");
    let mut publisher = ffmpeg::publish(
        &server.url("hk"),
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(4)),
    );
    endpoint.wait("publish", deadline_in(30.0), |v| {
        is(v, "publish", "live/hk")
    });
    let (mut player, psid) = RtmpClient::open(server.addr(), "live").expect("player");
    player.play(psid, "hk").expect("play");
    endpoint.wait("play", deadline_in(30.0), |v| is(v, "play", "live/hk"));
    let (status, killed) = publisher.wait_or_kill(deadline_in(40.0));
    assert!(
        status.success() && !killed,
        "publisher\n{}",
        publisher.describe()
    );
    endpoint.wait("unpublish", deadline_in(30.0), |v| {
        is(v, "unpublish", "live/hk")
    });
    drop(player);
    endpoint.wait("stop", deadline_in(30.0), |v| is(v, "stop", "live/hk"));
    endpoint.wait("record_done", deadline_in(30.0), |v| {
        is(v, "record_done", "live/hk")
    });

    // Webhook: every body signed, the events of the key once each and in order.
    let got = endpoint.events();
    for r in &got {
        assert_eq!(r.headers.get("x-hook-signature"), Some(&signature(&r.body)));
        let v = json(&r.body);
        assert_eq!(
            r.headers.get("x-hook-event").map(String::as_str),
            v["kind"].as_str()
        );
        assert_eq!(
            r.headers.get("x-hook-id").map(String::as_str),
            v["id"].as_str()
        );
    }
    let hooked: Vec<Value> = got.iter().map(|r| json(&r.body)).collect();
    let mine = of_key(&hooked, "live/hk");
    let publish = &mine[position(&mine, "publish")];
    assert_eq!(publish["fields"]["video_codec"], "h264", "{publish}");
    assert_eq!(publish["fields"]["audio_codec"], "aac", "{publish}");
    assert_eq!(publish["fields"]["width"], "320", "{publish}");
    assert_eq!(publish["fields"]["height"], "240", "{publish}");
    let unpublish = &mine[position(&mine, "unpublish")];
    assert!(
        unpublish["fields"]["frames"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 50
    );
    let stop = &mine[position(&mine, "stop")];
    assert_eq!(stop["fields"]["player"], "rtmp");
    assert!(
        stop["fields"]["bytes"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 10_000,
        "{stop}"
    );
    assert!(position(&mine, "publish") < position(&mine, "unpublish"));
    assert!(position(&mine, "play") < position(&mine, "stop"));
    assert!(position(&mine, "record_start") < position(&mine, "record_done"));
    let done = &mine[position(&mine, "record_done")];
    let path = done["fields"]["path"].as_str().unwrap();
    assert!(Path::new(path).exists(), "{done}");

    // stdout: the same events, same order.
    let seen = hook
        .stdout
        .wait_count(mine.len(), deadline_in(10.0), |l| l.contains("\"live/hk\""));
    assert!(seen, "hookd stdout\n{}", hook.describe());
    let lines: Vec<Value> = hook.stdout.lines().iter().map(|l| json(l)).collect();
    // Later events (the last `players`) may follow what the webhook had by then.
    assert_eq!(of_key(&lines, "live/hk")[..mine.len()], mine[..]);

    // The program: the same events on stdin, one at a time (concurrency 1), in order.
    let deadline = deadline_in(20.0);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let ran: Vec<Value> = text.lines().map(json).collect();
        if ran.len() >= mine.len() {
            assert_eq!(of_key(&ran, "live/hk")[..mine.len()], mine[..]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "program saw {ran:#?}\n{}",
            hook.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP socket bound to a free loopback port without listening: connections to the port
/// are refused and no one else can bind it. Returns the descriptor and the address.
fn reserve_port() -> (i32, SocketAddr) {
    // SAFETY: plain socket calls on a sockaddr_in this function owns.
    unsafe {
        // Close-on-exec: hookd, started after, must not inherit (and keep) the port.
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        libc::getsockname(fd, &mut got as *mut _ as *mut libc::sockaddr, &mut got_len);
        let port = u16::from_be(got.sin_port);
        (fd, SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

#[test]
fn webhook_down_then_up_receives_everything_after_recovery() {
    let server = Server::start(ServerOpts::default());
    // A port bound but not listening (connections refused) until later, so that no
    // other test's listener can take it meanwhile.
    let (reserved, addr) = reserve_port();
    let hook = hookd(
        &server,
        &[
            "--stdout".into(),
            "--webhook".into(),
            format!("*@live/down=http://{addr}/hook"),
            "--retry-min".into(),
            "100ms".into(),
            "--retry-max".into(),
            "400ms".into(),
        ],
    );
    let (mut publisher, sid) = raw_publisher(server.addr(), "down");
    send_h264_aac(&mut publisher, sid, 0, 25, 40, 25).expect("frames");
    drop(publisher);
    assert!(
        hook.stdout
            .wait_for(0, deadline_in(20.0), |l| l.contains("\"unpublish\""))
            .is_some(),
        "{}",
        hook.describe()
    );
    assert!(
        hook.stderr
            .wait_for(0, deadline_in(20.0), |l| l.contains("webhook failed"))
            .is_some(),
        "{}",
        hook.describe()
    );
    // SAFETY: closes the socket reserve_port opened; nothing else uses it.
    unsafe { libc::close(reserved) };
    let endpoint = Endpoint::serve(TcpListener::bind(addr).expect("rebind the port"));
    endpoint.wait("unpublish", deadline_in(30.0), |v| {
        is(v, "unpublish", "live/down")
    });
    endpoint.wait("connection_closed", deadline_in(30.0), |v| {
        is(v, "connection_closed", "live/down")
    });
    let expected: Vec<Value> = hook.stdout.lines().iter().map(|l| json(l)).collect();
    let expected = of_key(&expected, "live/down");
    let got: Vec<Value> = endpoint.events().iter().map(|r| json(&r.body)).collect();
    assert_eq!(of_key(&got, "live/down"), expected);
    assert!(expected.iter().any(|v| v["kind"] == "publish"));
}

#[test]
fn hanging_program_is_killed_with_its_group_at_the_timeout() {
    let server = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("temp dir");
    let pid_file = tmp.path().join("pid");
    let hook = hookd(
        &server,
        &[
            "--exec".into(),
            format!(
                "publish=sleep 600 & echo $! > '{}'; wait",
                pid_file.display()
            ),
            "--exec-timeout".into(),
            "1s".into(),
        ],
    );
    let (mut publisher, sid) = raw_publisher(server.addr(), "hang");
    send_h264_aac(&mut publisher, sid, 0, 5, 40, 5).expect("frames");
    let line = hook
        .stderr
        .wait_for(0, deadline_in(30.0), |l| {
            l.contains("timed out; process group killed")
        })
        .unwrap_or_else(|| panic!("no timeout\n{}", hook.describe()));
    assert!(line.contains("publish"), "{line}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    // The program's child (sleep) went with the group.
    let deadline = deadline_in(10.0);
    while unsafe { libc::kill(pid, 0) } == 0 {
        assert!(
            Instant::now() < deadline,
            "sleep {pid} survived the timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn python_example_reads_hookd_stdout() {
    let server = Server::start(ServerOpts::default());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hookd_events.py");
    // hookd's stdout straight into the example, as the README shows.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec "$0" --hub "$1" --stdout | python3 "$2""#)
        .arg(bin("hookd"))
        .arg(server.socket())
        .arg(&example)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    let mut pipe = Proc::spawn("hookd --stdout | hookd_events.py", &mut cmd);
    pipe.stderr
        .wait_for(0, deadline_in(20.0), |l| l.contains("connected to the hub"))
        .unwrap_or_else(|| panic!("hookd never subscribed\n{}", pipe.describe()));
    let (mut publisher, sid) = raw_publisher(server.addr(), "py");
    send_h264_aac(&mut publisher, sid, 0, 25, 40, 25).expect("frames");
    drop(publisher);
    let live = pipe
        .stdout
        .wait_for(0, deadline_in(20.0), |l| l.starts_with("LIVE live/py"))
        .unwrap_or_else(|| panic!("no LIVE line\n{}", pipe.describe()));
    assert_eq!(live, "LIVE live/py h264/aac 64x64");
    let done = pipe
        .stdout
        .wait_for(0, deadline_in(20.0), |l| l.starts_with("DONE live/py"))
        .unwrap_or_else(|| panic!("no DONE line\n{}", pipe.describe()));
    assert!(done.ends_with("(disconnect)"), "{done}");
    assert!(
        !pipe.stdout.lines().iter().any(|l| l.contains("missed")),
        "{}",
        pipe.describe()
    );
    pipe.kill();
}

#[test]
fn program_flooding_stdout_costs_no_memory() {
    let server = Server::start(ServerOpts::default());
    let hook = hookd(
        &server,
        &[
            "--exec".into(),
            // 512 MiB on stdout: hookd reads and discards it.
            "publish=head -c 536870912 /dev/zero".into(),
            "--exec-timeout".into(),
            "120s".into(),
        ],
    );
    let (mut publisher, sid) = raw_publisher(server.addr(), "flood");
    send_h264_aac(&mut publisher, sid, 0, 5, 40, 5).expect("frames");
    hook.stderr
        .wait_for(0, deadline_in(120.0), |l| {
            l.contains("hook program exited 0")
        })
        .unwrap_or_else(|| panic!("flooding program did not finish\n{}", hook.describe()));
    let status = std::fs::read_to_string(format!("/proc/{}/status", hook.pid())).expect("status");
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    assert!(
        peak_kib < 64 * 1024,
        "hookd peak RSS {peak_kib} KiB after a 512 MiB flood"
    );
}

#[test]
fn hookd_resubscribes_after_a_hub_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::serve(listener);
    let s = e2e::supervised::Supervised::start(&format!(
        "[hookd]\nwebhook = [\"*@live/*=http://127.0.0.1:{port}/hook\", \
         \"component_start,component_exit,component_restart=http://127.0.0.1:{port}/hook\"]\n"
    ));
    s.wait_line(0, Duration::from_secs(30), |l| l.contains("hookd is ready"))
        .unwrap_or_else(|| panic!("hookd never ready\n{}", s.describe()));
    let (mut publisher, sid) = raw_publisher(s.addr(), "before");
    send_h264_aac(&mut publisher, sid, 0, 10, 40, 10).expect("frames");
    drop(publisher);
    endpoint.wait("unpublish before", deadline_in(30.0), |v| {
        is(v, "unpublish", "live/before")
    });
    endpoint.wait("connection_closed before", deadline_in(30.0), |v| {
        is(v, "connection_closed", "live/before")
    });
    let mark = s.mark();
    e2e::supervised::Supervised::kill9(s.child_pid("hub", 1));
    s.wait_line(mark, Duration::from_secs(30), |l| {
        l.contains("hub is ready")
    })
    .unwrap_or_else(|| panic!("hub not restarted\n{}", s.describe()));
    // Ingest reconnects to the new hub on its own; publish until it takes the stream.
    let deadline = deadline_in(30.0);
    loop {
        let (mut publisher, sid) = raw_publisher(s.addr(), "after");
        if send_h264_aac(&mut publisher, sid, 0, 10, 40, 10).is_ok() {
            drop(publisher);
            let got = endpoint.events();
            if got
                .iter()
                .any(|r| is(&json(&r.body), "publish", "live/after"))
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no event after the restart\n{}",
            s.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    endpoint.wait("unpublish after", deadline_in(30.0), |v| {
        is(v, "unpublish", "live/after")
    });
    // The same hookd process subscribed again (the supervisor did not restart it).
    s.wait_line(mark, Duration::from_secs(10), |l| {
        l.contains("hookd") && l.contains("connected to the hub")
    })
    .unwrap_or_else(|| panic!("hookd did not re-subscribe\n{}", s.describe()));
    assert!(
        s.wait_line(0, Duration::from_millis(1), |l| l.contains("started hookd")
            && l.contains("run 2)"))
            .is_none(),
        "hookd was restarted instead\n{}",
        s.describe()
    );
    let got: Vec<Value> = endpoint.events().iter().map(|r| json(&r.body)).collect();
    no_event_twice(&got);
    // The old stream's events once each; the new hub numbers its keys from 1 again.
    of_key(&got, "live/before");
    let after: Vec<&Value> = got.iter().filter(|v| v["key"] == "live/after").collect();
    assert!(after.iter().any(|v| v["kind"] == "publish"), "{got:#?}");

    // The supervisor's events about the hub's crash were kept while it was down and
    // reached hookd through the new hub: exit (signal 9), restart, second start.
    let component = |kind: &str, name: &str, pred: &dyn Fn(&Value) -> bool| {
        endpoint.wait(&format!("{kind} {name}"), deadline_in(30.0), |v| {
            v["kind"] == kind && v["fields"]["component"] == name && pred(v)
        })
    };
    component("component_exit", "hub", &|v| {
        v["fields"]["expected"] == "false"
            && v["fields"]["status"].as_str().unwrap_or("").contains("9")
            && v["fields"]["uptime_ms"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .is_ok()
    });
    component("component_restart", "hub", &|v| {
        v["fields"]["restarts"] == "1" && v["fields"]["delay_ms"].as_str().is_some()
    });
    component("component_start", "hub", &|v| v["fields"]["run"] == "2");
    // A crashed ingest-rtmp: the same three, while the hub stays up.
    Supervised::kill9(s.child_pid("ingest-rtmp", 1));
    component("component_exit", "ingest-rtmp", &|v| {
        v["fields"]["expected"] == "false"
    });
    component("component_restart", "ingest-rtmp", &|v| {
        v["fields"]["restarts"] == "1"
    });
    component("component_start", "ingest-rtmp", &|v| {
        v["fields"]["run"] == "2"
    });
    let got: Vec<Value> = endpoint.events().iter().map(|r| json(&r.body)).collect();
    let at = |kind: &str, name: &str| {
        got.iter()
            .position(|v| v["kind"] == kind && v["fields"]["component"] == name)
            .unwrap_or_else(|| panic!("no {kind} of {name}: {got:#?}"))
    };
    assert!(at("component_exit", "hub") < at("component_restart", "hub"));
    assert!(at("component_exit", "ingest-rtmp") < at("component_restart", "ingest-rtmp"));
}

/// hookd's subscription kicked through the API while the hub is in its first 10 s: the
/// hub gives the new subscription its startup events again (it logs how many), and hookd
/// delivers none of them twice, and still the events after.
#[test]
fn a_quick_reconnect_to_the_same_hub_delivers_nothing_twice() {
    const TOKEN: &str = "kick-token";
    let server = Server::start(ServerOpts::default().hub(&["--api-token", TOKEN]));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::serve(listener);
    let hook = hookd(
        &server,
        &[
            "--webhook".into(),
            format!("*=http://127.0.0.1:{port}/hook"),
        ],
    );
    let (mut publisher, sid) = raw_publisher(server.addr(), "early");
    send_h264_aac(&mut publisher, sid, 0, 10, 40, 10).expect("frames");
    drop(publisher);
    endpoint.wait("connection_closed early", deadline_in(30.0), |v| {
        is(v, "connection_closed", "live/early")
    });

    let http = server.http_addr();
    let name = format!("hookd/{}", hook.pid());
    let conns = e2e::http::get(http, "/api/v1/connections").json();
    let id = conns["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .find(|c| c["kind"] == "subscriber" && c["protocol"] == name.as_str())
        .unwrap_or_else(|| panic!("no {name} in {conns:#}"))["id"]
        .as_u64()
        .expect("id");
    let (hub_mark, hook_mark) = (server.log(Which::Hub).len(), hook.stderr.len());
    let auth = format!("Bearer {TOKEN}");
    let kick = e2e::http::request(
        http,
        "DELETE",
        &format!("/api/v1/connections/{id}"),
        &[("Authorization", auth.as_str())],
    )
    .expect("kick");
    assert_eq!(kick.status, 200, "{}", kick.text());
    hook.stderr
        .wait_for(hook_mark, deadline_in(20.0), |l| {
            l.contains("connected to the hub")
        })
        .unwrap_or_else(|| panic!("hookd did not subscribe again\n{}", hook.describe()));
    let attached = server
        .log(Which::Hub)
        .wait_for(hub_mark, deadline_in(10.0), |l| {
            l.contains("subscriber attached") && l.contains(&name)
        })
        .unwrap_or_else(|| panic!("the hub never attached {name} again\n{}", server.describe()));
    let replayed: usize = attached
        .split("replayed=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no replayed=N in {attached}"));
    // Else the 10 s had passed (a very slow machine) and this test would prove nothing.
    assert!(
        replayed > 0,
        "the reconnection came after the hub's startup window: {attached}"
    );

    let (mut publisher, sid) = raw_publisher(server.addr(), "late");
    send_h264_aac(&mut publisher, sid, 0, 10, 40, 10).expect("frames");
    drop(publisher);
    endpoint.wait("connection_closed late", deadline_in(30.0), |v| {
        is(v, "connection_closed", "live/late")
    });
    let got: Vec<Value> = endpoint.events().iter().map(|r| json(&r.body)).collect();
    no_event_twice(&got);
    for key in ["live/early", "live/late"] {
        let mine = of_key(&got, key);
        assert!(mine.iter().any(|v| v["kind"] == "publish"), "{got:#?}");
    }
    hook.stderr
        .wait_for(hook_mark, deadline_in(10.0), |l| {
            l.contains("replayed events") && l.contains("skipped=")
        })
        .unwrap_or_else(|| panic!("hookd did not say what it skipped\n{}", hook.describe()));
}

/// Connections (accepted, closed), an auth denial and a takeover, as hookd delivers them
/// to a webhook and stdout.
#[test]
fn connection_auth_and_takeover_events_reach_hookd() {
    let server = Server::start(
        ServerOpts::default()
            .ingest(&["--publish-auth=token", "--publish-token=live/*=pubSecret1"]),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::serve(listener);
    let hook = hookd(
        &server,
        &[
            "--stdout".into(),
            "--webhook".into(),
            format!("*=http://127.0.0.1:{port}/hook"),
        ],
    );
    // Denied: a wrong token.
    let (mut denied, sid) = RtmpClient::open(server.addr(), "live").expect("connect");
    let status = denied
        .publish(sid, "tk?token=wrongGuess")
        .expect("answered");
    assert_ne!(status.code, "NetStream.Publish.Start", "{status:?}");
    endpoint.wait("auth_denied", deadline_in(30.0), |v| {
        is(v, "auth_denied", "live/tk")
    });
    drop(denied);
    // The first publisher, then a second one taking the key over.
    let (mut first, sid1) = raw_publisher(server.addr(), "tk?token=pubSecret1");
    send_h264_aac(&mut first, sid1, 0, 10, 40, 10).expect("frames");
    endpoint.wait("publish", deadline_in(30.0), |v| {
        is(v, "publish", "live/tk")
    });
    let (mut second, sid2) = raw_publisher(server.addr(), "tk?token=pubSecret1");
    send_h264_aac(&mut second, sid2, 1000, 10, 40, 10).expect("frames");
    endpoint.wait("duplicate_publisher", deadline_in(30.0), |v| {
        is(v, "duplicate_publisher", "live/tk")
    });
    drop(first);
    drop(second);
    let closed = |v: &Value| is(v, "connection_closed", "live/tk");
    let deadline = deadline_in(30.0);
    while endpoint
        .events()
        .iter()
        .filter(|r| closed(&json(&r.body)))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{:#?}", endpoint.events());
        std::thread::sleep(Duration::from_millis(50));
    }
    endpoint.wait("unpublish", deadline_in(30.0), |v| {
        is(v, "unpublish", "live/tk") && v["fields"]["reason"] != "takeover"
    });

    let got: Vec<Value> = endpoint.events().iter().map(|r| json(&r.body)).collect();
    let find = |pred: &dyn Fn(&Value) -> bool| -> (usize, Value) {
        got.iter()
            .enumerate()
            .find(|(_, v)| pred(v))
            .map(|(i, v)| (i, v.clone()))
            .unwrap_or_else(|| panic!("not found in {got:#?}"))
    };
    let (_, deny) = find(&|v| is(v, "auth_denied", "live/tk"));
    assert_eq!(deny["fields"]["action"], "publish", "{deny}");
    assert_eq!(deny["fields"]["protocol"], "rtmp", "{deny}");
    assert_eq!(deny["fields"]["mode"], "token", "{deny}");
    assert_eq!(deny["fields"]["reason"], "invalid_token", "{deny}");
    assert!(!deny.to_string().contains("wrongGuess"), "{deny}");
    let (_, publish) = find(&|v| is(v, "publish", "live/tk"));
    let first_id = publish["conn_id"].as_u64().unwrap();
    let (_, allowed) = find(&|v| is(v, "auth_allowed", "live/tk") && v["conn_id"] == first_id);
    assert_eq!(allowed["fields"]["protocol"], "rtmp", "{allowed}");
    let (dup_at, dup) = find(&|v| is(v, "duplicate_publisher", "live/tk"));
    assert_eq!(dup["fields"]["action"], "taken_over", "{dup}");
    let second_id = dup["conn_id"].as_u64().unwrap();
    assert_ne!(second_id, first_id);
    let (taken_at, taken) =
        find(&|v| is(v, "unpublish", "live/tk") && v["fields"]["reason"] == "takeover");
    assert_eq!(taken["conn_id"], first_id, "{taken}");
    assert!(
        dup_at < taken_at,
        "taken over after the duplicate was announced"
    );
    // Each client connection: accepted (protocol, address) before closed (key, reason).
    for (id, key) in [
        (deny["conn_id"].as_u64().unwrap(), ""),
        (first_id, "live/tk"),
        (second_id, "live/tk"),
    ] {
        let (acc_at, acc) = find(&|v| v["kind"] == "connection_accepted" && v["conn_id"] == id);
        assert_eq!(acc["fields"]["protocol"], "rtmp", "{acc}");
        assert!(
            acc["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{acc}"
        );
        let (cl_at, cl) = find(&|v| v["kind"] == "connection_closed" && v["conn_id"] == id);
        assert!(acc_at < cl_at, "{acc} then {cl}");
        assert_eq!(cl["key"], key, "{cl}");
        assert_eq!(cl["remote"], acc["remote"], "{cl}");
        assert_eq!(cl["fields"]["protocol"], "rtmp", "{cl}");
        assert!(cl["fields"]["duration_ms"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok());
        let bytes_in: u64 = cl["fields"]["bytes_in"].as_str().unwrap().parse().unwrap();
        assert!(bytes_in > 1536, "{cl}");
    }
    // The key's events once each, in order, the same on stdout.
    let mine = of_key(&got, "live/tk");
    let seen = hook
        .stdout
        .wait_count(mine.len(), deadline_in(10.0), |l| l.contains("\"live/tk\""));
    assert!(seen, "hookd stdout\n{}", hook.describe());
    let lines: Vec<Value> = hook.stdout.lines().iter().map(|l| json(l)).collect();
    assert_eq!(of_key(&lines, "live/tk")[..mine.len()], mine[..]);
}

/// An `https://` webhook verified against `--ca-file` (an rcgen test CA) gets the events,
/// signed; the same endpoint without `--ca-file` is refused by certificate verification.
#[test]
fn https_webhook_verified_with_ca_file() {
    let server = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("temp dir");
    let ca = e2e::test_ca::TestCa::new("hooks test CA");
    let ca_file = tmp.path().join("ca.pem");
    ca.write_ca(&ca_file);
    let cert = ca.issue(&tmp.path().join("cert.pem"), &tmp.path().join("key.pem"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::serve_tls(listener, &cert);
    let trusting = hookd(
        &server,
        &[
            "--webhook".into(),
            format!("publish,unpublish@live/tls=https://127.0.0.1:{port}/trusted"),
            "--ca-file".into(),
            ca_file.display().to_string(),
        ],
    );
    let untrusting = hookd(
        &server,
        &[
            "--webhook".into(),
            format!("publish@live/tls=https://localhost:{port}/untrusted"),
            "--retry-min".into(),
            "100ms".into(),
        ],
    );
    let (mut publisher, sid) = raw_publisher(server.addr(), "tls");
    send_h264_aac(&mut publisher, sid, 0, 10, 40, 10).expect("frames");
    drop(publisher);
    endpoint.wait("unpublish over https", deadline_in(30.0), |v| {
        is(v, "unpublish", "live/tls")
    });
    let line = untrusting
        .stderr
        .wait_for(0, deadline_in(20.0), |l| l.contains("webhook failed"))
        .unwrap_or_else(|| panic!("no failure without the CA\n{}", untrusting.describe()));
    assert!(line.contains("tls"), "{line}");
    let got = endpoint.events();
    assert!(got.iter().all(|r| r.path == "/trusted"), "{got:#?}");
    let kinds: Vec<String> = got
        .iter()
        .map(|r| json(&r.body)["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["publish", "unpublish"]);
    for r in &got {
        assert_eq!(r.headers.get("x-hook-signature"), Some(&signature(&r.body)));
    }
    drop(trusting);
}
