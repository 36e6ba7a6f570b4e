//! HLS players (`GET /hls/{app}/{name}/index.m3u8` and `{seq}.ts`): FFmpeg publishes
//! H.264+AAC over RTMP, FFmpeg plays the playlist and decodes with no errors; the playlist
//! is valid (every EXTINF within TARGETDURATION) and slides; every segment starts with
//! PAT and PMT and its first video access unit is an IDR; unknown keys are 404; with play
//! auth, playlist and segments need the token, which the playlist passes on.

use std::time::{Duration, Instant};

use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::{deadline_in, http, prom, Server, ServerOpts};

/// What a media playlist says.
#[derive(Debug)]
struct Playlist {
    target: f64,
    sequence: u64,
    /// `(EXTINF duration, URI)` of every segment.
    segments: Vec<(f64, String)>,
}

/// Parses a media playlist, asserting RFC 8216's rules the test relies on.
fn parse(text: &str) -> Playlist {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#EXTM3U"), "{text}");
    let (mut target, mut sequence, mut version) = (None, None, None);
    let mut segments = Vec::new();
    let mut duration = None;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(v.parse::<f64>().expect("TARGETDURATION"));
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = Some(v.parse::<u64>().expect("MEDIA-SEQUENCE"));
        } else if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            version = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = v.trim_end_matches(',').parse::<f64>().expect("EXTINF");
            duration = Some(d);
        } else if !line.starts_with('#') && !line.is_empty() {
            let d = duration
                .take()
                .unwrap_or_else(|| panic!("URI without EXTINF\n{text}"));
            segments.push((d, line.to_string()));
        }
    }
    assert_eq!(version.as_deref(), Some("3"), "{text}");
    let p = Playlist {
        target: target.expect("TARGETDURATION"),
        sequence: sequence.expect("MEDIA-SEQUENCE"),
        segments,
    };
    for (d, uri) in &p.segments {
        assert!(
            *d > 0.0 && d.round() <= p.target,
            "{uri}: {d} > {}\n{text}",
            p.target
        );
    }
    p
}

