//! One push destination: its own connection, its own bounded queue, its own reconnect
//! loop. Nothing it does can hold up the hub link, the other destinations or the stream.
//!
//! ```text
//!  hub link --push--> GopQueue --pop--> ClientSession --TCP--> server
//!            (skips whole GOPs       connecting -> live -> backing_off (exp. + jitter)
//!             when over budget)      -> connecting ... -> stopped (stream ended)
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proto::flv::{legacy_form, write_media_header, PacketKind};
use proto::ipc::Event;
use proto::media::{Codec, TrackKind};
use proto::rtmp::session::{ClientConfig, ClientMode, MediaKind, CAPS_EX_MODEX};
use tokio::sync::{mpsc, Notify};

use crate::backoff::Backoff;
use crate::media::{frame_kind, tag_head, Item};
use crate::queue::GopQueue;
use crate::rtmp_conn::{ConnError, RtmpConn};
use crate::rules::redact;
use crate::srt_conn::SrtConn;
use crate::state_gauge::StateGauge;
use proto::ts::{MuxOptions, Muxer};

/// Settings shared by every destination.
#[derive(Debug, Clone)]
pub struct DestOptions {
    /// Byte budget of each destination's queue.
    pub queue_bytes: usize,
    /// Connect + publish must succeed within this.
    pub connect_timeout: Duration,
    /// A write that takes longer counts as a dead destination.
    pub write_timeout: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// How often a live destination reports its counters.
    pub stats_interval: Duration,
    /// Chunk size toward destinations.
    pub chunk_size: u32,
    /// For `rtmps://` destinations.
    pub tls: runtime::tls_client::TlsClient,
    /// The relayer's series (docs/metrics.md).
    pub metrics: Arc<telemetry::Metrics>,
}

/// One destination's share of the relayer's series: its state in
/// `mediaserver_relay_destinations{state}` and its `{destination}` series (shared with
/// every destination whose redacted URL is the same, so gauges move by deltas).
struct DestMetrics {
    state: StateGauge,
    connects: telemetry::Counter,
    failures: telemetry::Counter,
    bytes: telemetry::Counter,
    dropped: telemetry::Counter,
    queued: telemetry::Gauge,
    last_dropped: u64,
    last_queued: i64,
}

impl DestMetrics {
    fn new(metrics: &Arc<telemetry::Metrics>, dest: &str) -> DestMetrics {
        let label = [("destination", dest)];
        DestMetrics {
            connects: metrics.counter("mediaserver_relay_connects_total", &label),
            failures: metrics.counter("mediaserver_relay_failures_total", &label),
            bytes: metrics.counter("mediaserver_relay_bytes_total", &label),
            dropped: metrics.counter("mediaserver_relay_dropped_frames_total", &label),
            queued: metrics.gauge("mediaserver_relay_queued_bytes", &label),
            state: StateGauge::new(metrics, "mediaserver_relay_destinations"),
            last_dropped: 0,
            last_queued: 0,
        }
    }

    /// Brings the queue's numbers up to date.
    fn sync(&mut self, dropped_frames: u64, queued_bytes: usize) {
        self.dropped
            .add(dropped_frames.saturating_sub(self.last_dropped));
        self.last_dropped = self.last_dropped.max(dropped_frames);
        let queued = i64::try_from(queued_bytes).unwrap_or(i64::MAX);
        self.queued.add(queued - self.last_queued);
        self.last_queued = queued;
    }
}

/// Decoder configurations and metadata of a stream, as of some point in it: sent first
/// on every (re)connection.
#[derive(Debug, Default, Clone)]
pub struct Headers {
    /// `(codec, track, record)`, one per track.
    pub configs: Vec<(Codec, u8, Bytes)>,
    /// `onMetaData` values.
    pub metadata: Option<Bytes>,
    /// The latest video Metadata and MultichannelConfig of each track: `(codec, track,
    /// kind, body)`.
    pub track_state: Vec<(Codec, u8, PacketKind, Bytes)>,
}

