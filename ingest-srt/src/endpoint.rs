//! The UDP endpoint: one task owns the socket, the handshake listener and every
//! connection's sans-IO state; media leaves through each publisher's bounded queue.
//!
//! ```text
//!  socket --dst 0--> Listener --Request--> access::decide --> auth (spawned; repeated
//!        |                                     |                |  conclusions ignored
//!        |                                   refuse    1401/1403 <--+--> Listener::accept
//!        |                                     v                        |  hub announce
//!        |                               rejection datagram             v  (spawned; 1409 on
//!        |                                                           pending  a duplicate)
//!        +--dst id--> Connection --Message--> publisher task (bounded queue) --> hub
//!  one timer: the earliest poll_timeout of all connections
//! ```

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use auth::{Action, Outcome};
use bytes::{Bytes, BytesMut};
use ingest_link::link::{self, Link, LinkError, Opened};
use proto::ipc;
use proto::srt::crypto::Passphrase;
use proto::srt::packet::Packet;
use proto::srt::{
    Accept, CloseReason, ConnectRequest, Connection, Event, Listener, ListenerOutput, Random,
    RejectReason,
};
use rand::RngCore;
use tokio::sync::mpsc;

use crate::access;
use crate::cli::Config;
use crate::metrics::{ConnMetrics, Role, SrtMetrics};
use crate::passphrase::Book;
use crate::player::{self, Out, PlayerArgs};
use crate::publisher::{self, Msg};
use crate::udp::{Datagram, Udp};

/// Randomness from the operating system for ids, cookies and keys.
pub(crate) struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf)
    }
}

/// Packets the SRT sender of a player may drop (too late) within a second before the
/// player is taken to be behind and skips to the next keyframe.
const BEHIND_DROPS: u64 = 16;

/// Player outputs handled per wake-up before timers and datagrams get a turn.
const BATCH: usize = 64;

/// Datagrams read per wake-up at most before timers and other events get a turn.
const DRAIN: usize = 1024;

/// The grid the endpoint's wake-ups fall on: timers are run at the first grid step at or
/// after their deadline, and while datagrams flow the socket is read once per step. One
/// wake-up then serves a full ACK (every 10 ms), the TSBPD releases due since the last
/// step, what arrived meanwhile (ACKACKs included) and the hand-off to the publishers.
const GRID: Duration = Duration::from_millis(10);

/// Grid steps in a row that read nothing before the endpoint waits for readiness again.
const IDLE_STEPS: u32 = 10;

struct Conn {
    conn: Connection,
    peer: SocketAddr,
    peer_socket: u32,
    conn_id: u64,
    key: String,
    tx: Option<mpsc::Sender<Msg>>,
    accepted: Instant,
    /// Set for a player (`m=request`) instead of `tx`.
    player: Option<PlayerConn>,
    next_stats: Instant,
    queue_dropped: u64,
    /// Payloads released by TSBPD and not yet handed to the publisher, and since when.
    held: Vec<Bytes>,
    held_since: Option<Instant>,
    /// Its share of the series; dropping it removes the connection's own.
    metrics: ConnMetrics,
}

impl Conn {
    /// When the payloads held for the publisher are to be handed over, `handoff` after
    /// the first (`--handoff`: one wake-up of the publisher's task and one write toward
    /// the hub per hand-off instead of per grid step; like ingest-rtmp's
    /// `--read-coalesce`, a small delay players do not notice).
    fn handoff_at(&self, handoff: Duration) -> Option<Instant> {
        self.held_since.map(|t| t + handoff)
    }
}

/// The endpoint's side of a player.
struct PlayerConn {
    shared: Arc<player::Shared>,
    closed: Option<tokio::sync::oneshot::Sender<player::Closed>>,
    /// `Stats::sent_dropped` at the start of the current one-second window: when it grows
    /// by [`BEHIND_DROPS`] within one, the player is behind (a lossy link that costs a
    /// packet now and then is not: skipping a GOP would cost it far more).
    dropped_seen: u64,
    window: Instant,
    /// Why the connection is being shut down by us (the stream ended).
    ending: Option<String>,
}

/// A request accepted by SRT, waiting for the hub to take the key.
struct Pending {
    conn: Connection,
    reply: Bytes,
    req: ConnectRequest,
    conn_id: u64,
    key: String,
    /// A player's passphrase: it is accepted again when its key is live (below).
    passphrase: Option<proto::srt::crypto::Passphrase>,
}

