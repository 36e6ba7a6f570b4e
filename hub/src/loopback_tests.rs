//! In-process tests of the whole hub over real sockets: a publisher over the UDS, a
//! player handed over with SCM_RIGHTS, and the RTMP bytes it receives.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, FrameDecoder, Header, Role, FORMAT_VERSION};
use proto::media::{Codec, FrameFlags};
use proto::rtmp::amf0::AmfLimits;
use proto::rtmp::chunk::{ChunkDecoder, ChunkLimits, RtmpMessage};
use proto::rtmp::message::{types, Command, UserControl};
use proto::rtmp::session::PlayerHandoff;
use sendfd::SendWithFd;
use std::os::fd::AsRawFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

use crate::config::Config;
use crate::registry::Registry;

const T: Duration = Duration::from_secs(5);

fn hello(role: Role, out: &mut BytesMut) {
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role,
            name: "test".into(),
        },
        &[],
        out,
    );
}

/// A publisher's `Hello` and its `Announce` of `key` as stream 1 (timescale 1000).
fn publisher_opening(key: &str) -> BytesMut {
    let mut out = BytesMut::new();
    hello(Role::Publisher, &mut out);
    let announce = Header::Announce {
        stream: 1,
        key: key.into(),
        timescale: 1000,
    };
    ipc::encode(&announce, &[], &mut out);
    out
}

/// Connects to the hub at `path`, sends `opening` and reads the hub's `Hello`; returns
/// the socket and what was read past it.
async fn open_with(path: &Path, opening: &[u8]) -> (UnixStream, BytesMut) {
    let mut sock = UnixStream::connect(path).await.unwrap();
    sock.write_all(opening).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_ipc(&mut sock, &mut buf).await,
        Header::Hello {
            role: Role::Hub,
            ..
        }
    ));
    (sock, buf)
}