impl Headers {
    /// Records a track's configuration (replacing an older one).
    pub fn set_config(&mut self, codec: Codec, track: u8, data: Bytes) {
        let video = codec.kind() == TrackKind::Video;
        self.configs
            .retain(|(c, t, _)| !(*t == track && (c.kind() == TrackKind::Video) == video));
        self.configs.push((codec, track, data));
    }

    /// Takes in what `item` changes (a configuration or metadata).
    pub fn apply(&mut self, item: &Item) {
        match item {
            Item::Config { codec, track, data } => self.set_config(*codec, *track, data.clone()),
            Item::Metadata(m) => self.metadata = Some(m.clone()),
            Item::Side {
                codec,
                track,
                kind: kind @ (PacketKind::Metadata | PacketKind::ChannelConfig),
                body,
                ..
            } => {
                let video = codec.kind() == TrackKind::Video;
                self.track_state.retain(|(c, t, k, _)| {
                    !(*t == *track && (c.kind() == TrackKind::Video) == video && k == kind)
                });
                self.track_state.push((*codec, *track, *kind, body.clone()));
            }
            Item::Side { .. } | Item::Data { .. } | Item::Frame(_) => {}
        }
    }
}

/// What the hub link and a destination task share.
#[derive(Debug)]
pub struct DestShared {
    /// The queue.
    pub queue: Mutex<GopQueue>,
    /// Wakes the task: items queued, or the stream ended.
    pub notify: Notify,
    /// The stream ended: send what is queued, then close.
    pub ended: AtomicBool,
}

impl DestShared {
    /// A fresh queue of `max_bytes`.
    pub fn new(max_bytes: usize) -> Arc<DestShared> {
        Arc::new(DestShared {
            queue: Mutex::new(GopQueue::new(max_bytes)),
            notify: Notify::new(),
            ended: AtomicBool::new(false),
        })
    }

    /// Queues an item and wakes the task.
    pub fn push(&self, item: Item) {
        self.lock().push(item);
        self.notify.notify_one();
    }

    /// Marks the stream ended and wakes the task.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GopQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A started connection of either kind.
enum Live {
    Rtmp(Box<RtmpConn>),
    Srt(Box<SrtConn>),
}

/// A destination's task context.
pub struct Destination {
    /// Destination URL (with the stream key: never logged as is).
    pub url: String,
    /// The stream key.
    pub key: String,
    /// Shared with the link.
    pub shared: Arc<DestShared>,
    /// The stream's headers as of the front of the queue (what the queue holds is not
    /// in them yet): a new connection starts with these, and the queue follows, so each
    /// configuration goes out once per connection.
    headers: Headers,
    /// Settings.
    pub opts: Arc<DestOptions>,
    /// Events to the hub.
    pub events: mpsc::Sender<Event>,
    /// Bytes written over every connection.
    bytes: u64,
    /// Connections made.
    connects: u64,
    metrics: Mutex<DestMetrics>,
}

impl Destination {
    /// A destination task context.
    pub fn new(
        url: String,
        key: String,
        shared: Arc<DestShared>,
        headers: Headers,
        opts: Arc<DestOptions>,
        events: mpsc::Sender<Event>,
    ) -> Destination {
        let metrics = Mutex::new(DestMetrics::new(&opts.metrics, &redact(&url)));
        Destination {
            metrics,
            url,
            key,
            shared,
            headers,
            opts,
            events,
            bytes: 0,
            connects: 0,
        }
    }

    fn emit(&self, kind: &str, mut fields: Vec<(String, String)>) {
        let q = self.shared.lock();
        fields.extend([
            ("bytes".to_owned(), self.bytes.to_string()),
            ("dropped_frames".to_owned(), q.dropped_frames.to_string()),
            ("dropped_bytes".to_owned(), q.dropped_bytes.to_string()),
            ("queued_bytes".to_owned(), q.bytes().to_string()),
            ("connects".to_owned(), self.connects.to_string()),
        ]);
        self.dest_metrics().sync(q.dropped_frames, q.bytes());
        drop(q);
        // A full event channel drops the event rather than blocking the destination.
        let _ = self.events.try_send(Event {
            kind: kind.to_owned(),
            key: self.key.clone(),
            conn_id: 0,
            remote: redact(&self.url),
            fields,
        });
    }

