//! Slow players: one that falls behind skips whole GOPs (never part of one) and is
//! disconnected when it stays behind; an HTTP-FLV player that reads, only slower than the
//! stream, skips whole GOPs and keeps playing (not closed, hub memory flat); one that stops
//! reading is disconnected by the write timeout (RTMP and HTTP-FLV). The publisher and a
//! neighbour player on the same stream never notice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use e2e::flv::{self, Packet};
use e2e::rtmp_client::{msg_type, ClientError, Message, RtmpClient};
use e2e::scenario::raw_publisher;
use e2e::{Server, ServerOpts};

/// Frames per GOP the test publisher sends.
const GOP: u32 = 10;
/// Media time between frames.
const STEP_MS: u32 = 40;
/// Most frames one publisher run sends (about 110 MB): a bound, not a target.
const MAX_FRAMES: u32 = 10_000;

/// A video tag body whose NAL unit carries the frame's index, padded to a realistic size
/// (keyframes 40 KB, others 8 KB) so that lag builds up quickly.
fn indexed_frame(index: u32) -> Vec<u8> {
    let keyframe = index.is_multiple_of(GOP);
    let mut nalu = vec![if keyframe { 0x65 } else { 0x41 }];
    nalu.extend(index.to_be_bytes());
    nalu.resize(if keyframe { 40_000 } else { 8_000 }, 0xab);
    flv::avc_frame(keyframe, 0, &[&nalu])
}

/// The index [`indexed_frame`] wrote, for coded video messages.
fn frame_index(m: &Message) -> Option<u32> {
    tag_frame_index(m.type_id, &m.payload)
}

