//! The publisher's link to the hub: announce, then frames written to the hub socket from
//! the publisher's own task, with a task per link that survives hub restarts.
//!
//! ```text
//!  conn task --queue()--> [outbox: byte budget] --flush(): one writev--> hub.sock
//!                          full: drop frames until      ^ would block: the link's task
//!                          the next video keyframe      | waits for the socket and writes
//!                                                       | the rest; on a lost hub it
//!                                                       | reconnects with backoff, announces,
//!  conn task <--LinkEvent (Revoked / Rejected / Reconnect)+ replays configs, metadata, GOP
//! ```
//!
//! A frame does not change tasks on its way to the hub: the connection's task encodes its
//! header, queues header and shared payload, and after each read from the publisher writes
//! everything that read produced with one vectored write. Only a full socket, the hub's
//! own messages (revoke, error) and reconnects involve the link's task.

use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proto::iov::Outbox;
use proto::ipc::{self, FrameDecoder, Header, IpcError, RejectReason, Role, FORMAT_VERSION};
use proto::media::{StreamKey, TrackKind};
use telemetry::hub_conn::{self, HubConn, OpenError};
use tokio::io::AsyncReadExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::{Guard, Origin, STREAM};

/// How long connecting and the hello/announce exchange may take.
pub const HUB_TIMEOUT: Duration = Duration::from_secs(5);
/// Queue accounting per message on top of its payload (header, bookkeeping).
const ITEM_OVERHEAD: usize = 128;
/// Most slices passed to one `writev` (below every IOV_MAX).
const MAX_IOV: usize = 64;
/// Room the header scratch is grown by: headers are split off it, so it is reallocated
/// once per this many bytes of headers rather than per message.
const HDR_ROOM: usize = 4096;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Reconnect attempts to a missing hub are cheap (a failed UDS connect), and the cap bounds
/// how long after a hub restart the stream is back: a new player must see it within 2 s.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

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
    /// Straight to the hub socket, written from the publisher's own task.
    Hub(Arc<HubSide>),
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
                Sink::Hub(hub) => {
                    hub.lock().queue(header, payload, None);
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
            Sink::Hub(hub) => hub.lock().queue(header, payload, Some(cost)),
        };
        if !sent {
            tracing::warn!("hub is not keeping up: dropping frames until the next keyframe");
            self.resync = true;
            self.dropped = 1;
        }
    }

    /// Writes what [`Link::queue`] queued toward the hub with one vectored write, as far
    /// as the socket takes it without blocking; the link's task waits for the rest.
    pub fn flush(&mut self) {
        if let Sink::Hub(hub) = &self.sink {
            hub.flush();
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
        if let Sink::Hub(hub) = &self.sink {
            hub.flush();
            hub.lock().closed = true;
            hub.wake.notify_one();
        }
    }
}

/// What the publisher's task and the link's task share: the hub socket and every byte
/// queued for it.
struct HubSide {
    state: Mutex<HubState>,
    /// Wakes the link's task: the socket would block, or the link was dropped.
    wake: Notify,
}

struct HubState {
    /// The hub connection's write half; `None` while reconnecting.
    sock: Option<Arc<OwnedWriteHalf>>,
    /// Encoded headers and shared payloads, not yet taken by the socket.
    out: Outbox,
    /// Media bytes `out` may hold before frames are dropped.
    budget: usize,
    /// The socket would block: the link's task writes the rest when it can.
    blocked: bool,
    /// A write failed: the link's task reconnects.
    failed: Option<io::Error>,
    /// The publisher's end was dropped.
    closed: bool,
    /// Scratch the headers are encoded into (split off per message, reallocated rarely).
    hdr: BytesMut,
    replay: Replay,
}

impl HubSide {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flush(&self) {
        let mut st = self.lock();
        if st.blocked || st.failed.is_some() {
            return;
        }
        if st.write_some() {
            drop(st);
            self.wake.notify_one();
        }
    }
}

