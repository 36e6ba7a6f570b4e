//! One ingest process sends every publisher's stream to the hub over one shared
//! connection. What one publisher does must not reach its neighbours on that connection:
//!
//! - one publisher stalls (sends nothing, keeps its socket), one dies mid-message, and one
//!   floods while the hub is stopped (SIGSTOP) until ingest drops its frames; the players
//!   of the others receive every frame, in order, and the flooded stream resumes at a
//!   keyframe;
//! - the hub is killed with -9 under the supervisor: every stream on the connection is
//!   re-announced (configuration, metadata and current GOP), so a new player of each gets
//!   a decodable start without waiting for the publishers.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use e2e::deadline_in;
use e2e::flv::{self, Packet};
use e2e::rtmp_client::{msg_type, ClientError, Message, RtmpClient};
use e2e::scenario::raw_publisher;
use e2e::supervised::Supervised;
use e2e::{Server, ServerOpts};

/// Frames per GOP.
const GOP: u32 = 25;
/// Media time between frames (and the pace they are sent at).
const STEP_MS: u32 = 40;
/// Frames the flooding publisher sends while the hub is stopped, and their size: 48 MiB
/// in frames small enough that its full queue leaves no room a neighbour could use, were
/// the budget shared.
const FLOOD: u32 = 3072;
const FLOOD_SIZE: usize = 16 << 10;

/// A video tag body carrying `index` in its NAL unit, `size` bytes of NAL unit in all.
fn indexed(index: u32, keyframe: bool, size: usize) -> Vec<u8> {
    let mut nalu = vec![if keyframe { 0x65 } else { 0x41 }];
    nalu.extend(index.to_be_bytes());
    nalu.resize(size.max(5), 0x5a);
    flv::avc_frame(keyframe, 0, &[&nalu])
}

/// The index [`indexed`] wrote, for a coded video message.
fn index_of(m: &Message) -> Option<u32> {
    if m.type_id != msg_type::VIDEO
        || !matches!(flv::video_packet(&m.payload), Packet::Coded { .. })
    {
        return None;
    }
    Some(u32::from_be_bytes(m.payload.get(10..14)?.try_into().ok()?))
}

/// Sends the sequence headers of a raw publisher.
fn start(client: &mut RtmpClient, sid: u32) {
    let header = flv::avc_sequence_header(flv::SPS_64X64, flv::PPS_64X64);
    client.send_video(sid, 0, &header).expect("sequence header");
    client
        .send_audio(sid, 0, &flv::aac_sequence_header())
        .expect("audio sequence header");
}

/// Sends frame `i` (video, then an audio frame) at its media time.
fn send_frame(client: &mut RtmpClient, sid: u32, i: u32, size: usize) -> Result<(), ClientError> {
    let ts = i * STEP_MS;
    client.send_video(sid, ts, &indexed(i, i.is_multiple_of(GOP), size))?;
    client.send_audio(sid, ts, &flv::aac_frame(&[0x21, 0x10, 0x04, 0x60]))
}

/// A raw player of `live/<name>` on its own thread, recording the index of every coded
/// video frame until `stop` is set or the connection ends.
struct Watcher {
    seen: Arc<AtomicU32>,
    /// The index of the last frame seen.
    last: Arc<AtomicU32>,
    thread: JoinHandle<(Vec<u32>, Option<ClientError>)>,
}