/// A request whose auth decision is being made (in a task of its own: a callback must not
/// hold up the socket), and the outcome once it is.
struct Authorized {
    req: ConnectRequest,
    grant: access::Grant,
    conn_id: u64,
    outcome: Outcome,
    event: ipc::Event,
}

enum Decision {
    Accepted(Link),
    Rejected(ipc::RejectReason),
    Failed(LinkError),
}

pub(crate) struct Endpoint {
    socket: Udp,
    /// Datagrams of the current read, kept for its buffer.
    batch: Vec<Datagram>,
    /// Connections that datagrams of the current read went to, flushed after it.
    touched: Vec<u32>,
    /// Time zero of [`GRID`].
    origin: Instant,
    /// The latest `now` given to the connections: a datagram's kernel arrival time is
    /// never taken as earlier than that.
    clock: Instant,
    cfg: Arc<Config>,
    book: Arc<RwLock<Book>>,
    listener: Listener,
    conns: HashMap<u32, Conn>,
    by_peer: HashMap<(SocketAddr, u32), u32>,
    pending: HashMap<(SocketAddr, u32), Pending>,
    /// Callers whose auth decision is under way: their repeated conclusions are ignored.
    authorizing: HashSet<(SocketAddr, u32)>,
    auth: auth::Authenticator,
    authorized_tx: mpsc::Sender<Authorized>,
    authorized: mpsc::Receiver<Authorized>,
    decisions_tx: mpsc::Sender<((SocketAddr, u32), Decision)>,
    decisions: mpsc::Receiver<((SocketAddr, u32), Decision)>,
    closed_tx: mpsc::Sender<u32>,
    closed: mpsc::Receiver<u32>,
    play_tx: mpsc::UnboundedSender<(u32, Out)>,
    play: mpsc::UnboundedReceiver<(u32, Out)>,
    next_conn_id: u64,
    metrics: Arc<SrtMetrics>,
}

impl Endpoint {
    pub(crate) fn new(
        socket: tokio::net::UdpSocket,
        cfg: Arc<Config>,
        book: Arc<RwLock<Book>>,
        auth: auth::Authenticator,
        metrics: Arc<SrtMetrics>,
    ) -> io::Result<Self> {
        let socket = Udp::new(socket, cfg.srt.mtu as usize, metrics.send_dropped.clone())?;
        let listener = Listener::new(Instant::now(), cfg.srt.clone(), &mut OsRandom);
        let (decisions_tx, decisions) = mpsc::channel(64);
        let (authorized_tx, authorized) = mpsc::channel(64);
        let (closed_tx, closed) = mpsc::channel(64);
        let (play_tx, play) = mpsc::unbounded_channel();
        let now = Instant::now();
        Ok(Endpoint {
            socket,
            batch: Vec::new(),
            touched: Vec::new(),
            origin: now,
            clock: now,
            cfg,
            book,
            listener,
            conns: HashMap::new(),
            by_peer: HashMap::new(),
            pending: HashMap::new(),
            authorizing: HashSet::new(),
            auth,
            authorized_tx,
            authorized,
            decisions_tx,
            decisions,
            closed_tx,
            closed,
            play_tx,
            play,
            next_conn_id: 1,
            metrics,
        })
    }