impl HubState {
    /// Queues a message (remembered for replay); `cost`: media, refused (false) when the
    /// budget is spent. While reconnecting only the replay state sees it.
    fn queue(&mut self, header: Header, payload: Bytes, cost: Option<usize>) -> bool {
        if cost.is_some_and(|c| self.out.bytes() + c > self.budget) {
            return false;
        }
        self.replay.observe(&header, &payload);
        if self.sock.is_some() {
            self.push(&header, payload);
        }
        true
    }

    fn push(&mut self, header: &Header, payload: Bytes) {
        if self.hdr.capacity() - self.hdr.len() < HDR_ROOM / 16 {
            self.hdr.reserve(HDR_ROOM);
        }
        ipc::encode_header(header, payload.len(), &mut self.hdr);
        self.out.push(self.hdr.split().freeze());
        self.out.push(payload);
    }

    /// Writes until `out` is empty or the socket would block; true when the link's task
    /// must take over (blocked, or failed).
    fn write_some(&mut self) -> bool {
        let Some(sock) = self.sock.clone() else {
            return false;
        };
        while !self.out.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = self.out.fill(&mut iov);
            match sock.try_write_vectored(&iov[..n]) {
                Ok(0) => {
                    self.failed = Some(io::ErrorKind::WriteZero.into());
                    return true;
                }
                Ok(w) => self.out.advance(w),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return true;
                }
                Err(e) => {
                    self.failed = Some(e);
                    return true;
                }
            }
        }
        self.blocked = false;
        false
    }
}

/// Connects to the hub and announces `key`; on acceptance starts the link's task (which
/// reads the hub's messages, waits out a full socket and reconnects).
pub async fn open(
    hub: &Path,
    key: &StreamKey,
    queue_bytes: usize,
    conn_id: u64,
    origin: Origin,
    guard: Guard,
) -> Result<Opened, LinkError> {
    let (sock, rbuf, rejected) = announce(hub, key, conn_id, origin).await?;
    if let Some(reason) = rejected {
        return Ok(Opened::Rejected(reason));
    }
    let (r, w) = sock.into_split();
    let side = Arc::new(HubSide {
        state: Mutex::new(HubState {
            sock: Some(Arc::new(w)),
            out: Outbox::new(),
            budget: queue_bytes,
            blocked: false,
            failed: None,
            closed: false,
            hdr: BytesMut::new(),
            replay: Replay::new(queue_bytes),
        }),
        wake: Notify::new(),
    });
    let (etx, erx) = mpsc::channel(4);
    let writer = Writer {
        hub: hub.to_owned(),
        key: key.clone(),
        conn_id,
        origin,
        side: side.clone(),
        events: etx,
        rbuf,
    };
    let span = tracing::info_span!("hub_link", conn_id, key = %key);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            writer.run(r).await;
            // Shutdown waits for this: the stream's last messages are written.
            drop(guard);
        },
        span,
    ));
    Ok(Opened::Accepted(Link::new(Sink::Hub(side), erx)))
}

/// Hello (naming the client connection `conn_id`, so the hub logs it under the same id)
/// + Announce, then the hub's Hello and AnnounceReply.
async fn announce(
    hub: &Path,
    key: &StreamKey,
    conn_id: u64,
    origin: Origin,
) -> Result<(UnixStream, BytesMut, Option<RejectReason>), LinkError> {
    let exchange = async {
        let mut out = BytesMut::new();
        ipc::encode(
            &Header::Hello {
                version: FORMAT_VERSION,
                role: Role::Publisher,
                name: ipc::hello_name(origin.component, std::process::id(), Some(conn_id)),
            },
            &[],
            &mut out,
        );
        ipc::encode(
            &Header::Announce {
                stream: STREAM,
                key: key.to_string(),
                timescale: origin.timescale,
            },
            &[],
            &mut out,
        );
        let HubConn {
            mut sock,
            buf: mut rbuf,
        } = hub_conn::open(hub, &out).await?;
        let decoder = FrameDecoder::default();
        let msg = loop {
            if let Some(msg) = decoder.decode(&mut rbuf)? {
                break msg;
            }
            if sock.read_buf(&mut rbuf).await? == 0 {
                return Err(LinkError::Closed);
            }
        };
        match msg.header {
            Header::Error { message } => Err(LinkError::Hub(message)),
            Header::AnnounceReply { stream, rejected } if stream == STREAM => {
                Ok((sock, rbuf, rejected))
            }
            _ => Err(LinkError::Unexpected("expected AnnounceReply")),
        }
    };
    tokio::time::timeout(HUB_TIMEOUT, exchange)
        .await
        .map_err(|_| LinkError::Timeout(HUB_TIMEOUT))?
}

