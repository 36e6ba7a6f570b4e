//! RTMPS end to end: FFmpeg 9 (verifying the server against a test CA made with rcgen) and
//! GStreamer publish and play over TLS, the RTMPS player served by the hub through
//! ingest's relay; clients stalled in the TLS handshake delay nobody and are closed at the
//! handshake timeout; the certificate is replaced under a live RTMPS stream (SIGHUP).

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::ffmpeg::{self, encode_args, ffmpeg_path, Codecs, PlayOpts, Player, PublishOpts};
use e2e::proc::Proc;
use e2e::server::Which;
use e2e::test_ca::TestCa;
use e2e::tools::skip_without;
use e2e::{deadline_in, gst, Server, ServerOpts};

fn rtmps_addr(server: &Server) -> SocketAddr {
    let line = server
        .log(Which::Ingest)
        .wait_for(0, deadline_in(10.0), |l| {
            l.contains("listening on rtmps://")
        })
        .expect("ingest-rtmp logs its RTMPS address");
    let rest = &line[line.find("rtmps://").unwrap() + "rtmps://".len()..];
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

fn url(addr: SocketAddr, name: &str) -> String {
    format!("rtmps://{addr}/live/{name}")
}

fn tls_args(ca: &Path) -> Vec<String> {
    [
        "-tls_verify",
        "1",
        "-ca_file",
        &ca.display().to_string(),
        "-verifyhost",
        "localhost",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// FFmpeg publishing over RTMPS, verifying the server with `ca`.
fn publish(url: &str, ca: &Path, secs: u64) -> Proc {
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(secs));
    let mut args = encode_args(&opts, true, url);
    let out = args.pop().unwrap();
    args.extend(tls_args(ca));
    args.push(out);
    Proc::spawn(
        &format!("ffmpeg publish {url}"),
        Command::new(ffmpeg_path()).args(args),
    )
}

fn player(url: &str, ca: &Path, duration: Option<Duration>) -> Player {
    Player::spawn(
        url,
        &PlayOpts {
            duration,
            input_args: tls_args(ca),
            ..PlayOpts::default()
        },
    )
}

fn start(cert: &e2e::test_ca::ServerCert, extra: &[&str]) -> Server {
    let mut args = vec![
        "--tls-listen=127.0.0.1:0".to_owned(),
        format!("--tls-cert={}", cert.cert.display()),
        format!("--tls-key={}", cert.key.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(ServerOpts::default().ingest(&args))
}

#[test]
fn rtmps_publish_and_play_while_handshakes_stall() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("e2e CA");
    let ca_pem = dir.path().join("ca.pem");
    ca.write_ca(&ca_pem);
    let cert = ca.issue(&dir.path().join("cert.pem"), &dir.path().join("key.pem"));
    let server = start(&cert, &["--handshake-timeout=20s"]);
    let addr = rtmps_addr(&server);

    // Clients that connect and never finish (or never start) their TLS handshake.
    let mut stalled: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    use std::io::Write;
    stalled[0].write_all(&[0x16, 0x03, 0x01, 0x02]).unwrap();

    let _publisher = publish(&url(addr, "tls"), &ca_pem, 25);
    player(&url(addr, "tls"), &ca_pem, Some(Duration::from_secs(2)))
        .finish(deadline_in(30.0))
        .assert_decoded("FFmpeg RTMPS player", 30, 30);
    // A plain RTMP player of the RTMPS publisher.
    Player::spawn(
        &server.url("tls"),
        &PlayOpts {
            duration: Some(Duration::from_secs(1)),
            ..PlayOpts::default()
        },
    )
    .finish(deadline_in(30.0))
    .assert_decoded("plain RTMP player", 15, 15);

    if !skip_without("GStreamer rtmp2sink/rtmp2src", gst::available()) {
        // GStreamer over RTMPS both ways (GIO's TLS trusts system roots only, so it skips
        // verification of the test CA).
        let source = dir.path().join("source.flv");
        ffmpeg::encode_file(
            &source,
            &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(20)),
        );
        let _gst_pub = gst::rtmp2sink(&source, &url(addr, "gsttls"), &["tls-validation-flags=0"]);
        gst::rtmp2src_records(
            &url(addr, "gsttls"),
            &["tls-validation-flags=0"],
            &dir.path().join("gst-play.flv"),
            40,
            "rtmp2src over RTMPS",
        );
    }

    // Everything above happened while the stalled clients were still waiting: none of them
    // has been closed yet (the timeout is 20 s), and then each is.
    assert_eq!(
        server.log(Which::Ingest).count(|l| l.contains("TLS handshake not completed")),
        0,
        "a stalled handshake timed out before the others were done; the test is too slow to show anything\n{}",
        server.describe()
    );
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let mut b = [0u8; 64];
        // EOF or reset: the server closed it (after the timeout).
        let _ = s.read(&mut b);
    }
    assert!(
        server
            .log(Which::Ingest)
            .wait_count(4, deadline_in(10.0), |l| l.contains("layer=\"tls\"")
                || l.contains("layer=tls")),
        "{}",
        server.describe()
    );
}

#[test]
fn rtmps_certificate_reload_under_a_live_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (TestCa::new("first CA"), TestCa::new("second CA"));
    let (ca1_pem, ca2_pem) = (dir.path().join("ca1.pem"), dir.path().join("ca2.pem"));
    ca1.write_ca(&ca1_pem);
    ca2.write_ca(&ca2_pem);
    let cert = ca1.issue(&dir.path().join("cert.pem"), &dir.path().join("key.pem"));
    let mut server = start(&cert, &[]);
    let addr = rtmps_addr(&server);

    let mut publisher = publish(&url(addr, "reload"), &ca1_pem, 30);
    let live = player(&url(addr, "reload"), &ca1_pem, None);
    assert!(
        live.wait_frames(20, 20, deadline_in(30.0)),
        "{}",
        publisher.describe()
    );

    // New certificate from another CA, same files.
    ca2.issue(&cert.cert, &cert.key);
    server.hangup_ingest("TLS certificate reloaded");

    // The stream and its RTMPS player go on.
    let before = live.counts().video;
    assert!(
        live.wait_frames(before + 40, 0, deadline_in(20.0)),
        "the RTMPS player stopped after the reload"
    );
    assert!(publisher.is_running(), "{}", publisher.describe());
    // New connections get the new certificate: trusted through the second CA only.
    player(&url(addr, "reload"), &ca2_pem, Some(Duration::from_secs(1)))
        .finish(deadline_in(30.0))
        .assert_decoded("player trusting the new CA", 15, 15);
    let old = player(&url(addr, "reload"), &ca1_pem, Some(Duration::from_secs(1)))
        .finish(deadline_in(30.0));
    assert!(
        !old.success && old.counts.video == 0,
        "a client trusting only the old CA still connected\n{}",
        old.description
    );

    // A broken certificate file keeps the current one.
    std::fs::write(&cert.cert, "not a certificate").unwrap();
    server.hangup_ingest("TLS certificate not reloaded");
    player(&url(addr, "reload"), &ca2_pem, Some(Duration::from_secs(1)))
        .finish(deadline_in(30.0))
        .assert_decoded("player after a failed reload", 15, 15);
    drop(live);
}
