//! A player's state in the hub: its protocol session (`proto::rtmp::session::PlayerSession`,
//! which also holds every byte queued for the socket), its [`Cursor`] into the stream's
//! ring, the stall timer, and the publisher-wait deadline.
//!
//! Delivery has two paths. When the publisher appends an entry, it offers it to every
//! caught-up player on the spot ([`Output::offer`]): the entry's shared chunk bytes go to
//! the socket with one non-blocking vectored write, and the player's task is not woken at
//! all. Only a player with something left over (a socket that would block, a backlog, a
//! request of the player, a stream event) is handed to its own task
//! ([`super::driver`]), which waits for the socket and applies the lag policy. So with N
//! healthy players a frame costs N `writev` calls and no scheduling.
//!
//! Write coalescing (`--write-coalesce`) makes those calls fewer and larger: a caught-up
//! player holds inter frames and audio for up to the coalescing window, and the entry
//! that arrives after the window ends writes them all with one `writev`. A keyframe, a
//! configuration or metadata entry, and everything in the player's first window go out
//! at once. If the publisher goes quiet, its task has every reader write what it held
//! ([`crate::stream::Stream::flush_readers`]), so nothing waits for the next frame.
//!
//! Per frame nothing is allocated for a player: the session queues `Bytes` handles (a
//! reference count). Only rare events (status messages, headers after a skip) are
//! serialized per player.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::rtmp::session::{CloseReason, PlayerCaps, PlayerEvent, PlayerSession};
use tokio::sync::Notify;

use crate::config::{Config, LAG_WINDOW};
use crate::cursor::{Cursor, LagCounter, LagDecision, StallTimer};
use crate::ring::Item;
use crate::stats::{HubStats, Protocol};
use crate::stream::{NewEntry, Reader, Stream, StreamState};
use crate::wire::Wire;
use crate::write::{try_write, SockWrite, Written};

/// Most entries taken from the ring per pass.
const BATCH_ENTRIES: usize = 256;
/// Media is taken from the ring into the outbox only while the outbox holds less than
/// this: the backlog of a player that does not keep up stays in the ring, where the lag
/// policy can skip it, and the outbox holds at most this plus one entry of media.
const STAGE_BYTES: usize = 256 << 10;

