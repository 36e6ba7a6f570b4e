//! A publisher connection (ingest-rtmp, ingest-srt, custom producers): announces, track
//! configurations, frames, metadata and ends of streams, applied to the registry.
//! A connection that breaks ends every stream it owns. An ingest process sends all its
//! publishers' streams over one connection (`AnnounceClient` names each stream's client),
//! so one read here takes the frames of many streams.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proto::flv::PacketKind;
use proto::ipc::{self, FrameDecoder, Header, IpcError, Message, RejectReason, SidePacket};
use proto::media::StreamKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::conns::{ConnGuard, ConnKind};
use crate::events::{describe_stream, event};
use crate::registry::Registry;
use crate::ring::Side;
use crate::server::Opened;
use crate::stream::{Delivery, Owner, PublisherId, Revocation, Stream, StreamError};

/// Size of the receive buffers: a burst of frames arrives in few large reads rather than
/// many small ones (an ingest's shared connection brings every publisher's frames of a
/// read-coalescing tick at once, hundreds of KiB). Frames are slices of these buffers (the ring holds them), so a new
/// one is taken only when less than a quarter is left: taking one per read would pin a
/// whole buffer for every read's frame still in the GOP cache.
const READ_BUF: usize = 256 * 1024;

/// Most streams one publisher connection may hold at once.
const MAX_STREAMS_PER_CONN: usize = 1024;

/// Why a publisher connection ended.
#[derive(Debug, thiserror::Error)]
enum PublisherError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("ipc: {0}")]
    Ipc(#[from] IpcError),
    #[error("more than {max} streams on one connection")]
    TooManyStreams { max: usize },
}

struct Publisher {
    /// This IPC connection, in the hub's numbering (identifies the publisher).
    ipc_id: u64,
    /// The client connection behind it, in the sender's numbering (logged as `conn_id`),
    /// when the connection serves one client; a stream announced with `AnnounceClient`
    /// has its own.
    conn_id: Option<u64>,
    registry: Arc<Registry>,
    streams: HashMap<u32, Published>,
    /// The API's entries of the streams, by handle.
    listed: HashMap<u32, ConnGuard>,
    /// The peer's hello name (`ingest-rtmp/123`), shown by the API.
    peer: String,
    revoke_tx: mpsc::Sender<(u32, Revocation)>,
    out: BytesMut,
    /// Frames were delivered to players since the last read (they may hold some back).
    delivered: bool,
}

/// One live stream of this connection and what its events report.
struct Published {
    stream: Arc<Stream>,
    /// The client publishing it, in the sender's numbering.
    conn_id: Option<u64>,
    since: Instant,
    frames: u64,
    bytes: u64,
    /// Whether the `publish` event went out (at the first frame, when codecs and
    /// metadata are known).
    announced: bool,
}