    pub(crate) async fn run(mut self) -> io::Result<()> {
        let mut metrics_tick = tokio::time::interval(telemetry::REPORT_INTERVAL);
        metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One timer, moved only when the wake-up it is for moves (re-arming a timer costs
        // a trip through the runtime's timer wheel).
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed = None;
        // Never awaited: armed at the grid step after the one `sleep` waits for. Tokio's
        // timer wakes its driver (an eventfd write and one more epoll_wait) when a timer is
        // armed earlier than every pending one, which re-arming `sleep` after it fired
        // always is; with this one pending a step ahead it never is.
        let ahead = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(ahead);
        let mut ahead_at = None;
        // Grid steps in a row that read nothing while reading on the grid.
        let mut idle = 0;
        loop {
            let deadline = self.next_deadline();
            let mut wake = deadline.map(|d| self.grid_step(d));
            if !self.socket.is_watched() {
                let next = self.grid_step(Instant::now() + Duration::from_nanos(1));
                wake = Some(wake.map_or(next, |w| w.min(next)));
            }
            if let Some(w) = wake.filter(|w| armed != Some(*w)) {
                sleep.as_mut().reset(w.into());
                armed = Some(w);
            }
            if !self.socket.is_watched() {
                let next = wake.map(|w| w + GRID);
                if let Some(a) = next.filter(|a| ahead_at.is_none_or(|at| at < *a)) {
                    ahead.as_mut().reset(a.into());
                    ahead_at = Some(a);
                }
            }
            let mut step = false;
            tokio::select! {
                r = self.socket.readable() => {
                    r?;
                    // Datagrams are flowing on a connection: read them on the grid from
                    // now on, without a wake-up per arrival.
                    if self.drain().await? > 0 && !self.conns.is_empty() {
                        self.socket.poll_on_grid();
                        idle = 0;
                    }
                }
                Some((peer, d)) = self.decisions.recv() => self.decided(peer, d).await,
                Some((id, out)) = self.play.recv() => {
                    self.play_out(id, out).await;
                    // Take what else the players queued before the timers run.
                    for _ in 1..BATCH {
                        match self.play.try_recv() {
                            Ok((id, out)) => self.play_out(id, out).await,
                            Err(_) => break,
                        }
                    }
                }
                Some(a) = self.authorized.recv() => self.on_authorized(a).await,
                Some(id) = self.closed.recv() => {
                    let now = self.now();
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.conn.close(now);
                    }
                    self.flush(id).await;
                }
                _ = metrics_tick.tick() => {
                    for c in self.conns.values_mut() {
                        c.metrics.update(&c.conn.stats());
                    }
                }
                _ = &mut sleep, if wake.is_some() => step = true,
            }
            // Everything that arrived is read before the timers run: TSBPD gives up on a
            // gap whose next packet is due, and the retransmission that fills it may be
            // waiting in the socket.
            let due = deadline.is_some_and(|d| d <= Instant::now());
            if step && !self.socket.is_watched() {
                if self.drain().await? == 0 {
                    idle += 1;
                } else {
                    idle = 0;
                }
                if idle >= IDLE_STEPS || self.conns.is_empty() {
                    self.socket.wait_for_readiness()?;
                }
            } else if due {
                self.drain().await?;
            }
            if due {
                self.timers();
            }
            self.flush_touched().await;
        }
    }

    /// The time to give the state machines for something that happened at `at`: never
    /// earlier than what they were last given (a datagram's kernel arrival time can
    /// precede a `now` taken since, e.g. for a player's payload sent before the read).
    fn stamp(&mut self, at: Instant) -> Instant {
        self.clock = self.clock.max(at);
        self.clock
    }

    /// The current time for the state machines (see [`Endpoint::stamp`]).
    fn now(&mut self) -> Instant {
        self.stamp(Instant::now())
    }

    /// The first step of [`GRID`] at or after `t`.
    fn grid_step(&self, t: Instant) -> Instant {
        let since = t.saturating_duration_since(self.origin).as_nanos();
        let grid = GRID.as_nanos();
        let steps = since.div_ceil(grid);
        self.origin + Duration::from_nanos((steps * grid) as u64)
    }

    /// Reads and handles datagrams until the socket has none left (or [`DRAIN`] of
    /// them, so a flood cannot hold off the timers): one wake-up for all that arrived.
    /// The connections they went to are flushed later, once ([`Endpoint::flush_touched`]).
    /// Returns how many datagrams were read.
    async fn drain(&mut self) -> io::Result<usize> {
        let mut total = 0;
        let mut batch = std::mem::take(&mut self.batch);
        while total < DRAIN {
            batch.clear();
            match self.socket.recv(&mut batch) {
                Ok(read) => {
                    total += read.count;
                    for d in batch.drain(..) {
                        let at = self.stamp(d.at);
                        self.datagram(at, d.from, d.data).await;
                    }
                    // A short read emptied the socket. Registered, it is read once more,
                    // to the `WouldBlock` that clears the runtime's readiness.
                    if read.count == 0 || (!read.more && !self.socket.is_watched()) {
                        break;
                    }
                }
                Err(e) if transient(&e) => tracing::debug!(error = %e, "receive failed"),
                Err(e) => return Err(e),
            }
        }
        self.batch = batch;
        Ok(total)
    }

    /// Flushes the connections that datagrams or timers gave something to do since the
    /// last call: one hand-off to each publisher and one round of sends per wake-up.
    async fn flush_touched(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        for id in touched.drain(..) {
            self.flush(id).await;
        }
        self.touched = touched;
    }

    fn touch(&mut self, id: u32) {
        if !self.touched.contains(&id) {
            self.touched.push(id);
        }
    }

