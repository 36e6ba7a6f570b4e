//! Checks the byte-level test client itself against an independent RTMP server: FFmpeg's
//! `-listen 1` mode. If these fail, failures of the other tests that use the client say
//! nothing about the server under test.

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use e2e::deadline_in;
use e2e::ffmpeg::{self, count_framemd5, error_lines, Codecs, PublishOpts};
use e2e::flv;
use e2e::proc::Proc;
use e2e::rtmp_client::{ClientError, RtmpClient};
use e2e::scenario::{read_until, send_h264_aac, Received};

/// A port that was free a moment ago (FFmpeg's listener cannot report the one it binds).
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// Connects once FFmpeg listens: retried on refusal until the deadline (FFmpeg does not
/// announce that it listens).
fn connect_when_listening(addr: SocketAddr, ffmpeg: &mut Proc) -> RtmpClient {
    let deadline = deadline_in(20.0);
    loop {
        match RtmpClient::connect_tcp(addr) {
            Ok(c) => return c,
            Err(ClientError::Io(_) | ClientError::Closed)
                if std::time::Instant::now() < deadline =>
            {
                assert!(ffmpeg.is_running(), "FFmpeg exited\n{}", ffmpeg.describe());
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!(
                "cannot connect to FFmpeg's listener: {e}\n{}",
                ffmpeg.describe()
            ),
        }
    }
}

#[test]
fn raw_publisher_is_accepted_by_ffmpeg() {
    let _serial = e2e::serial();
    let addr = free_port();
    let url = format!("rtmp://{addr}/live/self");
    let mut server = Proc::spawn(
        "ffmpeg -listen",
        Command::new(ffmpeg::ffmpeg_path())
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "level+error",
                "-listen",
                "1",
            ])
            .args(["-i", &url, "-c", "copy", "-f", "framemd5", "-"]),
    );
    let mut client = connect_when_listening(addr, &mut server);
    client.handshake().expect("handshake");
    client.connect("live").expect("connect");
    let sid = client.create_stream().expect("createStream");
    let status = client.publish(sid, "self").expect("publish");
    assert_eq!(status.code, "NetStream.Publish.Start");
    send_h264_aac(&mut client, sid, 0, 30, 40, 10).expect("send media");
    drop(client);
    let (_, killed) = server.wait_or_kill(deadline_in(20.0));
    assert!(!killed, "FFmpeg kept waiting\n{}", server.describe());
    let counts = count_framemd5(&server.stdout.lines());
    assert_eq!(counts.video, 30, "{}", server.describe());
    assert_eq!(counts.audio, 30, "{}", server.describe());
    // The stand-in frame payloads are not decodable H.264 and the connection ends without
    // deleteStream: only errors from other layers (flv, rtmp) would be the client's fault.
    let foreign: Vec<String> = error_lines(&server.stderr.lines())
        .into_iter()
        .filter(|l| !l.contains("[h264 @") && !l.contains("Error during demuxing"))
        .collect();
    assert!(foreign.is_empty(), "{foreign:#?}\n{}", server.describe());
}

#[test]
fn raw_player_reads_ffmpeg_stream() {
    let _serial = e2e::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source.flv");
    ffmpeg::encode_file(
        &source,
        &PublishOpts::new(Codecs::HevcAac, Duration::from_secs(3)),
    );
    let addr = free_port();
    let url = format!("rtmp://{addr}/live/self");
    let mut server = Proc::spawn(
        "ffmpeg -listen",
        Command::new(ffmpeg::ffmpeg_path())
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "level+error",
                "-re",
                "-i",
            ])
            .arg(&source)
            .args(["-c", "copy", "-f", "flv", "-listen", "1", &url]),
    );
    let mut client = connect_when_listening(addr, &mut server);
    client.handshake().expect("handshake");
    client.connect("live").expect("connect");
    let sid = client.create_stream().expect("createStream");
    client.play(sid, "self").expect("play");
    let mut rx = Received::default();
    read_until(
        &mut client,
        &mut rx,
        deadline_in(20.0),
        "20 video frames",
        |r| r.coded_video_since(0) >= 20,
    );
    flv::check_start(rx.media().map(|m| (m.type_id, m.payload.as_slice())))
        .unwrap_or_else(|e| panic!("{e}"));
    rx.assert_monotonic();
}