/// Fetches the playlist at `path` until it lists at least `min` segments and its media
/// sequence is at least `min_sequence`.
fn playlist_when(
    server: &Server,
    path: &str,
    min: usize,
    min_sequence: u64,
    deadline: Instant,
) -> Playlist {
    loop {
        let r = http::get(server.http_addr(), path);
        if r.status == 200 {
            assert_eq!(
                r.header("content-type"),
                Some("application/vnd.apple.mpegurl")
            );
            assert_eq!(r.header("cache-control"), Some("no-cache"));
            assert_eq!(r.header("access-control-allow-origin"), Some("*"));
            let p = parse(&r.text());
            if p.segments.len() >= min && p.sequence >= min_sequence {
                return p;
            }
        } else {
            // The first request of a key waits a bounded time for its first segment.
            assert_eq!(r.status, 503, "{path}: {}", r.text());
        }
        assert!(
            Instant::now() < deadline,
            "{path}: no playlist with {min} segments from sequence {min_sequence} in time\n{}",
            server.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// PID of a TS packet.
fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// The payload of a TS packet (after the adaptation field).
fn payload(p: &[u8]) -> &[u8] {
    match (p[3] >> 4) & 3 {
        1 => &p[4..],
        3 => &p[(5 + usize::from(p[4])).min(188)..],
        _ => &[],
    }
}

/// Asserts that `ts` starts with a PAT and that its first video PES holds an IDR before
/// any non-IDR slice.
fn assert_segment_starts_well(ts: &[u8], what: &str) {
    assert!(
        ts.len() >= 188 && ts.len().is_multiple_of(188),
        "{what}: {} bytes",
        ts.len()
    );
    assert_eq!(ts[0], 0x47, "{what}: sync byte");
    assert_eq!(pid(ts), 0, "{what}: the first packet is the PAT");
    assert_ne!(ts[1] & 0x40, 0, "{what}: the PAT starts there");
    // The first video PES (stream id 0xE0) and the PID it travels on.
    let mut pes = Vec::new();
    let mut video = None;
    for p in ts.chunks(188) {
        assert_eq!(p[0], 0x47, "{what}: sync byte");
        let start = p[1] & 0x40 != 0;
        if video.is_none() && start && payload(p).starts_with(&[0, 0, 1, 0xE0]) {
            video = Some(pid(p));
        }
        if video != Some(pid(p)) {
            continue;
        }
        if start && !pes.is_empty() {
            break;
        }
        pes.extend_from_slice(payload(p));
    }
    assert!(pes.len() > 9, "{what}: no video PES");
    let es = &pes[9 + usize::from(pes[8])..];
    let types: Vec<u8> = es
        .windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| w[3] & 0x1f)
        .collect();
    let idr = types.iter().position(|&t| t == 5);
    let slice = types.iter().position(|&t| t == 1);
    assert!(
        idr.is_some() && (slice.is_none() || idr < slice),
        "{what}: the first access unit is not an IDR (NAL types {types:?})"
    );
}

#[test]
fn ffmpeg_plays_hls_and_the_playlist_slides() {
    let mut server = Server::start(ServerOpts::default());
    let addr = server.http_addr();
    assert_eq!(
        http::get(addr, "/hls/live/hls/index.m3u8").status,
        404,
        "not live yet"
    );

    // A keyframe a second: 2 s segments.
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(90));
    let _publisher = ffmpeg::publish(&server.url("hls"), &opts);
    server.wait_live("hls");
    let path = "/hls/live/hls/index.m3u8";
    let first = playlist_when(&server, path, 1, 0, deadline_in(30.0));
    // Three segments listed, and the window moved on since the first fetch.
    let later = playlist_when(&server, path, 3, first.sequence + 1, deadline_in(40.0));
    assert!(later.target >= 2.0, "{later:?}");
    for (seq, (d, uri)) in later.segments.iter().enumerate() {
        assert_eq!(*uri, format!("{}.ts", later.sequence + seq as u64));
        assert!((1.5..=later.target).contains(d), "{later:?}");
        let r = http::get(addr, &format!("/hls/live/hls/{uri}"));
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("video/mp2t"));
        assert_segment_starts_well(&r.body, uri);
    }

    // FFmpeg plays the live playlist: at least three segments' worth (6 s at 20 fps).
    let url = server.http_url(path);
    let report = Player::spawn(
        &url,
        &PlayOpts {
            duration: Some(Duration::from_secs(6)),
            ..PlayOpts::default()
        },
    )
    .finish(deadline_in(60.0));
    report.assert_decoded("hls player", 110, 200);

    assert_eq!(http::get(addr, "/hls/live/nope/index.m3u8").status, 404);
    assert_eq!(http::get(addr, "/hls/live/nope/0.ts").status, 404);
    assert_eq!(http::get(addr, "/hls/live/hls/999999.ts").status, 404);
    assert_eq!(http::get(addr, "/hls/live/hls/x.ts").status, 404);

    let metrics = http::get(addr, "/metrics").text();
    assert_eq!(
        prom::value(&metrics, "mediaserver_hls_segmenters"),
        Some(1.0),
        "{metrics}"
    );
    let served = prom::value(&metrics, "mediaserver_hls_requests_total{kind=\"segment\"}");
    assert!(served.is_some_and(|n| n >= 6.0), "{metrics}");
    server.assert_alive();
}

#[test]
fn hls_needs_the_play_token_on_playlist_and_segments() {
    let play = ["--play-auth=token", "--play-token=live/*=hlsView1"];
    let mut server = Server::start(ServerOpts::default().hub(&play).ingest(&play));
    let addr = server.http_addr();
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(60));
    let _publisher = ffmpeg::publish(&server.url("hauth"), &opts);
    server.wait_live("hauth");

    assert_eq!(
        http::get(addr, "/hls/live/hauth/index.m3u8").status,
        401,
        "no token"
    );
    assert_eq!(
        http::get(addr, "/hls/live/hauth/index.m3u8?token=hlsWrong2").status,
        403,
        "wrong token"
    );
    let p = playlist_when(
        &server,
        "/hls/live/hauth/index.m3u8?token=hlsView1",
        1,
        0,
        deadline_in(30.0),
    );
    let uri = &p.segments[0].1;
    assert!(uri.ends_with(".ts?token=hlsView1"), "{p:?}");
    let ok = http::get(addr, &format!("/hls/live/hauth/{uri}"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_segment_starts_well(&ok.body, uri);
    let bare = uri.split('?').next().unwrap_or_default();
    assert_eq!(
        http::get(addr, &format!("/hls/live/hauth/{bare}")).status,
        401,
        "segment without the token"
    );
    server.assert_alive();
}
