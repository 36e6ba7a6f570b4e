//! Subscriber connections (recorder, relayer, hookd, custom consumers): the same shared
//! rings and cursors as players, turned back into IPC messages, plus routed events.
//!
//! A subscriber that falls more than `--player-queue-bytes` behind skips to the newest
//! keyframe and is told with `Dropped` (it is never disconnected for lagging).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proto::glob::{self, Glob};
use proto::iov::Outbox;
use proto::ipc::{self, FrameDecoder, Header, IpcError, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, Notify};

use crate::conns::ConnKind;
use crate::cursor::{Cursor, LagDecision};
use crate::registry::Registry;
use crate::ring::{Item, Side};
use crate::served_player::{PlayerOf, ServedPlayer};
use crate::server::Opened;
use crate::stats::HubStats;
use crate::stream::{SharedWaker, Stream};
use crate::write::write_all_within;

/// Entries taken from one stream per pass.
const BATCH_ENTRIES: usize = 256;

#[derive(Debug, thiserror::Error)]
enum SubscriberError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("ipc: {0}")]
    Ipc(#[from] IpcError),
    #[error("stalled: the socket took no bytes for --subscriber-write-timeout ({0:?})")]
    Stalled(Duration),
}

struct Sub {
    stream: Arc<Stream>,
    /// Never closed for lagging: a subscriber that falls behind gets `Dropped`.
    cursor: Cursor,
    /// Where the ring learns how far this subscriber has read.
    reader: Arc<SharedWaker>,
    live: bool,
}

struct Subscriber {
    subs: Vec<Sub>,
    out: BytesMut,
    queue: Outbox,
    stats: Arc<HubStats>,
}

/// Serves one subscriber connection until it closes.
pub async fn run(sock: UnixStream, ipc_id: u64, opened: Opened, registry: Arc<Registry>) {
    let (mut rd, mut wr) = sock.into_split();
    let decoder = FrameDecoder::default();
    let mut buf = opened.buf;
    let mut pending: VecDeque<Message> = opened.messages.into();
    // The player this subscription serves, when it says so before its Subscribe.
    let mut player: Option<PlayerOf> = None;
    // The Subscribe request, possibly after a few events.
    let (patterns, media, events) = loop {
        match pending.pop_front() {
            Some(Message {
                header:
                    Header::Subscribe {
                        patterns,
                        media,
                        events,
                    },
                ..
            }) => break (patterns, media, events),
            Some(Message {
                header: Header::Event(e),
                ..
            }) => registry.on_event(ipc_id, e),
            Some(Message {
                header:
                    Header::Player {
                        key,
                        protocol,
                        conn_id,
                        remote,
                    },
                ..
            }) if player.is_none() => {
                player = Some(PlayerOf {
                    key,
                    protocol,
                    conn_id,
                    remote,
                })
            }
            Some(_) => {}
            None => match decoder.decode(&mut buf) {
                Ok(Some(m)) => pending.push_back(m),
                Ok(None) => match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                Err(e) => {
                    tracing::warn!(ipc_id, layer = "subscriber", error = %e, "closing connection");
                    return;
                }
            },
        }
    };
    let shown = patterns.join(" ");
    // A served player is listed (and kicked) as a player, not as a subscriber.
    let served = match player.as_ref().map(|p| ServedPlayer::attach(&registry, p)) {
        None => None,
        Some(Ok(served)) => Some(served),
        Some(Err(e)) => {
            tracing::warn!(ipc_id, layer = "subscriber", error = %e, "closing connection");
            let mut out = BytesMut::new();
            let refusal = Header::Error {
                message: e.to_string(),
            };
            ipc::encode(&refusal, &[], &mut out);
            let _ = wr.write_all(&out).await;
            return;
        }
    };
    let listed_subscriber;
    let listed = match &served {
        Some(p) => &p.listed,
        None => {
            listed_subscriber =
                registry
                    .conns()
                    .register(ipc_id, ConnKind::Subscriber, &opened.name, "", &shown);
            &listed_subscriber
        }
    };
    let reader_id = registry.reader_id();
    let waker = Arc::new(Notify::new());
    let has_new = Arc::new(AtomicBool::new(false));
    let stall = registry.config().subscriber_write_timeout;
    let (early, mut ev_rx) = match events.then(|| registry.events_with_startup()) {
        Some((early, rx)) => (early, Some(rx)),
        None => (Vec::new(), None),
    };
    let mut s = Subscriber {
        subs: Vec::new(),
        out: BytesMut::new(),
        queue: Outbox::new(),
        stats: registry.stats().clone(),
    };
    let _connected = served.is_none().then(|| s.stats.subscribers.track());
    let replayed = early.len();
    for e in early {
        s.header(&Header::Event((*e).clone()), Bytes::new());
    }
    if media {
        for stream in registry.subscribe(reader_id, patterns, waker.clone(), has_new.clone()) {
            s.attach_existing(stream, reader_id, &waker);
        }
    }
    // Logged once registered: every stream starting from here on reaches the subscriber.
    // `replayed`: events of the startup window it got first (events::STARTUP_REPLAY).
    let playing = player.as_ref().map_or("", |p| p.protocol.as_str());
    tracing::info!(ipc_id, name = %opened.name, patterns = %shown, media, events, replayed, player = playing, "subscriber attached");
    let result: Result<(), SubscriberError> = async {
        loop {
            let ctx = Ctx {
                registry: &registry,
                ipc_id,
                reader_id,
                waker: &waker,
                has_new: &has_new,
            };
            for m in pending.drain(..) {
                s.on_message(m, &ctx);
            }
            while let Some(m) = decoder.decode(&mut buf)? {
                s.on_message(m, &ctx);
            }
            if has_new.swap(false, Ordering::Acquire) {
                for ns in registry.take_new_streams(reader_id) {
                    s.subs.push(Sub {
                        stream: ns.stream,
                        cursor: Cursor::new(ns.cursor, true, None),
                        reader: ns.reader,
                        live: false,
                    });
                }
            }
            s.collect();
            write_all_within(&mut wr, &mut s.queue, Some(stall))
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::TimedOut => SubscriberError::Stalled(stall),
                    _ => e.into(),
                })?;
            if s.has_more() {
                continue;
            }
            tokio::select! {
                n = rd.read_buf(&mut buf) => {
                    if n? == 0 {
                        return Ok(());
                    }
                }
                _ = waker.notified() => {}
                _ = listed.kicked() => {
                    tracing::info!(ipc_id, player = playing, "subscriber kicked through the API");
                    if let Some(p) = &served {
                        p.kicked(&registry);
                    }
                    return Ok(());
                }
                ev = recv_event(&mut ev_rx) => match ev {
                    Ok(e) => s.header(&Header::Event((*e).clone()), Bytes::new()),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(ipc_id, dropped = n, "subscriber missed events");
                    }
                    Err(broadcast::error::RecvError::Closed) => ev_rx = None,
                },
            }
        }
    }
    .await;
    match result {
        Ok(()) => tracing::info!(ipc_id, "subscriber left"),
        Err(e) => tracing::warn!(ipc_id, layer = "subscriber", error = %e, "closing connection"),
    }
    registry.unsubscribe(reader_id);
    for sub in &s.subs {
        sub.stream.lock().remove_reader(reader_id);
    }
    // Last: the player leaves its key after its reader is gone (a `players` event).
    drop(served);
}

