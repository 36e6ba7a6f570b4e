//! The publisher's link to the hub: announce, then frames written to the hub socket from
//! the publisher's own task, over one connection that every publisher of the process
//! shares ([`crate::mux`]) and that survives hub restarts.
//!
//! ```text
//!  conn task --queue()--> [its stream's queue: byte budget] --flush(): one writev of
//!                          full: drop frames until             every stream's frames--> hub.sock
//!                          the next video keyframe
//!  conn task <--LinkEvent (Revoked / Rejected / Reconnect)-- the shared connection's task
//! ```
//!
//! A frame does not change tasks on its way to the hub: the connection's task queues its
//! header and shared payload, and after each read from the publisher writes everything
//! queued by then, its own frames and those of every publisher read on the same tick,
//! with one vectored write. Only a full socket, the hub's own messages (revoke, error)
//! and reconnects involve the shared connection's task.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proto::ipc::{Header, IpcError, RejectReason, Role};
use proto::media::{StreamKey, TrackKind};
use telemetry::hub_conn::OpenError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::mux::{self, Mux};
use crate::{Guard, Origin};

/// How long connecting and the hello/announce exchange may take.
pub const HUB_TIMEOUT: Duration = Duration::from_secs(5);
/// Queue accounting per message on top of its payload (header, bookkeeping).
pub(crate) const ITEM_OVERHEAD: usize = 128;