/// What a re-announce replays: track configs, metadata and the current GOP.
struct Replay {
    configs: Vec<(Header, Bytes)>,
    metadata: Option<Bytes>,
    gop: Vec<(Header, Bytes)>,
    gop_bytes: usize,
    /// The GOP holds everything since a video keyframe (false until one, or after
    /// overflowing the cap).
    gop_valid: bool,
    cap: usize,
}

impl Replay {
    fn new(cap: usize) -> Self {
        Replay {
            configs: Vec::new(),
            metadata: None,
            gop: Vec::new(),
            gop_bytes: 0,
            gop_valid: false,
            cap,
        }
    }

    /// What a re-announce sends first, in order.
    fn items(&self) -> Vec<(Header, Bytes)> {
        self.configs
            .iter()
            .cloned()
            .chain(
                self.metadata
                    .iter()
                    .map(|m| (Header::Metadata { stream: STREAM }, m.clone())),
            )
            .chain(self.gop.iter().cloned())
            .collect()
    }

    fn observe(&mut self, header: &Header, payload: &Bytes) {
        match header {
            Header::TrackConfig { track, codec, .. } => {
                let same = |h: &Header| {
                    matches!(h, Header::TrackConfig { track: t, codec: c, .. }
                        if t == track && c.kind() == codec.kind())
                };
                match self.configs.iter_mut().find(|(h, _)| same(h)) {
                    Some(entry) => *entry = (header.clone(), payload.clone()),
                    None => self.configs.push((header.clone(), payload.clone())),
                }
            }
            Header::Metadata { .. } => self.metadata = Some(payload.clone()),
            Header::Frame { video, flags, .. } => {
                if *video && flags.keyframe() {
                    self.gop.clear();
                    self.gop_bytes = 0;
                    self.gop_valid = true;
                }
                if !self.gop_valid {
                    return;
                }
                self.gop_bytes += payload.len() + ITEM_OVERHEAD;
                if self.gop_bytes > self.cap {
                    self.gop.clear();
                    self.gop_bytes = 0;
                    self.gop_valid = false;
                    return;
                }
                self.gop.push((header.clone(), payload.clone()));
            }
            Header::EndOfStream { .. } => {
                self.configs.clear();
                self.metadata = None;
                self.gop.clear();
                self.gop_bytes = 0;
                self.gop_valid = false;
            }
            _ => {}
        }
    }
}

struct Writer {
    hub: PathBuf,
    key: StreamKey,
    /// The publisher's connection id, named in every (re-)announce.
    conn_id: u64,
    origin: Origin,
    side: Arc<HubSide>,
    events: mpsc::Sender<LinkEvent>,
    rbuf: BytesMut,
}

enum Step {
    Continue,
    Lost(String),
    Done,
}

impl Writer {
    async fn run(mut self, r: OwnedReadHalf) {
        let mut conn = Some(r);
        let mut backoff = BACKOFF_MIN;
        let mut next_attempt = Instant::now();
        loop {
            let step = match &mut conn {
                Some(r) => self.connected(r).await,
                None => {
                    tokio::select! {
                        () = self.side.wake.notified() => {
                            // The publisher is gone and the hub with it: nothing to deliver.
                            if self.side.lock().closed { Step::Done } else { Step::Continue }
                        }
                        _ = tokio::time::sleep_until(next_attempt) => {
                            match self.reconnect().await {
                                Ok(Some(r)) => {
                                    tracing::info!("reconnected to the hub and re-announced the stream");
                                    backoff = BACKOFF_MIN;
                                    conn = Some(r);
                                }
                                Ok(None) => return,
                                Err(e) => {
                                    tracing::debug!(error = %e, "hub reconnect failed");
                                    backoff = (backoff * 2).min(BACKOFF_MAX);
                                    next_attempt = Instant::now() + backoff;
                                }
                            }
                            Step::Continue
                        }
                    }
                }
            };
            match step {
                Step::Continue => {}
                Step::Done => return,
                Step::Lost(why) => {
                    tracing::warn!(error = %why, "hub connection lost; keeping the publisher, reconnecting");
                    conn = None;
                    let mut st = self.side.lock();
                    st.sock = None;
                    st.out.clear();
                    st.blocked = false;
                    st.failed = None;
                    drop(st);
                    self.rbuf.clear();
                    next_attempt = Instant::now() + backoff;
                }
            }
        }
    }