/// Serves one publisher connection until it closes.
pub async fn run(sock: UnixStream, ipc_id: u64, opened: Opened, registry: Arc<Registry>) {
    let conn_id = opened.conn_id;
    let (mut rd, mut wr) = sock.into_split();
    // Room for a revoke of every stream the connection may hold (an ingest's shared
    // connection carries hundreds).
    let (revoke_tx, mut revoke_rx) = mpsc::channel(MAX_STREAMS_PER_CONN);
    let mut p = Publisher {
        ipc_id,
        conn_id,
        registry,
        streams: HashMap::new(),
        listed: HashMap::new(),
        peer: opened.name.clone(),
        revoke_tx,
        out: BytesMut::new(),
        delivered: false,
    };
    let mut buf = opened.buf;
    let decoder = FrameDecoder::default();
    let coalesce = p.registry.config().write_coalesce;
    // When players must write what they held back for coalescing: the stream went quiet
    // for a coalescing window (while frames flow, the next frame's delivery writes them).
    // One timer, moved only when it fires early, rather than a new timer per read.
    let quiet = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(quiet);
    let mut quiet_armed = false;
    let mut last_delivery = Instant::now();
    let mut orders = p.registry.reconnect_orders();
    let result: Result<(), PublisherError> = async {
        for msg in opened.messages {
            p.on_message(msg)?;
        }
        loop {
            while let Some(msg) = decoder.decode(&mut buf)? {
                p.on_message(msg)?;
            }
            if std::mem::take(&mut p.delivered) && !coalesce.is_zero() {
                last_delivery = Instant::now();
                if !quiet_armed {
                    quiet.as_mut().reset((last_delivery + coalesce).into());
                    quiet_armed = true;
                }
            }
            p.flush(&mut wr).await?;
            if buf.capacity() - buf.len() < READ_BUF / 4 {
                buf.reserve(READ_BUF);
            }
            tokio::select! {
                n = rd.read_buf(&mut buf) => {
                    if n? == 0 {
                        return Ok(());
                    }
                }
                Some((handle, why)) = revoke_rx.recv() => p.revoked(handle, why),
                order = orders.next() => p.reconnect(&order),
                _ = &mut quiet, if quiet_armed => {
                    let due = last_delivery + coalesce;
                    if Instant::now() < due {
                        quiet.as_mut().reset(due.into());
                    } else {
                        quiet_armed = false;
                        for published in p.streams.values() {
                            published.stream.flush_readers();
                        }
                    }
                }
            }
        }
    }
    .await;
    match result {
        Ok(()) => tracing::debug!(conn_id, "publisher connection closed"),
        Err(e) => {
            tracing::warn!(conn_id, layer = "publisher", error = %e, "closing connection");
            if let PublisherError::Ipc(e) = &e {
                ipc::encode(
                    &Header::Error {
                        message: e.to_string(),
                    },
                    &[],
                    &mut p.out,
                );
                let _ = p.flush(&mut wr).await;
            }
        }
    }
    for (handle, published) in std::mem::take(&mut p.streams) {
        p.end(handle, published, "disconnect");
    }
}

impl Publisher {
    fn id(&self, handle: u32) -> PublisherId {
        PublisherId {
            conn_id: self.ipc_id,
            handle,
        }
    }

    async fn flush(&mut self, wr: &mut OwnedWriteHalf) -> std::io::Result<()> {
        if !self.out.is_empty() {
            wr.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    fn reply(&mut self, stream: u32, rejected: Option<RejectReason>) {
        ipc::encode(
            &Header::AnnounceReply { stream, rejected },
            &[],
            &mut self.out,
        );
    }

    /// A hub event about stream `key` of client `conn_id` on this connection.
    fn event(
        &self,
        conn_id: Option<u64>,
        kind: &str,
        key: &str,
        mut fields: Vec<(String, String)>,
    ) {
        let mut e = event(kind, key, conn_id.unwrap_or(0), "");
        fields.push(("publisher".to_owned(), self.peer.clone()));
        e.fields = fields;
        self.registry.publish_event(e);
    }

    /// The `publish` event, once per publish, when the first frame shows the stream
    /// is flowing (its track configurations and metadata came before it).
    fn announce_event(&self, p: &Published) {
        let mut fields = Vec::new();
        describe_stream(&p.stream.lock(), &mut fields);
        self.event(p.conn_id, "publish", p.stream.key.as_str(), fields);
    }

    /// The `unpublish` event of a publish that ends.
    fn unpublish_event(&self, p: &Published, reason: &str) {
        if !p.announced {
            self.announce_event(p);
        }
        let mut fields = vec![("reason".to_owned(), reason.to_owned())];
        describe_stream(&p.stream.lock(), &mut fields);
        fields.extend([
            (
                "duration_ms".to_owned(),
                p.since.elapsed().as_millis().to_string(),
            ),
            ("frames".to_owned(), p.frames.to_string()),
            ("bytes".to_owned(), p.bytes.to_string()),
        ]);
        self.event(p.conn_id, "unpublish", p.stream.key.as_str(), fields);
    }

    fn revoked(&mut self, handle: u32, why: Revocation) {
        if let Some(published) = self.streams.remove(&handle) {
            self.listed.remove(&handle);
            let key = &published.stream.key;
            let conn_id = published.conn_id;
            match why {
                Revocation::Takeover => {
                    tracing::info!(conn_id, key = %key, "stream taken over by another publisher");
                    self.unpublish_event(&published, why.reason());
                }
                Revocation::Kicked => {
                    tracing::info!(conn_id, key = %key, "publisher kicked through the API");
                    self.end(handle, published, why.reason());
                }
            }
            ipc::encode(
                &Header::Revoke {
                    stream: handle,
                    reason: why.reason().into(),
                },
                &[],
                &mut self.out,
            );
        }
    }

    /// Passes a reconnect request on to the ingest of each stream it applies to.
    fn reconnect(&mut self, order: &crate::reconnect::Order) {
        for (&handle, published) in &self.streams {
            let key = published.stream.key.as_str();
            if !order.applies_to(key) {
                continue;
            }
            tracing::info!(
                conn_id = published.conn_id,
                key,
                "reconnect request passed to the publisher"
            );
            ipc::encode(
                &Header::Reconnect {
                    stream: handle,
                    key: Some(key.to_owned()),
                    tc_url: order.tc_url.clone(),
                    description: Some(order.description.clone()),
                },
                &[],
                &mut self.out,
            );
        }
    }

    fn end(&self, handle: u32, published: Published, reason: &str) {
        self.unpublish_event(&published, reason);
        let stream = &published.stream;
        let id = self.id(handle);
        let conn_id = published.conn_id;
        if let Some(generation) = self.registry.unpublish(stream, id, reason) {
            tracing::info!(conn_id, key = %stream.key, reason, "publisher left; players wait");
            let registry = self.registry.clone();
            let stream = stream.clone();
            let timeout = registry.config().unpublish_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                registry.unpublish_expired(&stream, generation);
            });
        } else {
            tracing::info!(conn_id, key = %stream.key, reason, "publisher left");
        }
    }

