//! One client connection: socket bytes through the `ServerSession`, events to the hub link
//! or the player handoff. Every way a connection ends in error logs one warn line naming
//! the connection, the layer and the reason.

use std::fmt::Display;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant as StdInstant;

use auth::{Action, Protocol, Request};
use bytes::BytesMut;
use proto::ipc::{Header, RejectReason};
use proto::media::StreamKey;
use proto::rtmp::handshake::RANDOM_SIZE;
use proto::rtmp::session::{
    MessageStreamId, PlayRequest, PublishRequest, ServerSession, SessionError, SessionEvent,
};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::{timeout, Instant};

use crate::cli::Config;
use crate::convert::{Converter, STREAM};
use crate::drain::Token;
use crate::handoff;
use crate::pace::{self, Pace};
use crate::slots::Slot;
use crate::tls::ClientSock;
use ingest_link::link::{self, Link, LinkEvent, Opened};

/// Bytes reserved for each socket read of a publisher.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes reserved for each socket read before publishing: a handshake and commands need
/// little, and most connections in setup are players handed to the hub moments later.
/// Giving each of them 64 KiB for its short life fragmented the allocator's heaps (the
/// process grew by about 150 KiB a minute under player churn while its live heap stayed
/// flat); a client that sends more gets larger reads as its buffer grows.
const SETUP_READ_CHUNK: usize = 4 * 1024;

/// Why a connection is closed, for the warn line.
#[derive(Debug)]
struct Close {
    layer: &'static str,
    error: String,
}

impl Close {
    fn new(layer: &'static str, error: impl Display) -> Self {
        Close {
            layer,
            error: error.to_string(),
        }
    }
}

impl From<SessionError> for Close {
    fn from(e: SessionError) -> Self {
        Close::new(e.layer(), e)
    }
}

/// How a connection ended without error.
enum End {
    /// The client left or was told to go.
    Closed,
    /// Play accepted: hand the socket to the hub over this connection.
    HandOff { uds: UnixStream, key: StreamKey },
}

/// Which deadline a read waits under.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    Handshake,
    Setup,
    Idle,
}

/// What an event asks the driver to do next.
enum Flow {
    Continue,
    End(End),
}

struct Publisher {
    _live: telemetry::GaugeGuard,
    key: StreamKey,
    stream_id: MessageStreamId,
    link: Link,
    convert: Converter,
    bad_tags: u64,
    /// A video track was configured: reads are paced from its first keyframe on.
    video: bool,
    /// The first frames players wait for went out: reads may be paced from now on.
    started: bool,
    /// Counted while open when the client announced the Reconnect capability.
    _capable: Option<crate::grace::CapableGuard>,
}

struct Conn {
    cfg: Arc<Config>,
    conn_id: u64,
    remote: SocketAddr,
    protocol: Protocol,
    sock: ClientSock,
    /// When the publisher's socket is read (`--read-coalesce`).
    pace: Pace,
    session: ServerSession,
    inbuf: BytesMut,
    outbuf: BytesMut,
    publisher: Option<Publisher>,
    /// The key it published (kept after the publish ended), for `connection_closed`.
    published: String,
    /// Says when the process shuts down; held until the connection ends.
    drain: Token,
    slot: Slot,
    /// Bytes held by every connection's buffers (see [`Conn::account`]).
    memory: Arc<AtomicUsize>,
    /// This connection's share of `memory`.
    charged: usize,
    /// When the connection was accepted: it must publish or play by `setup_timeout`.
    accepted: Instant,
    /// When the last whole message arrived (idleness is measured from it).
    last_message: Instant,
    messages: u64,
    /// The `?query` of `connect`'s app (OBS puts the server URL's query there); auth reads
    /// it after the stream name's own query.
    app_query: Option<String>,
}

fn epoch() -> u32 {
    static START: OnceLock<StdInstant> = OnceLock::new();
    START.get_or_init(StdInstant::now).elapsed().as_millis() as u32
}