async fn read_ipc(sock: &mut UnixStream, buf: &mut BytesMut) -> Header {
    let dec = FrameDecoder::default();
    loop {
        if let Some(m) = dec.decode(buf).unwrap() {
            return m.header;
        }
        let n = tokio::time::timeout(T, sock.read_buf(buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "hub closed the connection");
    }
}

async fn next_rtmp(
    sock: &mut TcpStream,
    dec: &mut ChunkDecoder,
    buf: &mut BytesMut,
) -> Option<RtmpMessage> {
    loop {
        if let Some(m) = dec.decode(buf).unwrap() {
            return Some(m);
        }
        let n = tokio::time::timeout(T, sock.read_buf(buf))
            .await
            .unwrap()
            .ok()?;
        if n == 0 {
            return None;
        }
    }
}

fn status_code(m: &RtmpMessage) -> Option<String> {
    let c = Command::parse(m.type_id, &m.payload, &AmfLimits::default()).ok()?;
    c.args.first()?.get("code")?.as_str().map(str::to_owned)
}

/// The handoff of a player of `key` that ingest accepted with default settings.
pub(crate) fn handoff_for(conn_id: u64, key: &str) -> PlayerHandoff {
    PlayerHandoff::for_tests(conn_id, key, 1)
}

/// Starts a hub with `cfg` on a socket in a fresh directory `name` (removed by the
/// caller); returns the directory and the socket's path.
fn start_hub(name: &str, cfg: Config) -> (PathBuf, PathBuf) {
    let (dir, path, _) = start_hub_with_registry(name, cfg);
    (dir, path)
}

/// [`start_hub`], also returning the hub's registry to look at its streams.
fn start_hub_with_registry(name: &str, mut cfg: Config) -> (PathBuf, PathBuf, Arc<Registry>) {
    let dir = std::env::temp_dir().join(format!("hub-test-{name}-{}", std::process::id()));
    let path = dir.join("hub.sock");
    cfg.socket = path.clone();
    let listener = crate::server::bind(&path, None).unwrap();
    let registry = Arc::new(Registry::new(Arc::new(cfg)));
    tokio::spawn(crate::server::serve(listener, registry.clone()));
    (dir, path, registry)
}

/// A player of `key`: the server end of a TCP pair handed to the hub at `path` as ingest
/// would; returns the client end once the hub has answered the handoff.
async fn hand_over_player(path: &Path, conn_id: u64, key: &str) -> TcpStream {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(tcp.local_addr().unwrap()).await.unwrap();
    let (server_end, _) = tcp.accept().await.unwrap();
    let server_end = server_end.into_std().unwrap();
    let mut handoff = UnixStream::connect(path).await.unwrap();
    let mut out = BytesMut::new();
    hello(Role::PlayerHandoff, &mut out);
    ipc::encode(
        &Header::PlayerHandoff(Box::new(handoff_for(conn_id, key))),
        &[],
        &mut out,
    );
    handoff.writable().await.unwrap();
    let n = handoff
        .send_with_fd(&out, &[server_end.as_raw_fd()])
        .unwrap();
    assert_eq!(n, out.len());
    drop(server_end);
    let mut hbuf = BytesMut::new();
    assert!(matches!(
        read_ipc(&mut handoff, &mut hbuf).await,
        Header::Hello { .. }
    ));
    client
}

#[tokio::test]
async fn publish_then_handed_over_player_gets_headers_and_keyframe() {
    let (dir, path) = start_hub("keyframe", Config::for_tests());

    // Publisher: hello, announce, config, keyframe.
    let mut publisher = UnixStream::connect(&path).await.unwrap();
    let mut out = BytesMut::new();
    hello(Role::Publisher, &mut out);
    ipc::encode(
        &Header::Announce {
            stream: 9,
            key: "live/t".into(),
            timescale: 1000,
        },
        &[],
        &mut out,
    );
    publisher.write_all(&out).await.unwrap();
    let mut pbuf = BytesMut::new();
    assert!(matches!(
        read_ipc(&mut publisher, &mut pbuf).await,
        Header::Hello {
            role: Role::Hub,
            ..
        }
    ));
    assert_eq!(
        read_ipc(&mut publisher, &mut pbuf).await,
        Header::AnnounceReply {
            stream: 9,
            rejected: None
        }
    );
    out.clear();
    let avcc = [1u8, 0x64, 0, 0x1f, 0xff, 0xe0, 0];
    ipc::encode(
        &Header::TrackConfig {
            stream: 9,
            track: 0,
            codec: Codec::H264,
        },
        &avcc,
        &mut out,
    );
    let frame = [0u8, 0, 0, 2, 0x65, 0x88];
    ipc::encode(
        &Header::Frame {
            stream: 9,
            track: 0,
            video: true,
            dts: 1000,
            cts: 0,
            flags: FrameFlags::KEYFRAME,
        },
        &frame,
        &mut out,
    );
    publisher.write_all(&out).await.unwrap();

    let mut client = hand_over_player(&path, 77, "live/t").await;

    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    while got.len() < 6 {
        got.push(next_rtmp(&mut client, &mut dec, &mut buf).await.unwrap());
    }
    assert_eq!(got[0].type_id, types::SET_CHUNK_SIZE);
    assert_eq!(
        UserControl::parse(&got[1].payload).unwrap(),
        UserControl::StreamBegin(1)
    );
    assert_eq!(
        status_code(&got[2]).as_deref(),
        Some("NetStream.Play.Start")
    );
    assert_eq!(got[3].type_id, types::DATA_AMF0);
    // Sequence header, then the keyframe at its timestamp.
    assert_eq!(got[4].type_id, types::VIDEO);
    assert_eq!(&got[4].payload[..2], &[0x17, 0x00]);
    assert_eq!(&got[4].payload[5..], &avcc);
    assert_eq!(got[5].type_id, types::VIDEO);
    assert_eq!(got[5].timestamp, 1000);
    assert_eq!(&got[5].payload[..2], &[0x17, 0x01]);
    assert_eq!(&got[5].payload[5..], &frame);

    // Live: the next frame arrives; then the publisher leaves and the player is told.
    out.clear();
    ipc::encode(
        &Header::Frame {
            stream: 9,
            track: 0,
            video: true,
            dts: 1040,
            cts: 0,
            flags: FrameFlags::NONE,
        },
        &[0, 0, 0, 1, 0x41],
        &mut out,
    );
    publisher.write_all(&out).await.unwrap();
    let m = next_rtmp(&mut client, &mut dec, &mut buf).await.unwrap();
    assert_eq!((m.type_id, m.timestamp), (types::VIDEO, 1040));
    drop(publisher);
    let eof = next_rtmp(&mut client, &mut dec, &mut buf).await.unwrap();
    assert_eq!(
        UserControl::parse(&eof.payload).unwrap(),
        UserControl::StreamEof(1)
    );
    let m = next_rtmp(&mut client, &mut dec, &mut buf).await.unwrap();
    assert_eq!(
        status_code(&m).as_deref(),
        Some("NetStream.Play.UnpublishNotify")
    );

    // A player that sends media is closed.
    let mut bad = BytesMut::new();
    proto::rtmp::chunk::write_fmt0(6, 0, types::VIDEO, 1, &[0x17, 1], 128, &mut bad);
    client.write_all(&bad).await.unwrap();
    assert!(next_rtmp(&mut client, &mut dec, &mut buf).await.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The player task wakes for each message the player sends; while it waits for a
/// publisher (and sends no pings), none of those wakes moves its deadline, so its one
/// timer is not armed again. A task that made a timer per wake would arm one each time.
#[tokio::test]
async fn wakes_that_leave_the_deadline_arm_no_timer() {
    let mut cfg = Config::for_tests();
    cfg.player_ping_interval = None;
    let (dir, path) = start_hub("timer", cfg);
    let mut client = hand_over_player(&path, 78, "live/nobody").await;
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut buf = BytesMut::new();
    // One ping answered: the task has run and armed the publisher wait. The player task
    // runs on this thread (a current-thread runtime), so the thread's count is its own.
    let mut armed = 0;
    for round in 0..=100u32 {
        if round == 1 {
            armed = crate::deadline::armed_on_this_thread();
        }
        let mut ping = BytesMut::new();
        let body = [&[0u8, 6][..], &round.to_be_bytes()].concat();
        proto::rtmp::chunk::write_fmt0(2, 0, types::USER_CONTROL, 0, &body, 128, &mut ping);
        client.write_all(&ping).await.unwrap();
        loop {
            let m = next_rtmp(&mut client, &mut dec, &mut buf).await.unwrap();
            if m.type_id == types::USER_CONTROL
                && UserControl::parse(&m.payload).ok() == Some(UserControl::PingResponse(round))
            {
                break;
            }
        }
    }
    assert!(armed > 0, "the publisher wait was armed");
    assert_eq!(
        crate::deadline::armed_on_this_thread(),
        armed,
        "100 wakes with the same deadline armed timers"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A subscriber that keeps up (a recorder, a relayer) reports how far it has read, so the
/// stream it reads holds its GOP cache and not the whole `--player-queue-bytes` window.
#[tokio::test]
async fn a_stream_a_subscriber_keeps_up_with_holds_only_its_gop() {
    const FRAME: usize = 10_000;
    const GOP: usize = 30;
    let (dir, path, registry) = start_hub_with_registry("subpos", Config::for_tests());
    let mut out = BytesMut::new();
    ipc::encode_subscription("rec".into(), vec!["live/*".into()], true, false, &mut out);
    let (mut sub, mut sbuf) = open_with(&path, &out).await;

    let mut publisher = UnixStream::connect(&path).await.unwrap();
    let mut out = publisher_opening("live/mem");
    let config = Header::TrackConfig {
        stream: 1,
        track: 0,
        codec: Codec::H264,
    };
    ipc::encode(&config, &[1u8, 0x64, 0, 0x1f, 0xff, 0xe0, 0], &mut out);
    // Three GOPs of 300 kB; once the subscriber has them, 16 small frames: the ring
    // learns its readers' positions every 16 frames.
    let body = vec![0u8; FRAME];
    let small = [0u8, 0, 0, 1, 0x41];
    let mut dts = 1000;
    for (count, size) in [(3 * GOP, FRAME), (16, 0)] {
        for i in 0..count {
            let (flags, payload) = match (size, i % GOP) {
                (0, _) => (FrameFlags::NONE, &small[..]),
                (_, 0) => (FrameFlags::KEYFRAME, &body[..]),
                _ => (FrameFlags::NONE, &body[..]),
            };
            let frame = Header::Frame {
                stream: 1,
                track: 0,
                video: true,
                dts,
                cts: 0,
                flags,
            };
            ipc::encode(&frame, payload, &mut out);
            dts += 33;
        }
        publisher.write_all(&out).await.unwrap();
        out.clear();
        let mut seen = 0;
        while seen < count {
            let next = tokio::time::timeout(T, read_ipc(&mut sub, &mut sbuf)).await;
            if let Header::Frame { .. } = next.expect("the subscriber gets every frame") {
                seen += 1;
            }
        }
    }
    let key = proto::media::StreamKey::parse("live/mem").unwrap();
    let held = registry.stream(&key).unwrap().lock().ring.bytes();
    // The last GOP and the small frames (plus headers), not all three GOPs.
    let gop = (GOP * FRAME) as u64;
    assert!(held > gop, "the GOP cache is kept: {held} bytes");
    assert!(
        held < 2 * gop,
        "ring holds {held} bytes after the subscriber read them all"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Polls `cond` every 10 ms for up to [`T`]; panics naming `what` if it never holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A subscription that names its player (`Header::Player`, as ingest-srt's SRT players
/// send it) is a player of its key from its `Subscribe` until the connection ends:
/// waiting for a publisher, then live, detached when the socket is dropped without a
/// word; a second `Player` is not counted again, a kick closes it, and a bad key is
/// refused with `Error`.
#[tokio::test]
async fn a_served_player_counts_while_its_subscription_lives() {
    use crate::conns::ConnKind;
    use crate::served_player::tests::players_events;
    use crate::stats::Protocol;
    use proto::ipc::PlayerProtocol;

    let (dir, path, registry) = start_hub_with_registry("served", Config::for_tests());
    let mut events = registry.events();
    let key = proto::media::StreamKey::parse("live/w").unwrap();
    let players = || registry.stream(&key).map(|s| s.lock().players);
    let srt_conns = || {
        registry
            .conns()
            .list()
            .into_iter()
            .filter(|c| c.kind == ConnKind::Player && c.protocol == "srt")
            .collect::<Vec<_>>()
    };
    let player_of = |conn_id: u64, remote: &str| Header::Player {
        key: "live/w".into(),
        protocol: PlayerProtocol::Srt,
        conn_id,
        remote: remote.into(),
    };
    let opening = |conn_id: u64, key: &str| {
        let mut out = BytesMut::new();
        ipc::encode_player_subscription(
            format!("ingest-srt/1 conn_id={conn_id}"),
            key.into(),
            PlayerProtocol::Srt,
            conn_id,
            "10.0.0.2:9000".into(),
            &mut out,
        );
        out
    };

    // Waiting for a publisher: counted, the stream not live.
    let (mut a, mut abuf) = open_with(&path, &opening(5, "live/w")).await;
    eventually("the waiting player is attached", || players() == Some(1)).await;
    let listed = srt_conns();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].conn_id,
            listed[0].key.as_str(),
            listed[0].remote.as_str()
        ),
        (5, "live/w", "10.0.0.2:9000")
    );
    let srt = registry.stats().players(Protocol::Srt);
    assert_eq!((srt.connected.get(), srt.started.get()), (1, 1));
    assert_eq!(
        registry.stats().subscribers.get(),
        0,
        "a player, not a subscriber"
    );
    assert_eq!(players_events(&mut events), [("1".into(), "false".into())]);

    // The key goes live: the waiting subscription gets it.
    let mut publisher = UnixStream::connect(&path).await.unwrap();
    publisher
        .write_all(&publisher_opening("live/w"))
        .await
        .unwrap();
    loop {
        if let Header::Announce { key, .. } = read_ipc(&mut a, &mut abuf).await {
            assert_eq!(key, "live/w");
            break;
        }
    }

    // Dropped without a goodbye: detached, unlisted, the stream stays live.
    drop(a);
    eventually("the dropped player is detached", || players() == Some(0)).await;
    assert!(srt_conns().is_empty());
    assert_eq!(srt.connected.get(), 0);
    assert!(registry.stream(&key).unwrap().lock().is_live());
    assert_eq!(players_events(&mut events), [("0".into(), "true".into())]);

    // A Player after the Subscribe (b), and a second one before it (c), count nothing more.
    let mut out = opening(6, "live/w");
    ipc::encode(&player_of(6, "10.0.0.2:9000"), &[], &mut out);
    let (mut b, mut bbuf) = open_with(&path, &out).await;
    let mut dup = BytesMut::new();
    hello(Role::Subscriber, &mut dup);
    ipc::encode(&player_of(7, "10.0.0.3:9000"), &[], &mut dup);
    ipc::encode(&player_of(7, "10.0.0.3:9000"), &[], &mut dup);
    let subscribe = Header::Subscribe {
        patterns: vec!["live/w".into()],
        media: true,
        events: false,
    };
    ipc::encode(&subscribe, &[], &mut dup);
    let (c, _) = open_with(&path, &dup).await;
    eventually("two players, each once", || players() == Some(2)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(players(), Some(2));
    assert_eq!(srt_conns().len(), 2);
    assert_eq!(srt.started.get(), 3);

    // A kick closes the subscription and detaches its player.
    let id = srt_conns().iter().find(|c| c.conn_id == 6).unwrap().id;
    registry.conns().kick(id).expect("listed");
    let closed = loop {
        match tokio::time::timeout(T, b.read_buf(&mut bbuf))
            .await
            .unwrap()
        {
            Ok(0) | Err(_) => break true,
            Ok(_) => bbuf.clear(),
        }
    };
    assert!(closed);
    eventually("the kicked player is detached", || players() == Some(1)).await;
    assert_eq!(srt.kicked.get(), 1);
    drop(c);
    eventually("the last player is detached", || players() == Some(0)).await;

    // A key that is not app/name: Error, nothing counted.
    let (mut d, mut dbuf) = open_with(&path, &opening(8, "nokey")).await;
    assert!(matches!(
        read_ipc(&mut d, &mut dbuf).await,
        Header::Error { message } if message.contains("invalid stream key")
    ));
    assert_eq!(srt.started.get(), 3);
    assert!(srt_conns().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