/// Why a player ended.
#[derive(Debug, thiserror::Error)]
pub enum PlayerEnd {
    /// Socket error (the player left).
    #[error("write: {0}")]
    Io(#[from] io::Error),
    /// The stream closed (publisher did not return in time).
    #[error("stream closed")]
    StreamClosed,
    /// Nobody published the key within `--publisher-wait` (this long).
    #[error("nobody published the stream within {} (--publisher-wait)", humantime::format_duration(*.0))]
    NotFound(Duration),
    /// Too many lag skips within the window.
    #[error("too slow: {skips} lag skips within {window:?}")]
    TooSlow {
        /// Skips counted.
        skips: usize,
        /// The window.
        window: Duration,
    },
    /// The socket took no bytes for the write timeout: the player stopped reading.
    #[error("stalled: no bytes written for {0:?}")]
    Stalled(Duration),
    /// The player's protocol session ended (it closed the stream).
    #[error("{0}")]
    Session(&'static str),
    /// The player sent nothing for the ping timeout after a ping.
    #[error("idle: nothing received for {0:?}")]
    Idle(Duration),
    /// More bytes are queued for the player than its queue bound: since media waits in
    /// the ring, that is replies to requests it keeps sending (pings) while not reading.
    #[error("queue bound: {queued} bytes queued for a player that does not read what it asks for (--player-queue-bytes {bound})")]
    QueueFull {
        /// Bytes queued (media, control replies and status together).
        queued: usize,
        /// The bound (`--player-queue-bytes`).
        bound: usize,
    },
}

impl PlayerEnd {
    /// Whether the player may still get the bytes queued for it (a closing status).
    pub fn flushes(&self) -> bool {
        !matches!(
            self,
            PlayerEnd::Io(_)
                | PlayerEnd::Stalled(_)
                | PlayerEnd::TooSlow { .. }
                | PlayerEnd::Idle(_)
                | PlayerEnd::QueueFull { .. }
        )
    }
}

/// One player's output, shared by its task and the publisher's fan-out; `W` is its
/// socket's write half (TCP, or the socketpair of a relayed RTMPS player).
pub struct Output<W> {
    sock: W,
    state: Mutex<Player>,
    notify: Notify,
    /// The cursor as of the last pass or fast-path entry (read by the stream's trim).
    position: AtomicU64,
}

impl<W> std::fmt::Debug for Output<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

/// What one pass over a player left to do.
#[derive(Debug, Default)]
pub struct Pass {
    /// The socket would block with bytes still queued.
    pub blocked: bool,
    /// Entries remain between the cursor and the head (the batch limit was hit).
    pub more: bool,
}

impl<W: SockWrite> Output<W> {
    /// The output of a player writing to `sock`.
    pub fn new(sock: W, player: Player) -> Arc<Output<W>> {
        let position = AtomicU64::new(player.cursor.at());
        Arc::new(Output {
            sock,
            state: Mutex::new(player),
            notify: Notify::new(),
            position,
        })
    }

    /// The player's state.
    pub fn lock(&self) -> MutexGuard<'_, Player> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One pass of the player's task (see [`Player::pass`]).
    pub fn pass(&self, now: Instant) -> Result<Pass, PlayerEnd> {
        let mut p = self.lock();
        let pass = p.pass(&self.sock, now);
        self.position.store(p.cursor.at(), Ordering::Relaxed);
        pass
    }

    /// The socket.
    pub fn sock(&self) -> &W {
        &self.sock
    }

    /// The fan-out's write: what the socket does not take (or an error) is left to the
    /// player's task.
    fn write_out(&self, mut p: MutexGuard<'_, Player>, now: Instant) {
        match p.write(&self.sock, now) {
            Ok(false) => {}
            Ok(true) => {
                drop(p);
                self.notify.notify_one();
            }
            Err(e) => {
                p.failed = Some(PlayerEnd::Io(e));
                drop(p);
                self.notify.notify_one();
            }
        }
    }

    /// Resolves when the fan-out left work for the player's task.
    pub async fn notified(&self) {
        self.notify.notified().await
    }
}

impl<W: SockWrite> Reader for Output<W> {
    /// The fast path: a caught-up player with nothing pending takes the new entry straight
    /// to its socket; anything else is left to its task.
    fn offer(&self, new: &NewEntry) {
        let Ok(mut p) = self.state.try_lock() else {
            // Its task is in a pass and will look at the ring again.
            self.notify.notify_one();
            return;
        };
        if p.session.is_paused() {
            // Nothing to send until unpaused, which comes through the task.
            return;
        }
        let held = p.hold_until.is_some();
        if p.cursor.at() != new.seq
            || !(held || p.session.outbox().is_empty())
            || p.failed.is_some()
        {
            drop(p);
            self.notify.notify_one();
            return;
        }
        // At the head, so the lag policy has nothing to say.
        p.cursor.step();
        self.position.store(p.cursor.at(), Ordering::Relaxed);
        if let Some(rtmp) = p.caps.pick(&new.needs, &new.rtmp, &new.plain) {
            if new.frame {
                p.take_frame(new.video, rtmp);
            } else {
                p.queue_wire(rtmp);
            }
        }
        if p.session.outbox().is_empty() || p.hold(new) {
            return;
        }
        self.write_out(p, new.at);
    }

    fn position(&self) -> Option<u64> {
        Some(self.position.load(Ordering::Relaxed))
    }

    fn flush(&self) {
        let Ok(p) = self.state.try_lock() else {
            // Its task is in a pass, which writes everything.
            return;
        };
        if p.hold_until.is_some() {
            self.write_out(p, Instant::now());
        }
    }

    fn wake(&self) {
        self.notify.notify_one();
    }
}

/// How a new player starts.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// Where the cursor starts.
    pub cursor: u64,
    /// Whether a publisher is live.
    pub live: bool,
    /// Whether video waits for a keyframe.
    pub waiting_key: bool,
}

/// The state of one player.
pub struct Player {
    stream: Arc<Stream>,
    conn_id: u64,
    /// The RTMP session: requests in, replies and every queued byte out.
    pub session: PlayerSession,
    /// What the player announced it takes (codecs, multitrack, ModEx).
    caps: PlayerCaps,
    cursor: Cursor,
    /// A publisher is live for this player.
    live: bool,
    /// The publisher left since the player started (the next publish is announced).
    unpublished: bool,
    /// Deadline to see a publisher, while none is live and none was seen.
    deadline: Option<Instant>,
    /// `--publisher-wait`, for saying why a player that waited in vain is closed.
    publisher_wait: Duration,
    stall: StallTimer,
    /// `--player-queue-bytes`: the most bytes queued for the player (the outbox and the
    /// ring entries it has not taken together) before it skips, and for the outbox alone
    /// before it is closed.
    queue_bound: usize,
    /// Why the player must end, found by the fan-out (reported by the player's task).
    failed: Option<PlayerEnd>,
    headers: Vec<Bytes>,
    stats: Arc<HubStats>,
    /// `--write-coalesce`: how long queued frames may wait for company.
    coalesce: Duration,
    /// Until then (the player's first window) nothing is held back.
    eager_until: Instant,
    /// Queued bytes are held back for coalescing until then (`None`: nothing held).
    hold_until: Option<Instant>,
}

impl Player {
    /// A player of `stream` whose accepted session is `session`, starting as `start` says.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stream: Arc<Stream>,
        conn_id: u64,
        cfg: &Config,
        session: PlayerSession,
        caps: PlayerCaps,
        start: Start,
        now: Instant,
        stats: Arc<HubStats>,
    ) -> Player {
        let lag = LagCounter::new(cfg.max_lag_skips, LAG_WINDOW);
        Player {
            stream,
            conn_id,
            session,
            caps,
            cursor: Cursor::new(start.cursor, start.waiting_key, Some(lag)),
            live: start.live,
            unpublished: false,
            deadline: (!start.live).then(|| now + cfg.publisher_wait),
            publisher_wait: cfg.publisher_wait,
            stall: StallTimer::new(cfg.player_write_timeout),
            queue_bound: cfg.player_queue_bytes,
            failed: None,
            headers: Vec::new(),
            stats,
            coalesce: cfg.write_coalesce,
            eager_until: now + cfg.write_coalesce,
            hold_until: None,
        }
    }