    /// One step while connected: write what the publisher's task could not, or handle
    /// what the hub sent.
    async fn connected(&mut self, r: &mut OwnedReadHalf) -> Step {
        let (sock, blocked) = {
            let mut st = self.side.lock();
            if let Some(e) = &st.failed {
                return Step::Lost(e.to_string());
            }
            if st.closed && st.out.is_empty() {
                // Dropping the last handle of the write half shuts it down: the hub
                // reads the end of the connection.
                st.sock = None;
                return Step::Done;
            }
            (
                st.sock.clone(),
                st.blocked || (st.closed && !st.out.is_empty()),
            )
        };
        let Some(sock) = sock else {
            return Step::Lost("no hub socket".into());
        };
        tokio::select! {
            () = self.side.wake.notified() => Step::Continue,
            w = sock.writable(), if blocked => match w {
                Err(e) => Step::Lost(e.to_string()),
                Ok(()) => {
                    let mut st = self.side.lock();
                    st.blocked = false;
                    st.write_some();
                    Step::Continue
                }
            },
            n = r.read_buf(&mut self.rbuf) => match n {
                Ok(0) => Step::Lost("hub closed the connection".into()),
                Err(e) => Step::Lost(e.to_string()),
                Ok(_) => self.hub_messages().await,
            }
        }
    }

    async fn hub_messages(&mut self) -> Step {
        let decoder = FrameDecoder::default();
        loop {
            match decoder.decode(&mut self.rbuf) {
                Ok(None) => return Step::Continue,
                Err(e) => return Step::Lost(e.to_string()),
                Ok(Some(msg)) => match msg.header {
                    Header::Revoke { reason, .. } => {
                        let _ = self.events.send(LinkEvent::Revoked(reason)).await;
                        return Step::Done;
                    }
                    Header::Reconnect {
                        tc_url,
                        description,
                        ..
                    } => {
                        let event = LinkEvent::Reconnect {
                            tc_url,
                            description,
                        };
                        // Never waits: the connection takes one event at a time, and a
                        // request it cannot take now is one it has just been sent.
                        let _ = self.events.try_send(event);
                    }
                    Header::Error { message } => {
                        return Step::Lost(format!("hub error: {message}"))
                    }
                    _ => {}
                },
            }
        }
    }

