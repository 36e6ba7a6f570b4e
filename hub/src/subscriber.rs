//! Subscriber connections (recorder, relayer, hookd, custom consumers): the same shared
//! rings and cursors as players, turned back into IPC messages, plus routed events.
//!
//! A subscriber that falls more than `--player-queue-bytes` behind skips to the newest
//! keyframe and is told with `Dropped` (it is never disconnected for lagging).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use proto::ipc::{self, FrameDecoder, Header, IpcError, Message};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, Notify};

use crate::player::writer::write_queue;
use crate::registry::{NewStream, Registry};
use crate::ring::{Item, Lag};
use crate::server::Opened;
use crate::stream::Stream;

/// Entries taken from one stream per pass.
const BATCH_ENTRIES: usize = 256;

#[derive(Debug, thiserror::Error)]
enum SubscriberError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("ipc: {0}")]
    Ipc(#[from] IpcError),
}

struct Sub {
    stream: Arc<Stream>,
    cursor: u64,
    waiting_key: bool,
    live: bool,
}

struct Subscriber {
    subs: Vec<Sub>,
    out: BytesMut,
    queue: VecDeque<Bytes>,
}

/// Serves one subscriber connection until it closes.
pub async fn run(sock: UnixStream, ipc_id: u64, opened: Opened, registry: Arc<Registry>) {
    let (mut rd, mut wr) = sock.into_split();
    let decoder = FrameDecoder::default();
    let mut buf = opened.buf;
    let mut pending: VecDeque<Message> = opened.messages.into();
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
            }) => registry.publish_event(e),
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
    tracing::info!(ipc_id, ?patterns, media, events, "subscriber attached");
    let reader_id = registry.reader_id();
    let waker = Arc::new(Notify::new());
    let (new_tx, mut new_rx) = mpsc::channel::<NewStream>(256);
    let mut ev_rx = events.then(|| registry.events());
    let mut s = Subscriber {
        subs: Vec::new(),
        out: BytesMut::new(),
        queue: VecDeque::new(),
    };
    if media {
        for stream in registry.subscribe(reader_id, patterns, waker.clone(), new_tx) {
            s.attach_existing(stream, reader_id, &waker);
        }
    }
    let result: Result<(), SubscriberError> = async {
        loop {
            for m in pending.drain(..) {
                if let Header::Event(e) = m.header {
                    registry.publish_event(e);
                }
            }
            while let Some(m) = decoder.decode(&mut buf)? {
                if let Header::Event(e) = m.header {
                    registry.publish_event(e);
                }
            }
            s.collect();
            write_queue(&mut wr, &mut s.queue).await?;
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
                Some(ns) = new_rx.recv() => s.subs.push(Sub {
                    stream: ns.stream,
                    cursor: ns.cursor,
                    waiting_key: true,
                    live: false,
                }),
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
}

async fn recv_event(
    rx: &mut Option<broadcast::Receiver<Arc<proto::ipc::Event>>>,
) -> Result<Arc<proto::ipc::Event>, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Subscriber {
    fn header(&mut self, h: &Header, payload: Bytes) {
        ipc::encode_header(h, payload.len(), &mut self.out);
        self.queue.push_back(self.out.split().freeze());
        if !payload.is_empty() {
            self.queue.push_back(payload);
        }
    }

    fn attach_existing(&mut self, stream: Arc<Stream>, reader_id: u64, waker: &Arc<Notify>) {
        let mut st = stream.lock();
        st.add_reader(reader_id, waker.clone());
        let live = st.is_live();
        let join = st.ring.join_point();
        let cursor = join.unwrap_or(st.ring.head());
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
        }
        drop(st);
        self.subs.push(Sub {
            stream,
            cursor,
            waiting_key: join.is_none(),
            live,
        });
    }

    fn has_more(&self) -> bool {
        self.subs
            .iter()
            .any(|s| s.cursor < s.stream.lock().ring.head())
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
        let target = match st.ring.check_lag(sub.cursor) {
            Lag::Fine => None,
            Lag::SkipTo(k) => Some((k, false)),
            Lag::SkipToHead(h) => Some((h, true)),
        };
        if let Some((target, to_head)) = target {
            let (frames, bytes) = st.ring.frames_between(sub.cursor, target);
            tracing::info!(key = %stream.key, frames, bytes, "subscriber fell behind; frames dropped");
            sub.cursor = target;
            sub.waiting_key |= to_head;
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
            let Some(entry) = st.ring.get(sub.cursor) else {
                break;
            };
            sub.cursor += 1;
            match &entry.item {
                Item::Frame(frame) => {
                    if !sub.live {
                        continue;
                    }
                    if frame.is_video() {
                        let key = frame.is_keyframe();
                        if sub.waiting_key && !key {
                            continue;
                        }
                        sub.waiting_key &= !key;
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
                Item::Config { .. } | Item::Metadata { .. } => {}
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
                    sub.waiting_key = true;
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
        true
    }
}