    /// Whether the bytes just queued for `new` wait for later entries (write coalescing)
    /// rather than go out now. A keyframe, anything but a frame, the player's first window,
    /// a hold that is due and an outbox already holding [`STAGE_BYTES`] go out at once
    /// (a publisher sending faster than real time must not fill a reading player's queue
    /// bound while frames wait for company); `--write-coalesce 0ms` never holds.
    fn hold(&mut self, new: &NewEntry) -> bool {
        if self.coalesce.is_zero()
            || !new.frame
            || new.video == Some(true)
            || new.at < self.eager_until
            || self.session.queued_bytes() >= STAGE_BYTES
        {
            return false;
        }
        let until = *self.hold_until.get_or_insert(new.at + self.coalesce);
        new.at < until
    }

    /// The earliest of the session's timer, the stall deadline and the publisher wait.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.session.poll_timeout(),
            self.stall.deadline(),
            self.deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers due at `now`: session pings and idle close, a stalled socket, a publisher
    /// that never came. `Err` when the player must end.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), PlayerEnd> {
        if self.stall.expired(now) {
            return Err(PlayerEnd::Stalled(self.stall.timeout()));
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            if !self.live {
                let waited = self.publisher_wait;
                let d = format!(
                    "nobody published {} within {}",
                    self.session.key(),
                    humantime::format_duration(waited)
                );
                self.session
                    .status("error", "NetStream.Play.StreamNotFound", &d);
                return Err(PlayerEnd::NotFound(waited));
            }
        }
        self.session.handle_timeout(now);
        self.apply_events()
    }

    /// Acts on what the player asked for. `Err` when its session ended.
    pub fn apply_events(&mut self) -> Result<(), PlayerEnd> {
        while let Some(e) = self.session.poll_event() {
            match e {
                PlayerEvent::ReceiveVideo(true) => self.cursor.wait_for_keyframe(),
                PlayerEvent::ReceiveVideo(false)
                | PlayerEvent::ReceiveAudio(_)
                | PlayerEvent::Pause(_) => {}
                PlayerEvent::Seek(_) => {
                    // A live stream has one position: the newest keyframe.
                    let stream = self.stream.clone();
                    let mut st = stream.lock();
                    self.cursor.rejoin(&st.ring);
                    self.queue_headers(&mut st, self.cursor.at());
                }
                PlayerEvent::Closed(CloseReason::Idle(quiet)) => {
                    return Err(PlayerEnd::Idle(quiet))
                }
                PlayerEvent::Closed(why) => return Err(PlayerEnd::Session(why.as_str())),
            }
        }
        Ok(())
    }

    /// Takes new entries into the outbox and writes what the socket takes without
    /// blocking. `Err` when the player must end.
    pub fn pass<W: SockWrite>(&mut self, sock: &W, now: Instant) -> Result<Pass, PlayerEnd> {
        if let Some(end) = self.failed.take() {
            return Err(end);
        }
        self.check_queue()?;
        let (end, more) = self.collect(now);
        let blocked = self.write(sock, now)?;
        match end {
            Some(end) => Err(end),
            None => Ok(Pass {
                blocked,
                more: more && !blocked,
            }),
        }
    }

    /// Writes the outbox until it is empty or the socket would block (true).
    pub fn write<W: SockWrite>(&mut self, sock: &W, now: Instant) -> io::Result<bool> {
        // Whatever was held goes out with this write (or is left to the task if blocked).
        self.hold_until = None;
        let queued = self.session.outbox().bytes();
        let written = try_write(sock, self.session.outbox());
        let sent = queued - self.session.outbox().bytes();
        self.stats.players(Protocol::Rtmp).bytes.add(sent as u64);
        match written? {
            Written::All => {
                self.stall.idle();
                Ok(false)
            }
            Written::Blocked { progress: true } => {
                self.stall.progress(now, true);
                Ok(true)
            }
            Written::Blocked { progress: false } => {
                self.stall.blocked(now);
                Ok(true)
            }
        }
    }

    /// The hard bound on what is queued for the player: every byte in the outbox (media,
    /// control replies, status) counts. Media enters it at most [`STAGE_BYTES`] ahead, so
    /// only a player that keeps sending requests without reading the replies gets here.
    pub fn check_queue(&self) -> Result<(), PlayerEnd> {
        let queued = self.session.queued_bytes();
        if queued > self.queue_bound {
            return Err(PlayerEnd::QueueFull {
                queued,
                bound: self.queue_bound,
            });
        }
        Ok(())
    }

    /// How long a socket may take nothing.
    pub fn stall_timeout(&self) -> Duration {
        self.stall.timeout()
    }

    /// Takes entries from the cursor into the outbox. Returns why to stop, if it must,
    /// and whether entries remain after this batch.
    fn collect(&mut self, now: Instant) -> (Option<PlayerEnd>, bool) {
        if self.session.is_paused() {
            return (None, false);
        }
        let stream = self.stream.clone();
        let mut st = stream.lock();
        if let Some(end) = self.apply_lag(&mut st, now) {
            return (Some(end), false);
        }
        for _ in 0..BATCH_ENTRIES {
            if self.session.queued_bytes() >= STAGE_BYTES {
                break;
            }
            let Some(entry) = self.cursor.next(&st.ring) else {
                return (None, false);
            };
            let picked = self.caps.pick(&entry.needs, &entry.rtmp, &entry.plain);
            match &entry.item {
                // What this player did not announce it takes is not sent (nor does a
                // keyframe of it end a wait for one).
                Item::Frame(_) | Item::Config { .. } | Item::Side { .. } if picked.is_none() => {}
                Item::Frame(frame) => {
                    let video = frame.is_video().then_some(frame.is_keyframe());
                    let rtmp = picked.cloned().unwrap_or_default();
                    self.take_frame(video, &rtmp);
                }
                // A nanosecond offset has no message of its own (it rides on its frame).
                Item::Side { .. } if entry.rtmp.is_empty() => {}
                Item::Config { .. } | Item::Metadata { .. } | Item::Side { .. } => {
                    let rtmp = entry.rtmp.clone();
                    self.queue_wire(&rtmp);
                }
                Item::Published { .. } => {
                    self.cursor.wait_for_keyframe();
                    if self.deadline.take().is_some() {
                        // Ends the "waiting for a publisher" the player started with.
                        tracing::info!(conn_id = self.conn_id, key = %self.session.key(), "player started: the publisher arrived");
                    }
                    if self.unpublished {
                        self.session.publish_notify();
                        self.unpublished = false;
                    }
                    self.live = true;
                }
                Item::Unpublished { .. } => {
                    if self.live {
                        self.session.unpublish_notify();
                        self.unpublished = true;
                    }
                    self.live = false;
                }
                Item::Closed => return (Some(PlayerEnd::StreamClosed), false),
            }
        }
        (None, self.cursor.behind_head(&st.ring))
    }

    /// Queues a frame unless this player skips it (`video`: `Some(keyframe)` for video):
    /// video waiting for a keyframe, or a track it asked not to receive.
    fn take_frame(&mut self, video: Option<bool>, rtmp: &Wire) {
        if !self.cursor.admit(video) {
            return;
        }
        let wanted = match video {
            Some(_) => self.session.receive_video(),
            None => self.session.receive_audio(),
        };
        if wanted {
            self.queue_wire(rtmp);
        }
    }

    /// Queues a shared message's buffers (the first one carries the header the session
    /// rewrites for another message stream id).
    fn queue_wire(&mut self, rtmp: &Wire) {
        self.session.queue_media(rtmp.first());
        rtmp.for_each_rest(|b| self.session.queue_bytes(b));
    }

    /// The lag policy (see [`Cursor::check_lag_queued`]), counting what the outbox holds;
    /// after a skip the current headers are sent again first.
    fn apply_lag(&mut self, st: &mut StreamState, now: Instant) -> Option<PlayerEnd> {
        let queued = self.session.queued_bytes();
        match self.cursor.check_lag_queued(&st.ring, queued, now) {
            LagDecision::Fine => None,
            LagDecision::TooSlow { skips, window } => Some(PlayerEnd::TooSlow { skips, window }),
            LagDecision::Skipped(skip) => {
                let stats = self.stats.players(Protocol::Rtmp);
                stats.gop_skips.inc();
                stats.dropped_frames.add(skip.frames);
                tracing::info!(
                    conn_id = self.conn_id,
                    frames = skip.frames,
                    bytes = skip.bytes,
                    to_keyframe = skip.to_keyframe,
                    skips = self.cursor.skips(),
                    "player fell behind; skipped to the newest keyframe"
                );
                self.queue_headers(st, skip.to);
                None
            }
        }
    }

    /// Queues the metadata and sequence headers current at entry `at`.
    fn queue_headers(&mut self, st: &mut StreamState, at: u64) {
        let ms = st
            .ring
            .get(at)
            .map_or_else(|| st.timeline.to_ms(st.timeline.last_out()), |e| e.out_ms);
        self.headers.clear();
        st.headers_for(ms, self.session.stream_id(), &self.caps, &mut self.headers);
        for h in self.headers.drain(..) {
            self.session.queue_bytes(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::media::StreamKey;
    use proto::rtmp::session::PlayerSession;

    use super::*;
    use crate::loopback_tests::handoff_for;

    fn player(coalesce: Duration, t0: Instant) -> Player {
        let mut cfg = Config::for_tests();
        cfg.write_coalesce = coalesce;
        let stream = Arc::new(Stream::new(StreamKey::parse("live/c").unwrap(), 1, &cfg));
        let h = handoff_for(1, "live/c");
        let session = PlayerSession::new(&h, super::super::driver::player_config(&cfg), t0);
        let start = Start {
            cursor: 0,
            live: true,
            waiting_key: false,
        };
        let stats = Arc::new(HubStats::default());
        let caps = PlayerCaps::default();
        Player::new(stream, 1, &cfg, session, caps, start, t0, stats)
    }

    fn entry(video: Option<bool>, frame: bool, at: Instant) -> NewEntry {
        NewEntry {
            seq: 0,
            video,
            frame,
            rtmp: Wire::one(Bytes::from_static(b"x")),
            needs: Default::default(),
            plain: Wire::default(),
            at,
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn frames_wait_for_company_up_to_the_coalescing_window() {
        let t0 = Instant::now();
        let mut p = player(100 * MS, t0);
        // The first window is written at once (join time is not traded for syscalls).
        assert!(!p.hold(&entry(Some(false), true, t0 + 50 * MS)));
        // Then inter frames and audio wait until 100 ms after the first one held.
        assert!(p.hold(&entry(Some(false), true, t0 + 120 * MS)));
        assert!(p.hold(&entry(None, true, t0 + 180 * MS)));
        assert!(p.hold(&entry(Some(false), true, t0 + 219 * MS)));
        assert!(
            !p.hold(&entry(None, true, t0 + 220 * MS)),
            "the hold is due"
        );
        p.hold_until = None; // what the write that follows does
        assert!(p.hold(&entry(None, true, t0 + 230 * MS)));
        // A keyframe, and a configuration or metadata, never wait.
        assert!(!p.hold(&entry(Some(true), true, t0 + 240 * MS)));
        assert!(!p.hold(&entry(Some(false), false, t0 + 241 * MS)));
    }

    #[test]
    fn zero_coalescing_never_holds() {
        let t0 = Instant::now();
        let mut p = player(Duration::ZERO, t0);
        for i in 0..10 {
            assert!(!p.hold(&entry(Some(false), true, t0 + i * 100 * MS)));
        }
    }
}
