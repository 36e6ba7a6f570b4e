//! The connection to the hub: subscribe, turn stream messages into writer commands via
//! each stream's [`StreamRecorder`], and send record events back. Reconnects with backoff
//! ([`subscription::keep_subscribed`]).
//!
//! Backpressure: commands go to the writer through a bounded channel; when it is full this
//! task stops reading the socket, so the hub's bounded queue for us fills and the hub drops
//! frames and sends `Dropped`, which ends the current file cleanly. The hub never waits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use proto::flv::PacketKind;
use proto::glob::{self, Glob};
use proto::ipc::{self, Event, Header, Message};
use proto::media::TrackKind;
use telemetry::hub_conn::OpenError;
use telemetry::subscription::{self, Session, Subscriber, Subscription};
use tokio::sync::{mpsc, watch};

use crate::session::{Settings, StreamRecorder};
use crate::writer::{write_errors, Command, FileId, Report};

/// Events kept while the hub is unreachable (oldest dropped beyond this).
const MAX_PENDING_EVENTS: usize = 1024;
/// How long shutdown waits for the writer to close files.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// What the link needs.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The hub socket.
    pub socket: PathBuf,
    /// Key patterns (`*` globs); empty records everything.
    pub patterns: Vec<String>,
    /// Recording settings.
    pub settings: Arc<Settings>,
}

struct Link {
    opts: LinkOptions,
    /// `opts.patterns` compiled.
    globs: Vec<Glob>,
    commands: mpsc::Sender<Command>,
    reports: mpsc::Receiver<Report>,
    streams: HashMap<u32, StreamRecorder>,
    events: VecDeque<Event>,
    in_flight: HashSet<FileId>,
    file_keys: HashMap<FileId, String>,
}

/// Runs until `shutdown` turns true; then closes every file and waits for the writer.
pub async fn run(
    opts: LinkOptions,
    commands: mpsc::Sender<Command>,
    reports: mpsc::Receiver<Report>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut link = Link {
        globs: opts.patterns.iter().map(|p| Glob::new(p)).collect(),
        opts,
        commands,
        reports,
        streams: HashMap::new(),
        events: VecDeque::new(),
        in_flight: HashSet::new(),
        file_keys: HashMap::new(),
    };
    let socket = link.opts.socket.clone();
    subscription::keep_subscribed(&socket, "recorder", &mut link, &mut shutdown).await;
    link.end_all("shutdown").await;
    link.wait_for_closes().await;
    tracing::info!(write_errors = write_errors(), "recorder stopped");
}

impl Subscriber for Link {
    type Error = LinkError;

    fn subscription(&self) -> Subscription {
        Subscription {
            patterns: self.opts.patterns.clone(),
            media: true,
            events: false,
        }
    }

    async fn session(
        &mut self,
        session: &mut Session,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), LinkError> {
        loop {
            self.flush_events(session).await?;
            while let Some(msg) = session.message()? {
                self.on_message(msg).await?;
            }
            self.flush_events(session).await?;
            tokio::select! {
                more = session.receive() => {
                    if !more? {
                        return Ok(());
                    }
                }
                Some(r) = self.reports.recv() => self.on_report(r),
                _ = shutdown.changed() => {
                    self.end_all("shutdown").await;
                    // Let the closes' record_done events reach the hub.
                    self.wait_for_closes().await;
                    self.flush_events(session).await?;
                    return Ok(());
                }
            }
        }
    }

    /// The hub re-announces what is still live; the files of this connection end here.
    async fn disconnected(&mut self) {
        self.end_all("hub_disconnected").await;
    }

    /// The writer's reports keep coming (files closing): take them, so it never waits on
    /// a full report queue, and keep their events for the next connection.
    async fn while_away(&mut self) {
        while let Some(r) = self.reports.recv().await {
            self.on_report(r);
        }
        std::future::pending().await
    }
}

impl Link {
    async fn flush_events(&mut self, session: &mut Session) -> Result<(), LinkError> {
        if self.events.is_empty() {
            return Ok(());
        }
        let mut out = BytesMut::new();
        for e in self.events.drain(..) {
            ipc::encode(&Header::Event(e), &[], &mut out);
        }
        session.send(&out).await?;
        Ok(())
    }

    fn wanted(&self, key: &str) -> bool {
        glob::any_matches(&self.globs, key)
    }

