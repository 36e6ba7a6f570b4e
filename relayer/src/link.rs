//! The subscription to the hub: stream messages in, items out to each stream's
//! destinations, destination events back to the hub. Reconnects with backoff
//! ([`subscription::keep_subscribed`]); a hub restart ends every push (the hub
//! re-announces live streams, which starts them again).
//!
//! The link never waits for a destination: pushing an item into a destination's queue is
//! a short lock and never blocks (a full queue skips GOPs).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, Event, Header, Message, SidePacket};
use proto::media::{Codec, TrackKind};
use telemetry::hub_conn::OpenError;
use telemetry::subscription::{self, Session, Subscriber, Subscription};
use tokio::sync::{mpsc, watch};

use crate::callback;
use crate::destination::{DestOptions, DestShared, Destination, Headers};
use crate::media::{to_ms, Frame, Item};
use crate::pull::{self, Pull, PullOptions};
use crate::rules::{check_template, destinations, redact, redact_rule, Rule};

/// Destination events waiting to be written to the hub.
const EVENT_QUEUE: usize = 1024;

/// What the link needs.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The hub socket.
    pub socket: PathBuf,
    /// Static push rules.
    pub rules: Vec<Rule>,
    /// Asked for more destinations when a stream starts.
    pub callback: Option<String>,
    /// Callback answer timeout.
    pub callback_timeout: Duration,
    /// Destination settings.
    pub dest: Arc<DestOptions>,
    /// Pull (edge) mode, when configured.
    pub pull: Option<PullOptions>,
}

struct StreamState {
    key: String,
    timescale: u32,
    codecs: HashMap<(bool, u8), Codec>,
    has_video: bool,
    /// The latest headers: where a destination added mid-stream starts.
    headers: Headers,
    dests: Vec<Dest>,
    /// A ModEx nanosecond offset for the next frame of `(video, track)`.
    pending_nanos: Option<(bool, u8, u32)>,
    /// RTMP time of the latest frame: where a MultichannelConfig (which has no time of
    /// its own) goes.
    last_ts: u32,
}

/// One destination of a stream.
struct Dest {
    url: String,
    shared: Arc<DestShared>,
    /// Given by the callback, not by a rule: a rules reload leaves it alone.
    from_callback: bool,
}

impl StreamState {
    fn push(&self, item: &Item) {
        for d in &self.dests {
            d.shared.push(item.clone());
        }
    }

    fn end(&self) {
        for d in &self.dests {
            d.shared.end();
        }
    }
}

/// Destinations a callback returned for a stream handle.
struct Found {
    handle: u32,
    key: String,
    urls: Vec<String>,
}

struct Link {
    opts: LinkOptions,
    streams: HashMap<u32, StreamState>,
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    found_tx: mpsc::Sender<Found>,
    found_rx: mpsc::Receiver<Found>,
    pulls: HashMap<String, Pull>,
    pull_done_tx: mpsc::Sender<String>,
    pull_done_rx: mpsc::Receiver<String>,
    /// New rule sets (SIGHUP): applied in place, see [`Link::reload`].
    reloads: mpsc::Receiver<Vec<Rule>>,
}

/// Runs until `shutdown` turns true; then ends every push. Each rule set received on
/// `reloads` replaces the rules in force without touching the destinations it keeps.
pub async fn run(
    opts: LinkOptions,
    mut shutdown: watch::Receiver<bool>,
    reloads: mpsc::Receiver<Vec<Rule>>,
) {
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let (found_tx, found_rx) = mpsc::channel(64);
    let (pull_done_tx, pull_done_rx) = mpsc::channel(64);
    let mut link = Link {
        reloads,
        pulls: HashMap::new(),
        pull_done_tx,
        pull_done_rx,
        opts,
        streams: HashMap::new(),
        events_tx,
        events_rx,
        found_tx,
        found_rx,
    };
    let socket = link.opts.socket.clone();
    subscription::keep_subscribed(&socket, "relayer", &mut link, &mut shutdown).await;
    link.end_all();
    tracing::info!("relayer stopped");
}

impl Subscriber for Link {
    type Error = OpenError;

    fn subscription(&self) -> Subscription {
        Subscription {
            patterns: self.patterns(),
            media: self.wants_media(),
            events: self.opts.pull.is_some(),
        }
    }

    async fn session(
        &mut self,
        session: &mut Session,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), OpenError> {
        let mut out = BytesMut::new();
        loop {
            while let Some(msg) = session.message()? {
                self.on_message(msg);
            }
            tokio::select! {
                more = session.receive() => {
                    if !more? {
                        return Ok(());
                    }
                }
                Some(e) = self.events_rx.recv() => {
                    out.clear();
                    ipc::encode(&Header::Event(e), &[], &mut out);
                    while let Ok(e) = self.events_rx.try_recv() {
                        ipc::encode(&Header::Event(e), &[], &mut out);
                    }
                    session.send(&out).await?;
                }
                Some(f) = self.found_rx.recv() => self.add_found(f),
                Some(key) = self.pull_done_rx.recv() => {
                    self.pulls.remove(&key);
                }
                Some(rules) = self.reloads.recv() => {
                    if self.reload(rules) {
                        // The rules need other streams: change the subscription in place
                        // (FORMAT.md section 7); the streams kept go on without a gap.
                        out.clear();
                        let Subscription {
                            patterns,
                            media,
                            events,
                        } = self.subscription();
                        let subscribe = Header::Subscribe {
                            patterns,
                            media,
                            events,
                        };
                        ipc::encode(&subscribe, &[], &mut out);
                        session.send(&out).await?;
                    }
                }
                _ = shutdown.changed() => {
                    self.end_all();
                    return Ok(());
                }
            }
        }
    }

