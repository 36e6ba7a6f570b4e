//! HTTP-FLV players: `GET /{app}/{name}.flv` answers `200` with a chunked FLV stream read
//! from the stream's ring through a [`Cursor`], like an RTMP player's: it starts at the
//! GOP cache's keyframe with the current metadata and sequence headers, skips whole GOPs
//! when it falls behind (`--player-queue-bytes`), is closed after `--max-lag-skips` skips
//! in 30 s or when its socket takes nothing for `--player-write-timeout`.
//!
//! The same body serves WebSocket-FLV players (`ws.rs`), each tag then prefixed with
//! the header of one binary WebSocket frame.
//!
//! Each entry becomes one body frame ([`Segments`]): the tag header with the tag body's
//! codec header (and the WebSocket frame header) held inline, the frame's payload from
//! the ring (shared, not copied), and the tag's back-pointer inline. Nothing is allocated
//! per tag: the bytes are composed in a per-player scratch buffer that is reused.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use proto::flv::{
    write_file_header, write_media_header, write_tag_header, PacketKind, TAG_HEADER_LEN,
};
use proto::media::{Codec, StreamKey, TrackKind};
use proto::websocket;
use tokio::sync::Notify;

use super::body::{Body, Segments};
use super::router::error;
use super::Http;
use crate::config::LAG_WINDOW;
use crate::conns::{ConnGuard, ConnKind};
use crate::cursor::{Cursor, LagCounter, LagDecision};
use crate::events::{player_event, stop_fields};
use crate::registry::Registry;
use crate::ring::Item;
use crate::stats::{HubStats, Protocol};
use crate::stream::{NewEntry, Reader, Stream, StreamState};

/// Most entries turned into body frames per poll.
const BATCH_ENTRIES: usize = 64;
/// Scratch space for one tag's header bytes (reused for every tag).
const SCRATCH: usize = 64;
/// FLV tag types.
const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;
const TAG_SCRIPT: u8 = 18;

/// What the publisher's fan-out sees of an HTTP-FLV player: a waker, and the stall check.
#[derive(Debug)]
struct Wake {
    waker: Mutex<Option<Waker>>,
    /// When the body was last asked for data (the socket took what came before).
    last_poll: Mutex<Instant>,
    stall_timeout: Duration,
    /// Closes the HTTP connection of a player whose socket stopped taking bytes (hyper no
    /// longer asks the body, so the body cannot end itself).
    abort: Arc<Notify>,
    /// The player's cursor as of its last pass, so that the ring keeps entries back to it
    /// and no further (a stream whose HTTP players keep up holds only its GOP cache).
    position: AtomicU64,
}

impl Wake {
    fn wake_task(&self) {
        if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.wake();
        }
    }
}

impl Reader for Wake {
    fn offer(&self, _: &NewEntry) {
        let last = *self.last_poll.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() > self.stall_timeout {
            self.abort.notify_one();
        }
        self.wake_task();
    }

    fn wake(&self) {
        self.wake_task();
    }

    fn position(&self) -> Option<u64> {
        Some(self.position.load(Ordering::Relaxed))
    }
}

/// One HTTP-FLV player's body.
pub struct FlvBody {
    registry: Arc<Registry>,
    stream: Arc<Stream>,
    reader_id: u64,
    wake: Arc<Wake>,
    cursor: Cursor,
    codecs: BTreeMap<(bool, u8), Codec>,
    /// HTTP-FLV or WebSocket-FLV (then every tag is one binary WebSocket frame).
    protocol: Protocol,
    scratch: BytesMut,
    codec_header: BytesMut,
    pending: VecDeque<Segments>,
    stats: Arc<HubStats>,
    kicked: Pin<Box<dyn Future<Output = ()> + Send>>,
    _listed: ConnGuard,
    _connected: telemetry::GaugeGuard,
    conn_id: u64,
    ended: bool,
    /// For the `play`/`stop` events: the player's address, when it came, bytes handed
    /// to the connection, and why the hub ended it (none: the client left).
    remote: String,
    since: Instant,
    sent: u64,
    end_reason: Option<&'static str>,
}