    async fn on_message(&mut self, msg: Message) -> Result<(), LinkError> {
        if let Some(p) = msg.header.side_packet() {
            // Of a track's side packets only a video track's colour description is used
            // (see StreamRecorder::on_track_metadata); the others are not recorded.
            if p.kind == PacketKind::Metadata && p.codec.kind() == TrackKind::Video {
                if let Some(s) = self.streams.get_mut(&p.stream) {
                    s.on_track_metadata(p.track, &msg.payload);
                }
            }
            return Ok(());
        }
        let mut cmds = Vec::new();
        match msg.header {
            Header::Announce {
                stream,
                key,
                timescale,
            } => {
                if let Some(mut old) = self.streams.remove(&stream) {
                    old.on_end("reannounced", &mut cmds);
                }
                if self.wanted(&key) {
                    tracing::info!(stream, %key, timescale, "stream announced");
                    let s = StreamRecorder::new(key, timescale, self.opts.settings.clone());
                    self.streams.insert(stream, s);
                }
            }
            Header::TrackConfig {
                stream,
                track,
                codec,
            } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.on_track_config(track, codec, msg.payload, &mut cmds);
                }
            }
            Header::Metadata { stream } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.on_metadata(&msg.payload);
                }
            }
            Header::TimestampOffset {
                stream,
                track,
                video,
                nanos,
            } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.on_timestamp_offset(track, video, nanos);
                }
            }
            Header::Frame { .. } => {
                if let Some((stream, frame)) = msg.frame() {
                    if let Some(s) = self.streams.get_mut(&stream) {
                        s.on_frame(Instant::now(), SystemTime::now(), frame, &mut cmds);
                    }
                }
            }
            Header::Dropped {
                stream,
                frames,
                bytes,
            } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.on_dropped(frames, bytes, &mut cmds);
                }
            }
            Header::EndOfStream { stream, reason } => {
                if let Some(mut s) = self.streams.remove(&stream) {
                    tracing::info!(stream, key = s.key(), %reason, "stream ended");
                    s.on_end(&reason, &mut cmds);
                }
            }
            _ => {}
        }
        for c in cmds {
            self.send(c).await?;
        }
        Ok(())
    }

    /// Sends one command, handling reports while the writer's queue is full.
    async fn send(&mut self, cmd: Command) -> Result<(), LinkError> {
        if let Command::Open { file, .. } = &cmd {
            self.in_flight.insert(*file);
            let key = self
                .streams
                .values()
                .find(|s| s.current_file() == Some(*file))
                .map(|s| s.key().to_owned())
                .unwrap_or_default();
            self.file_keys.insert(*file, key);
        }
        let tx = self.commands.clone();
        loop {
            tokio::select! {
                permit = tx.reserve() => {
                    permit.map_err(|_| LinkError::WriterGone)?.send(cmd);
                    return Ok(());
                }
                Some(r) = self.reports.recv() => self.on_report(r),
            }
        }
    }

    async fn end_all(&mut self, reason: &str) {
        let mut cmds = Vec::new();
        for (_, mut s) in self.streams.drain() {
            s.on_end(reason, &mut cmds);
        }
        for c in cmds {
            if self.send(c).await.is_err() {
                break;
            }
        }
    }

    /// Takes the writer's reports until every file it was asked to close is closed, for
    /// [`SHUTDOWN_WAIT`] at the most.
    async fn wait_for_closes(&mut self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(r)) => self.on_report(r),
                _ => break,
            }
        }
    }

    fn on_report(&mut self, r: Report) {
        let event = match r {
            Report::Opened { file, path } => {
                let key = self.file_keys.get(&file).cloned().unwrap_or_default();
                tracing::info!(%key, path = %path.display(), "recording started");
                event(
                    "record_start",
                    key,
                    vec![("path", path.display().to_string())],
                )
            }
            Report::Closed {
                file,
                path,
                bytes,
                reason,
                duration_ms,
            } => {
                self.in_flight.remove(&file);
                let key = self.file_keys.remove(&file).unwrap_or_default();
                tracing::info!(%key, path = %path.display(), bytes, duration_ms, %reason, "recording done");
                event(
                    "record_done",
                    key,
                    vec![
                        ("path", path.display().to_string()),
                        ("duration", format!("{:.3}", duration_ms as f64 / 1000.0)),
                        ("bytes", bytes.to_string()),
                        ("reason", reason),
                    ],
                )
            }
            Report::Failed {
                file,
                path,
                bytes,
                error,
            } => {
                self.in_flight.remove(&file);
                let key = self.file_keys.remove(&file).unwrap_or_default();
                let now = Instant::now();
                let duration_ms = self
                    .streams
                    .values_mut()
                    .find_map(|s| s.on_write_failed(file, now))
                    .unwrap_or(0);
                let path = path.map(|p| p.display().to_string()).unwrap_or_default();
                tracing::error!(%key, %path, %error, write_errors = write_errors(), "recording write failed; will resume in a new file");
                event(
                    "record_done",
                    key,
                    vec![
                        ("path", path),
                        ("duration", format!("{:.3}", duration_ms as f64 / 1000.0)),
                        ("bytes", bytes.to_string()),
                        ("reason", format!("write_error: {error}")),
                    ],
                )
            }
        };
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

fn event(kind: &str, key: String, fields: Vec<(&str, String)>) -> Event {
    Event {
        kind: kind.to_owned(),
        key,
        conn_id: 0,
        remote: String::new(),
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

/// Why a hub session ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The connection to the hub failed.
    #[error(transparent)]
    Hub(#[from] OpenError),
    /// The writer thread is gone.
    #[error("writer thread stopped")]
    WriterGone,
}