    fn dest_metrics(&self) -> std::sync::MutexGuard<'_, DestMetrics> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` bytes written to the destination.
    fn wrote(&mut self, n: usize) {
        self.bytes += n as u64;
        self.dest_metrics().bytes.add(n as u64);
    }

    fn state(&self, state: &'static str, extra: Vec<(String, String)>) {
        self.dest_metrics().state.set(state);
        let mut fields = vec![("state".to_owned(), state.to_owned())];
        fields.extend(extra);
        self.emit("relay", fields);
    }

    fn ended(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire)
    }

    /// Runs until the stream ends.
    pub async fn run(mut self) {
        let dest = redact(&self.url);
        let mut backoff = Backoff::new(self.opts.backoff_min, self.opts.backoff_max);
        while !self.ended() {
            self.state("connecting", vec![]);
            let config = ClientConfig {
                chunk_size: self.opts.chunk_size,
                ..ClientConfig::default()
            };
            let opened = tokio::select! {
                r = self.open(config) => r,
                () = self.wait_end() => break,
            };
            let error = match opened {
                Ok(conn) => {
                    self.connects += 1;
                    self.dest_metrics().connects.inc();
                    tracing::info!(key = %self.key, %dest, "destination live");
                    self.state("live", vec![]);
                    let started = tokio::time::Instant::now();
                    let served = match conn {
                        Live::Rtmp(c) => self.serve(*c).await,
                        Live::Srt(c) => self.serve_srt(*c).await,
                    };
                    match served {
                        Ok(()) => break,
                        Err(e) => {
                            // A connection that worked for a while starts the schedule over.
                            if started.elapsed() > self.opts.backoff_max {
                                backoff.reset();
                            }
                            e
                        }
                    }
                }
                Err(e) => e,
            };
            self.dest_metrics().failures.inc();
            let delay = backoff.next(rand::random());
            tracing::warn!(key = %self.key, %dest, error = %error, retry_in = ?delay, "destination failed");
            self.state(
                "backing_off",
                vec![
                    ("error".to_owned(), error.to_string()),
                    ("retry_in_ms".to_owned(), delay.as_millis().to_string()),
                ],
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.wait_end() => break,
            }
        }
        tracing::info!(key = %self.key, %dest, bytes = self.bytes, "destination stopped");
        self.state("stopped", vec![]);
        // A stopped destination's gauges are 0; its counters stay.
        let dropped = self.shared.lock().dropped_frames;
        self.dest_metrics().sync(dropped, 0);
    }

    /// Connects by the URL's scheme.
    async fn open(&self, config: ClientConfig) -> Result<Live, ConnError> {
        if self.url.starts_with("srt://") {
            return SrtConn::open(&self.url, self.opts.connect_timeout)
                .await
                .map(|c| Live::Srt(Box::new(c)));
        }
        let mut early = Vec::new();
        RtmpConn::open(
            &self.url,
            ClientMode::Publish,
            config,
            self.opts.connect_timeout,
            &self.opts.tls,
            &mut early,
        )
        .await
        .map(|c| Live::Rtmp(Box::new(c)))
    }