/// The index [`indexed_frame`] wrote, for a coded video message or FLV tag body.
fn tag_frame_index(type_id: u8, body: &[u8]) -> Option<u32> {
    if type_id != msg_type::VIDEO || !matches!(flv::video_packet(body), Packet::Coded { .. }) {
        return None;
    }
    let b = body.get(10..14)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn is_video_header(m: &Message) -> bool {
    m.type_id == msg_type::VIDEO && flv::video_packet(&m.payload) == Packet::SequenceHeader
}

/// Publishes `live/<name>` from a thread until `stop` is set (or [`MAX_FRAMES`]), pacing
/// frames `pace` apart; returns how many frames were sent.
fn publish(server: &Server, name: &str, pace: Duration, stop: Arc<AtomicBool>) -> JoinHandle<u32> {
    let (mut client, sid) = raw_publisher(server.addr(), name);
    thread::spawn(move || {
        let header = flv::avc_sequence_header(flv::SPS_64X64, flv::PPS_64X64);
        client
            .send_video(sid, 0, &header)
            .expect("publisher: sequence header");
        let mut sent = 0;
        while sent < MAX_FRAMES && !stop.load(Ordering::Relaxed) {
            client
                .send_video(sid, sent * STEP_MS, &indexed_frame(sent))
                .unwrap_or_else(|e| panic!("publisher disturbed at frame {sent}: {e}"));
            sent += 1;
            thread::sleep(pace);
        }
        sent
    })
}

/// A player that reads everything until `stop`, then returns the frame indices it saw.
fn neighbour(server: &Server, name: &str, stop: Arc<AtomicBool>) -> JoinHandle<Vec<u32>> {
    let (mut client, sid) = RtmpClient::open(server.addr(), "live").expect("neighbour connects");
    client.play(sid, name).expect("neighbour plays");
    thread::spawn(move || {
        let mut seen = Vec::new();
        let mut header_seen = false;
        // Drain for a little after `stop` so frames in flight are counted too.
        let mut until = Instant::now() + Duration::from_secs(120);
        loop {
            if stop.load(Ordering::Relaxed) {
                until = until.min(Instant::now() + Duration::from_secs(3));
            }
            match client.next_message(until.min(Instant::now() + Duration::from_millis(200))) {
                Ok(m) => {
                    header_seen |= is_video_header(&m);
                    if let Some(i) = frame_index(&m) {
                        assert!(header_seen, "neighbour: frame {i} before a sequence header");
                        seen.push(i);
                    }
                }
                Err(_) if Instant::now() < until => {}
                Err(_) => return seen,
            }
        }
    })
}

/// Stops the publisher; panics unless it sent without error and the neighbour received
/// every frame it sent, in order.
fn assert_undisturbed(
    stop: &AtomicBool,
    publisher: JoinHandle<u32>,
    neighbour: JoinHandle<Vec<u32>>,
) {
    stop.store(true, Ordering::Relaxed);
    let sent = publisher.join().expect("publisher thread");
    let seen = neighbour.join().expect("neighbour thread");
    assert_contiguous("neighbour", &seen);
    assert_eq!(
        (seen[0], seen.len() as u32),
        (0, sent),
        "neighbour missed frames"
    );
}

/// Panics unless `seen` is every index from its first to its last, in order.
fn assert_contiguous(what: &str, seen: &[u32]) {
    assert!(!seen.is_empty(), "{what}: no frames");
    assert!(
        seen[0].is_multiple_of(GOP),
        "{what}: first frame is not a keyframe"
    );
    if let Some(w) = seen.windows(2).find(|w| w[1] != w[0] + 1) {
        panic!("{what}: frames jump from {} to {}", w[0], w[1]);
    }
}

/// Panics unless every run of consecutive indices in `seen` starts at a keyframe and has
/// no holes: skips drop whole GOPs only.
fn assert_whole_gop_runs(what: &str, seen: &[u32]) {
    let mut run_start = 0;
    for i in 1..=seen.len() {
        if i == seen.len() || seen[i] != seen[i - 1] + 1 {
            assert_contiguous(&format!("{what} run"), &seen[run_start..i]);
            run_start = i;
        }
    }
}

/// Where the indices first stop being consecutive.
fn first_gap(seen: &[u32]) -> Option<usize> {
    seen.windows(2).position(|w| w[1] != w[0] + 1)
}

#[test]
fn lagging_player_skips_whole_gops_then_is_dropped() {
    // A byte size with a unit, as users write them.
    let mut server = Server::start(ServerOpts::default().hub(&[
        "--player-queue-bytes",
        "1MiB",
        "--max-lag-skips",
        "3",
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = neighbour(&server, "lag", stop.clone());
    let (mut slow, sid) = RtmpClient::open(server.addr(), "live").expect("slow player connects");
    slow.play(sid, "lag").expect("slow player plays");
    let marks = server.log_marks();
    let publisher = publish(&server, "lag", Duration::from_millis(3), stop.clone());

    // Read at about a third of the stream's rate until the hub gives up on this player.
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match slow.next_message(deadline) {
            Ok(m) => received.push(m),
            Err(ClientError::Closed) => break,
            Err(e) => panic!("slow player: {e}\n{}", server.describe()),
        }
        thread::sleep(Duration::from_millis(10));
    }
    let closed = server
        .wait_log(marks, Duration::from_secs(30), |l| {
            l.contains("closing connection") && l.contains("too slow")
        })
        .unwrap_or_else(|| panic!("slow player not closed as too slow\n{}", server.describe()));
    assert!(closed.1.contains("layer=\"player\""), "{}", closed.1);
    assert!(
        server
            .wait_log(marks, Duration::ZERO, |l| l.contains("player fell behind"))
            .is_some(),
        "no lag skip logged before the disconnect"
    );

    let seen: Vec<u32> = received.iter().filter_map(frame_index).collect();
    let gap = first_gap(&seen).unwrap_or_else(|| panic!("slow player saw no skip: {seen:?}"));
    assert_whole_gop_runs("slow player", &seen);
    // The first frame after a skip comes after a fresh sequence header.
    let after = seen[gap + 1];
    let at = received
        .iter()
        .position(|m| frame_index(m) == Some(after))
        .expect("frame after the skip");
    let last_frame_before = received[..at]
        .iter()
        .rposition(|m| frame_index(m).is_some())
        .expect("frame before the skip");
    assert!(
        received[last_frame_before..at].iter().any(is_video_header),
        "no sequence header re-sent before frame {after} that follows the skip"
    );

    assert_undisturbed(&stop, publisher, healthy);
    server.assert_alive();
}

#[test]
fn player_that_stops_reading_is_dropped_by_write_timeout() {
    let mut server = Server::start(ServerOpts::default().hub(&[
        "--player-write-timeout",
        "2s",
        // Skips alone would never end this player: the write timeout must.
        "--max-lag-skips",
        "1000000",
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = neighbour(&server, "stall", stop.clone());
    let (mut stalled, sid) =
        RtmpClient::open(server.addr(), "live").expect("stalled player connects");
    stalled.play(sid, "stall").expect("stalled player plays");
    let marks = server.log_marks();
    let publisher = publish(&server, "stall", Duration::from_millis(3), stop.clone());

    let closed = server
        .wait_log(marks, Duration::from_secs(90), |l| {
            l.contains("closing connection") && l.contains("stalled")
        })
        .unwrap_or_else(|| panic!("stalled player not disconnected\n{}", server.describe()));
    assert!(closed.1.contains("layer=\"player\""), "{}", closed.1);
    stalled
        .expect_closed(Instant::now() + Duration::from_secs(30))
        .expect("stalled player's connection closed");

    assert_undisturbed(&stop, publisher, healthy);
    server.assert_alive();
}

#[test]
fn http_flv_player_that_stops_reading_is_dropped_by_write_timeout() {
    let mut server = Server::start(ServerOpts::default().hub(&[
        "--player-write-timeout",
        "2s",
        "--max-lag-skips",
        "1000000",
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = neighbour(&server, "hstall", stop.clone());
    let marks = server.log_marks();
    let publisher = publish(&server, "hstall", Duration::from_millis(3), stop.clone());
    server.wait_live("hstall");
    // Asks for the stream, then never reads a byte.
    let mut stalled = std::net::TcpStream::connect(server.http_addr()).expect("connect");
    std::io::Write::write_all(
        &mut stalled,
        b"GET /live/hstall.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("request");

    let closed = server
        .wait_log(marks, Duration::from_secs(90), |l| {
            l.contains("closing connection") && l.contains("stalled")
        })
        .unwrap_or_else(|| panic!("stalled HTTP-FLV player not closed\n{}", server.describe()));
    assert!(closed.1.contains("http-flv"), "{}", closed.1);
    let metrics = e2e::http::get(server.http_addr(), "/metrics").text();
    assert!(
        metrics.contains(
            "mediaserver_player_disconnects_total{protocol=\"http-flv\",reason=\"stalled\"} 1\n"
        ),
        "{metrics}"
    );
    // What the socket still holds drains, then the hub's close shows.
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match std::io::Read::read(&mut stalled, &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the stalled player's connection is still open")
            }
            Err(_) => break,
        }
    }
    assert_undisturbed(&stop, publisher, healthy);
    server.assert_alive();
}

#[test]
fn http_flv_player_that_reads_slowly_skips_whole_gops_and_keeps_playing() {
    let mut server = Server::start(ServerOpts::default().hub(&[
        "--player-queue-bytes",
        "1MiB",
        // The policy under test: skip whole GOPs, never close a player that reads.
        "--max-lag-skips",
        "1000000",
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = neighbour(&server, "hslow", stop.clone());
    let marks = server.log_marks();
    let publisher = publish(&server, "hslow", Duration::from_millis(3), stop.clone());
    server.wait_live("hslow");
    let mut slow = std::net::TcpStream::connect(server.http_addr()).expect("connect");
    std::io::Write::write_all(
        &mut slow,
        b"GET /live/hslow.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("request");
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();

    // Reads 4 KiB every 10 ms (at most 400 KB/s, the stream is several MB/s) until the
    // hub has skipped it three times and 2 MB more arrived; bounded by time and bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let mut after_skips = None;
    let mut rss_at_skip = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && raw.len() < 64 << 20 {
        match std::io::Read::read(&mut slow, &mut buf) {
            Ok(0) => panic!("the slow HTTP-FLV player was closed\n{}", server.describe()),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => panic!("slow HTTP-FLV player: {e}\n{}", server.describe()),
        }
        if after_skips.is_none() {
            let skips = server.log(e2e::server::Which::Hub).lines()[marks.0..]
                .iter()
                .filter(|l| l.contains("player fell behind"))
                .count();
            if skips >= 3 {
                after_skips = Some(raw.len());
                rss_at_skip = e2e::load::procstat::rss_bytes(server.hub_pid()).unwrap_or(0);
            }
        } else if after_skips.is_some_and(|at| raw.len() >= at + (2 << 20)) {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let at = after_skips.unwrap_or_else(|| panic!("no skips logged\n{}", server.describe()));
    assert!(
        raw.len() >= at + (2 << 20),
        "the player stopped getting data after the skips"
    );
    let rss_end = e2e::load::procstat::rss_bytes(server.hub_pid()).unwrap_or(0);
    assert!(
        rss_end < rss_at_skip + (24 << 20),
        "hub memory grew from {rss_at_skip} to {rss_end} bytes while the player lagged"
    );
    assert!(
        server
            .wait_log(marks, Duration::ZERO, |l| l.contains("closing connection"))
            .is_none(),
        "a player was closed\n{}",
        server.describe()
    );

    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    let body = e2e::http::dechunk(&raw[head_end..]).expect("chunked body");
    let (tags, _) = flv::read_tags(&body).expect("FLV");
    let seen: Vec<u32> = tags
        .iter()
        .filter_map(|t| tag_frame_index(t.kind, &t.body))
        .collect();
    let gap =
        first_gap(&seen).unwrap_or_else(|| panic!("no skip in what the player got: {seen:?}"));
    assert_whole_gop_runs("slow HTTP-FLV player", &seen);
    assert!(seen.len() > gap + 1, "no frames after the first skip");
    assert_undisturbed(&stop, publisher, healthy);
    server.assert_alive();
}