/// How a connection ended, for its `connection_closed` event.
#[derive(Debug)]
pub(crate) struct Ended {
    /// `closed` (the client left or was told to go), `handed_over` (a player now served
    /// by the hub), or the layer of the error or limit that closed it.
    pub(crate) reason: &'static str,
    /// The warn line's reason when an error or limit closed it.
    pub(crate) error: Option<String>,
    /// The key it published or played; empty if it did neither.
    pub(crate) key: String,
    /// Bytes received from the client (before a handoff: up to it).
    pub(crate) bytes_in: u64,
}

/// Runs one connection to its end; `slot` is freed when it returns.
pub(crate) async fn run(
    sock: ClientSock,
    conn_id: u64,
    remote: SocketAddr,
    cfg: Arc<Config>,
    drain: Token,
    slot: Slot,
    memory: Arc<AtomicUsize>,
) -> Ended {
    let protocol = match sock {
        ClientSock::Tcp(_) => Protocol::Rtmp,
        ClientSock::Tls(_) => Protocol::Rtmps,
    };
    let mut random = [0u8; RANDOM_SIZE];
    rand::thread_rng().fill_bytes(&mut random);
    let mut session = ServerSession::new(cfg.session.clone(), random, epoch());
    if let Some(denied) = cfg.auth.lockout(protocol, remote, conn_id) {
        cfg.events.send(denied);
        session.refuse_connect(
            "too many failed authentication attempts from this address; try again later",
        );
    }
    let now = Instant::now();
    let pace = Pace::new(cfg.read_coalesce, matches!(sock, ClientSock::Tcp(_)));
    let mut conn = Conn {
        slot,
        memory,
        charged: 0,
        accepted: now,
        last_message: now,
        messages: 0,
        session,
        cfg,
        conn_id,
        remote,
        protocol,
        sock,
        pace,
        inbuf: BytesMut::with_capacity(SETUP_READ_CHUNK),
        outbuf: BytesMut::new(),
        publisher: None,
        published: String::new(),
        drain,
        app_query: None,
    };
    let result = conn.drive().await;
    conn.memory.fetch_sub(conn.charged, Ordering::Relaxed);
    conn.charged = 0;
    let mut ended = Ended {
        reason: "closed",
        error: None,
        key: std::mem::take(&mut conn.published),
        bytes_in: conn.session.bytes_received(),
    };
    if let Some(mut p) = conn.publisher.take() {
        p.link.send(
            Header::EndOfStream {
                stream: STREAM,
                reason: "disconnect".into(),
            },
            bytes::Bytes::new(),
        );
        tracing::info!(key = %p.key, "publisher disconnected");
    }
    let close = match result {
        Ok(End::Closed) => {
            tracing::debug!("connection closed");
            None
        }
        Ok(End::HandOff { uds, key }) => {
            ended.key = key.to_string();
            let Conn {
                session,
                sock,
                inbuf,
                cfg,
                ..
            } = conn;
            let state = match session.into_player_state(
                conn_id,
                remote.to_string(),
                key.to_string(),
                &inbuf,
            ) {
                Ok(s) => s,
                Err(e) => {
                    let close = Close::from(e);
                    warn_close(&cfg, conn_id, &close);
                    return ended.with(close);
                }
            };
            let close = match sock {
                ClientSock::Tcp(tcp) => match handoff::hand_over(uds, tcp.as_fd(), state).await {
                    Ok(()) => {
                        cfg.stats.plays.inc();
                        tracing::info!(key = %key, "player handed to the hub");
                        ended.reason = "handed_over";
                        None
                    }
                    Err(e) => Some(Close::new("handoff", e)),
                },
                ClientSock::Tls(tls) => {
                    cfg.stats.plays.inc();
                    let write_timeout = cfg.idle_timeout;
                    handoff::relay_tls(uds, *tls, state, &key, write_timeout)
                        .await
                        .err()
                        .map(|e| Close::new("handoff", e))
                }
            };
            if let Some(c) = &close {
                warn_close(&cfg, conn_id, c);
            }
            close
        }
        Err(close) => {
            warn_close(&conn.cfg, conn_id, &close);
            Some(close)
        }
    };
    match close {
        Some(c) => ended.with(c),
        None => ended,
    }
}