    /// Feeds a live SRT connection with MPEG-TS until the stream ends (Ok) or the
    /// connection fails. Codecs MPEG-TS cannot carry are reported and not sent.
    async fn serve_srt(&mut self, mut conn: SrtConn) -> Result<(), ConnError> {
        let mut mux = Muxer::new(1000, MuxOptions::default());
        let mut out = BytesMut::new();
        let mut blocked: HashSet<(bool, u8)> = HashSet::new();
        for (codec, track, data) in self.headers.configs.clone() {
            self.mux_config(&mut mux, &mut blocked, codec, track, &data);
        }
        self.shared.lock().restart_at_sync(self.connects > 1);
        let mut stats = tokio::time::interval(self.opts.stats_interval);
        stats.tick().await;
        loop {
            loop {
                let Some(item) = self.pop() else { break };
                match item {
                    Item::Config { codec, track, data } => {
                        self.mux_config(&mut mux, &mut blocked, codec, track, &data)
                    }
                    // MPEG-TS has no place for AMF data messages.
                    Item::Metadata(_) | Item::Data { .. } | Item::Side { .. } => {}
                    Item::Frame(f) => {
                        let video = f.codec.kind() == TrackKind::Video;
                        if blocked.contains(&(video, f.track)) {
                            continue;
                        }
                        let frame = proto::media::Frame {
                            track: f.track,
                            kind: f.codec.kind(),
                            dts: i64::from(f.ts),
                            cts: f.cts,
                            flags: f.flags,
                            payload: f.data,
                        };
                        out.clear();
                        if mux.write_frame(&frame, &mut out).is_ok() {
                            conn.send(&out)?;
                        }
                    }
                }
                self.wrote(conn.flush().await?);
            }
            if self.ended() {
                conn.close().await;
                return Ok(());
            }
            tokio::select! {
                () = self.shared.notify.notified() => {}
                w = conn.wait() => {
                    conn.process(w?)?;
                    self.wrote(conn.flush().await?);
                }
                _ = stats.tick() => self.state("live", vec![]),
            }
        }
    }

    fn mux_config(
        &self,
        mux: &mut Muxer,
        blocked: &mut HashSet<(bool, u8)>,
        codec: Codec,
        track: u8,
        data: &[u8],
    ) {
        let video = codec.kind() == TrackKind::Video;
        if mux.set_config(track, codec, data).is_ok() {
            blocked.remove(&(video, track));
        } else if blocked.insert((video, track)) {
            self.unsupported(codec, track);
        }
    }

    fn unsupported(&self, codec: Codec, track: u8) {
        tracing::warn!(key = %self.key, dest = %redact(&self.url), codec = codec.name(), track, "destination does not take this codec; track not sent");
        self.emit(
            "relay_codec_unsupported",
            vec![
                ("codec".to_owned(), codec.name().to_owned()),
                ("track".to_owned(), track.to_string()),
            ],
        );
    }

    /// Takes the next queued item; the headers a later connection starts with take in
    /// what it changes.
    fn pop(&mut self) -> Option<Item> {
        let item = self.shared.lock().pop()?;
        self.headers.apply(&item);
        Some(item)
    }

    /// Resolves once the stream has ended.
    async fn wait_end(&self) {
        while !self.ended() {
            self.shared.notify.notified().await;
        }
        // Leave a permit for whoever waits next.
        self.shared.notify.notify_one();
    }

    /// Feeds a live connection until the stream ends (Ok) or the connection fails.
    async fn serve(&mut self, mut conn: RtmpConn) -> Result<(), ConnError> {
        let mut head = BytesMut::new();
        let mut blocked: HashSet<(bool, u8)> = HashSet::new();
        let mut last_ts = 0u32;
        // Metadata, then every track's configuration, then frames from a sync point.
        if let Some(m) = &self.headers.metadata {
            conn.session.send_metadata(0, m)?;
        }
        for (codec, track, data) in self.headers.configs.clone() {
            self.send(
                &mut conn,
                &mut head,
                &mut blocked,
                &mut last_ts,
                Item::Config { codec, track, data },
            )?;
        }
        // The colour description and speaker layout in force, after the configurations.
        for (codec, track, kind, body) in self.headers.track_state.clone() {
            let item = Item::Side {
                codec,
                track,
                kind,
                ts: 0,
                body,
            };
            self.send(&mut conn, &mut head, &mut blocked, &mut last_ts, item)?;
        }
        self.shared.lock().restart_at_sync(self.connects > 1);
        let mut stats = tokio::time::interval(self.opts.stats_interval);
        stats.tick().await;
        loop {
            loop {
                let Some(item) = self.pop() else { break };
                self.send(&mut conn, &mut head, &mut blocked, &mut last_ts, item)?;
                // One write per item, so a backlog never builds one huge buffer.
                self.wrote(conn.flush().await?);
            }
            self.wrote(conn.flush().await?);
            if self.ended() {
                conn.close().await;
                return Ok(());
            }
            tokio::select! {
                () = self.shared.notify.notified() => {}
                n = tokio::io::AsyncReadExt::read_buf(&mut conn.rd, &mut conn.rbuf) => {
                    if n? == 0 {
                        return Err(ConnError::Closed);
                    }
                    conn.session.handle_input(&mut conn.rbuf)?;
                    while conn.session.poll_event().is_some() {}
                }
                _ = stats.tick() => self.state("live", vec![]),
            }
        }
    }