    /// The earliest timer of any connection (its protocol timer or its next `srt_stats`).
    fn next_deadline(&self) -> Option<Instant> {
        let handoff = self.cfg.handoff;
        self.conns
            .values()
            .map(|c| {
                let next = (c.conn.poll_timeout()).map_or(c.next_stats, |t| t.min(c.next_stats));
                c.handoff_at(handoff).map_or(next, |h| h.min(next))
            })
            .min()
    }

    /// Runs the timers that are due; the connections are flushed afterwards.
    fn timers(&mut self) {
        let now = self.now();
        let (stats_interval, held_for) = (self.cfg.stats_interval, self.cfg.handoff);
        for (id, c) in self.conns.iter_mut() {
            let timer = c.conn.poll_timeout().is_some_and(|t| t <= now);
            let stats = c.next_stats <= now;
            let handoff = c.handoff_at(held_for).is_some_and(|h| h <= now);
            if !timer && !stats && !handoff {
                continue;
            }
            if timer {
                c.conn.handle_timeout(now);
            }
            if stats {
                c.next_stats = now + stats_interval;
                if let Some(tx) = &c.tx {
                    let _ = tx.try_send(Msg::Stats {
                        stats: c.conn.stats(),
                        last: false,
                    });
                } else {
                    self.cfg.events.send(player_stats(c));
                }
            }
            if !self.touched.contains(id) {
                self.touched.push(*id);
            }
        }
    }

    /// Handles one datagram that arrived at `now`; a connection's output waits for the
    /// flush after the read.
    async fn datagram(&mut self, now: Instant, from: SocketAddr, d: BytesMut) {
        match Packet::peek_destination(&d) {
            None => {}
            // Copied: parts of a request may be kept while auth and the hub decide, and
            // must not pin the receive region (handshakes are rare).
            Some(0) => self.handshake(now, from, Bytes::copy_from_slice(&d)).await,
            Some(id) => {
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                if c.peer != from {
                    return; // another source using a live socket id: ignored
                }
                c.conn.handle_datagram_mut(now, d);
                self.touch(id);
            }
        }
    }

    async fn send(&self, to: SocketAddr, d: &[u8]) {
        if let Err(e) = self.socket.send_to(d, to) {
            tracing::debug!(%to, error = %e, "send failed");
        }
    }

    async fn handshake(&mut self, now: Instant, from: SocketAddr, d: Bytes) {
        match self.listener.handle(now, from, d) {
            ListenerOutput::Reply(r) => self.send(from, &r).await,
            ListenerOutput::Ignore(why) => tracing::trace!(%from, why, "datagram ignored"),
            ListenerOutput::Reject {
                reason,
                detail,
                reply,
            } => {
                tracing::warn!(%from, %reason, detail, "caller refused");
                self.metrics.refused(reason);
                self.send(from, &reply).await;
            }
            ListenerOutput::Request(req) => self.request(now, *req).await,
        }
    }