impl Http {
    /// `GET /{app}/{name}.flv[?token=...]`, over HTTP or (`protocol` [`Protocol::WsFlv`])
    /// as the body a WebSocket upgrade then carries.
    pub(super) async fn flv(
        &self,
        path: &str,
        query: Option<&str>,
        remote: std::net::SocketAddr,
        abort: Arc<Notify>,
        protocol: Protocol,
    ) -> Response<Body> {
        let Some((app, name)) = path
            .trim_start_matches('/')
            .strip_suffix(".flv")
            .and_then(|p| p.split_once('/'))
        else {
            return error(StatusCode::NOT_FOUND, "expected /{app}/{name}.flv");
        };
        let Ok(key) = StreamKey::new(app, name) else {
            return error(StatusCode::BAD_REQUEST, "invalid stream key");
        };
        let conn_id = self.registry.reader_id();
        let key = match self
            .authorize_player(protocol.auth(), key, query, remote, conn_id, true)
            .await
        {
            Ok(k) => k,
            Err(refused) => return refused,
        };
        match self.registry.stream(&key) {
            Some(s) if s.lock().is_live() => {}
            _ => return error(StatusCode::NOT_FOUND, format!("{key} is not live")),
        }
        let stream = match self.registry.attach_player(&key) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let cfg = self.registry.config().clone();
        let stats = self.registry.stats().clone();
        let listed = self.registry.conns().register(
            conn_id,
            ConnKind::Player,
            protocol.as_str(),
            &remote.to_string(),
            key.as_str(),
        );
        let kick = listed.kick_handle();
        let player_stats = stats.players(protocol);
        player_stats.started.inc();
        let wake = Arc::new(Wake {
            waker: Mutex::new(None),
            last_poll: Mutex::new(Instant::now()),
            stall_timeout: cfg.player_write_timeout,
            abort,
            position: AtomicU64::new(0),
        });
        let reader_id = self.registry.reader_id();
        let mut body = FlvBody {
            registry: self.registry.clone(),
            stream: stream.clone(),
            reader_id,
            wake: wake.clone(),
            cursor: Cursor::new(
                0,
                true,
                Some(LagCounter::new(cfg.max_lag_skips, LAG_WINDOW)),
            ),
            codecs: BTreeMap::new(),
            protocol,
            scratch: BytesMut::with_capacity(SCRATCH),
            codec_header: BytesMut::with_capacity(32),
            pending: VecDeque::new(),
            kicked: Box::pin(async move { kick.notified().await }),
            _listed: listed,
            _connected: player_stats.connected.track(),
            stats,
            conn_id,
            ended: false,
            remote: remote.to_string(),
            since: Instant::now(),
            sent: 0,
            end_reason: None,
        };
        {
            let mut st = stream.lock();
            let join = st.ring.join_point();
            let start = join.unwrap_or(st.ring.head());
            let has_video = st.tracks.keys().any(|(v, _)| *v);
            let has_audio = st.tracks.keys().any(|(v, _)| !*v);
            let mut file_header = BytesMut::with_capacity(proto::flv::FILE_HEADER_LEN);
            write_file_header(
                has_audio || !has_video,
                has_video || !has_audio,
                &mut file_header,
            );
            body.push(&[], file_header.freeze(), &[]);
            body.queue_headers(&st, start);
            body.cursor = Cursor::new(
                start,
                join.is_none(),
                Some(LagCounter::new(cfg.max_lag_skips, LAG_WINDOW)),
            );
            wake.position.store(start, Ordering::Relaxed);
            // Registered under the lock that fixed the cursor: no entry falls between.
            st.add_reader(reader_id, wake);
        }
        tracing::info!(conn_id, %remote, key = %key, protocol = protocol.as_str(), "flv player started");
        self.registry.publish_event(player_event(
            "play",
            key.as_str(),
            conn_id,
            &body.remote,
            protocol.as_str(),
            Vec::new(),
        ));
        let mut r = Response::new(Body::Flv(Box::new(body)));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("video/x-flv"),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        );
        r
    }
}

