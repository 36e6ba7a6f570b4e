//! One hub connection shared by the streams of many publishers of this process.
//!
//! ```text
//!  conn task A --queue()--> slot A [bounded: drop to the next keyframe] --+
//!  conn task B --queue()--> slot B [bounded]                             --+-- flush():
//!                                                                          |  round robin
//!    wire (committed byte order, about one writev) <-----------------------+  into the wire
//!      --> one writev of every ready stream's frames --> hub.sock (one connection)
//!                                                            | would block: the mux task
//!  conn task <--LinkEvent (Revoked / Rejected / Reconnect)-- mux task <-- hub messages
//!                                      on a lost hub: reconnect with backoff, re-announce
//!                                      every stream (configs, metadata, current GOP)
//! ```
//!
//! Every publisher used to have its own connection: one `writev` and one hub read per
//! publisher per read tick. Here the first publisher task to flush after a tick writes
//! what every publisher queued with one vectored write, and the hub reads it in large
//! reads. Each stream keeps its own queue and byte budget, so a publisher that sends more
//! than the hub takes drops its own frames (to its next keyframe), and the streams share
//! the socket round robin, a quantum at a time, so one cannot starve the others. Messages
//! leave a stream's queue for the wire only as the socket takes them: the wire holds at
//! most about one write's worth, whose order is fixed (a message begun is finished first).

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proto::iov::Outbox;
use proto::ipc::{self, FrameDecoder, Header, RejectReason, Role, FORMAT_VERSION};
use proto::media::StreamKey;
use telemetry::hub_conn::{self, HubConn};
use tokio::io::AsyncReadExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use crate::link::{LinkError, LinkEvent, HUB_TIMEOUT, ITEM_OVERHEAD};
use crate::{Guard, Origin};

/// Streams one connection carries before another is opened (the hub closes a publisher
/// connection that announces more than 1024).
pub(crate) const STREAMS_PER_CONN: usize = 512;
/// Most slices passed to one `writev` (Linux's IOV_MAX).
const MAX_IOV: usize = 1024;
/// Bytes moved into the wire before a write: a read tick of a few dozen publishers.
const WIRE_BYTES: usize = 1 << 20;
/// Bytes one stream moves into the wire per turn of the round robin.
const QUANTUM: usize = 64 * 1024;
/// Payloads up to this size are copied next to their header (audio frames, configs):
/// fewer slices per write, and a copy of a few hundred bytes costs less than a slice.
const INLINE: usize = 512;
/// Socket send buffer asked for (the kernel caps it at `net.core.wmem_max`): one tick of
/// every publisher fits, so the tick is written without waiting for the hub to read.
const SNDBUF: usize = 4 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Reconnect attempts to a missing hub are cheap (a failed UDS connect), and the cap bounds
/// how long after a hub restart the streams are back: a new player must see them within 2 s.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The shared connections of this process, for every hub socket path it publishes to.
fn pool() -> &'static Mutex<Vec<Arc<Mux>>> {
    static POOL: OnceLock<Mutex<Vec<Arc<Mux>>>> = OnceLock::new();
    POOL.get_or_init(Mutex::default)
}

/// A connection to `hub` for `origin`'s streams with room for one more, opened (and its
/// task started) if there is none.
pub(crate) fn for_hub(hub: &Path, origin: Origin) -> Arc<Mux> {
    let mut pool = pool().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = pool
        .iter()
        .find(|m| m.hub == hub && m.origin == origin && m.lock().streams.len() < STREAMS_PER_CONN)
    {
        return m.clone();
    }
    let mux = Arc::new(Mux {
        hub: hub.to_path_buf(),
        origin,
        state: Mutex::new(MuxState::default()),
        wake: Notify::new(),
        connecting: tokio::sync::Mutex::new(()),
    });
    let span = tracing::info_span!("hub_link", n = pool.len());
    tokio::spawn(tracing::Instrument::instrument(mux.clone().run(), span));
    pool.push(mux.clone());
    mux
}