    async fn request(&mut self, now: Instant, req: ConnectRequest) {
        let peer = (req.peer, req.peer_socket_id());
        if let Some(id) = self.by_peer.get(&peer) {
            if let Some(c) = self.conns.get_mut(id) {
                c.conn.handle_repeated_conclusion();
                let id = *id;
                self.flush(id).await;
            }
            return;
        }
        if self.pending.contains_key(&peer) || self.authorizing.contains(&peer) {
            return; // auth or the hub has not answered yet; the caller repeats itself
        }
        let conn_id = self.next_conn_id;
        self.next_conn_id += 1;
        let span = tracing::info_span!("srt", conn_id, remote = %req.peer);
        let _enter = span.enter();
        if self.conns.len() + self.pending.len() + self.authorizing.len()
            >= self.cfg.max_connections
        {
            self.refuse(
                now,
                &req,
                RejectReason::Resource,
                "--max-connections reached",
            )
            .await;
            return;
        }
        let grant = {
            let book = self.book.read().expect("passphrase book lock");
            access::decide(&req, &self.cfg, &book)
        };
        let grant = match grant {
            Ok(g) => g,
            Err((reason, why)) => {
                self.refuse(now, &req, reason, &why).await;
                return;
            }
        };
        self.authorizing.insert(peer);
        let request = auth::Request {
            action: grant.action,
            protocol: auth::Protocol::Srt,
            key: grant.key.to_string(),
            remote: req.peer,
            conn_id,
            params: grant.params.clone(),
        };
        let (auth, tx) = (self.auth.clone(), self.authorized_tx.clone());
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let outcome = auth.authorize(&request).await;
                let event = auth.event(&request, &outcome);
                let _ = tx
                    .send(Authorized {
                        req,
                        grant,
                        conn_id,
                        outcome,
                        event,
                    })
                    .await;
            },
            span.clone(),
        ));
    }

    /// Goes on with a request once auth has decided: refuses it (1401/1403), or accepts
    /// the handshake with the granted key and passphrase.
    async fn on_authorized(&mut self, a: Authorized) {
        let Authorized {
            req,
            mut grant,
            conn_id,
            outcome,
            event,
        } = a;
        let now = self.now();
        self.authorizing.remove(&(req.peer, req.peer_socket_id()));
        self.cfg.events.send(event);
        let span = tracing::info_span!("srt", conn_id, remote = %req.peer);
        let _enter = span.enter();
        let verb = match grant.action {
            Action::Publish => "publishing",
            Action::Play => "playing",
        };
        match outcome {
            Outcome::Deny(d) => {
                let why = format!("{verb} {} is not authorized: {d}", grant.key);
                self.refuse(now, &req, access::refusal(&d), &why).await;
                return;
            }
            Outcome::Allow { key, passphrase } => {
                if key != grant.key.as_str() {
                    match proto::media::StreamKey::parse(&key) {
                        Ok(k) => grant.key = k,
                        Err(e) => {
                            let why = format!("{verb} {}: renamed key: {e}", grant.key);
                            self.refuse(now, &req, RejectReason::FORBIDDEN, &why).await;
                            return;
                        }
                    }
                }
                if let Some(p) = passphrase {
                    match Passphrase::new(p.expose().to_owned()) {
                        Ok(p) => grant.passphrase = Some(p),
                        Err(e) => {
                            let why = format!("the callback's passphrase: {e}");
                            self.refuse(now, &req, RejectReason::FORBIDDEN, &why).await;
                            return;
                        }
                    }
                }
            }
        }
        self.admit(now, req, grant, conn_id).await;
    }

    /// Accepts the handshake of an authorized caller: a publisher's stream is announced, a
    /// player subscribes (its handshake stays pending until the key is live).
    async fn admit(
        &mut self,
        now: Instant,
        req: ConnectRequest,
        grant: access::Grant,
        conn_id: u64,
    ) {
        let peer = (req.peer, req.peer_socket_id());
        let local_id = loop {
            let id = OsRandom.next_u32() & 0x3FFF_FFFF;
            if id != 0 && !self.conns.contains_key(&id) {
                break id;
            }
        };
        let accept = Accept {
            local_id,
            passphrase: grant.passphrase.clone(),
            enforce_encryption: self.cfg.enforce_encryption,
            rng: Box::new(OsRandom),
        };
        let (conn, reply) = match self.listener.accept(now, &req, accept) {
            Ok(ok) => ok,
            Err(rej) => {
                tracing::warn!(key = %grant.key, reason = %rej.reason, detail = %rej.detail, "caller refused");
                self.send(req.peer, &rej.reply).await;
                return;
            }
        };
        let key = grant.key.to_string();
        if grant.action == Action::Play {
            self.request_play(req, conn, reply, conn_id, grant.key, grant.passphrase)
                .await;
            return;
        }
        tracing::info!(
            %key,
            user = grant.id.user.as_deref().unwrap_or(""),
            encrypted = conn.is_encrypted(),
            latency_ms = conn.latency().as_millis() as u64,
            "SRT caller accepted, announcing the stream"
        );
        let pending = Pending {
            conn,
            reply,
            req,
            conn_id,
            key,
            passphrase: None,
        };
        match &self.cfg.pipe {
            Some(pipe) => {
                let link = pipe.open(&grant.key, Box::new(()));
                self.activate(pending, link).await;
            }
            None => {
                let tx = self.decisions_tx.clone();
                let hub = self.cfg.hub.clone();
                let (queue, replay) = (self.cfg.hub_queue_bytes, self.cfg.hub_replay);
                self.pending.insert(peer, pending);
                tokio::spawn(async move {
                    let d = match link::open_with(
                        &hub,
                        &grant.key,
                        queue,
                        replay,
                        conn_id,
                        crate::ORIGIN,
                        Box::new(()),
                    )
                    .await
                    {
                        Ok(Opened::Accepted(l)) => Decision::Accepted(l),
                        Ok(Opened::Rejected(r)) => Decision::Rejected(r),
                        Err(e) => Decision::Failed(e),
                    };
                    let _ = tx.send((peer, d)).await;
                });
            }
        }
    }

    /// A caller accepted by SRT asks to play `key`: its handshake stays pending while a
    /// player task subscribes to the key; the task's `Out::Ready` or `Out::Refuse`
    /// (1404 when the key does not go live within `--play-wait`) decides it.
    async fn request_play(
        &mut self,
        req: ConnectRequest,
        conn: Connection,
        reply: Bytes,
        conn_id: u64,
        key: proto::media::StreamKey,
        passphrase: Option<proto::srt::crypto::Passphrase>,
    ) {
        if self.cfg.pipe.is_some() {
            let now = self.now();
            self.refuse(
                now,
                &req,
                RejectReason::BAD_MODE,
                "playing needs a hub; this ingest-srt writes to --out",
            )
            .await;
            return;
        }
        tracing::info!(
            %key,
            encrypted = conn.is_encrypted(),
            latency_ms = conn.send_latency().as_millis() as u64,
            "SRT player accepted, subscribing to the stream"
        );
        let peer = (req.peer, req.peer_socket_id());
        let args = PlayerArgs {
            hub: self.cfg.hub.clone(),
            key: key.clone(),
            conn_id,
            remote: req.peer,
            local_id: conn.local_id(),
            peer,
            wait: self.cfg.play_wait,
            queue_bytes: self.cfg.play_queue_bytes,
            max_skips: self.cfg.play_max_skips,
            linger: linger(&conn),
        };
        self.pending.insert(
            peer,
            Pending {
                conn,
                reply,
                req,
                conn_id,
                key: key.to_string(),
                passphrase,
            },
        );
        let span = tracing::info_span!("srt", conn_id, key = %key);
        tokio::spawn(tracing::Instrument::instrument(
            player::run(args, self.play_tx.clone()),
            span,
        ));
    }

    /// Handles what a player task sent.
    async fn play_out(&mut self, id: u32, out: Out) {
        match out {
            Out::Ready {
                peer,
                shared,
                closed,
            } => {
                let Some(mut p) = self.pending.remove(&peer) else {
                    return;
                };
                // Accepted again now: the caller takes the conclusion's arrival as our
                // clock's start, so the connection's clock must start when it is sent,
                // not when the caller first asked (the first accept checked the keys).
                let accept = Accept {
                    local_id: id,
                    passphrase: p.passphrase.take(),
                    enforce_encryption: self.cfg.enforce_encryption,
                    rng: Box::new(OsRandom),
                };
                let now = self.now();
                match self.listener.accept(now, &p.req, accept) {
                    Ok((conn, reply)) => (p.conn, p.reply) = (conn, reply),
                    Err(rej) => {
                        tracing::warn!(conn_id = p.conn_id, key = %p.key, reason = %rej.reason, detail = %rej.detail, "caller refused");
                        self.metrics.refused(rej.reason);
                        self.send(p.req.peer, &rej.reply).await;
                        return;
                    }
                }
                self.send(p.req.peer, &p.reply).await;
                tracing::info!(conn_id = p.conn_id, key = %p.key, remote = %p.req.peer, "playing");
                self.cfg.events.accepted(p.conn_id, p.req.peer, "srt");
                let player = PlayerConn {
                    shared,
                    closed: Some(closed),
                    dropped_seen: 0,
                    window: Instant::now(),
                    ending: None,
                };
                self.register(id, p, None, Some(player));
            }
            Out::Refuse {
                peer,
                not_found,
                why,
            } => {
                let Some(p) = self.pending.remove(&peer) else {
                    return;
                };
                let span = tracing::info_span!("srt", conn_id = p.conn_id, remote = %p.req.peer, key = %p.key);
                let _enter = span.enter();
                let reason = if not_found {
                    RejectReason::NOT_FOUND
                } else {
                    RejectReason::Access(1503)
                };
                let now = self.now();
                self.refuse(now, &p.req, reason, &why).await;
            }
            Out::Data(data) => {
                let now = self.now();
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                let Some(p) = &c.player else { return };
                p.shared
                    .queued
                    .fetch_sub(data.len(), std::sync::atomic::Ordering::Relaxed);
                let mut at = 0;
                while at < data.len() {
                    let end = (at + player::PAYLOAD).min(data.len());
                    match c.conn.send(now, data.slice(at..end)) {
                        Ok(()) => {}
                        Err(proto::srt::SendError::BufferFull) => {
                            p.shared
                                .behind
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                        Err(_) => break,
                    }
                    at = end;
                }
                self.flush(id).await;
            }
            Out::End(reason) => {
                let now = self.now();
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                let linger = linger(&c.conn);
                if let Some(p) = &mut c.player {
                    p.ending = Some(reason);
                }
                c.conn.shutdown(now, linger);
                self.flush(id).await;
            }
        }
    }

    async fn refuse(&self, now: Instant, req: &ConnectRequest, reason: RejectReason, why: &str) {
        tracing::warn!(%reason, why, "caller refused");
        self.metrics.refused(reason);
        let reply = self.listener.reject(now, req, reason);
        self.send(req.peer, &reply).await;
    }

    async fn decided(&mut self, peer: (SocketAddr, u32), d: Decision) {
        let Some(p) = self.pending.remove(&peer) else {
            return;
        };
        let span =
            tracing::info_span!("srt", conn_id = p.conn_id, remote = %p.req.peer, key = %p.key);
        let _enter = span.enter();
        let refusal = match d {
            Decision::Accepted(link) => {
                drop(_enter);
                self.activate(p, link).await;
                return;
            }
            Decision::Rejected(ipc::RejectReason::Duplicate) => (
                RejectReason::CONFLICT,
                "the key is already published and the hub rejects duplicates".to_string(),
            ),
            Decision::Rejected(ipc::RejectReason::Capacity) => (
                RejectReason::OVERLOAD,
                "the hub is at its stream limit".into(),
            ),
            Decision::Rejected(ipc::RejectReason::Denied) => {
                (RejectReason::FORBIDDEN, "the hub refused the stream".into())
            }
            Decision::Failed(e) => (RejectReason::Access(1503), format!("hub unavailable: {e}")),
        };
        let now = self.now();
        self.refuse(now, &p.req, refusal.0, &refusal.1).await;
    }

    async fn activate(&mut self, p: Pending, link: Link) {
        let id = p.conn.local_id();
        self.send(p.req.peer, &p.reply).await;
        let (tx, rx) = mpsc::channel(publisher::QUEUE);
        let key = proto::media::StreamKey::parse(&p.key).expect("a granted key");
        let span = tracing::info_span!("srt", conn_id = p.conn_id, key = %p.key);
        tokio::spawn(tracing::Instrument::instrument(
            publisher::run(
                link,
                rx,
                publisher::Ident {
                    key,
                    conn_id: p.conn_id,
                    remote: p.req.peer.to_string(),
                    local_id: id,
                },
                self.closed_tx.clone(),
                self.metrics.ts_errors.clone(),
            ),
            span,
        ));
        tracing::info!(conn_id = p.conn_id, key = %p.key, remote = %p.req.peer, "publishing");
        self.cfg.events.accepted(p.conn_id, p.req.peer, "srt");
        self.register(id, p, Some(tx), None);
    }

    /// Adds an established connection: a publisher (`tx`) or a player.
    fn register(
        &mut self,
        id: u32,
        p: Pending,
        tx: Option<mpsc::Sender<Msg>>,
        player: Option<PlayerConn>,
    ) {
        self.by_peer
            .insert((p.req.peer, p.req.peer_socket_id()), id);
        let role = if player.is_some() {
            Role::Player
        } else {
            Role::Publisher
        };
        let metrics = self.metrics.connection(&p.key, role, p.conn_id);
        self.conns.insert(
            id,
            Conn {
                conn: p.conn,
                peer: p.req.peer,
                peer_socket: p.req.peer_socket_id(),
                conn_id: p.conn_id,
                key: p.key,
                tx,
                player,
                accepted: Instant::now(),
                next_stats: Instant::now() + self.cfg.stats_interval,
                queue_dropped: 0,
                held: Vec::new(),
                held_since: None,
                metrics,
            },
        );
    }

    /// Sends what connection `id` has to send and hands its events on.
    async fn flush(&mut self, id: u32) {
        let now = self.now();
        let handoff = self.cfg.handoff;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let peer = c.peer;
        let mut out = Vec::new();
        while let Some(d) = c.conn.poll_transmit(now) {
            out.push(d);
        }
        if let Some(p) = &mut c.player {
            let dropped = c.conn.sent_dropped();
            let behind = dropped >= p.dropped_seen + BEHIND_DROPS;
            if behind {
                p.shared
                    .behind
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if behind || now.saturating_duration_since(p.window) >= Duration::from_secs(1) {
                p.dropped_seen = dropped;
                p.window = now;
            }
        }
        let mut closed = None;
        // What TSBPD released goes to the publisher in one message per `--handoff`: one
        // wake-up of its task, and one write toward the hub for all the frames in it.
        while let Some(ev) = c.conn.poll_event() {
            match ev {
                Event::Message { payload, .. } => {
                    if c.tx.is_some() {
                        c.held_since.get_or_insert(now);
                        c.held.push(payload);
                    }
                }
                Event::Dropped { first, count } => {
                    tracing::debug!(conn_id = c.conn_id, %first, count, "packets dropped (too late)")
                }
                Event::KeysRefreshed => {
                    tracing::debug!(conn_id = c.conn_id, "stream keys refreshed")
                }
                Event::KeysAnnounced => {
                    // Once per key change: libsrt's default is every 2^24 packets.
                    tracing::info!(
                        conn_id = c.conn_id,
                        "sending keys rotated, new key material announced"
                    )
                }
                Event::KeyRefreshFailed(e) => {
                    tracing::warn!(conn_id = c.conn_id, error = %e, "key refresh failed")
                }
                Event::Closed(reason) => closed = Some(reason),
            }
        }
        let due = !c.held.is_empty()
            && (c.handoff_at(handoff).is_some_and(|h| h <= now) || closed.is_some());
        if let (Some(tx), true) = (&c.tx, due) {
            let released = std::mem::take(&mut c.held);
            c.held_since = None;
            let n = released.len() as u64;
            if tx.try_send(Msg::Payloads(released)).is_err() {
                let before = c.queue_dropped;
                c.queue_dropped += n;
                if before.leading_zeros() != c.queue_dropped.leading_zeros() {
                    tracing::warn!(
                        conn_id = c.conn_id,
                        dropped = c.queue_dropped,
                        "publisher queue full, payloads dropped"
                    );
                }
            }
        }
        for d in out {
            self.send(peer, &d).await;
        }
        if let Some(reason) = closed {
            if let Some(mut c) = self.conns.remove(&id) {
                self.by_peer.remove(&(c.peer, c.peer_socket));
                c.metrics.update(&c.conn.stats());
                tracing::info!(conn_id = c.conn_id, key = %c.key, ?reason, "SRT connection closed");
                if let Some(mut p) = c.player.take() {
                    self.cfg.events.send(player_stats(&c));
                    let reason = p.ending.take().unwrap_or_else(|| match reason {
                        proto::srt::CloseReason::PeerShutdown => "closed".into(),
                        proto::srt::CloseReason::Timeout => "idle".into(),
                        proto::srt::CloseReason::Local => "shutdown".into(),
                    });
                    if let Some(tx) = p.closed.take() {
                        let _ = tx.send(player::Closed {
                            reason,
                            stats: c.conn.stats(),
                        });
                    }
                }
                let reason = match reason {
                    CloseReason::PeerShutdown => "closed",
                    CloseReason::Timeout => "peer_idle_timeout",
                    CloseReason::Local => "server_closed",
                };
                self.cfg.events.closed(
                    c.conn_id,
                    c.peer,
                    ingest_link::events::Closed {
                        protocol: "srt",
                        key: &c.key,
                        reason,
                        error: None,
                        duration: c.accepted.elapsed(),
                        bytes_in: c.conn.stats().recv_bytes,
                    },
                );
                if let Some(tx) = c.tx.take() {
                    let _ = tx
                        .send(Msg::Stats {
                            stats: c.conn.stats(),
                            last: true,
                        })
                        .await;
                }
            }
        }
    }
}

/// The `srt_stats` event of a player connection (a publisher's goes through its link, in
/// order with its stream).
fn player_stats(c: &Conn) -> ipc::Event {
    let key = proto::media::StreamKey::parse(&c.key).expect("a granted key");
    publisher::stats_event(
        &c.conn.stats(),
        Role::Player,
        &key,
        c.conn_id,
        &c.peer.to_string(),
    )
}

/// How long a player's connection may take to deliver its last packets after the stream
/// ended: its latency twice (retransmissions, then the player's TSBPD) and a second.
fn linger(conn: &Connection) -> std::time::Duration {
    conn.send_latency() * 2 + std::time::Duration::from_secs(1)
}

/// A receive error about one earlier datagram (an ICMP error a peer's host sent back),
/// not about the socket: the endpoint goes on.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}