    /// Announces again and queues the replay (configs, metadata, current GOP) ahead of
    /// what follows; `Ok(None)` when the hub refused the stream.
    async fn reconnect(&mut self) -> Result<Option<OwnedReadHalf>, LinkError> {
        let (sock, rbuf, rejected) =
            announce(&self.hub, &self.key, self.conn_id, self.origin).await?;
        if let Some(reason) = rejected {
            tracing::warn!(?reason, "hub refused the stream after a reconnect");
            let _ = self.events.send(LinkEvent::Rejected(reason)).await;
            return Ok(None);
        }
        self.rbuf = rbuf;
        let (r, w) = sock.into_split();
        let mut st = self.side.lock();
        let items = st.replay.items();
        st.out.clear();
        for (h, p) in items {
            st.push(&h, p);
        }
        st.sock = Some(Arc::new(w));
        st.blocked = false;
        st.failed = None;
        st.write_some();
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use proto::ipc::Message;
    use proto::media::FrameFlags;
    use tokio::io::AsyncWriteExt;
    use tokio::net::UnixListener;

    use super::*;

    fn frame(i: u32, key: bool, len: usize) -> (Header, Bytes) {
        let h = Header::Frame {
            stream: STREAM,
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

    /// A fake hub accepting one publisher; returns its socket after the announce.
    async fn fake_hub(l: &UnixListener) -> (UnixStream, BytesMut) {
        let (mut s, _) = l.accept().await.unwrap();
        let mut out = BytesMut::new();
        ipc::encode(
            &Header::Hello {
                version: FORMAT_VERSION,
                role: Role::Hub,
                name: "hub/1".into(),
            },
            &[],
            &mut out,
        );
        ipc::encode(
            &Header::AnnounceReply {
                stream: STREAM,
                rejected: None,
            },
            &[],
            &mut out,
        );
        s.write_all(&out).await.unwrap();
        (s, BytesMut::new())
    }

    async fn next(s: &mut UnixStream, buf: &mut BytesMut) -> Option<Message> {
        let dec = FrameDecoder::default();
        loop {
            if let Some(m) = dec.decode(buf).unwrap() {
                return Some(m);
            }
            if s.read_buf(buf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    /// A link of `budget` bytes to a fake hub in a fresh directory, past the hello and
    /// announce.
    async fn linked(name: &str, budget: usize) -> (PathBuf, UnixStream, BytesMut, Link) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let key = StreamKey::parse("live/x").unwrap();
        let origin = Origin {
            component: "test",
            timescale: 1000,
        };
        let (hub, link) = tokio::join!(
            fake_hub(&l),
            open(&path, &key, budget, 7, origin, Box::new(()))
        );
        let (mut hub, mut buf) = hub;
        let Ok(Opened::Accepted(link)) = link else {
            panic!("not accepted");
        };
        for _ in 0..2 {
            next(&mut hub, &mut buf).await.unwrap();
        }
        (dir, hub, buf, link)
    }

    #[tokio::test]
    async fn queued_frames_reach_the_hub_in_order_through_a_full_socket() {
        let (dir, mut hub, mut buf, mut link) = linked("link-test", 64 << 20).await;
        // Far more than a socket buffer, queued in batches while the hub does not read:
        // the publisher's writes block, and the link's task writes the rest.
        const N: u32 = 400;
        for i in 0..N {
            let (h, p) = frame(i, i % 50 == 0, 16 * 1024);
            link.queue(h, p);
            if i % 4 == 3 {
                link.flush();
            }
        }
        drop(link);
        for i in 0..N {
            let m = next(&mut hub, &mut buf).await.expect("every frame arrives");
            match m.header {
                Header::Frame { dts, .. } => assert_eq!(dts, i64::from(i)),
                other => panic!("expected frame {i}, got {other:?}"),
            }
            assert_eq!(m.payload.len(), 16 * 1024);
            assert!(m.payload.iter().all(|&b| b == i as u8));
        }
        assert!(
            next(&mut hub, &mut buf).await.is_none(),
            "a dropped link closes its hub connection"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn past_the_budget_frames_are_dropped_until_a_keyframe() {
        let (dir, mut hub, mut buf, mut link) = linked("link-budget", 1 << 20).await;
        // The hub does not read: the socket buffer and then the 1 MiB budget fill up.
        for i in 0..200 {
            let (h, p) = frame(i, i == 0, 64 * 1024);
            link.queue(h, p);
            link.flush();
        }
        let (h, p) = frame(1000, true, 10);
        link.queue(h, p);
        link.flush();
        drop(link);
        let mut dts = Vec::new();
        while let Some(m) = next(&mut hub, &mut buf).await {
            if let Header::Frame { dts: d, .. } = m.header {
                dts.push(d);
            }
        }
        let last = dts.pop().unwrap();
        assert_eq!(last, 1000, "sending resumes at the keyframe");
        assert!(dts.len() < 199, "frames past the budget were dropped");
        assert!(
            dts.windows(2).all(|w| w[1] == w[0] + 1),
            "no gap before the drop"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
