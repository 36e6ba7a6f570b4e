//! HTTP-FLV players (`GET /{app}/{name}.flv`): FFmpeg 9 plays the URL and decodes with no
//! errors; a late joiner's stream starts with the sequence headers and a keyframe; the
//! response is chunked FLV with CORS; a key that is not live is a 404.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::{deadline_in, http, Server, ServerOpts};

#[test]
fn ffmpeg_plays_http_flv_and_a_late_joiner_starts_on_a_keyframe() {
    let mut server = Server::start(ServerOpts::default());
    let addr = server.http_addr();
    assert_eq!(http::get(addr, "/live/flv.flv").status, 404, "not live yet");

    let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60));
    opts.gop = 20; // a keyframe a second: joining after 1.5 s lands mid-GOP
    let _publisher = ffmpeg::publish(&server.url("flv"), &opts);
    let url = server.http_url("/live/flv.flv");
    // HTTP-FLV answers 404 until the key is live: wait for the publish.
    server.wait_live("flv");
    let first = Player::spawn(&url, &PlayOpts::default());
    assert!(
        first.wait_frames(30, 1, deadline_in(30.0)),
        "FFmpeg decodes the HTTP-FLV stream\n{}",
        server.describe()
    );

    // A late joiner, read byte by byte: FLV header, then metadata and sequence headers
    // before any coded frame, and the first coded video frame is a keyframe.
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        sock,
        "GET /live/flv.flv HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let tags = loop {
        let mut buf = [0u8; 16384];
        let n = sock.read(&mut buf).expect("read the stream");
        assert!(n > 0, "the hub closed the stream");
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        assert!(head.contains("content-type: video/x-flv"), "{head}");
        assert!(head.contains("access-control-allow-origin: *"), "{head}");
        let body = http::dechunk(&raw[end + 4..]).expect("chunked body");
        let tags = flv_tags(&body);
        if tags.iter().filter(|t| t.0 == 9).count() >= 25 {
            break tags;
        }
        assert!(Instant::now() < deadline, "no 25 video tags in time");
    };
    let video: Vec<&(u8, Vec<u8>)> = tags.iter().filter(|t| t.0 == 9).collect();
    // AVC: byte 0 = frame type << 4 | codec 7; byte 1 = packet type (0 = sequence header).
    assert_eq!(
        video[0].1[0], 0x17,
        "first video tag: AVC keyframe-typed sequence header"
    );
    assert_eq!(video[0].1[1], 0, "first video tag is the sequence header");
    let first_coded = video.iter().find(|t| t.1[1] == 1).expect("coded video");
    assert_eq!(
        first_coded.1[0] >> 4,
        1,
        "the first coded frame is a keyframe"
    );
    let first_audio = tags.iter().find(|t| t.0 == 8).expect("audio");
    assert_eq!(
        first_audio.1[1], 0,
        "audio starts with the AAC sequence header"
    );
    assert!(
        tags.iter().position(|t| t.0 == 18) < tags.iter().position(|t| t.0 == 9 && t.1[1] == 1),
        "metadata first"
    );

    // Both players are listed and counted.
    let streams = http::get(addr, "/api/v1/streams").json();
    assert_eq!(
        streams["streams"][0]["players"]["http-flv"], 2,
        "{streams:#}"
    );
    drop(sock);

    let report = first.finish(deadline_in(1.0));
    assert!(
        report.errors.is_empty(),
        "FFmpeg logged errors: {:#?}",
        report.errors
    );
    assert!(report.counts.video >= 30, "{:?}", report.counts);
    let played = Player::spawn(
        &url,
        &PlayOpts {
            duration: Some(Duration::from_secs(3)),
            ..PlayOpts::default()
        },
    );
    played
        .finish(deadline_in(60.0))
        .assert_decoded("http-flv player", 40, 40);
    let metrics = http::get(addr, "/metrics").text();
    assert!(
        metrics.contains("mediaserver_plays_total{protocol=\"http-flv\"} 3"),
        "{metrics}"
    );
    server.assert_alive();
}

/// `(tag type, body)` of every complete tag after the 9-byte header and first back-pointer.
fn flv_tags(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert!(data.len() < 13 || &data[..3] == b"FLV", "not FLV");
    let mut out = Vec::new();
    let mut at = 13;
    while at + 11 <= data.len() {
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        if at + 11 + size + 4 > data.len() {
            break;
        }
        out.push((data[at], data[at + 11..at + 11 + size].to_vec()));
        at += 11 + size + 4;
    }
    out
}