impl Ended {
    fn with(mut self, close: Close) -> Ended {
        self.reason = close.layer;
        self.error = Some(close.error);
        self
    }
}

/// Whether a stream has a video track and whether its first frames went out with
/// `header`, given whether a video track was configured before it: up to the first video
/// keyframe (or the first frame of a stream without video) players wait for every frame,
/// so until then reads are not paced.
fn first_frames(header: &Header, video: bool) -> (bool, bool) {
    match header {
        Header::TrackConfig { codec, .. } => (
            video || codec.kind() == proto::media::TrackKind::Video,
            false,
        ),
        Header::Frame {
            video: is_video,
            flags,
            ..
        } => (video, !video || (*is_video && flags.keyframe())),
        _ => (video, false),
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
    )
}

fn warn_close(cfg: &Config, conn_id: u64, c: &Close) {
    cfg.stats.closed(c.layer);
    tracing::warn!(conn_id, layer = c.layer, error = %c.error, "closing connection");
}

impl Conn {
    async fn drive(&mut self) -> Result<End, Close> {
        let handshake_deadline = self.accepted + self.cfg.handshake_timeout;
        loop {
            if let Err(e) = self.session.handle_input(&mut self.inbuf) {
                // The session may have queued the `_error`/onStatus explaining itself.
                let _ = self.flush().await;
                return Err(e.into());
            }
            let messages = self.session.messages_received();
            if messages != self.messages {
                self.messages = messages;
                self.last_message = Instant::now();
            }
            self.account()?;
            let mut decided = false;
            while let Some(event) = self.session.poll_event() {
                let paused = self.session.is_paused();
                match self.on_event(event).await? {
                    Flow::Continue => {}
                    Flow::End(end) => {
                        self.flush().await?;
                        return Ok(end);
                    }
                }
                decided |= paused && !self.session.is_paused();
            }
            if self.pace.waiting_until().is_some() {
                // Paced: every publisher read on this tick queues its frames before any
                // writes (a yielding task resumes once the others have run), so the first
                // flush writes all of them to the shared hub connection with one writev
                // and the hub wakes once for them all; the later flushes find it done.
                tokio::task::yield_now().await;
            }
            self.flush().await?;
            if decided {
                // Input left in the buffer while the session waited is processed first.
                continue;
            }
            self.read(handshake_deadline).await?;
            if self.inbuf.is_empty() {
                return Ok(End::Closed);
            }
        }
    }

    /// Charges this connection's buffers to the process-wide memory budget. Past the
    /// budget, a connection holding more than its baseline (a read buffer) is closed:
    /// the one asking for more is refused, the rest keep what they have.
    fn account(&mut self) -> Result<(), Close> {
        let usage = self.inbuf.capacity() + self.outbuf.capacity() + self.session.buffered_bytes();
        let total = if usage >= self.charged {
            self.memory
                .fetch_add(usage - self.charged, Ordering::Relaxed)
                + usage
                - self.charged
        } else {
            self.memory
                .fetch_sub(self.charged - usage, Ordering::Relaxed)
                - (self.charged - usage)
        };
        self.charged = usage;
        if total > self.cfg.memory_budget && usage > 2 * READ_CHUNK {
            return Err(Close::new(
                "memory",
                format!(
                    "memory budget exhausted: all connections hold {total} bytes, more than \
                     --memory-budget {}; this one holds {usage}",
                    self.cfg.memory_budget
                ),
            ));
        }
        Ok(())
    }

    /// The deadline of the next read and what expires with it.
    fn deadline(&self, handshake_deadline: Instant) -> (Instant, Expiry) {
        let idle = (self.last_message + self.cfg.idle_timeout, Expiry::Idle);
        if self.publisher.is_some() {
            return idle;
        }
        let setup = (self.accepted + self.cfg.setup_timeout, Expiry::Setup);
        let first = if self.session.is_handshaking() {
            (handshake_deadline, Expiry::Handshake)
        } else {
            idle
        };
        if setup.0 < first.0 {
            setup
        } else {
            first
        }
    }