/// One hub connection and the streams it carries.
pub(crate) struct Mux {
    hub: PathBuf,
    origin: Origin,
    state: Mutex<MuxState>,
    /// Wakes the mux task: the socket would block, a write failed, a stream closed, or a
    /// new connection's read half is waiting.
    wake: Notify,
    /// One connection attempt at a time (the task's reconnects and a publisher's open).
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct MuxState {
    /// The connection's write half; `None` while disconnected.
    sock: Option<Arc<OwnedWriteHalf>>,
    /// The read half of a connection just made, for the task to take.
    reader: Option<(OwnedReadHalf, BytesMut)>,
    /// Bytes whose order on the connection is fixed, not yet taken by the socket.
    wire: Outbox,
    /// The socket would block: the task writes the rest when it can.
    blocked: bool,
    /// A write failed: the task reconnects.
    failed: Option<io::Error>,
    streams: HashMap<u32, Slot>,
    /// Streams with queued messages, in round-robin order.
    ready: VecDeque<u32>,
    last_handle: u32,
    /// Guards of closed streams, released once the wire has written past the position.
    retiring: VecDeque<(u64, Guard)>,
}

/// One stream on the connection.
struct Slot {
    key: StreamKey,
    conn_id: u64,
    /// Messages not yet in the wire, with their media cost.
    queue: VecDeque<(Header, Bytes, usize)>,
    /// Media cost of `queue`.
    queued: usize,
    budget: usize,
    replay: Replay,
    events: mpsc::Sender<LinkEvent>,
    /// The first announce's answer goes here (the publisher's open waits for it).
    reply: Option<oneshot::Sender<Option<RejectReason>>>,
    /// In `ready`.
    ready: bool,
    /// The publisher's end was dropped: the slot goes once its queue is written.
    closed: bool,
    /// Revoked or refused: nothing more goes to the hub.
    dead: bool,
    guard: Option<Guard>,
}

impl Mux {
    fn lock(&self) -> MutexGuard<'_, MuxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Announces `key` for client `conn_id` and waits for the hub's answer; on acceptance
    /// the returned handle names the stream from then on. `budget` bounds its queue, `gop`
    /// the GOP kept for a re-announce (0: none). `guard` is held until the stream's last
    /// message is written.
    pub(crate) async fn announce(
        self: &Arc<Self>,
        key: &StreamKey,
        conn_id: u64,
        budget: usize,
        gop: usize,
        events: mpsc::Sender<LinkEvent>,
        guard: Guard,
    ) -> Result<Result<u32, RejectReason>, LinkError> {
        self.connect().await?;
        let (tx, rx) = oneshot::channel();
        let handle = {
            let mut st = self.lock();
            if st.sock.is_none() {
                return Err(LinkError::Closed);
            }
            let handle = st.new_handle();
            let mut slot = Slot {
                key: key.clone(),
                conn_id,
                queue: VecDeque::new(),
                queued: 0,
                budget,
                replay: Replay::new(gop),
                events,
                reply: Some(tx),
                ready: false,
                closed: false,
                dead: false,
                guard: Some(guard),
            };
            slot.queue
                .push_back((announce(handle, key, conn_id, self.origin), Bytes::new(), 0));
            st.streams.insert(handle, slot);
            st.mark_ready(handle);
            handle
        };
        self.flush();
        match tokio::time::timeout(HUB_TIMEOUT, rx).await {
            Ok(Ok(None)) => Ok(Ok(handle)),
            Ok(Ok(Some(reason))) => Ok(Err(reason)),
            // The connection was lost before the answer.
            Ok(Err(_)) => Err(LinkError::Closed),
            Err(_) => {
                // Ends the stream should the hub accept it after all.
                self.queue(
                    handle,
                    Header::EndOfStream {
                        stream: handle,
                        reason: "timeout".into(),
                    },
                    Bytes::new(),
                    None,
                );
                self.close(handle);
                Err(LinkError::Timeout(HUB_TIMEOUT))
            }
        }
    }

    /// Queues one message of stream `handle` (remembered for a re-announce); `cost`:
    /// media, refused (false) when the stream's budget is spent. While disconnected only
    /// the replay state sees it.
    pub(crate) fn queue(
        &self,
        handle: u32,
        header: Header,
        payload: Bytes,
        cost: Option<usize>,
    ) -> bool {
        let mut st = self.lock();
        let connected = st.sock.is_some();
        let Some(slot) = st.streams.get_mut(&handle) else {
            return true;
        };
        if slot.dead {
            return true;
        }
        if cost.is_some_and(|c| slot.queued + c > slot.budget) {
            return false;
        }
        slot.replay.observe(&header, &payload);
        if connected {
            let cost = cost.unwrap_or(0);
            slot.queued += cost;
            slot.queue.push_back((header, payload, cost));
            st.mark_ready(handle);
        }
        true
    }

