//! Hub subscribers that stop reading, driven over the real hub socket: a subscriber whose
//! socket takes nothing for `--subscriber-write-timeout` is closed with a warn line while a
//! neighbour subscriber keeps receiving, and a subscriber that is not reading while many
//! streams start is still announced every one of them once it reads again.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use e2e::server::{is_warn, Which};
use e2e::{deadline_in, Server, ServerOpts};
use proto::ipc::{self, FrameDecoder, Header, Message, Role, FORMAT_VERSION};
use proto::media::{Codec, FrameFlags};

/// Size of each pumped video frame: a few fill a Unix socket's buffer.
const FRAME_BYTES: usize = 32 * 1024;

/// One IPC connection to the hub, past the hello exchange.
struct Ipc {
    sock: UnixStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Ipc {
    fn connect(socket: &Path, role: Role) -> Ipc {
        let sock = UnixStream::connect(socket)
            .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
        let mut ipc = Ipc {
            sock,
            buf: BytesMut::new(),
            decoder: FrameDecoder::default(),
        };
        ipc.send(
            &Header::Hello {
                version: FORMAT_VERSION,
                role,
                name: "e2e-hub-subscriber".into(),
            },
            &[],
        );
        let hello = ipc.recv(deadline_in(15.0)).expect("the hub's hello");
        assert!(
            matches!(
                hello.header,
                Header::Hello {
                    role: Role::Hub,
                    ..
                }
            ),
            "{:?}",
            hello.header
        );
        ipc
    }

    /// A media subscriber of `live/*`.
    fn subscriber(socket: &Path) -> Ipc {
        let mut s = Ipc::connect(socket, Role::Subscriber);
        s.send(
            &Header::Subscribe {
                patterns: vec!["live/*".into()],
                media: true,
                events: false,
            },
            &[],
        );
        s
    }

    fn send(&mut self, header: &Header, payload: &[u8]) {
        let mut out = BytesMut::new();
        ipc::encode(header, payload, &mut out);
        self.sock.write_all(&out).expect("write to the hub");
    }

    /// The next message; None on end of stream, an error or the deadline.
    fn recv(&mut self, deadline: Instant) -> Option<Message> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(m) = self.decoder.decode(&mut self.buf).expect("hub framing") {
                return Some(m);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Announces `key` as stream `handle` and waits for the hub's acceptance.
    fn announce(&mut self, handle: u32, key: &str) {
        self.send(
            &Header::Announce {
                stream: handle,
                key: key.into(),
                timescale: 1000,
            },
            &[],
        );
        loop {
            let m = self.recv(deadline_in(15.0)).expect("announce reply");
            if let Header::AnnounceReply { stream, rejected } = m.header {
                assert_eq!((stream, rejected), (handle, None), "announce of {key}");
                return;
            }
        }
    }
}

/// A publisher of `live/big` sending 32 KiB keyframes until stopped.
struct Pump {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Pump {
    fn start(socket: &Path) -> Pump {
        let mut publisher = Ipc::connect(socket, Role::Publisher);
        publisher.announce(1, "live/big");
        publisher.send(
            &Header::TrackConfig {
                stream: 1,
                track: 0,
                codec: Codec::H264,
            },
            &[],
        );
        let (stop, sent) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (stop2, sent2) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let payload = vec![0x5Au8; FRAME_BYTES];
            let mut dts = 0i64;
            while !stop2.load(Ordering::Relaxed) {
                let mut out = BytesMut::new();
                ipc::encode(
                    &Header::Frame {
                        stream: 1,
                        track: 0,
                        video: true,
                        dts,
                        cts: 0,
                        flags: FrameFlags::KEYFRAME,
                    },
                    &payload,
                    &mut out,
                );
                publisher
                    .sock
                    .write_all(&out)
                    .map_err(|e| format!("publisher write: {e}"))?;
                sent2.fetch_add(payload.len() as u64, Ordering::Relaxed);
                dts += 40;
                // About 6 MiB/s: far more than a socket holds, little CPU.
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        });
        Pump {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Waits until `bytes` were sent (bounded).
    fn wait_sent(&self, bytes: u64) {
        let deadline = deadline_in(60.0);
        while self.sent.load(Ordering::Relaxed) < bytes {
            assert!(
                Instant::now() < deadline,
                "publisher did not send {bytes} bytes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the publisher; panics if it failed to send.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let result = self.thread.take().unwrap().join().expect("pump thread");
        result.expect("the publisher was undisturbed");
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A subscriber that reads everything on its own thread and counts frames.
fn counting_subscriber(socket: &Path) -> Arc<AtomicU64> {
    let mut s = Ipc::subscriber(socket);
    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    std::thread::spawn(move || {
        while let Some(m) = s.recv(deadline_in(120.0)) {
            if matches!(m.header, Header::Frame { .. }) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    frames
}

fn wait_frames(frames: &AtomicU64, at_least: u64, secs: f64) -> bool {
    let deadline = deadline_in(secs);
    while frames.load(Ordering::Relaxed) < at_least {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn a_subscriber_that_stops_reading_is_closed_after_the_write_timeout() {
    let server = Server::start(ServerOpts::default().hub(&["--subscriber-write-timeout", "2s"]));
    let marks = server.log_marks();
    let mut stuck = Ipc::subscriber(server.socket());
    let neighbour = counting_subscriber(server.socket());
    let pump = Pump::start(server.socket());

    let line = server
        .wait_log(marks, Duration::from_secs(60), |l| {
            is_warn(l) && l.contains("subscriber") && l.contains("stalled")
        })
        .unwrap_or_else(|| {
            panic!(
                "no stall warning for the subscriber that stopped reading\n{}",
                server.describe()
            )
        });
    assert_eq!(line.0, Which::Hub, "{line:?}");
    assert!(
        line.1.contains("--subscriber-write-timeout"),
        "the warn line names the flag: {line:?}"
    );

    // The hub closed it: what it had written drains, then end of stream.
    let deadline = deadline_in(20.0);
    let mut messages = 0u64;
    while stuck.recv(deadline).is_some() {
        messages += 1;
    }
    assert!(
        Instant::now() < deadline,
        "the stalled subscriber's connection was not closed ({messages} messages read)"
    );

    // The neighbour still receives the stream that the stuck subscriber was behind on.
    let now = neighbour.load(Ordering::Relaxed);
    assert!(
        wait_frames(&neighbour, now + 25, 30.0),
        "the neighbour subscriber stopped receiving frames ({now})"
    );
    pump.finish();
}

#[test]
fn streams_started_while_a_subscriber_does_not_read_are_all_announced() {
    const STREAMS: usize = 600;
    let server = Server::start(ServerOpts::default().hub(&["--subscriber-write-timeout", "5m"]));
    let mut stuck = Ipc::subscriber(server.socket());
    let pump = Pump::start(server.socket());
    // Far more than a socket holds: the hub's writer for `stuck` is blocked from here on.
    pump.wait_sent(4 << 20);

    let mut publisher = Ipc::connect(server.socket(), Role::Publisher);
    let mut keys: HashSet<String> = HashSet::from(["live/big".to_owned()]);
    for i in 0..STREAMS {
        let key = format!("live/s{i}");
        publisher.announce(10 + i as u32, &key);
        keys.insert(key);
    }
    pump.finish();

    // Read again: every stream is announced.
    let deadline = deadline_in(90.0);
    let mut announced = HashSet::new();
    while announced.len() < keys.len() {
        let Some(m) = stuck.recv(deadline) else {
            let missing: Vec<_> = keys.difference(&announced).take(10).collect();
            panic!(
                "{} of {} streams announced; missing e.g. {missing:?}\n{}",
                announced.len(),
                keys.len(),
                server.describe()
            );
        };
        if let Header::Announce { key, .. } = m.header {
            announced.insert(key);
        }
    }
    assert_eq!(announced, keys);
    assert_eq!(
        server
            .log(Which::Hub)
            .count(|l| is_warn(l) && l.contains("subscriber")),
        0,
        "{}",
        server.log(Which::Hub).tail(20)
    );
}