/// Why talking to the hub failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("hub socket: {0}")]
    Io(#[from] io::Error),
    #[error("hub: {0}")]
    Ipc(#[from] IpcError),
    #[error("hub did not answer within {0:?}")]
    Timeout(Duration),
    #[error("hub closed the connection")]
    Closed,
    #[error("hub answered with role {0:?}, expected Hub")]
    Role(Role),
    #[error("hub error: {0}")]
    Hub(String),
    #[error("unexpected message from the hub: {0}")]
    Unexpected(&'static str),
}

impl From<OpenError> for LinkError {
    fn from(e: OpenError) -> LinkError {
        match e {
            OpenError::Io(e) => LinkError::Io(e),
            OpenError::Ipc(e) => LinkError::Ipc(e),
            OpenError::Hub(message) => LinkError::Hub(message),
            OpenError::Role(role) => LinkError::Role(role),
            OpenError::Closed => LinkError::Closed,
            // Any later kind of failure to open.
            e => LinkError::Io(io::Error::other(e)),
        }
    }
}

/// What the writer task tells the connection.
#[derive(Debug)]
pub enum LinkEvent {
    /// The hub gave the key to another publisher.
    Revoked(String),
    /// After a reconnect the hub refused the stream.
    Rejected(RejectReason),
    /// The hub asks the publishing client to reconnect (E-RTMP reconnect request); the
    /// stream goes on.
    Reconnect {
        /// Where the client is to reconnect; `None`: where it is.
        tc_url: Option<String>,
        /// Why, for people.
        description: Option<String>,
    },
}

/// The result of opening a link.
pub enum Opened {
    Accepted(Link),
    Rejected(RejectReason),
}

/// One queued message of a channel link (the `--out` pipe); media holds its share of the
/// byte budget until written.
pub struct Item {
    pub header: Header,
    pub payload: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Item {
    /// A message with no payload outside the media budget.
    pub fn control(header: Header) -> Item {
        Item {
            header,
            payload: Bytes::new(),
            _permit: None,
        }
    }
}

/// Where a link's messages go.
enum Sink {
    /// To a forwarding task, through a bounded channel (the `--out` pipe).
    Channel {
        tx: mpsc::Sender<Item>,
        budget: Arc<Semaphore>,
    },
    /// Straight to the shared hub connection, written from the publisher's own task.
    Hub {
        mux: Arc<Mux>,
        /// The stream's handle on that connection.
        handle: u32,
    },
}

/// The connection's end of the link. Dropping it lets the writer drain and close.
pub struct Link {
    sink: Sink,
    events: mpsc::Receiver<LinkEvent>,
    /// Frames are being dropped until the next video keyframe.
    resync: bool,
    has_video: bool,
    dropped: u64,
}

impl Link {
    /// A link whose bounded queue (`queue_bytes` of media) is drained from the returned
    /// receiver; events for the connection go into the returned sender.
    pub fn channel(queue_bytes: usize) -> (Link, mpsc::Receiver<Item>, mpsc::Sender<LinkEvent>) {
        let budget = Arc::new(Semaphore::new(queue_bytes));
        // The byte budget bounds media; the count bound only has to exceed what the budget
        // admits (every item costs at least ITEM_OVERHEAD).
        let (tx, rx) = mpsc::channel(queue_bytes / ITEM_OVERHEAD + 1024);
        let (etx, erx) = mpsc::channel(4);
        (Link::new(Sink::Channel { tx, budget }, erx), rx, etx)
    }

    fn new(sink: Sink, events: mpsc::Receiver<LinkEvent>) -> Link {
        Link {
            sink,
            events,
            resync: false,
            has_video: false,
            dropped: 0,
        }
    }

    /// Sends one message without waiting: [`Link::queue`], then [`Link::flush`].
    pub fn send(&mut self, header: Header, payload: Bytes) {
        self.queue(header, payload);
        self.flush();
    }

    /// Queues one message without waiting; toward the hub it goes out with the next
    /// [`Link::flush`] (several messages then share one write). Frames beyond the byte
    /// budget are dropped, and then every frame until the next video keyframe, so the hub
    /// never gets half a GOP.
    pub fn queue(&mut self, header: Header, payload: Bytes) {
        let frame = match &header {
            Header::Frame { video, flags, .. } => Some(*video && flags.keyframe()),
            Header::TrackConfig { codec, .. } => {
                self.has_video |= codec.kind() == TrackKind::Video;
                None
            }
            _ => None,
        };
        let Some(video_key) = frame else {
            // Configs, metadata and end of stream are few and small: never dropped, and
            // not counted against the media budget.
            let sent = match &self.sink {
                Sink::Channel { tx, .. } => tx.try_send(Item::control(header)).is_ok(),
                Sink::Hub { mux, handle } => {
                    mux.queue(*handle, header, payload, None);
                    true
                }
            };
            if !sent {
                tracing::warn!("hub queue full, control message dropped");
            }
            return;
        };
        if self.resync {
            if self.has_video && !video_key {
                self.dropped += 1;
                return;
            }
            tracing::info!(dropped = self.dropped, "hub queue drained, sending again");
            self.resync = false;
            self.dropped = 0;
        }
        let cost = payload.len() + ITEM_OVERHEAD;
        let sent = match &self.sink {
            Sink::Channel { tx, budget } => {
                match budget
                    .clone()
                    .try_acquire_many_owned(cost.min(u32::MAX as usize) as u32)
                {
                    Ok(permit) => tx
                        .try_send(Item {
                            header,
                            payload,
                            _permit: Some(permit),
                        })
                        .is_ok(),
                    Err(_) => false,
                }
            }
            Sink::Hub { mux, handle } => mux.queue(*handle, header, payload, Some(cost)),
        };
        if !sent {
            tracing::warn!("hub is not keeping up: dropping frames until the next keyframe");
            self.resync = true;
            self.dropped = 1;
        }
    }

    /// Writes what [`Link::queue`] queued toward the hub, with what every other publisher
    /// of the process queued, in one vectored write, as far as the socket takes it without
    /// blocking; the shared connection's task waits for the rest.
    pub fn flush(&mut self) {
        if let Sink::Hub { mux, .. } = &self.sink {
            mux.flush();
        }
    }

    /// The next event from the writer; pending forever if there is none.
    pub async fn event(&mut self) -> LinkEvent {
        match self.events.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Sink::Hub { mux, handle } = &self.sink {
            mux.close(*handle);
        }
    }
}

/// What a link keeps of its stream to announce it again after a hub restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Replay {
    /// Track configurations, metadata and the frames since the last video keyframe (up to
    /// the queue bound): players see the stream again at once, for one GOP of memory.
    #[default]
    Gop,
    /// Track configurations and metadata only (a few KiB): after a hub restart players
    /// wait for the publisher's next keyframe.
    Headers,
}

/// `--hub-replay`, the flag with which an ingest binary chooses what its links keep.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ReplayFlag {
    /// What is kept of each stream to announce it again after a hub restart: `gop` (its
    /// track configurations, metadata and the frames since its last video keyframe:
    /// players see it again at once, for one GOP of memory per publisher in this process,
    /// about 0.6 MiB at 2.5 Mbit/s with 2 s GOPs) or `headers` (configurations and metadata
    /// only, a few KiB: after a hub restart players wait for the publisher's next keyframe).
    #[arg(long, value_enum, default_value = "gop")]
    pub hub_replay: Replay,
}

/// Announces `key` for client connection `conn_id` on this process's shared connection to
/// the hub at `hub` (connecting if needed) and waits for the hub's answer. `queue_bytes`
/// bounds the stream's queue and the GOP kept to re-announce it after a hub restart;
/// `guard` is held until the stream's last message is written.
pub async fn open(
    hub: &Path,
    key: &StreamKey,
    queue_bytes: usize,
    conn_id: u64,
    origin: Origin,
    guard: Guard,
) -> Result<Opened, LinkError> {
    open_with(hub, key, queue_bytes, Replay::Gop, conn_id, origin, guard).await
}

/// [`open`], keeping `replay` of the stream for a re-announce.
pub async fn open_with(
    hub: &Path,
    key: &StreamKey,
    queue_bytes: usize,
    replay: Replay,
    conn_id: u64,
    origin: Origin,
    guard: Guard,
) -> Result<Opened, LinkError> {
    let mux = mux::for_hub(hub, origin);
    let (etx, erx) = mpsc::channel(4);
    let gop = match replay {
        Replay::Gop => queue_bytes,
        Replay::Headers => 0,
    };
    Ok(
        match mux
            .announce(key, conn_id, queue_bytes, gop, etx, guard)
            .await?
        {
            Ok(handle) => Opened::Accepted(Link::new(Sink::Hub { mux, handle }, erx)),
            Err(reason) => Opened::Rejected(reason),
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use bytes::BytesMut;
    use proto::ipc::{self, FrameDecoder, Message, FORMAT_VERSION};
    use proto::media::{Codec, FrameFlags};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{UnixListener, UnixStream};

    use super::*;

    fn frame(i: u32, key: bool, len: usize) -> (Header, Bytes) {
        let h = Header::Frame {
            stream: crate::STREAM,
            track: 0,
            video: true,
            dts: i64::from(i),
            cts: 0,
            flags: if key {
                FrameFlags::KEYFRAME
            } else {
                FrameFlags::NONE
            },
        };
        (h, Bytes::from(vec![i as u8; len]))
    }

    /// Queues a configuration and a three-frame GOP of 1000-byte frames.
    fn queue_gop(link: &mut Link) {
        let (h, p) = config();
        link.queue(h, p);
        for i in 0..3 {
            let (h, p) = frame(i, i == 0, 1000);
            link.queue(h, p);
        }
    }

    fn config() -> (Header, Bytes) {
        let h = Header::TrackConfig {
            stream: crate::STREAM,
            track: 0,
            codec: Codec::H264,
        };
        (h, Bytes::from_static(b"avcC"))
    }

    const ORIGIN: Origin = Origin {
        component: "test",
        timescale: 1000,
    };

    /// One connection of a fake hub.
    struct Hub {
        s: UnixStream,
        buf: BytesMut,
    }

    impl Hub {
        /// Accepts a connection and answers its hello.
        async fn accept(l: &UnixListener) -> Hub {
            let (s, _) = l.accept().await.unwrap();
            let mut hub = Hub {
                s,
                buf: BytesMut::new(),
            };
            let hello = hub.next().await.expect("hello");
            assert!(
                matches!(&hello.header, Header::Hello { role: Role::Publisher, name, .. } if !name.contains("conn_id")),
                "{hello:?}"
            );
            hub.send(Header::Hello {
                version: FORMAT_VERSION,
                role: Role::Hub,
                name: "hub/1".into(),
            })
            .await;
            hub
        }

        async fn send(&mut self, h: Header) {
            let mut out = BytesMut::new();
            ipc::encode(&h, &[], &mut out);
            self.s.write_all(&out).await.unwrap();
        }

        async fn next(&mut self) -> Option<Message> {
            let dec = FrameDecoder::default();
            loop {
                if let Some(m) = dec.decode(&mut self.buf).unwrap() {
                    return Some(m);
                }
                if self.s.read_buf(&mut self.buf).await.unwrap() == 0 {
                    return None;
                }
            }
        }

        /// Reads an announce, answers it, returns its handle and client id.
        async fn accept_announce(&mut self, key: &str) -> (u32, u64) {
            let m = self.next().await.expect("announce");
            let Header::AnnounceClient {
                stream,
                key: k,
                conn_id,
                ..
            } = m.header
            else {
                panic!("expected AnnounceClient, got {m:?}");
            };
            assert_eq!(k, key);
            self.send(Header::AnnounceReply {
                stream,
                rejected: None,
            })
            .await;
            (stream, conn_id)
        }
    }

    fn hub_path(name: &str) -> (PathBuf, UnixListener) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        (path, l)
    }

    async fn open_on(path: &Path, l: &UnixListener, key: &str, budget: usize) -> (Hub, Link) {
        let key = StreamKey::parse(key).unwrap();
        let (hub, link) = tokio::join!(
            async {
                let mut hub = Hub::accept(l).await;
                hub.accept_announce(&key.to_string()).await;
                hub
            },
            open(path, &key, budget, 7, ORIGIN, Box::new(()))
        );
        let Ok(Opened::Accepted(link)) = link else {
            panic!("not accepted");
        };
        (hub, link)
    }

    /// Opens `key` on a connection the hub already has.
    async fn open_more(path: &Path, hub: &mut Hub, key: &str, conn_id: u64) -> (u32, Link) {
        let k = StreamKey::parse(key).unwrap();
        let (answer, link) = tokio::join!(
            hub.accept_announce(key),
            open(path, &k, 8 << 20, conn_id, ORIGIN, Box::new(()))
        );
        assert_eq!(answer.1, conn_id);
        let Ok(Opened::Accepted(link)) = link else {
            panic!("not accepted");
        };
        (answer.0, link)
    }

    #[tokio::test]
    async fn queued_frames_reach_the_hub_in_order_through_a_full_socket() {
        let (path, l) = hub_path("link-test");
        let (mut hub, mut link) = open_on(&path, &l, "live/x", 64 << 20).await;
        // Far more than a socket buffer, queued in batches while the hub does not read:
        // the publisher's writes block, and the connection's task writes the rest.
        const N: u32 = 800;
        for i in 0..N {
            let (h, p) = frame(i, i % 50 == 0, 16 * 1024);
            link.queue(h, p);
            if i % 4 == 3 {
                link.flush();
            }
        }
        drop(link);
        for i in 0..N {
            let m = hub.next().await.expect("every frame arrives");
            match m.header {
                Header::Frame { dts, .. } => assert_eq!(dts, i64::from(i)),
                other => panic!("expected frame {i}, got {other:?}"),
            }
            assert_eq!(m.payload.len(), 16 * 1024);
            assert!(m.payload.iter().all(|&b| b == i as u8));
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test]
    async fn past_the_budget_frames_are_dropped_until_a_keyframe() {
        let (path, l) = hub_path("link-budget");
        let (mut hub, mut link) = open_on(&path, &l, "live/x", 1 << 20).await;
        // The hub does not read: the socket buffer and then the 1 MiB budget fill up.
        for i in 0..400 {
            let (h, p) = frame(i, i == 0, 64 * 1024);
            link.queue(h, p);
            link.flush();
        }
        let (h, p) = frame(1000, true, 10);
        link.queue(h, p);
        link.flush();
        let mut dts = Vec::new();
        while dts.last() != Some(&1000) {
            let m = hub.next().await.expect("the keyframe arrives");
            if let Header::Frame { dts: d, .. } = m.header {
                dts.push(d);
            }
        }
        dts.pop();
        assert!(dts.len() < 399, "frames past the budget were dropped");
        assert!(
            dts.windows(2).all(|w| w[1] == w[0] + 1),
            "no gap before the drop"
        );
        drop(link);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// Two publishers share one connection; one is revoked, the other goes on; the hub
    /// goes away and every stream left is re-announced on the next connection with its
    /// configuration and current GOP.
    #[tokio::test]
    async fn streams_share_one_connection_and_are_re_announced() {
        let (path, l) = hub_path("link-shared");
        let (mut hub, mut a) = open_on(&path, &l, "live/a", 8 << 20).await;
        let (hb, mut b) = open_more(&path, &mut hub, "live/b", 9).await;
        let (hc, mut c) = open_more(&path, &mut hub, "live/c", 10).await;
        assert_ne!(hb, hc, "each stream has its own handle");
        for link in [&mut a, &mut b, &mut c] {
            queue_gop(link);
        }
        // One flush writes every stream's messages.
        a.flush();
        let mut per_stream: HashMap<u32, Vec<i64>> = HashMap::new();
        for _ in 0..12 {
            let m = hub.next().await.unwrap();
            match m.header {
                Header::Frame { stream, dts, .. } => {
                    per_stream.entry(stream).or_default().push(dts)
                }
                Header::TrackConfig { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(per_stream.len(), 3);
        assert!(
            per_stream.values().all(|d| d == &[0, 1, 2]),
            "{per_stream:?}"
        );

        hub.send(Header::Revoke {
            stream: hb,
            reason: "takeover".into(),
        })
        .await;
        assert!(matches!(b.event().await, LinkEvent::Revoked(r) if r == "takeover"));
        let (h, p) = frame(3, false, 1000);
        c.queue(h, p);
        c.flush();
        let m = hub.next().await.unwrap();
        assert!(
            matches!(m.header, Header::Frame { stream, dts: 3, .. } if stream == hc),
            "{m:?}"
        );

        // The hub goes away; the streams still open come back on a new connection.
        drop(hub);
        drop(b);
        let mut hub = Hub::accept(&l).await;
        let mut announced = HashMap::new();
        let mut frames: HashMap<u32, Vec<i64>> = HashMap::new();
        while frames.values().map(Vec::len).sum::<usize>() < 7 {
            let m = hub.next().await.unwrap();
            match m.header {
                Header::AnnounceClient {
                    stream, conn_id, ..
                } => {
                    announced.insert(stream, conn_id);
                }
                Header::TrackConfig { stream, .. } => {
                    assert!(announced.contains_key(&stream), "config after the announce")
                }
                Header::Frame { stream, dts, .. } => frames.entry(stream).or_default().push(dts),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(announced.len(), 2, "{announced:?}");
        assert_eq!(announced[&hc], 10);
        assert_eq!(frames[&hc], [0, 1, 2, 3], "the current GOP is replayed");
        assert_eq!(frames.len(), 2);
        drop((a, c));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// With `Replay::Headers` a re-announce carries the configuration but no frames.
    #[tokio::test]
    async fn headers_only_replay_keeps_no_frames() {
        let (path, l) = hub_path("link-headers");
        let key = StreamKey::parse("live/h").unwrap();
        let (hub, link) = tokio::join!(
            async {
                let mut hub = Hub::accept(&l).await;
                hub.accept_announce("live/h").await;
                hub
            },
            open_with(
                &path,
                &key,
                8 << 20,
                Replay::Headers,
                7,
                ORIGIN,
                Box::new(())
            )
        );
        let (mut hub, Ok(Opened::Accepted(mut link))) = (hub, link) else {
            panic!("not accepted");
        };
        queue_gop(&mut link);
        link.flush();
        for _ in 0..4 {
            hub.next().await.unwrap();
        }
        drop(hub);
        let mut hub = Hub::accept(&l).await;
        assert!(matches!(
            hub.next().await.unwrap().header,
            Header::AnnounceClient { .. }
        ));
        assert!(matches!(
            hub.next().await.unwrap().header,
            Header::TrackConfig { .. }
        ));
        // The next frame sent is the next thing the hub gets: nothing was kept.
        let (h, p) = frame(3, false, 10);
        link.queue(h, p);
        link.flush();
        let m = hub.next().await.unwrap();
        assert!(matches!(m.header, Header::Frame { dts: 3, .. }), "{m:?}");
        drop(link);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