    /// Writes what the streams queued with one vectored write, as far as the socket takes
    /// it without blocking; the task waits for the rest.
    pub(crate) fn flush(&self) {
        let mut st = self.lock();
        if st.blocked || st.failed.is_some() || (st.ready.is_empty() && st.wire.is_empty()) {
            return;
        }
        if st.write_some() {
            drop(st);
            self.wake.notify_one();
        }
    }

    /// The publisher of stream `handle` let go: the slot goes once its queue is written
    /// (at once while disconnected: there is nobody to deliver to).
    pub(crate) fn close(&self, handle: u32) {
        let mut st = self.lock();
        let connected = st.sock.is_some();
        let end = st.wire.written() + st.wire.bytes() as u64;
        let Some(slot) = st.streams.get_mut(&handle) else {
            return;
        };
        slot.closed = true;
        if !connected || slot.queue.is_empty() || slot.dead {
            let slot = st.streams.remove(&handle).expect("present");
            st.retire(end, slot);
        }
        drop(st);
        self.flush();
        self.wake.notify_one();
    }

    /// Connects if not connected, re-announcing every stream on the new connection.
    async fn connect(&self) -> Result<(), LinkError> {
        let _one = self.connecting.lock().await;
        if self.lock().sock.is_some() {
            return Ok(());
        }
        let mut hello = BytesMut::new();
        ipc::encode(
            &Header::Hello {
                version: FORMAT_VERSION,
                role: Role::Publisher,
                name: ipc::hello_name(self.origin.component, std::process::id(), None),
            },
            &[],
            &mut hello,
        );
        let HubConn { sock, buf } =
            tokio::time::timeout(HUB_TIMEOUT, hub_conn::open(&self.hub, &hello))
                .await
                .map_err(|_| LinkError::Timeout(HUB_TIMEOUT))??;
        if let Err(e) =
            nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::SndBuf, &SNDBUF)
        {
            tracing::debug!(error = %e, "SO_SNDBUF not raised");
        }
        let (r, w) = sock.into_split();
        let mut st = self.lock();
        st.sock = Some(Arc::new(w));
        st.wire.clear();
        st.blocked = false;
        st.failed = None;
        st.ready.clear();
        let origin = self.origin;
        let handles: Vec<u32> = st.streams.keys().copied().collect();
        for handle in handles {
            let slot = st.streams.get_mut(&handle).expect("listed");
            slot.queue.clear();
            slot.queued = 0;
            slot.ready = false;
            let announce = announce(handle, &slot.key, slot.conn_id, origin);
            slot.queue.push_back((announce, Bytes::new(), 0));
            for (h, p) in slot.replay.items() {
                let cost = p.len() + ITEM_OVERHEAD;
                slot.queued += cost;
                slot.queue.push_back((h, p, cost));
            }
            tracing::info!(key = %slot.key, conn_id = slot.conn_id, "reconnected to the hub and re-announced the stream");
            st.mark_ready(handle);
        }
        st.reader = Some((r, buf));
        st.write_some();
        drop(st);
        self.wake.notify_one();
        Ok(())
    }

    /// The connection is gone: what was not written is dropped (the replay state has
    /// it), streams whose publisher left or whose announce was unanswered go.
    fn lost(&self, why: &str) {
        let mut st = self.lock();
        st.sock = None;
        st.reader = None;
        st.wire.clear();
        st.blocked = false;
        st.failed = None;
        st.ready.clear();
        st.retiring.clear();
        st.streams
            .retain(|_, s| !s.closed && !s.dead && s.reply.is_none());
        for slot in st.streams.values_mut() {
            slot.queue.clear();
            slot.queued = 0;
            slot.ready = false;
        }
        let streams = st.streams.len();
        drop(st);
        if streams > 0 {
            tracing::warn!(error = %why, streams, "hub connection lost; keeping the publishers, reconnecting");
        } else {
            tracing::debug!(error = %why, "hub connection lost");
        }
    }