async fn recv_event(
    rx: &mut Option<broadcast::Receiver<Arc<proto::ipc::Event>>>,
) -> Result<Arc<proto::ipc::Event>, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What handling a message from the subscriber needs.
struct Ctx<'a> {
    registry: &'a Arc<Registry>,
    ipc_id: u64,
    reader_id: u64,
    waker: &'a Arc<Notify>,
    has_new: &'a Arc<AtomicBool>,
}

impl Subscriber {
    /// A message from the subscriber: an event to route, or a `Subscribe` sent again,
    /// which changes the patterns (a relayer whose rules were reloaded): streams that now
    /// match are announced as to a new subscriber, streams that no longer match end with
    /// `EndOfStream` (`unsubscribed`), the others go on untouched.
    fn on_message(&mut self, m: Message, ctx: &Ctx<'_>) {
        match m.header {
            Header::Event(e) => ctx.registry.on_event(ctx.ipc_id, e),
            Header::Player { key, .. } => {
                tracing::debug!(ipc_id = ctx.ipc_id, %key, "Player after Subscribe ignored");
            }
            Header::Subscribe {
                patterns, media, ..
            } => {
                let shown = patterns.join(" ");
                let globs: Vec<Glob> = patterns.iter().map(|p| Glob::new(p)).collect();
                let fresh = if media {
                    ctx.registry.subscribe(
                        ctx.reader_id,
                        patterns,
                        ctx.waker.clone(),
                        ctx.has_new.clone(),
                    )
                } else {
                    ctx.registry.unsubscribe(ctx.reader_id);
                    Vec::new()
                };
                let mut subs = std::mem::take(&mut self.subs);
                subs.retain(|sub| {
                    let keep = media && glob::any_matches(&globs, sub.stream.key.as_str());
                    if !keep {
                        sub.stream.lock().remove_reader(ctx.reader_id);
                        if sub.live {
                            self.header(
                                &Header::EndOfStream {
                                    stream: sub.stream.id,
                                    reason: "unsubscribed".into(),
                                },
                                Bytes::new(),
                            );
                        }
                    }
                    keep
                });
                self.subs = subs;
                for stream in fresh {
                    if !self.subs.iter().any(|s| Arc::ptr_eq(&s.stream, &stream)) {
                        self.attach_existing(stream, ctx.reader_id, ctx.waker);
                    }
                }
                tracing::info!(ipc_id = ctx.ipc_id, patterns = %shown, media, "subscriber changed its subscription");
            }
            _ => {}
        }
    }

    fn header(&mut self, h: &Header, payload: Bytes) {
        ipc::encode_header(h, payload.len(), &mut self.out);
        self.queue.push(self.out.split().freeze());
        self.queue.push(payload);
    }