fn watch(addr: std::net::SocketAddr, name: &str, stop: Arc<AtomicBool>) -> Watcher {
    let (mut client, sid) = RtmpClient::open(addr, "live").expect("player connects");
    client.play(sid, name).expect("play");
    let seen = Arc::new(AtomicU32::new(0));
    let last = Arc::new(AtomicU32::new(u32::MAX));
    let (count, latest) = (seen.clone(), last.clone());
    let thread = thread::spawn(move || {
        let mut got = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match client.next_message(deadline_in(0.2)) {
                Ok(m) => {
                    if let Some(i) = index_of(&m) {
                        got.push(i);
                        latest.store(i, Ordering::Relaxed);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(ClientError::Timeout) => {}
                Err(e) => return (got, Some(e)),
            }
        }
        (got, None)
    });
    Watcher { seen, last, thread }
}

/// Waits until every watcher saw at least `n` frames; panics with `context` after 60 s.
fn wait_seen(watchers: &[&Watcher], n: u32, what: &str, context: &dyn Fn() -> String) {
    let deadline = deadline_in(60.0);
    while watchers.iter().any(|w| w.seen.load(Ordering::Relaxed) < n) {
        assert!(
            std::time::Instant::now() < deadline,
            "players never saw {n} frames {what}\n{}",
            context()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn neighbours_keep_every_frame_when_one_publisher_stalls_dies_or_floods() {
    let mut server = Server::start(ServerOpts::default());
    let addr = server.addr();
    const STEADY: u32 = 3;
    const FRAMES: u32 = 150;
    let names: Vec<String> = (0..STEADY + 3).map(|i| format!("s{i}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    // Players first, each waiting for its publisher: they get every frame from the first.
    let marks = server.log_marks();
    let watchers: Vec<Watcher> = names.iter().map(|n| watch(addr, n, stop.clone())).collect();
    for n in &names {
        let waiting = format!("waiting for a publisher of live/{n} ");
        server
            .wait_log(marks, Duration::from_secs(20), |l| l.contains(&waiting))
            .unwrap_or_else(|| panic!("player of {n} never waited\n{}", server.describe()));
    }

    // The steady publishers send FRAMES frames at their pace, counting them in `sent`.
    let sent = Arc::new(AtomicU32::new(0));
    let steady: Vec<JoinHandle<()>> = (0..STEADY)
        .map(|i| {
            let (mut client, sid) = raw_publisher(addr, &names[i as usize]);
            let sent = sent.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                start(&mut client, sid);
                for f in 0..FRAMES {
                    send_frame(&mut client, sid, f, 2_000).expect("steady publisher sends");
                    sent.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(u64::from(STEP_MS)));
                }
                // Kept open until the players have checked every frame.
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    let (mut stalled, stalled_sid) = raw_publisher(addr, &names[STEADY as usize]);
    let (mut dying, dying_sid) = raw_publisher(addr, &names[STEADY as usize + 1]);
    let (mut flood, flood_sid) = raw_publisher(addr, &names[STEADY as usize + 2]);
    for (c, sid) in [
        (&mut stalled, stalled_sid),
        (&mut dying, dying_sid),
        (&mut flood, flood_sid),
    ] {
        start(c, sid);
        for f in 0..GOP {
            send_frame(c, sid, f, 2_000).expect("first GOP");
        }
    }
    let context = || server.describe();
    wait_seen(
        &watchers.iter().collect::<Vec<_>>(),
        GOP,
        "of the first GOP",
        &context,
    );

    // The stalled one sends nothing more, the dying one goes away half-way through a
    // message.
    dying
        .send_raw(&[0x06, 0x00, 0x00, 0x28])
        .expect("half a chunk header");
    drop(dying);

    // The hub stops reading; the flooder sends far more than ingest may queue for it
    // (--hub-queue-bytes, 8 MiB by default) and ingest drops its frames.
    let hub = server.hub_pid() as i32;
    let marks = server.log_marks();
    Supervised::send(hub, libc::SIGSTOP);
    let flooded = (|| {
        for f in GOP..GOP + FLOOD {
            send_frame(&mut flood, flood_sid, f, FLOOD_SIZE)?;
        }
        Ok::<(), ClientError>(())
    })();
    let dropping = server.wait_log(marks, Duration::from_secs(30), |l| {
        l.contains("hub is not keeping up")
    });
    // The hub stays stopped while the flooder's queue is full and the steady publishers
    // send ten frames each more: those wait in ingest beside the full queue.
    let from = sent.load(Ordering::Relaxed);
    let deadline = deadline_in(30.0);
    while sent.load(Ordering::Relaxed) < from + 10 * STEADY && std::time::Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(10));
    }
    Supervised::send(hub, libc::SIGCONT);
    flooded.expect("flooding publisher sends");
    assert!(
        dropping.is_some(),
        "ingest never dropped the flooder's frames\n{}",
        server.describe()
    );
    // After the flood, a keyframe: the flooded stream resumes there.
    let resume = (GOP + FLOOD).next_multiple_of(GOP);
    send_frame(&mut flood, flood_sid, resume, 2_000).expect("keyframe after the flood");

    let steady_watchers: Vec<&Watcher> = watchers.iter().take(STEADY as usize).collect();
    wait_seen(
        &steady_watchers,
        FRAMES,
        "of the steady publishers",
        &context,
    );
    let flood_watcher = &watchers[STEADY as usize + 2];
    let deadline = deadline_in(30.0);
    while flood_watcher.last.load(Ordering::Relaxed) != resume {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.describe()
        );
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for t in steady {
        t.join().expect("steady publisher");
    }
    let got: Vec<(Vec<u32>, Option<ClientError>)> = watchers
        .into_iter()
        .map(|w| w.thread.join().expect("player thread"))
        .collect();
    for (i, (frames, error)) in got.iter().take(STEADY as usize).enumerate() {
        assert!(error.is_none(), "player {i}: {error:?}");
        assert_eq!(
            frames,
            &(0..FRAMES).collect::<Vec<_>>(),
            "player of steady publisher {i} missed or reordered frames"
        );
    }
    let (stalled_frames, _) = &got[STEADY as usize];
    assert_eq!(stalled_frames, &(0..GOP).collect::<Vec<_>>());
    let (dying_frames, _) = &got[STEADY as usize + 1];
    assert_eq!(dying_frames, &(0..GOP).collect::<Vec<_>>());
    let (flood_frames, _) = &got[STEADY as usize + 2];
    let distinct: BTreeSet<u32> = flood_frames.iter().copied().collect();
    assert!(
        flood_frames.len() < (GOP + FLOOD + 1) as usize,
        "ingest dropped some of the flood: {flood_frames:?}"
    );
    assert_eq!(distinct.len(), flood_frames.len(), "no frame twice");
    assert_eq!(
        flood_frames.last(),
        Some(&resume),
        "resumed at the keyframe"
    );
    assert!(
        flood_frames.windows(2).all(|w| w[0] < w[1]),
        "in order: {flood_frames:?}"
    );
    drop(stalled);
    drop(flood);
    server.assert_alive();
}

#[test]
fn hub_killed_every_stream_on_the_connection_is_re_announced() {
    const STREAMS: usize = 4;
    let s = Supervised::start("");
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<JoinHandle<()>> = (0..STREAMS)
        .map(|i| {
            let (mut client, sid) = raw_publisher(s.addr(), &format!("k{i}"));
            let stop = stop.clone();
            thread::spawn(move || {
                start(&mut client, sid);
                let mut f = 0;
                while !stop.load(Ordering::Relaxed) {
                    send_frame(&mut client, sid, f, 4_000).expect("publisher sends");
                    f += 1;
                    thread::sleep(Duration::from_millis(u64::from(STEP_MS)));
                }
            })
        })
        .collect();
    let live = Arc::new(AtomicBool::new(false));
    let watchers: Vec<Watcher> = (0..STREAMS)
        .map(|i| watch(s.addr(), &format!("k{i}"), live.clone()))
        .collect();
    wait_seen(
        &watchers.iter().collect::<Vec<_>>(),
        GOP + 1,
        "before the kill",
        &|| s.describe(),
    );
    live.store(true, Ordering::Relaxed);
    for w in watchers {
        let _ = w.thread.join();
    }

    let mark = s.mark();
    Supervised::kill9(s.child_pid("hub", 1));
    s.wait_line(mark, Duration::from_secs(20), |l| {
        l.contains("hub is ready")
    })
    .unwrap_or_else(|| panic!("the hub never came back\n{}", s.describe()));
    for i in 0..STREAMS {
        let key = format!("key=live/k{i}");
        s.wait_line(mark, Duration::from_secs(20), |l| {
            l.starts_with("[ingest-rtmp]")
                && l.contains("re-announced the stream")
                && l.contains(&key)
        })
        .unwrap_or_else(|| panic!("live/k{i} never re-announced\n{}", s.describe()));
    }
    // A new player of each stream starts with the configuration and a keyframe, from the
    // re-announced GOP or the next one.
    for i in 0..STREAMS {
        let (mut player, sid) = RtmpClient::open(s.addr(), "live").expect("player connects");
        player.play(sid, &format!("k{i}")).expect("play");
        let mut media = Vec::new();
        while !media.iter().any(|m: &Message| index_of(m).is_some()) {
            let m = player
                .next_message(deadline_in(30.0))
                .unwrap_or_else(|e| panic!("player of k{i}: {e}\n{}", s.describe()));
            if m.is_media() {
                media.push(m);
            }
        }
        flv::check_start(media.iter().map(|m| (m.type_id, m.payload.as_slice())))
            .unwrap_or_else(|e| panic!("player of k{i} after the hub restart: {e}"));
    }
    stop.store(true, Ordering::Relaxed);
    for p in publishers {
        p.join()
            .expect("publisher kept publishing through the restart");
    }
}