    fn send(
        &self,
        conn: &mut RtmpConn,
        head: &mut BytesMut,
        blocked: &mut HashSet<(bool, u8)>,
        last_ts: &mut u32,
        item: Item,
    ) -> Result<(), ConnError> {
        match item {
            Item::Config { codec, track, data } => {
                let video = codec.kind() == TrackKind::Video;
                if !conn.caps.accepts(codec, track) {
                    if blocked.insert((video, track)) {
                        self.unsupported(codec, track);
                    }
                    return Ok(());
                }
                blocked.remove(&(video, track));
                let kind = tag_head(codec, track, PacketKind::Config, head);
                conn.session
                    .send_media_shared(kind, *last_ts, head, &data)?;
            }
            Item::Metadata(m) => conn.session.send_metadata(*last_ts, &m)?,
            Item::Data { ts, body } => conn.session.send_data(ts, &body)?,
            Item::Frame(f) => {
                let video = f.codec.kind() == TrackKind::Video;
                if blocked.contains(&(video, f.track)) || !conn.caps.accepts(f.codec, f.track) {
                    return Ok(());
                }
                if f.nanos > 0 && conn.caps.caps_ex & CAPS_EX_MODEX != 0 {
                    // The offset goes to servers that parse ModEx; others get the frame.
                    head.clear();
                    let rest = write_media_header(
                        f.codec,
                        f.track,
                        frame_kind(&f),
                        f.nanos,
                        &f.data,
                        head,
                    );
                    let kind = if video {
                        MediaKind::Video
                    } else {
                        MediaKind::Audio
                    };
                    conn.session.send_media_shared(kind, f.ts, head, &rest)?;
                } else {
                    let kind = tag_head(f.codec, f.track, frame_kind(&f), head);
                    conn.session.send_media_shared(kind, f.ts, head, &f.data)?;
                }
                *last_ts = f.ts;
            }
            Item::Side {
                codec,
                track,
                kind,
                ts,
                body,
            } => {
                let video = codec.kind() == TrackKind::Video;
                // Only in a form the server declared: E-RTMP packets to servers that
                // answered with E-RTMP (an H.264 end of sequence has a legacy form).
                let form = legacy_form(codec, track, kind) || conn.caps.enhanced;
                if blocked.contains(&(video, track)) || !conn.caps.accepts(codec, track) || !form {
                    return Ok(());
                }
                let media = tag_head(codec, track, kind, head);
                conn.session.send_media_shared(media, ts, head, &body)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(codec: Codec, track: u8, kind: PacketKind, body: &'static [u8]) -> Item {
        Item::Side {
            codec,
            track,
            kind,
            ts: 0,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn headers_keep_the_latest_colour_and_layout_per_track() {
        let mut h = Headers::default();
        h.apply(&side(Codec::H265, 0, PacketKind::Metadata, b"hdr1"));
        h.apply(&side(Codec::Opus, 0, PacketKind::ChannelConfig, b"2ch"));
        h.apply(&side(Codec::H265, 0, PacketKind::EndOfSequence, b""));
        h.apply(&side(Codec::H265, 0, PacketKind::Metadata, b"hdr2"));
        h.apply(&side(Codec::H265, 1, PacketKind::Metadata, b"t1"));
        let kept: Vec<(u8, PacketKind, &[u8])> = h
            .track_state
            .iter()
            .map(|(_, t, k, b)| (*t, *k, &b[..]))
            .collect();
        assert_eq!(
            kept,
            [
                (0, PacketKind::ChannelConfig, &b"2ch"[..]),
                (0, PacketKind::Metadata, &b"hdr2"[..]),
                (1, PacketKind::Metadata, &b"t1"[..]),
            ],
            "a SequenceEnd is no state; a newer colorInfo replaces the older"
        );
    }
}