    fn on_message(&mut self, msg: Message) -> Result<(), PublisherError> {
        if let Some(p) = msg.header.side_packet() {
            self.side(p.stream, track_side(p, msg.payload));
            return Ok(());
        }
        match msg.header {
            Header::Announce {
                stream: handle,
                key,
                timescale,
            } => self.announce(handle, &key, timescale, self.conn_id)?,
            Header::AnnounceClient {
                stream: handle,
                key,
                timescale,
                conn_id,
            } => self.announce(handle, &key, timescale, Some(conn_id))?,
            Header::TrackConfig {
                stream,
                track,
                codec,
            } => {
                let id = self.id(stream);
                if let Some(Published { stream: s, .. }) = self.streams.get(&stream) {
                    let r = s.lock().track_config(id, track, codec, msg.payload);
                    note(s, r);
                }
            }
            Header::Frame { .. } => {
                if let Some((stream, frame)) = msg.frame() {
                    let id = self.id(stream);
                    let Some(p) = self.streams.get_mut(&stream) else {
                        return Ok(());
                    };
                    let stats = self.registry.stats();
                    stats.frames_in.inc();
                    stats.bytes_in.add(frame.payload.len() as u64);
                    p.frames += 1;
                    p.bytes += frame.payload.len() as u64;
                    let r = p.stream.lock().frame(id, frame);
                    // Without players nothing is held back: no flush timer to arm.
                    self.delivered |= r.as_ref().is_ok_and(Delivery::has_readers);
                    note(&p.stream, r);
                    if !p.announced {
                        p.announced = true;
                        let p = &self.streams[&stream];
                        self.announce_event(p);
                    }
                }
            }
            Header::Metadata { stream } => {
                let id = self.id(stream);
                if let Some(Published { stream: s, .. }) = self.streams.get(&stream) {
                    let r = s.lock().metadata(id, msg.payload);
                    note(s, r);
                }
            }
            Header::Data { stream, dts } => self.side(
                stream,
                Side::Data {
                    dts,
                    payload: msg.payload,
                },
            ),
            Header::TimestampOffset {
                stream,
                track,
                video,
                nanos,
            } => self.side(
                stream,
                Side::TimestampOffset {
                    track,
                    video,
                    nanos,
                },
            ),
            Header::EndOfStream { stream, reason } => {
                self.listed.remove(&stream);
                if let Some(p) = self.streams.remove(&stream) {
                    self.end(stream, p, &reason);
                }
            }
            Header::Event(e) => {
                tracing::debug!(conn_id = self.conn_id, kind = %e.kind, key = %e.key, "event");
                self.registry.on_event(self.ipc_id, e);
            }
            other => {
                tracing::debug!(conn_id = self.conn_id, header = ?other, "ignored message from a publisher");
            }
        }
        Ok(())
    }

