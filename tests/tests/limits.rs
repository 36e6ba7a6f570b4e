//! Connection slots under attack: thousands of slowloris sockets (handshake done, then a
//! byte every two seconds of a message that never completes) and connection floods from
//! one address. Each time a legitimate publisher and player still get in, and a
//! neighbour stream keeps flowing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::deadline_in;
use e2e::flv;
use e2e::neighbour::Neighbourhood;
use e2e::rtmp_client::{Message, RtmpClient};
use e2e::server::Which;
use e2e::ServerOpts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What happened to the attacking sockets.
#[derive(Default)]
struct Tally {
    /// Handshake completed.
    handshaken: AtomicUsize,
    /// Closed by the server at any point.
    closed: AtomicUsize,
}

/// Opens `n` slowloris connections from `sources` (round robin), at most 256 connecting
/// at once, and returns once every one has completed its handshake or been closed. The
/// sockets keep trickling on `rt` until it is dropped.
fn slowloris(
    rt: &tokio::runtime::Runtime,
    server: SocketAddr,
    sources: &[IpAddr],
    n: usize,
) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        let source = sources[i % sources.len()];
        let (tally, gate, done) = (tally.clone(), gate.clone(), done_tx.clone());
        rt.spawn(async move {
            let permit = gate.acquire_owned().await.expect("gate");
            let sock = handshake_from(source, server).await;
            drop(permit);
            let _ = done.send(());
            if let Some(sock) = sock {
                tally.handshaken.fetch_add(1, Ordering::Relaxed);
                trickle(sock).await;
            }
            tally.closed.fetch_add(1, Ordering::Relaxed);
        });
    }
    drop(done_tx);
    rt.block_on(async {
        let all = async {
            for _ in 0..n {
                done_rx.recv().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(300), all)
            .await
            .expect("slowloris connections made");
    });
    tally
}

impl Tally {
    /// Waits (bounded) until at least `n` sockets were closed by the server; returns how
    /// many were.
    fn wait_closed(&self, n: usize) -> usize {
        let deadline = deadline_in(20.0);
        loop {
            let closed = self.closed.load(Ordering::Relaxed);
            if closed >= n || Instant::now() >= deadline {
                return closed;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// TCP connect from `source`, C0C1, read S0S1S2, send C2: a connection in setup.
async fn handshake_from(source: IpAddr, server: SocketAddr) -> Option<TcpStream> {
    let sock = TcpSocket::new_v4().ok()?;
    sock.bind(SocketAddr::new(source, 0)).ok()?;
    let mut s = tokio::time::timeout(Duration::from_secs(30), sock.connect(server))
        .await
        .ok()?
        .ok()?;
    let mut c0c1 = vec![3u8];
    c0c1.extend([0u8; 1536]);
    s.write_all(&c0c1).await.ok()?;
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut s0s1s2))
        .await
        .ok()?
        .ok()?;
    s.write_all(&s0s1s2[1..1537]).await.ok()?;
    Some(s)
}

/// The first chunk header of a 100 000-byte data message, then one byte every two
/// seconds; returns when the server closes the connection.
async fn trickle(mut s: TcpStream) {
    let mut bytes = vec![0x04, 0, 0, 0, 0x01, 0x86, 0xA0, 18, 0, 0, 0, 0];
    bytes.extend([0x05; 10_000]);
    let mut rest = [0u8; 64];
    for b in bytes {
        if s.write_all(&[b]).await.is_err() {
            return;
        }
        // Anything the server sends (nothing is expected) or EOF ends the wait early.
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut rest)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            _ => {}
        }
    }
}

/// The attackers' runtime; dropping it closes every attacking socket.
fn attacker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Setup and idle deadlines out of the way (120 s): only the slot limits make room.
fn without_deadlines() -> ServerOpts {
    ServerOpts::default().ingest(&["--setup-timeout", "120s", "--idle-timeout", "120s"])
}

