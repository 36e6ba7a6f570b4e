//! A player's queue bound counts every byte queued for it. The hostile case of issue 11: a
//! player of a live key with a tiny receive window that never reads and sends RTMP
//! PingRequests as fast as it can. Its PingResponses pile up in the hub; the hub closes it
//! at `--player-queue-bytes` with one warn line naming the connection, the key and the
//! reason, its memory stays within a stated bound during and after, and a neighbour stream
//! keeps flowing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use e2e::deadline_in;
use e2e::ffmpeg::{PlayOpts, Player};
use e2e::load::procstat::rss_bytes;
use e2e::neighbour::{Neighbourhood, NEIGHBOUR};
use e2e::rtmp_client::{chunk, msg_type, RtmpClient};
use e2e::server::is_warn;
use e2e::ServerOpts;

/// The flooder's receive buffer: the kernel rounds it up a little; either way a few KB.
const RCVBUF: u32 = 4096;
/// PingRequests per write.
const PINGS_PER_WRITE: u32 = 4096;
/// How long the flood may go on before the test gives up on the hub closing it.
const FLOOD_LIMIT: Duration = Duration::from_secs(60);
/// How much the hub's resident memory may grow over its size before the attack, during
/// and after it: the 4 MiB queue bound (replies are packed into one buffer, which may be
/// twice its contents while it grows) plus allocator slack. Without a bound it grew by
/// about 800 MB in 6 s.
const RSS_GROWTH_BOUND: u64 = 24 << 20;

/// PingRequest user control messages (event 6, a 4-byte timestamp), chunked on csid 2.
fn ping_batch() -> Vec<u8> {
    let mut out = Vec::new();
    for t in 0..PINGS_PER_WRITE {
        let mut body = vec![0, 6];
        body.extend(t.to_be_bytes());
        chunk::encode_message((2, msg_type::USER_CONTROL, 0, 0), &body, 128, &mut out);
    }
    out
}

/// The hub's largest RSS seen by a sampler thread until `stop` is set.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> (thread::JoinHandle<()>, Arc<AtomicU64>) {
    let max = Arc::new(AtomicU64::new(0));
    let seen = max.clone();
    let sampler = thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(rss) = rss_bytes(pid) {
                seen.fetch_max(rss, Ordering::Relaxed);
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    (sampler, max)
}

#[test]
fn ping_flood_from_a_player_that_does_not_read() {
    // Only the queue bound may end the flooder: lag skips are unlimited and the write
    // timeout is far away.
    let opts = ServerOpts::default().hub(&[
        "--player-queue-bytes",
        "4MiB",
        "--max-lag-skips",
        "1000000",
        "--player-write-timeout",
        "300s",
    ]);
    let mut hood = Neighbourhood::start(opts);
    let pid = hood.server.hub_pid();
    let before = rss_bytes(pid).expect("hub RSS");

    let mut c =
        RtmpClient::connect_tcp_with_rcvbuf(hood.server.addr(), RCVBUF).expect("flooder connects");
    c.handshake().expect("handshake");
    c.connect("live").expect("connect");
    let sid = c.create_stream().expect("createStream");
    let marks = hood.server.log_marks();
    c.play(sid, NEIGHBOUR).expect("play");

    let stop = Arc::new(AtomicBool::new(false));
    let (sampler, max_rss) = sample_rss(pid, stop.clone());
    let batch = ping_batch();
    let t0 = Instant::now();
    let mut sent = 0u64;
    let ended = loop {
        match c.send_raw(&batch) {
            Ok(()) => sent += batch.len() as u64,
            // The hub closed it (a reset, or a write that can no longer complete).
            Err(e) => break e,
        }
        assert!(
            t0.elapsed() < FLOOD_LIMIT,
            "the hub took {sent} bytes of pings in {FLOOD_LIMIT:?} without closing the \
             player\n{}",
            hood.server.describe()
        );
    };
    let flood_took = t0.elapsed();
    let line = hood
        .server
        .wait_log(marks, Duration::from_secs(20), |l| {
            is_warn(l) && l.contains("queue bound")
        })
        .unwrap_or_else(|| {
            panic!(
                "no warn line about the queue bound (the flood ended with {ended:?})\n{}",
                hood.server.describe()
            )
        })
        .1;
    eprintln!("flood: {sent} bytes of pings in {flood_took:?}, then {ended:?}; {line}");
    for field in [
        "conn_id",
        &format!("key=live/{NEIGHBOUR}"),
        "layer=\"player\"",
    ] {
        assert!(line.contains(field), "warn line lacks {field}: {line}");
    }
    c.expect_closed(deadline_in(10.0))
        .expect("the flooder's connection is closed");

    // A normal player still joins the stream (its first-GOP burst is not the flood),
    // and the neighbour kept flowing.
    let newcomer = Player::spawn(&hood.server.url(NEIGHBOUR), &PlayOpts::default());
    assert!(
        newcomer.wait_frames(15, 1, deadline_in(30.0)),
        "a new player of the flooded key got no frames\n{}",
        hood.server.describe()
    );
    hood.assert_flowing();
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let after = rss_bytes(pid).expect("hub RSS after");
    let max = max_rss.load(Ordering::Relaxed);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "hub RSS: {:.1} MiB before, at most {:.1} MiB during, {:.1} MiB after",
        mib(before),
        mib(max),
        mib(after)
    );
    assert!(
        max <= before + RSS_GROWTH_BOUND,
        "hub RSS grew from {:.1} to {:.1} MiB during the flood",
        mib(before),
        mib(max)
    );
    assert!(
        after <= before + RSS_GROWTH_BOUND,
        "hub RSS {:.1} MiB after the flood (before: {:.1} MiB)",
        mib(after),
        mib(before)
    );
    drop(newcomer);
    hood.finish();
}