    /// Every push ends with its connection; the hub announces the live streams anew,
    /// which starts them again.
    async fn disconnected(&mut self) {
        self.end_all();
    }
}

impl Link {
    /// Whether the link needs media at all (push rules or a callback).
    fn wants_media(&self) -> bool {
        !self.opts.rules.is_empty() || self.opts.callback.is_some()
    }

    fn patterns(&self) -> Vec<String> {
        if self.opts.callback.is_some() {
            // The callback may send any stream somewhere.
            return Vec::new();
        }
        self.opts.rules.iter().map(|r| r.pattern.clone()).collect()
    }

    fn on_message(&mut self, msg: Message) {
        if let Some(p) = msg.header.side_packet() {
            self.side(p, msg.payload);
            return;
        }
        match msg.header {
            Header::Announce {
                stream,
                key,
                timescale,
            } => self.announce(stream, key, timescale),
            Header::TrackConfig {
                stream,
                track,
                codec,
            } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    let video = codec.kind() == TrackKind::Video;
                    s.codecs.insert((video, track), codec);
                    s.has_video |= video;
                    s.headers.set_config(codec, track, msg.payload.clone());
                    s.push(&Item::Config {
                        codec,
                        track,
                        data: msg.payload,
                    });
                }
            }
            Header::Metadata { stream } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.headers.metadata = Some(msg.payload.clone());
                    s.push(&Item::Metadata(msg.payload));
                }
            }
            Header::TimestampOffset {
                stream,
                track,
                video,
                nanos,
            } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.pending_nanos = Some((video, track, nanos));
                }
            }
            Header::Data { stream, dts } => {
                if let Some(s) = self.streams.get(&stream) {
                    s.push(&Item::Data {
                        ts: to_ms(dts, s.timescale).max(0) as u32,
                        body: msg.payload,
                    });
                }
            }
            Header::Frame {
                stream,
                track,
                video,
                dts,
                cts,
                flags,
            } => {
                let Some(s) = self.streams.get_mut(&stream) else {
                    return;
                };
                // A frame of a track without a configuration has no known codec.
                let Some(&codec) = s.codecs.get(&(video, track)) else {
                    return;
                };
                let nanos = match s.pending_nanos {
                    Some((v, t, n)) if v == video && t == track => {
                        s.pending_nanos = None;
                        n
                    }
                    _ => 0,
                };
                let keyframe = flags.keyframe();
                let ts = to_ms(dts, s.timescale).max(0) as u32;
                s.last_ts = ts;
                let cts = to_ms(i64::from(cts), s.timescale) as i32;
                s.push(&Item::Frame(Frame {
                    codec,
                    track,
                    ts,
                    cts,
                    flags,
                    sync: if s.has_video {
                        video && keyframe
                    } else {
                        !video
                    },
                    data: msg.payload,
                    nanos,
                }));
            }
            Header::EndOfStream { stream, reason } => {
                if let Some(s) = self.streams.remove(&stream) {
                    tracing::info!(key = %s.key, %reason, "stream ended; stopping its pushes");
                    s.end();
                }
            }
            Header::Event(e) if e.kind == "players" => self.on_players(&e),
            Header::Dropped {
                stream,
                frames,
                bytes,
            } => {
                if let Some(s) = self.streams.get(&stream) {
                    tracing::warn!(key = %s.key, frames, bytes, "the hub skipped frames for the relayer");
                }
            }
            _ => {}
        }
    }

    /// An E-RTMP packet besides frames and configurations (FORMAT.md variants 13 to
    /// 15): in order with the frames, and, for video metadata and the speaker layout, in
    /// the headers a destination added later starts with.
    fn side(&mut self, p: SidePacket, body: bytes::Bytes) {
        let Some(s) = self.streams.get_mut(&p.stream) else {
            return;
        };
        let ts = p
            .dts
            .map_or(s.last_ts, |d| to_ms(d, s.timescale).max(0) as u32);
        let item = Item::Side {
            codec: p.codec,
            track: p.track,
            kind: p.kind,
            ts,
            body,
        };
        s.headers.apply(&item);
        s.push(&item);
    }

    /// A key's player count changed on the hub: start a pull for players waiting for a
    /// key that is not live, or tell a running pull how many players it has.
    fn on_players(&mut self, e: &Event) {
        let Some(opts) = &self.opts.pull else {
            return;
        };
        let field = |n: &str| {
            e.fields
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let count: usize = field("count").and_then(|c| c.parse().ok()).unwrap_or(0);
        let live = field("live") == Some("true");
        if let Some(p) = self.pulls.get(&e.key) {
            let _ = p.players.send(count);
            return;
        }
        let wanted = opts.patterns.is_empty() || proto::glob::any_matches(&opts.patterns, &e.key);
        if count > 0 && !live && wanted {
            let p = pull::start(
                e.key.clone(),
                count,
                opts.clone(),
                self.pull_done_tx.clone(),
            );
            self.pulls.insert(e.key.clone(), p);
        }
    }

    /// Replaces the rules in force with `rules` (a SIGHUP reload) and logs what changed:
    /// every live stream's destinations that the new rules still give keep running
    /// untouched, those they no longer give send what they have queued and stop, and new
    /// ones start at the stream's next sync point. Returns whether the hub subscription
    /// must change (the rules now match other streams).
    fn reload(&mut self, rules: Vec<Rule>) -> bool {
        let text = |r: &Rule| format!("{}={}", r.pattern, r.templates.join(" "));
        let old: Vec<String> = self.opts.rules.iter().map(text).collect();
        let new: Vec<String> = rules.iter().map(text).collect();
        let added: Vec<&String> = new.iter().filter(|r| !old.contains(r)).collect();
        let removed: Vec<&String> = old.iter().filter(|r| !new.contains(r)).collect();
        let shown = |v: &[&String]| {
            v.iter()
                .map(|r| redact_rule(r))
                .collect::<Vec<_>>()
                .join(", ")
        };
        tracing::info!(
            added = %shown(&added),
            removed = %shown(&removed),
            unchanged = new.len() - added.len(),
            "SIGHUP: push rules reloaded"
        );
        let (patterns, media) = (self.patterns(), self.wants_media());
        self.opts.rules = rules;
        let mut streams = std::mem::take(&mut self.streams);
        for s in streams.values_mut() {
            let wanted = destinations(&self.opts.rules, &s.key);
            s.dests.retain(|d| {
                let keep = d.from_callback || wanted.contains(&d.url);
                if !keep {
                    tracing::info!(key = %s.key, dest = %redact(&d.url), "push stopped: its rule was removed");
                    d.shared.end();
                }
                keep
            });
            for url in wanted {
                if !s.dests.iter().any(|d| d.url == url) {
                    self.start_destination(s, url, false);
                }
            }
        }
        self.streams = streams;
        patterns != self.patterns() || media != self.wants_media()
    }

    fn announce(&mut self, handle: u32, key: String, timescale: u32) {
        if let Some(old) = self.streams.remove(&handle) {
            old.end();
        }
        let urls = destinations(&self.opts.rules, &key);
        // Kept even without destinations: a reload may add some while it is live.
        tracing::info!(%key, destinations = urls.len(), "stream announced");
        let mut s = StreamState {
            key: key.clone(),
            timescale,
            codecs: HashMap::new(),
            has_video: false,
            headers: Headers::default(),
            dests: Vec::new(),
            pending_nanos: None,
            last_ts: 0,
        };
        for url in urls {
            self.start_destination(&mut s, url, false);
        }
        self.streams.insert(handle, s);
        if let Some(cb) = self.opts.callback.clone() {
            let tx = self.found_tx.clone();
            let timeout = self.opts.callback_timeout;
            tokio::spawn(async move {
                match callback::ask(&cb, &key, timeout).await {
                    Ok(urls) => {
                        let _ = tx.send(Found { handle, key, urls }).await;
                    }
                    Err(e) => tracing::warn!(%key, error = %e, "destination callback failed"),
                }
            });
        }
    }

    fn add_found(&mut self, f: Found) {
        let Some(mut s) = self.streams.remove(&f.handle) else {
            return;
        };
        if s.key == f.key {
            for url in f.urls {
                if let Err(e) = check_template(&url) {
                    tracing::warn!(key = %f.key, error = %e, "callback destination refused");
                } else if !s.dests.iter().any(|d| d.url == url) {
                    self.start_destination(&mut s, url, true);
                }
            }
        }
        self.streams.insert(f.handle, s);
    }

    fn start_destination(&self, s: &mut StreamState, url: String, from_callback: bool) {
        tracing::info!(key = %s.key, dest = %redact(&url), "pushing");
        let shared = DestShared::new(self.opts.dest.queue_bytes);
        // A destination added mid-stream starts with the current headers (sent at
        // connect) and waits for the next sync point.
        let d = Destination::new(
            url.clone(),
            s.key.clone(),
            shared.clone(),
            s.headers.clone(),
            self.opts.dest.clone(),
            self.events_tx.clone(),
        );
        tokio::spawn(d.run());
        s.dests.push(Dest {
            url,
            shared,
            from_callback,
        });
    }

    fn end_all(&mut self) {
        for (_, s) in self.streams.drain() {
            s.end();
        }
    }
}