    /// The connection's task: writes what the publishers' tasks could not, reads the hub's
    /// messages, and reconnects after a loss while there are streams to carry.
    async fn run(self: Arc<Self>) {
        let mut reader: Option<(OwnedReadHalf, BytesMut)> = None;
        let mut backoff = BACKOFF_MIN;
        let mut next_attempt = Instant::now();
        loop {
            if let Some(r) = self.lock().reader.take() {
                reader = Some(r);
                backoff = BACKOFF_MIN;
            }
            let lost = match &mut reader {
                Some((r, buf)) => self.connected(r, buf).await,
                None => {
                    let streams = !self.lock().streams.is_empty();
                    tokio::select! {
                        () = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(next_attempt), if streams => {
                            if let Err(e) = self.connect().await {
                                tracing::debug!(error = %e, "hub reconnect failed");
                                backoff = (backoff * 2).min(BACKOFF_MAX);
                                next_attempt = Instant::now() + backoff;
                            }
                        }
                    }
                    None
                }
            };
            if let Some(why) = lost {
                reader = None;
                self.lost(&why);
                next_attempt = Instant::now() + backoff;
            }
        }
    }

    /// One step while connected; `Some(why)` when the connection is lost.
    async fn connected(&self, r: &mut OwnedReadHalf, buf: &mut BytesMut) -> Option<String> {
        let (sock, blocked) = {
            let mut st = self.lock();
            if let Some(e) = st.failed.take() {
                return Some(e.to_string());
            }
            match st.sock.clone() {
                Some(sock) => (sock, st.blocked),
                None => return Some("no hub socket".into()),
            }
        };
        tokio::select! {
            () = self.wake.notified() => None,
            w = sock.writable(), if blocked => match w {
                Err(e) => Some(e.to_string()),
                Ok(()) => {
                    let mut st = self.lock();
                    st.blocked = false;
                    st.write_some();
                    None
                }
            },
            n = r.read_buf(buf) => match n {
                Ok(0) => Some("hub closed the connection".into()),
                Err(e) => Some(e.to_string()),
                Ok(_) => self.hub_messages(buf),
            }
        }
    }

    /// Applies what the hub sent: answers to announces, revokes, reconnect requests.
    fn hub_messages(&self, buf: &mut BytesMut) -> Option<String> {
        let decoder = FrameDecoder::default();
        loop {
            let msg = match decoder.decode(buf) {
                Ok(None) => return None,
                Err(e) => return Some(e.to_string()),
                Ok(Some(msg)) => msg,
            };
            let mut st = self.lock();
            let end = st.wire.written() + st.wire.bytes() as u64;
            match msg.header {
                Header::AnnounceReply { stream, rejected } => {
                    let Some(slot) = st.streams.get_mut(&stream) else {
                        continue;
                    };
                    if let Some(tx) = slot.reply.take() {
                        // Nobody waiting any more (the open timed out) queued the stream's
                        // end already.
                        let _ = tx.send(rejected);
                        if rejected.is_some() {
                            let slot = st.streams.remove(&stream).expect("present");
                            st.retire(end, slot);
                        }
                    } else if let Some(reason) = rejected {
                        tracing::warn!(key = %slot.key, conn_id = slot.conn_id, ?reason, "hub refused the stream after a reconnect");
                        slot.kill();
                        let _ = slot.events.try_send(LinkEvent::Rejected(reason));
                    }
                }
                Header::Revoke { stream, reason } => {
                    if let Some(slot) = st.streams.get_mut(&stream) {
                        slot.kill();
                        let _ = slot.events.try_send(LinkEvent::Revoked(reason));
                    }
                }
                Header::Reconnect {
                    stream,
                    tc_url,
                    description,
                    ..
                } => {
                    if let Some(slot) = st.streams.get(&stream) {
                        // Never waits: the connection takes one event at a time, and a
                        // request it cannot take now is one it has just been sent.
                        let _ = slot.events.try_send(LinkEvent::Reconnect {
                            tc_url,
                            description,
                        });
                    }
                }
                Header::Error { message } => return Some(format!("hub error: {message}")),
                _ => {}
            }
        }
    }
}