    /// Reads once (or handles a hub event). An empty input buffer afterwards means EOF.
    /// A publisher's reads are paced (`--read-coalesce`): between ticks its frames wait in
    /// the kernel.
    async fn read(&mut self, handshake_deadline: Instant) -> Result<(), Close> {
        let (deadline, what) = self.deadline(handshake_deadline);
        // Input may wait up to a tick unread: it counts as arrived in time.
        let deadline = deadline + self.pace.grace();
        let established = self.publisher.is_some();
        let chunk = if established {
            READ_CHUNK
        } else {
            SETUP_READ_CHUNK.max(self.inbuf.len()).min(READ_CHUNK)
        };
        if self.inbuf.capacity() - self.inbuf.len() < chunk / 4 {
            self.inbuf.reserve(chunk);
        }
        let room = self.inbuf.capacity() - self.inbuf.len();
        loop {
            let tick = self.pace.waiting_until().filter(|t| *t < deadline);
            let link_event = async {
                match &mut self.publisher {
                    Some(p) => p.link.event().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.sock.read_buf(&mut self.inbuf) => return match r {
                    Ok(0) if self.session.is_handshaking() => {
                        Err(Close::new("handshake", "client closed the connection during the handshake"))
                    }
                    Ok(0) => {
                        // Leave whatever partial input there is; the caller sees EOF.
                        self.inbuf.clear();
                        Ok(())
                    }
                    Ok(n) => self.after_read(n, room),
                    Err(e) if is_reset(&e) => {
                        // A client that leaves abruptly is not a protocol violation.
                        tracing::debug!(error = %e, "client reset the connection");
                        self.inbuf.clear();
                        Ok(())
                    }
                    Err(e) => Err(Close::new("tcp", e)),
                },
                _ = tokio::time::sleep_until(tick.unwrap_or(deadline)) => {
                    if tick.is_none() {
                        return Err(self.expired(what));
                    }
                    if !self.pace.reads_on_tick() {
                        // The tick: what arrived since the last read becomes readable.
                        self.pace.lower(self.sock.tcp()).map_err(|e| Close::new("tcp", e))?;
                        continue;
                    }
                    match pace::read_now(self.sock.tcp(), &mut self.inbuf) {
                        Ok(None) => self.pace.idle_tick(),
                        Ok(Some(0)) => {
                            self.inbuf.clear();
                            return Ok(());
                        }
                        Ok(Some(n)) => return self.after_read(n, room),
                        Err(e) if is_reset(&e) => {
                            tracing::debug!(error = %e, "client reset the connection");
                            self.inbuf.clear();
                            return Ok(());
                        }
                        Err(e) => return Err(Close::new("tcp", e)),
                    }
                }
                _ = self.slot.evicted(), if !established => return Err(Close::new(
                    "listener",
                    "evicted: every connection slot was taken and this connection had not yet \
                     published or played",
                )),
                event = link_event => match event {
                    LinkEvent::Reconnect { tc_url, description } => {
                        // Not an end: the connection reads on.
                        self.request_reconnect(tc_url.as_deref(), description.as_deref()).await?;
                    }
                    event => {
                        self.on_link_event(event).await?;
                        // The publisher is being closed: report EOF to the caller.
                        self.inbuf.clear();
                        return Ok(());
                    }
                },
                _ = self.drain.stopping() => {
                    self.shut_down().await?;
                    self.inbuf.clear();
                    return Ok(());
                }
            }
        }
    }

    /// Accounts a read of `n` bytes into `room` bytes of buffer and sets when the socket
    /// is read next.
    fn after_read(&mut self, n: usize, room: usize) -> Result<(), Close> {
        self.cfg.stats.bytes_in.add(n as u64);
        let paced = self.publisher.as_ref().is_some_and(|p| p.started);
        self.pace
            .after_read(self.sock.tcp(), paced, n < room)
            .map_err(|e| Close::new("tcp", e))
    }

    /// The hub asks the publishing client to reconnect: it gets the E-RTMP request if it
    /// announced the capability, and is left alone otherwise.
    async fn request_reconnect(
        &mut self,
        tc_url: Option<&str>,
        description: Option<&str>,
    ) -> Result<(), Close> {
        let key = self.published.clone();
        if self.session.request_reconnect(tc_url, description) {
            tracing::info!(%key, tc_url = tc_url.unwrap_or(""), "reconnect request sent to the publisher");
            self.flush().await
        } else {
            tracing::info!(%key, "publisher did not announce Reconnect; left alone");
            Ok(())
        }
    }

    /// The process shuts down: a publisher's stream ends as an unpublish (the hub gets
    /// `EndOfStream`, the client `NetStream.Unpublish.Success`), and every connected
    /// client is told the connection closes.
    async fn shut_down(&mut self) -> Result<(), Close> {
        const WHY: &str = "The server is shutting down.";
        if let Some(mut p) = self.publisher.take() {
            p.link.send(
                Header::EndOfStream {
                    stream: STREAM,
                    reason: "shutdown".into(),
                },
                bytes::Bytes::new(),
            );
            self.session
                .send_status(p.stream_id, "status", "NetStream.Unpublish.Success", WHY);
            tracing::info!(key = %p.key, bad_tags = p.bad_tags, "unpublished: shutting down");
        }
        if self.session.connect_info().is_some() {
            let nc = MessageStreamId(0);
            self.session
                .send_status(nc, "status", "NetConnection.Connect.Closed", WHY);
        }
        self.flush().await
    }

    fn expired(&self, what: Expiry) -> Close {
        let d = |t| humantime::format_duration(t);
        match what {
            Expiry::Handshake => Close::new(
                "handshake",
                format!(
                    "handshake timeout: not completed within {}",
                    d(self.cfg.handshake_timeout)
                ),
            ),
            Expiry::Setup => Close::new(
                "session",
                format!(
                    "setup timeout: did not publish or play within {}",
                    d(self.cfg.setup_timeout)
                ),
            ),
            Expiry::Idle => Close::new(
                "session",
                format!(
                    "idle timeout: no complete message for {}",
                    d(self.cfg.idle_timeout)
                ),
            ),
        }
    }

    async fn on_link_event(&mut self, event: LinkEvent) -> Result<(), Close> {
        let Some(p) = self.publisher.take() else {
            return Ok(());
        };
        match event {
            LinkEvent::Revoked(reason) if reason == "kicked" => {
                let d = format!("{} was stopped by the server's operator", p.key);
                self.session
                    .send_status(p.stream_id, "status", "NetStream.Unpublish.Success", &d);
                tracing::info!(key = %p.key, "publisher kicked through the hub's API; closing");
            }
            LinkEvent::Revoked(reason) => {
                let d = format!("{} was taken over by another publisher", p.key);
                self.session
                    .send_status(p.stream_id, "status", "NetStream.Unpublish.Success", &d);
                tracing::info!(key = %p.key, %reason, "publisher taken over by another publisher; closing");
            }
            LinkEvent::Reconnect { .. } => {
                // Not an end: handled by the caller.
                self.publisher = Some(p);
                return Ok(());
            }
            LinkEvent::Rejected(reason) => {
                let d = format!("{} is no longer accepted by the hub ({reason:?})", p.key);
                self.session
                    .send_status(p.stream_id, "error", "NetStream.Publish.BadName", &d);
                tracing::warn!(conn_id = self.conn_id, layer = "hub", error = %d, "closing connection");
            }
        }
        self.flush().await
    }

    /// Writes what this read produced: the publisher's frames to the hub (one vectored
    /// write for all of them) and the session's replies to the client.
    async fn flush(&mut self) -> Result<(), Close> {
        if let Some(p) = &mut self.publisher {
            p.link.flush();
        }
        self.session.poll_transmit(&mut self.outbuf);
        if self.outbuf.is_empty() {
            return Ok(());
        }
        match timeout(
            self.cfg.idle_timeout,
            self.sock.write_all_buf(&mut self.outbuf),
        )
        .await
        {
            Ok(Ok(())) => {
                self.outbuf.clear();
                Ok(())
            }
            Ok(Err(e)) if is_reset(&e) && !self.session.is_handshaking() => {
                // The next read reports the end of the connection.
                tracing::debug!(error = %e, "client reset the connection");
                self.outbuf.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(Close::new("tcp", e)),
            Err(_) => Err(Close::new("tcp", "write timeout: the client does not read")),
        }
    }

    async fn on_event(&mut self, event: SessionEvent) -> Result<Flow, Close> {
        match event {
            SessionEvent::HandshakeDone { kind } => tracing::debug!(?kind, "handshake done"),
            SessionEvent::Connected(info) => {
                let tc_url = info.tc_url.as_deref().map(auth::redact::name_with_query);
                tracing::debug!(app = %info.app, ?tc_url, flash_ver = ?info.flash_ver, "connected");
                self.app_query = info.app_query;
            }
            SessionEvent::ConnectRejected { description } => {
                tracing::info!(%description, "connect refused");
                return Ok(Flow::End(End::Closed));
            }
            SessionEvent::PublishRequest(req) => return self.publish(req).await,
            SessionEvent::Metadata { data, .. } => {
                if let Some(p) = &mut self.publisher {
                    p.link.queue(Header::Metadata { stream: STREAM }, data);
                }
            }
            SessionEvent::Data {
                timestamp, data, ..
            } => {
                if let Some(p) = &mut self.publisher {
                    let link = &mut p.link;
                    p.convert.data(timestamp, data, |h, b| link.send(h, b));
                }
            }
            SessionEvent::Media(m) => {
                if let Some(p) = &mut self.publisher {
                    let (link, video, started) = (&mut p.link, &mut p.video, &mut p.started);
                    let queue = |h: Header, b| {
                        if !*started {
                            (*video, *started) = first_frames(&h, *video);
                        }
                        link.queue(h, b);
                    };
                    if let Err(e) = p.convert.media(&m, queue) {
                        p.bad_tags += 1;
                        // Per message, so not at info; the count shows in the unpublish line.
                        tracing::debug!(error = %e, "dropping a malformed FLV tag body");
                    }
                }
            }
            SessionEvent::Unpublished { reason, .. } => {
                if let Some(mut p) = self.publisher.take() {
                    p.link.send(
                        Header::EndOfStream {
                            stream: STREAM,
                            reason: "unpublish".into(),
                        },
                        bytes::Bytes::new(),
                    );
                    tracing::info!(key = %p.key, by = reason.as_str(), bad_tags = p.bad_tags, "unpublished");
                }
            }
            SessionEvent::PlayRequest(req) => return self.play(req).await,
            SessionEvent::Refused {
                command,
                code,
                description,
                ..
            } => {
                // A client mistake the client's user only sees as a terse error; the
                // server's user needs to see it too.
                tracing::warn!(code, "{command} refused: {description}");
            }
            other => tracing::debug!(?other, "session event"),
        }
        Ok(Flow::Continue)
    }

    /// Asks the authenticator whether `action` on `key` is allowed, reports the decision
    /// as an event, and returns the key to use (a callback may rename it) or the
    /// description to refuse with.
    async fn authorize(
        &mut self,
        action: Action,
        key: StreamKey,
        query: Option<&str>,
    ) -> Result<StreamKey, String> {
        let req = Request {
            action,
            protocol: self.protocol,
            key: key.to_string(),
            remote: self.remote,
            conn_id: self.conn_id,
            params: auth::redact::parse_queries(
                [query, self.app_query.as_deref()].into_iter().flatten(),
            ),
        };
        let events = &self.cfg.events;
        self.cfg
            .auth
            .authorize_key(key, &req, |e| events.send(e))
            .await
            .map_err(|r| r.to_string())
    }

    async fn publish(&mut self, req: PublishRequest) -> Result<Flow, Close> {
        let sid = req.stream_id;
        let key = match StreamKey::new(&req.app, &req.name) {
            Ok(k) => k,
            Err(e) => {
                let d = format!("invalid stream key {}/{}: {e}", req.app, req.name);
                self.session
                    .reject_publish(sid, "NetStream.Publish.BadName", &d);
                tracing::warn!(app = %req.app, name = %req.name, "publish refused: {d}");
                return Ok(Flow::End(End::Closed));
            }
        };
        let key = match self
            .authorize(Action::Publish, key, req.query.as_deref())
            .await
        {
            Ok(k) => k,
            Err(description) => {
                self.session
                    .reject_publish(sid, "NetStream.Publish.Unauthorized", &description);
                return Ok(Flow::End(End::Closed));
            }
        };
        let opened = match &self.cfg.pipe {
            Some(pipe) => Ok(Opened::Accepted(
                pipe.open(&key, Box::new(self.drain.clone())),
            )),
            None => {
                let (hub, bytes) = (&self.cfg.hub, self.cfg.hub_queue_bytes);
                let guard = Box::new(self.drain.clone());
                let replay = self.cfg.hub_replay;
                link::open_with(hub, &key, bytes, replay, self.conn_id, crate::ORIGIN, guard).await
            }
        };
        match opened {
            Ok(Opened::Accepted(link)) => {
                self.session.accept_publish(sid);
                self.slot.establish();
                tracing::info!(key = %key, kind = ?req.kind, "publishing");
                self.cfg.stats.publishes.inc();
                self.published = key.to_string();
                self.publisher = Some(Publisher {
                    _live: self.cfg.stats.publishers.track(),
                    key,
                    stream_id: sid,
                    link,
                    convert: Converter::default(),
                    bad_tags: 0,
                    video: false,
                    started: false,
                    _capable: self
                        .session
                        .can_reconnect()
                        .then(|| self.cfg.capable.track()),
                });
                Ok(Flow::Continue)
            }
            Ok(Opened::Rejected(reason)) => {
                let (code, d) = match reason {
                    RejectReason::Duplicate => (
                        "NetStream.Publish.BadName",
                        format!("{key} is already being published"),
                    ),
                    RejectReason::Capacity => (
                        "NetStream.Publish.Denied",
                        "the server is at its stream limit".to_owned(),
                    ),
                    RejectReason::Denied => (
                        "NetStream.Publish.Denied",
                        format!("publishing {key} is not allowed"),
                    ),
                };
                self.session.reject_publish(sid, code, &d);
                tracing::info!(key = %key, ?reason, "publish refused by the hub");
                Ok(Flow::End(End::Closed))
            }
            Err(e) => {
                let d = format!("the hub is unavailable: {e}");
                self.session
                    .reject_publish(sid, "NetStream.Publish.Failed", &d);
                let _ = self.flush().await;
                Err(Close::new("hub", d))
            }
        }
    }

    async fn play(&mut self, req: PlayRequest) -> Result<Flow, Close> {
        let sid = req.stream_id;
        let key = match StreamKey::new(&req.app, &req.name) {
            Ok(k) => k,
            Err(e) => {
                let d = format!("invalid stream key {}/{}: {e}", req.app, req.name);
                self.session
                    .reject_play(sid, "NetStream.Play.StreamNotFound", &d);
                tracing::warn!(app = %req.app, name = %req.name, "play refused: {d}");
                return Ok(Flow::Continue);
            }
        };
        let key = match self
            .authorize(Action::Play, key, req.query.as_deref())
            .await
        {
            Ok(k) => k,
            Err(description) => {
                self.session
                    .reject_play(sid, "NetStream.Play.Unauthorized", &description);
                return Ok(Flow::End(End::Closed));
            }
        };
        if self.cfg.pipe.is_some() {
            let d = "this server writes streams to a pipe (--out) and has no players";
            self.session.reject_play(sid, "NetStream.Play.Failed", d);
            tracing::info!(key = %key, "play refused: --out mode has no players");
            return Ok(Flow::Continue);
        }
        match handoff::connect(&self.cfg.hub).await {
            Ok(uds) => {
                self.session.accept_play(sid);
                self.slot.establish();
                Ok(Flow::End(End::HandOff { uds, key }))
            }
            Err(e) => {
                let d = format!("the hub is unavailable: {e}");
                self.session.reject_play(sid, "NetStream.Play.Failed", &d);
                let _ = self.flush().await;
                Err(Close::new("hub", d))
            }
        }
    }
}
