//! The publisher's link to the hub: announce, then a bounded queue drained by a writer
//! task that survives hub restarts.
//!
//! ```text
//!  conn task --send()--> [bounded: byte budget] --> writer task --> hub.sock
//!                         full: drop frames until       | keeps configs, metadata and the
//!                         the next video keyframe       | current GOP (bounded); on a lost
//!                                                       | hub: reconnect with backoff,
//!  conn task <--LinkEvent (Revoked / Rejected)-----------+ Announce, replay, continue
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use proto::ipc::{self, FrameDecoder, Header, IpcError, RejectReason, Role, FORMAT_VERSION};
use proto::media::{StreamKey, TrackKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::{Guard, Origin, STREAM};

/// How long connecting and the hello/announce exchange may take.
pub const HUB_TIMEOUT: Duration = Duration::from_secs(5);
/// Queue accounting per message on top of its payload (header, bookkeeping).
const ITEM_OVERHEAD: usize = 128;
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

/// What the writer task tells the connection.
#[derive(Debug)]
pub enum LinkEvent {
    /// The hub gave the key to another publisher.
    Revoked(String),
    /// After a reconnect the hub refused the stream.
    Rejected(RejectReason),
}

/// The result of opening a link.
pub enum Opened {
    Accepted(Link),
    Rejected(RejectReason),
}

/// One queued message; media holds its share of the byte budget until written.
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

/// The connection's end of the link. Dropping it lets the writer drain and close.
pub struct Link {
    tx: mpsc::Sender<Item>,
    budget: Arc<Semaphore>,
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
        let link = Link {
            tx,
            budget,
            events: erx,
            resync: false,
            has_video: false,
            dropped: 0,
        };
        (link, rx, etx)
    }

    /// Queues one message without waiting. Frames beyond the byte budget are dropped, and
    /// then every frame until the next video keyframe, so the hub never gets half a GOP.
    pub fn send(&mut self, header: Header, payload: Bytes) {
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
            let item = Item {
                header,
                payload,
                _permit: None,
            };
            if self.tx.try_send(item).is_err() {
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
        let cost = (payload.len() + ITEM_OVERHEAD).min(u32::MAX as usize) as u32;
        let sent = match self.budget.clone().try_acquire_many_owned(cost) {
            Ok(permit) => self
                .tx
                .try_send(Item {
                    header,
                    payload,
                    _permit: Some(permit),
                })
                .is_ok(),
            Err(_) => false,
        };
        if !sent {
            tracing::warn!("hub is not keeping up: dropping frames until the next keyframe");
            self.resync = true;
            self.dropped = 1;
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

/// Connects to the hub and announces `key`; on acceptance starts the writer task.
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
    let (link, rx, etx) = Link::channel(queue_bytes);
    let writer = Writer {
        hub: hub.to_owned(),
        key: key.clone(),
        conn_id,
        origin,
        rx,
        events: etx,
        replay: Replay::new(queue_bytes),
        hdr: BytesMut::with_capacity(256),
        rbuf,
    };
    let (r, w) = sock.into_split();
    let span = tracing::info_span!("hub_link", conn_id, key = %key);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            writer.run(r, w).await;
            // Shutdown waits for this: the stream's last messages are written.
            drop(guard);
        },
        span,
    ));
    Ok(Opened::Accepted(link))
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
        let mut sock = UnixStream::connect(hub).await?;
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
        sock.write_all(&out).await?;
        let decoder = FrameDecoder::default();
        let mut rbuf = BytesMut::with_capacity(4096);
        let mut hello = false;
        loop {
            while let Some(msg) = decoder.decode(&mut rbuf)? {
                match msg.header {
                    Header::Error { message } => return Err(LinkError::Hub(message)),
                    h if !hello => {
                        let role = ipc::check_hello(&h)?;
                        if role != Role::Hub {
                            return Err(LinkError::Role(role));
                        }
                        hello = true;
                    }
                    Header::AnnounceReply { stream, rejected } if stream == STREAM => {
                        return Ok((sock, rbuf, rejected));
                    }
                    _ => return Err(LinkError::Unexpected("expected AnnounceReply")),
                }
            }
            if sock.read_buf(&mut rbuf).await? == 0 {
                return Err(LinkError::Closed);
            }
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
    rx: mpsc::Receiver<Item>,
    events: mpsc::Sender<LinkEvent>,
    replay: Replay,
    hdr: BytesMut,
    rbuf: BytesMut,
}

enum Step {
    Continue,
    Lost(String),
    Done,
}

impl Writer {
    async fn run(mut self, r: OwnedReadHalf, w: OwnedWriteHalf) {
        let mut conn = Some((r, w));
        let mut backoff = BACKOFF_MIN;
        let mut next_attempt = Instant::now();
        loop {
            let step = match &mut conn {
                Some((r, w)) => self.connected(r, w).await,
                None => {
                    tokio::select! {
                        item = self.rx.recv() => match item {
                            // The publisher is gone and the hub with it: nothing to deliver.
                            None => Step::Done,
                            Some(item) => {
                                self.replay.observe(&item.header, &item.payload);
                                Step::Continue
                            }
                        },
                        _ = tokio::time::sleep_until(next_attempt) => {
                            match self.reconnect().await {
                                Ok(Some(c)) => {
                                    tracing::info!("reconnected to the hub and re-announced the stream");
                                    backoff = BACKOFF_MIN;
                                    conn = Some(c);
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
                    self.rbuf.clear();
                    next_attempt = Instant::now() + backoff;
                }
            }
        }
    }

    /// One step while connected: write the next item or handle what the hub sent.
    async fn connected(&mut self, r: &mut OwnedReadHalf, w: &mut OwnedWriteHalf) -> Step {
        tokio::select! {
            item = self.rx.recv() => {
                let Some(item) = item else {
                    let _ = w.shutdown().await;
                    return Step::Done;
                };
                self.replay.observe(&item.header, &item.payload);
                match write(w, &mut self.hdr, &item.header, &item.payload).await {
                    Ok(()) => Step::Continue,
                    Err(e) => Step::Lost(e.to_string()),
                }
            }
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
                    Header::Error { message } => {
                        return Step::Lost(format!("hub error: {message}"))
                    }
                    _ => {}
                },
            }
        }
    }

    /// Announces again and replays; `Ok(None)` when the hub refused the stream.
    async fn reconnect(&mut self) -> Result<Option<(OwnedReadHalf, OwnedWriteHalf)>, LinkError> {
        let (sock, rbuf, rejected) =
            announce(&self.hub, &self.key, self.conn_id, self.origin).await?;
        if let Some(reason) = rejected {
            tracing::warn!(?reason, "hub refused the stream after a reconnect");
            let _ = self.events.send(LinkEvent::Rejected(reason)).await;
            return Ok(None);
        }
        self.rbuf = rbuf;
        let (r, mut w) = sock.into_split();
        let replay = &self.replay;
        let items = replay
            .configs
            .iter()
            .map(|(h, p)| (h.clone(), p.clone()))
            .chain(
                replay
                    .metadata
                    .iter()
                    .map(|m| (Header::Metadata { stream: STREAM }, m.clone())),
            )
            .chain(replay.gop.iter().map(|(h, p)| (h.clone(), p.clone())))
            .collect::<Vec<_>>();
        for (h, p) in &items {
            write(&mut w, &mut self.hdr, h, p).await?;
        }
        Ok(Some((r, w)))
    }
}

async fn write(
    w: &mut OwnedWriteHalf,
    hdr: &mut BytesMut,
    header: &Header,
    payload: &Bytes,
) -> io::Result<()> {
    hdr.clear();
    ipc::encode_header(header, payload.len(), hdr);
    // Header and shared payload go out in one vectored write; the payload is not copied.
    let mut buf = Buf::chain(&hdr[..], &payload[..]);
    w.write_all_buf(&mut buf).await
}