impl Slot {
    /// Revoked or refused: what is queued is not sent, nor anything later.
    fn kill(&mut self) {
        self.dead = true;
        self.queue.clear();
        self.queued = 0;
    }
}

impl MuxState {
    fn new_handle(&mut self) -> u32 {
        // Never reused while the process lives (a hub message about an old stream must not
        // reach a new one): 2^32 publishes wrap around, past streams long gone.
        loop {
            self.last_handle = self.last_handle.wrapping_add(1);
            if self.last_handle != 0 && !self.streams.contains_key(&self.last_handle) {
                return self.last_handle;
            }
        }
    }

    fn mark_ready(&mut self, handle: u32) {
        if let Some(slot) = self.streams.get_mut(&handle) {
            if !slot.ready && !slot.queue.is_empty() {
                slot.ready = true;
                self.ready.push_back(handle);
            }
        }
    }

    /// `slot` left; its guard is released once the wire has written up to `end`.
    fn retire(&mut self, end: u64, mut slot: Slot) {
        if let Some(g) = slot.guard.take() {
            self.retiring.push_back((end, g));
        }
        self.release();
    }

    fn release(&mut self) {
        let written = self.wire.written();
        while self
            .retiring
            .front()
            .is_some_and(|(end, _)| *end <= written)
        {
            self.retiring.pop_front();
        }
    }

    /// Moves queued messages into the wire, round robin over the ready streams, a
    /// quantum each, until about one write's worth is there.
    fn fill_wire(&mut self) {
        while self.wire.bytes() < WIRE_BYTES && self.wire.buffers() + 2 < MAX_IOV {
            let Some(handle) = self.ready.pop_front() else {
                return;
            };
            let Some(slot) = self.streams.get_mut(&handle) else {
                continue;
            };
            let mut moved = 0;
            while moved < QUANTUM
                && self.wire.bytes() < WIRE_BYTES
                && self.wire.buffers() + 2 < MAX_IOV
            {
                let Some((mut header, payload, cost)) = slot.queue.pop_front() else {
                    break;
                };
                slot.queued -= cost;
                if let Some(s) = header.stream_mut() {
                    *s = handle;
                }
                moved += payload.len() + 64;
                if payload.len() <= INLINE {
                    self.wire.append(|b| {
                        ipc::encode_header(&header, payload.len(), b);
                        b.extend_from_slice(&payload);
                    });
                } else {
                    self.wire
                        .append(|b| ipc::encode_header(&header, payload.len(), b));
                    self.wire.push(payload);
                }
            }
            if !slot.queue.is_empty() {
                self.ready.push_back(handle);
                continue;
            }
            slot.ready = false;
            if slot.closed {
                let end = self.wire.written() + self.wire.bytes() as u64;
                let slot = self.streams.remove(&handle).expect("present");
                self.retire(end, slot);
            }
        }
    }

    /// Writes until nothing is queued or the socket would block; true when the task must
    /// take over (blocked, or failed).
    fn write_some(&mut self) -> bool {
        let Some(sock) = self.sock.clone() else {
            return false;
        };
        loop {
            if self.wire.bytes() < WIRE_BYTES / 2 {
                self.fill_wire();
            }
            if self.wire.is_empty() {
                self.blocked = false;
                return false;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = self.wire.fill(&mut iov);
            match sock.try_write_vectored(&iov[..n]) {
                Ok(0) => {
                    self.failed = Some(io::ErrorKind::WriteZero.into());
                    return true;
                }
                Ok(w) => {
                    self.wire.advance(w);
                    self.release();
                }
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
    }
}

/// The announce of stream `handle` on behalf of client `conn_id`.
fn announce(handle: u32, key: &StreamKey, conn_id: u64, origin: Origin) -> Header {
    Header::AnnounceClient {
        stream: handle,
        key: key.to_string(),
        timescale: origin.timescale,
        conn_id,
    }
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
    /// Bytes the GOP may hold; 0: no GOP is kept.
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

    /// What a re-announce sends first, in order (the handles are set when written).
    fn items(&self) -> Vec<(Header, Bytes)> {
        self.configs
            .iter()
            .cloned()
            .chain(
                self.metadata
                    .iter()
                    .map(|m| (Header::Metadata { stream: 0 }, m.clone())),
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
            Header::Frame { .. } if self.cap == 0 => {}
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