/// A legitimate publisher (byte-level client) from `source`: connect, publish `name`,
/// send a keyframe. Returns the client and how long until NetStream.Publish.Start.
fn publisher(server: SocketAddr, name: &str) -> (RtmpClient, Duration) {
    let t0 = Instant::now();
    let (mut c, sid) = RtmpClient::open(server, "live").expect("publisher connects");
    let status = c.publish(sid, name).expect("publish answered");
    assert_eq!(status.code, "NetStream.Publish.Start", "{status:?}");
    let took = t0.elapsed();
    c.send_video(
        sid,
        0,
        &flv::avc_sequence_header(flv::SPS_64X64, flv::PPS_64X64),
    )
    .expect("sequence header");
    c.send_video(sid, 0, &flv::avc_frame(true, 0, &[&[0x65, 0x88]]))
        .expect("keyframe");
    (c, took)
}

/// A legitimate player: connect, play `name`, get its first media message. Returns how
/// long that took.
fn player(server: SocketAddr, name: &str) -> Duration {
    let t0 = Instant::now();
    let (mut c, sid) = RtmpClient::open(server, "live").expect("player connects");
    c.play(sid, name).expect("play");
    c.wait_message(deadline_in(20.0), Message::is_media)
        .expect("player gets media");
    t0.elapsed()
}

/// 5000 slowloris sockets from 50 addresses (100 each, under the per-address limit)
/// against the default 4096 connection slots, with the setup and idle deadlines out of
/// the way (120 s) so that only slot eviction can make room. A publisher and a player
/// still get in while all 5000 trickle, and the neighbour stream keeps flowing.
#[test]
fn five_thousand_slowloris_sockets() {
    let opts = without_deadlines().ingest(&[
        "--log-level",
        "info,ingest_rtmp::conn=error,ingest_rtmp::listener=error",
    ]);
    let mut hood = Neighbourhood::start(opts);
    let addr = hood.server.addr();
    let rt = attacker();
    let sources: Vec<IpAddr> = (1..=50)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 1, i)))
        .collect();
    let tally = slowloris(&rt, addr, &sources, 5000);
    let handshaken = tally.handshaken.load(Ordering::Relaxed);
    // Some are evicted before their handshake completes; most get that far.
    assert!(
        handshaken >= 4096,
        "only {handshaken} slowloris handshakes completed"
    );
    let closed = tally.wait_closed(5000 - 4096);
    eprintln!("slowloris: {handshaken} handshaken, {closed} closed by the server");
    assert!(
        closed >= 5000 - 4096,
        "the server holds at most 4096 connections, yet only {closed} of 5000 were closed"
    );

    let (_pub, publish_took) = publisher(addr, "legit");
    let play_took = player(addr, "legit");
    eprintln!("with 5000 slowloris sockets: publish in {publish_took:?}, play in {play_took:?}");
    // Generous bounds on things that must happen (the target is a second).
    assert!(publish_took < Duration::from_secs(10), "{publish_took:?}");
    assert!(play_took < Duration::from_secs(10), "{play_took:?}");
    hood.assert_flowing();
    drop(rt);
    hood.finish();
}

/// One address at its per-address limit (20) with slowloris sockets: a publisher and a
/// player from that same address still get in, taking the slots of its oldest
/// connections in setup; another address is not affected. An address that opens
/// connections faster than --max-new-connections-per-ip has the excess closed on accept.
#[test]
fn per_address_limits() {
    let opts = without_deadlines().ingest(&[
        "--max-connections-per-ip",
        "20",
        "--max-new-connections-per-ip",
        "100",
    ]);
    let mut hood = Neighbourhood::start(opts);
    let addr = hood.server.addr();
    let rt = attacker();
    let crowded = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let tally = slowloris(&rt, addr, &[crowded], 60);
    let closed = tally.wait_closed(40);
    assert!(
        closed >= 40,
        "at most 20 connections of one address are held, yet {closed} of 60 were closed"
    );
    let marks = hood.server.log_marks();
    let (_pub, _) = publisher(addr, "legit");
    player(addr, "legit");
    assert!(
        hood.server
            .wait_log(marks, Duration::from_secs(10), |l| l.contains("evicted"))
            .is_some(),
        "the crowded address's own connections made room\n{}",
        hood.server.describe()
    );

    // A flood of 400 connections from one address at once: 100 per second get in.
    let flooder = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let marks = hood.server.log_marks();
    let flood = slowloris(&rt, addr, &[flooder], 400);
    let refused = 400 - flood.handshaken.load(Ordering::Relaxed);
    assert!(refused > 0, "no connection of the flood was refused");
    assert!(
        hood.server
            .wait_log(marks, Duration::from_secs(10), |l| l
                .contains("new connections per second"))
            .is_some(),
        "no warn line for the refused flood\n{}",
        hood.server.describe()
    );
    hood.assert_flowing();
    drop(rt);
    hood.finish();
}