    /// A side message (FORMAT.md variants 13 to 17) for the stream of handle `stream`.
    fn side(&self, stream: u32, side: Side) {
        let id = self.id(stream);
        if let Some(Published { stream: s, .. }) = self.streams.get(&stream) {
            // The lock is released at the end of this statement, before the delivery.
            let r = s.lock().side(id, side);
            match r {
                Ok(Some(d)) => note(s, Ok(d)),
                Ok(None) => {}
                Err(e) => note(s, Err(e)),
            }
        }
    }

    fn announce(
        &mut self,
        handle: u32,
        key: &str,
        timescale: u32,
        conn_id: Option<u64>,
    ) -> Result<(), PublisherError> {
        let key = match StreamKey::parse(key) {
            Ok(k) if timescale > 0 => k,
            Ok(_) => {
                tracing::warn!(conn_id, key, "announce with timescale 0 refused");
                self.reply(handle, Some(RejectReason::Denied));
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(conn_id, key, error = %e, "announce with an invalid key refused");
                self.reply(handle, Some(RejectReason::Denied));
                return Ok(());
            }
        };
        self.listed.remove(&handle);
        if let Some(old) = self.streams.remove(&handle) {
            self.end(handle, old, "reannounced");
        }
        if self.streams.len() >= MAX_STREAMS_PER_CONN {
            return Err(PublisherError::TooManyStreams {
                max: MAX_STREAMS_PER_CONN,
            });
        }
        let owner = Owner {
            id: self.id(handle),
            revoke: self.revoke_tx.clone(),
        };
        match self.registry.announce_over(&key, owner, timescale) {
            Ok((stream, previous)) => {
                tracing::info!(conn_id, key = %key, timescale, "publish started");
                if previous.is_some() {
                    self.event(
                        conn_id,
                        "duplicate_publisher",
                        key.as_str(),
                        vec![("action".to_owned(), "taken_over".to_owned())],
                    );
                }
                self.registry.stats().publishes.inc();
                self.streams.insert(
                    handle,
                    Published {
                        stream,
                        conn_id,
                        since: Instant::now(),
                        frames: 0,
                        bytes: 0,
                        announced: false,
                    },
                );
                let entry = self.registry.conns().register(
                    conn_id.unwrap_or(self.ipc_id),
                    ConnKind::Publisher,
                    &self.peer,
                    "",
                    key.as_str(),
                );
                self.listed.insert(handle, entry);
                self.reply(handle, None);
            }
            Err(reason) => {
                tracing::info!(conn_id, key = %key, ?reason, "publish refused");
                self.registry.stats().publish_refused.inc();
                self.reply(handle, Some(reason));
                let reason = match reason {
                    RejectReason::Duplicate => "duplicate",
                    RejectReason::Capacity => "capacity",
                    RejectReason::Denied => "denied",
                };
                self.event(
                    conn_id,
                    "publish_refused",
                    key.as_str(),
                    vec![("reason".to_owned(), reason.to_owned())],
                );
                if reason == "duplicate" {
                    self.event(
                        conn_id,
                        "duplicate_publisher",
                        key.as_str(),
                        vec![("action".to_owned(), "refused".to_owned())],
                    );
                }
            }
        }
        Ok(())
    }
}

/// A track's side packet and its body as the stream takes them.
fn track_side(p: SidePacket, payload: Bytes) -> Side {
    let (track, codec) = (p.track, p.codec);
    match (p.kind, p.dts) {
        (PacketKind::Metadata, Some(dts)) => Side::TrackMetadata {
            track,
            codec,
            dts,
            payload,
        },
        (PacketKind::EndOfSequence, Some(dts)) => Side::EndOfSequence { track, codec, dts },
        // The speaker layout, the one side packet without a time.
        _ => Side::ChannelConfig {
            track,
            codec,
            payload,
        },
    }
}

/// Runs the delivery of an applied message (the stream lock is already released: the
/// caller bound the result before calling) or notes why it was dropped.
fn note(stream: &Stream, r: Result<Delivery, StreamError>) {
    match r {
        Ok(d) => d.run(),
        // A revoked publisher's frames until it hears about the revoke: expected.
        Err(StreamError::NotOwner) => {}
        Err(e) => tracing::debug!(key = %stream.key, error = %e, "publisher message dropped"),
    }
}