impl FlvBody {
    /// Queues the metadata and the sequence headers current at entry `at`.
    fn queue_headers(&mut self, st: &StreamState, at: u64) {
        let ms = st
            .ring
            .get(at)
            .map_or_else(|| st.timeline.to_ms(st.timeline.last_out()), |e| e.out_ms);
        if let Some(m) = &st.metadata {
            self.tag(TAG_SCRIPT, 0, &[], m.clone());
        }
        for (&(video, track), t) in &st.tracks {
            self.codecs.insert((video, track), t.codec);
            self.media_tag(t.codec, track, PacketKind::Config, ms, t.payload.clone());
        }
    }

    /// Queues one tag: its header with the body's codec header, the payload, the
    /// back-pointer.
    fn tag(&mut self, tag_type: u8, ms: i64, codec_header: &[u8], payload: Bytes) {
        let data_size = (codec_header.len() + payload.len()) as u32;
        let mut head = std::mem::take(&mut self.scratch);
        head.clear();
        write_tag_header(tag_type, data_size, ms as u32, &mut head);
        head.extend_from_slice(codec_header);
        let back_pointer = (data_size + TAG_HEADER_LEN as u32).to_be_bytes();
        self.push(&head, payload, &back_pointer);
        self.scratch = head;
    }

    /// Queues `head`, `payload`, `tail` as one body frame (one WebSocket frame for a
    /// WebSocket-FLV player).
    fn push(&mut self, head: &[u8], payload: Bytes, tail: &[u8]) {
        let mut ws = [0; websocket::MAX_HEADER];
        let ws_len = if self.protocol == Protocol::WsFlv {
            let len = head.len() + payload.len() + tail.len();
            websocket::frame_header(websocket::opcode::BINARY, len as u64, &mut ws)
        } else {
            0
        };
        let mut inline = [0; super::body::INLINE_HEAD];
        let total = ws_len + head.len();
        let segments = (total <= inline.len())
            .then(|| {
                inline[..ws_len].copy_from_slice(&ws[..ws_len]);
                inline[ws_len..total].copy_from_slice(head);
                Segments::framed(&inline[..total], payload, tail)
            })
            .flatten();
        match segments {
            Some(s) => self.pending.push_back(s),
            // proto::flv's headers are at most 21 bytes: this is a bug, not input.
            None => {
                tracing::error!(
                    conn_id = self.conn_id,
                    head = total,
                    "tag header too long; closing the player"
                );
                self.ended = true;
                self.end_reason = Some("internal_error");
            }
        }
    }

    fn media_tag(&mut self, codec: Codec, track: u8, kind: PacketKind, ms: i64, payload: Bytes) {
        let video = codec.kind() == TrackKind::Video;
        let mut hdr = std::mem::take(&mut self.codec_header);
        hdr.clear();
        let payload = write_media_header(codec, track, kind, 0, &payload, &mut hdr);
        self.tag(if video { TAG_VIDEO } else { TAG_AUDIO }, ms, &hdr, payload);
        self.codec_header = hdr;
    }