/// After the handshake: a 1 MiB chunk size, then 600 000 bytes of a 1 000 000-byte video
/// message that never completes, held until the server closes the connection. Returns
/// whether the server closed it within `hold`.
async fn hold_partial_message(mut s: TcpStream, hold: Duration) -> bool {
    // Set Chunk Size (type 1) on chunk stream 2: 1 MiB.
    let mut bytes = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0x10, 0, 0];
    // Video (type 9), 1 000 000 bytes, message stream 1, on chunk stream 4.
    bytes.extend([0x04, 0, 0, 0, 0x0F, 0x42, 0x40, 9, 1, 0, 0, 0]);
    bytes.extend(std::iter::repeat_n(0x17, 600_000));
    if s.write_all(&bytes).await.is_err() {
        return true;
    }
    let mut rest = [0u8; 4096];
    let closed = async {
        loop {
            match s.read(&mut rest).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(hold, closed).await.is_ok()
}

/// `--memory-budget 4MiB` driven over its limit: connections each holding 600 KB of a
/// message that never completes. Past the budget, each one that asks for more is closed
/// with the documented `memory budget exhausted` line while those already holding keep
/// it; the established neighbour publisher and its player are undisturbed, and a new
/// publisher and player (whose messages are small) still get in.
#[test]
fn memory_budget_refuses_new_work() {
    const HOSTILE: usize = 16;
    // 4 MiB holds at most six connections with 600 KB each.
    const MOST_HELD: usize = 6;
    let mut hood = Neighbourhood::start(without_deadlines().ingest(&["--memory-budget", "4MiB"]));
    let addr = hood.server.addr();
    let marks = hood.server.log_marks();
    let rt = attacker();
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let tally = Arc::new(Tally::default());
    // One after another: the first ones fit under the budget, the later ones cannot.
    for _ in 0..HOSTILE {
        let sock = rt
            .block_on(handshake_from(local, addr))
            .expect("hostile handshake");
        tally.handshaken.fetch_add(1, Ordering::Relaxed);
        let tally = tally.clone();
        rt.spawn(async move {
            if hold_partial_message(sock, Duration::from_secs(600)).await {
                tally.closed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let refused = tally.wait_closed(HOSTILE - MOST_HELD);
    assert!(
        refused >= HOSTILE - MOST_HELD,
        "4 MiB holds at most {MOST_HELD} of the 600 KB partial messages, yet only {refused} \
         of {HOSTILE} connections were refused\n{}",
        hood.server.describe()
    );
    // Only a connection asking for more while the total is over the budget is closed,
    // so whoever holds the memory that put it over stays.
    assert!(
        tally.closed.load(Ordering::Relaxed) < HOSTILE,
        "every connection was closed, none kept what it held under the budget\n{}",
        hood.server.describe()
    );
    let exhausted =
        |l: &str| l.contains("memory budget exhausted") && l.contains("--memory-budget 4194304");
    assert!(
        hood.server
            .log(Which::Ingest)
            .wait_count(refused, deadline_in(10.0), exhausted),
        "a `memory budget exhausted` line per refused connection ({refused})\n{}",
        hood.server.describe()
    );
    eprintln!("memory budget: {refused} of {HOSTILE} hostile connections refused");
    let (_pub, _) = publisher(addr, "legit");
    player(addr, "legit");
    hood.assert_flowing();
    // The neighbour's publisher was never closed.
    assert!(
        hood.server
            .wait_log(marks, Duration::ZERO, |l| l.contains("publisher left")
                || (l.contains("closing connection")
                    && !l.contains("memory budget")))
            .is_none(),
        "{}",
        hood.server.describe()
    );
    drop(rt);
    hood.finish();
}