    fn attach_existing(&mut self, stream: Arc<Stream>, reader_id: u64, waker: &Arc<Notify>) {
        let mut st = stream.lock();
        let live = st.is_live();
        let join = st.ring.join_point();
        let cursor = join.unwrap_or(st.ring.head());
        let reader = SharedWaker::new(waker.clone(), cursor);
        st.add_reader(reader_id, reader.clone());
        if live {
            let id = stream.id;
            self.header(
                &Header::Announce {
                    stream: id,
                    key: stream.key.to_string(),
                    timescale: st.timeline.timescale(),
                },
                Bytes::new(),
            );
            let tracks: Vec<_> = st
                .tracks
                .iter()
                .map(|(&(_, track), t)| (track, t.codec, t.payload.clone()))
                .collect();
            for (track, codec, payload) in tracks {
                self.header(
                    &Header::TrackConfig {
                        stream: id,
                        track,
                        codec,
                    },
                    payload,
                );
            }
            if let Some(m) = st.metadata.clone() {
                self.header(&Header::Metadata { stream: id }, m);
            }
            let dts = st.timeline.last_out();
            let state: Vec<_> = st
                .track_metadata
                .iter()
                .map(|(&(_, track), (codec, payload))| Side::TrackMetadata {
                    track,
                    codec: *codec,
                    dts,
                    payload: payload.clone(),
                })
                .chain(st.channel_configs.iter().map(|(&track, (codec, payload))| {
                    Side::ChannelConfig {
                        track,
                        codec: *codec,
                        payload: payload.clone(),
                    }
                }))
                .collect();
            for side in state {
                let (header, payload) = side.message(id);
                self.header(&header, payload);
            }
        }
        drop(st);
        self.subs.push(Sub {
            stream,
            cursor: Cursor::new(cursor, join.is_none(), None),
            reader,
            live,
        });
    }

    fn has_more(&self) -> bool {
        self.subs
            .iter()
            .any(|s| s.cursor.behind_head(&s.stream.lock().ring))
    }

    fn collect(&mut self) {
        let mut subs = std::mem::take(&mut self.subs);
        subs.retain_mut(|sub| self.collect_one(sub));
        self.subs = subs;
    }

    /// Takes one stream's new entries; false when the stream is closed.
    fn collect_one(&mut self, sub: &mut Sub) -> bool {
        let stream = sub.stream.clone();
        let st = stream.lock();
        let id = stream.id;
        if let LagDecision::Skipped(skip) = sub.cursor.check_lag(&st.ring, Instant::now()) {
            let (frames, bytes) = (skip.frames, skip.bytes);
            tracing::info!(key = %stream.key, frames, bytes, "subscriber fell behind; frames dropped");
            self.stats.subscriber_dropped_frames.add(frames);
            if sub.live {
                self.header(
                    &Header::Dropped {
                        stream: id,
                        frames,
                        bytes,
                    },
                    Bytes::new(),
                );
            }
        }
        for _ in 0..BATCH_ENTRIES {
            let Some(entry) = sub.cursor.next(&st.ring) else {
                break;
            };
            match &entry.item {
                Item::Frame(frame) => {
                    if !sub.live {
                        continue;
                    }
                    if !sub
                        .cursor
                        .admit(frame.is_video().then_some(frame.is_keyframe()))
                    {
                        continue;
                    }
                    self.header(&Header::frame(id, frame), frame.payload.clone());
                }
                Item::Config {
                    track,
                    codec,
                    payload,
                } if sub.live => self.header(
                    &Header::TrackConfig {
                        stream: id,
                        track: *track,
                        codec: *codec,
                    },
                    payload.clone(),
                ),
                Item::Metadata { payload } if sub.live => {
                    self.header(&Header::Metadata { stream: id }, payload.clone())
                }
                Item::Side { side, .. } if sub.live => {
                    let (header, payload) = side.message(id);
                    self.header(&header, payload)
                }
                Item::Config { .. } | Item::Metadata { .. } | Item::Side { .. } => {}
                Item::Published { timescale, .. } => {
                    if sub.live {
                        self.header(
                            &Header::EndOfStream {
                                stream: id,
                                reason: "takeover".into(),
                            },
                            Bytes::new(),
                        );
                    }
                    self.header(
                        &Header::Announce {
                            stream: id,
                            key: stream.key.to_string(),
                            timescale: *timescale,
                        },
                        Bytes::new(),
                    );
                    sub.live = true;
                    sub.cursor.wait_for_keyframe();
                }
                Item::Unpublished { reason } => {
                    if sub.live {
                        self.header(
                            &Header::EndOfStream {
                                stream: id,
                                reason: reason.to_string(),
                            },
                            Bytes::new(),
                        );
                    }
                    sub.live = false;
                }
                Item::Closed => {
                    if sub.live {
                        self.header(
                            &Header::EndOfStream {
                                stream: id,
                                reason: "closed".into(),
                            },
                            Bytes::new(),
                        );
                    }
                    return false;
                }
            }
        }
        sub.reader.taken_to(sub.cursor.at());
        true
    }
}