    /// Takes entries from the cursor into `pending`; false when the player must end.
    fn collect(&mut self, cx: &Context<'_>) -> bool {
        let stream = self.stream.clone();
        let st = stream.lock();
        let stats = self.stats.players(self.protocol);
        match self.cursor.check_lag(&st.ring, Instant::now()) {
            LagDecision::Fine => {}
            LagDecision::TooSlow { skips, .. } => {
                stats.too_slow.inc();
                tracing::warn!(
                    conn_id = self.conn_id,
                    layer = "player",
                    skips,
                    "closing connection: too slow"
                );
                return false;
            }
            LagDecision::Skipped(skip) => {
                stats.gop_skips.inc();
                stats.dropped_frames.add(skip.frames);
                tracing::info!(
                    conn_id = self.conn_id,
                    frames = skip.frames,
                    "http-flv player fell behind; skipped to the newest keyframe"
                );
                self.queue_headers(&st, skip.to);
            }
        }
        for _ in 0..BATCH_ENTRIES {
            let Some(entry) = self.cursor.next(&st.ring) else {
                break;
            };
            let ms = entry.out_ms;
            match &entry.item {
                Item::Frame(f) => {
                    let video = f.is_video().then_some(f.is_keyframe());
                    if !self.cursor.admit(video) {
                        continue;
                    }
                    let Some(&codec) = self.codecs.get(&(f.is_video(), f.track)) else {
                        continue;
                    };
                    let cts = st
                        .timeline
                        .to_ms(i64::from(f.cts))
                        .clamp(-(1 << 23), (1 << 23) - 1) as i32;
                    let kind = PacketKind::Frame {
                        keyframe: f.flags.keyframe(),
                        disposable: f.flags.disposable(),
                        cts,
                    };
                    let payload = f.payload.clone();
                    self.media_tag(codec, f.track, kind, ms, payload);
                }
                Item::Config {
                    track,
                    codec,
                    payload,
                } => {
                    let video = codec.kind() == TrackKind::Video;
                    self.codecs.insert((video, *track), *codec);
                    let (codec, track, payload) = (*codec, *track, payload.clone());
                    self.media_tag(codec, track, PacketKind::Config, ms, payload);
                }
                Item::Metadata { payload } => {
                    let payload = payload.clone();
                    self.tag(TAG_SCRIPT, 0, &[], payload);
                }
                Item::Side { tag, body, .. } => {
                    if !body.is_empty() {
                        let body = body.clone();
                        self.tag(*tag, ms, &[], body);
                    }
                }
                Item::Published { .. } => self.cursor.wait_for_keyframe(),
                Item::Unpublished { .. } => {}
                Item::Closed => return false,
            }
        }
        self.wake
            .position
            .store(self.cursor.at(), Ordering::Relaxed);
        if self.pending.is_empty() {
            // Registered under the stream lock: an entry pushed after it wakes us.
            *self.wake.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        } else if self.cursor.behind_head(&st.ring) {
            cx.waker().wake_by_ref();
        }
        drop(st);
        true
    }

    /// The next body frame; `None` ends the response.
    pub fn poll_segments(&mut self, cx: &mut Context<'_>) -> Poll<Option<Segments>> {
        if self.ended {
            return Poll::Ready(None);
        }
        *self
            .wake
            .last_poll
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Instant::now();
        if self.kicked.as_mut().poll(cx).is_ready() {
            self.stats.players(self.protocol).kicked.inc();
            tracing::info!(
                conn_id = self.conn_id,
                "http-flv player kicked through the API"
            );
            self.ended = true;
            self.end_reason = Some("kicked");
            return Poll::Ready(None);
        }
        if self.pending.is_empty() && !self.collect(cx) {
            self.ended = true;
            self.end_reason = Some("ended");
            return Poll::Ready(None);
        }
        match self.pending.pop_front() {
            Some(s) => {
                self.sent += bytes::Buf::remaining(&s) as u64;
                self.stats
                    .players(self.protocol)
                    .bytes
                    .add(bytes::Buf::remaining(&s) as u64);
                Poll::Ready(Some(s))
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for FlvBody {
    fn drop(&mut self) {
        self.stream.lock().remove_reader(self.reader_id);
        self.registry.detach_player(&self.stream);
        tracing::info!(conn_id = self.conn_id, "http-flv player left");
        let reason = self.end_reason.unwrap_or("closed").to_owned();
        self.registry.publish_event(player_event(
            "stop",
            self.stream.key.as_str(),
            self.conn_id,
            &self.remote,
            self.protocol.as_str(),
            stop_fields(reason, self.sent, self.since),
        ));
    }
}
