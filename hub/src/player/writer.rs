//! A player's output: a cursor into its stream's shared ring, the bytes queued for its
//! socket, and the lag policy.
//!
//! Delivery has two paths. When the publisher appends an entry, it offers it to every
//! caught-up player on the spot ([`Output::offer`]): the entry's shared chunk bytes go to
//! the socket with one non-blocking vectored write, and the player's task is not woken at
//! all. Only a player with something left over (a socket that would block, a backlog, a
//! control message, a stream event) is handed to its own task, which waits for the socket
//! to become writable and applies the lag policy. So with N healthy players a frame costs
//! N `writev` calls and no scheduling.
//!
//! Per frame nothing is allocated for a player: the writer clones `Bytes` handles (a
//! reference count) into a reused queue. Only rare events (status messages, headers after
//! a skip) are serialized per player.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proto::rtmp::message::UserControl;
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, Notify};

use crate::config::{Config, LAG_WINDOW};
use crate::ring::{Item, Lag};
use crate::rtmp_out::{self, rewrite_stream_id, SHARED_STREAM_ID};
use crate::stream::{NewEntry, Reader, Stream, StreamState};

/// Most entries taken from the ring per pass.
const BATCH_ENTRIES: usize = 256;
/// Most slices passed to one `writev` call (below every IOV_MAX).
const MAX_IOV: usize = 64;
/// Instructions from the player's input side.
#[derive(Debug)]
pub enum Control {
    /// Bytes to send before the next media (pong, acknowledgement, status).
    Send(Bytes),
    /// receiveAudio.
    ReceiveAudio(bool),
    /// receiveVideo.
    ReceiveVideo(bool),
    /// pause (true) / unpause (false).
    Pause(bool),
}

/// Why the writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriterEnd {
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
        window: std::time::Duration,
    },
    /// The socket took no bytes for the write timeout: the player stopped reading.
    #[error("stalled: no bytes written for {0:?}")]
    Stalled(std::time::Duration),
    /// The input side is gone.
    #[error("input closed")]
    InputClosed,
}

/// Counts lag skips in a sliding window.
#[derive(Debug)]
pub struct LagCounter {
    max: u32,
    skips: VecDeque<Instant>,
}

impl LagCounter {
    /// A counter allowing `max` skips per [`LAG_WINDOW`].
    pub fn new(max: u32) -> LagCounter {
        LagCounter {
            max,
            skips: VecDeque::new(),
        }
    }

    /// Records a skip at `now`; true when the player must be disconnected.
    pub fn record(&mut self, now: Instant) -> bool {
        while self
            .skips
            .front()
            .is_some_and(|&t| now.duration_since(t) > LAG_WINDOW)
        {
            self.skips.pop_front();
        }
        self.skips.push_back(now);
        self.skips.len() > self.max as usize
    }

    /// Skips within the window.
    pub fn count(&self) -> usize {
        self.skips.len()
    }
}

/// One player's output, shared by its task and the publisher's fan-out.
pub struct Output {
    sock: OwnedWriteHalf,
    state: Mutex<Writer>,
    notify: Notify,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

/// What one pass over a writer left to do.
#[derive(Debug, Default)]
struct Pass {
    /// The socket would block with bytes still queued.
    blocked: bool,
    /// Entries remain between the cursor and the head (the batch limit was hit).
    more: bool,
}

impl Output {
    /// The output of a player writing to `sock`.
    pub fn new(sock: OwnedWriteHalf, writer: Writer) -> Arc<Output> {
        Arc::new(Output {
            sock,
            state: Mutex::new(writer),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the player's side until it must be closed; the final bytes (if any) are
    /// written first.
    pub async fn run(&self, ctl: &mut mpsc::Receiver<Control>) -> WriterEnd {
        loop {
            let pass = {
                let mut w = self.lock();
                loop {
                    match ctl.try_recv() {
                        Ok(c) => w.control(c),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            return WriterEnd::InputClosed
                        }
                    }
                }
                w.pass(&self.sock)
            };
            let pass = match pass {
                Ok(p) => p,
                Err(end) => return self.finish(end).await,
            };
            if pass.blocked {
                let since = self.lock().blocked_since.unwrap_or_else(Instant::now);
                let stall = tokio::time::Instant::from_std(since) + self.write_timeout();
                tokio::select! {
                    r = self.sock.writable() => if let Err(e) = r {
                        return WriterEnd::Io(e);
                    },
                    c = ctl.recv() => match c {
                        Some(c) => self.lock().control(c),
                        None => return WriterEnd::InputClosed,
                    },
                    _ = tokio::time::sleep_until(stall) => {
                        return WriterEnd::Stalled(self.write_timeout());
                    }
                }
                continue;
            }
            if pass.more {
                // Catching up on a backlog: let other tasks run between batches.
                tokio::task::yield_now().await;
                continue;
            }
            let deadline = self.lock().deadline;
            tokio::select! {
                _ = self.notify.notified() => {}
                c = ctl.recv() => match c {
                    Some(c) => self.lock().control(c),
                    None => return WriterEnd::InputClosed,
                },
                _ = sleep_until(deadline) => {
                    if let Some(waited) = self.publisher_never_came() {
                        return self.finish(WriterEnd::NotFound(waited)).await;
                    }
                }
            }
        }
    }

    /// At the publisher-wait deadline: queues StreamNotFound and returns how long it
    /// waited if no publisher came, else clears the deadline.
    fn publisher_never_came(&self) -> Option<Duration> {
        let mut w = self.lock();
        if !w.live {
            let waited = w.publisher_wait;
            let d = format!(
                "nobody published {} within {}",
                w.key_name,
                humantime::format_duration(waited)
            );
            w.status("error", "NetStream.Play.StreamNotFound", &d);
            return Some(waited);
        }
        w.deadline = None;
        None
    }

    fn write_timeout(&self) -> Duration {
        self.lock().write_timeout
    }

    /// Writes what is still queued (a closing status, the last frames), bounded by the
    /// write timeout, then reports `end`.
    async fn finish(&self, end: WriterEnd) -> WriterEnd {
        // A broken, stalled or hopelessly slow socket gets nothing more.
        if matches!(
            end,
            WriterEnd::Io(_) | WriterEnd::Stalled(_) | WriterEnd::TooSlow { .. }
        ) {
            return end;
        }
        let timeout = self.write_timeout();
        let _ = tokio::time::timeout(timeout, async {
            loop {
                let blocked = self.lock().write(&self.sock);
                if !matches!(blocked, Ok(true)) {
                    return;
                }
                if self.sock.writable().await.is_err() {
                    return;
                }
            }
        })
        .await;
        end
    }
}

impl Reader for Output {
    /// The fast path: a caught-up player with nothing pending takes the new entry straight
    /// to its socket; anything else is left to its task.
    fn offer(&self, new: &NewEntry) {
        let Ok(mut w) = self.state.try_lock() else {
            // Its task is in a pass and will look at the ring again.
            self.notify.notify_one();
            return;
        };
        if w.paused {
            // Nothing to send until unpaused, which comes through the task.
            return;
        }
        if w.cursor != new.seq || !w.queue.is_empty() || w.failed.is_some() {
            drop(w);
            self.notify.notify_one();
            return;
        }
        // At the head, so the lag policy has nothing to say.
        w.cursor += 1;
        if new.frame {
            w.take_frame(new.video, &new.rtmp);
        } else {
            w.push_media(new.rtmp.clone());
        }
        match w.write(&self.sock) {
            Ok(false) => {}
            Ok(true) => {
                drop(w);
                self.notify.notify_one();
            }
            Err(e) => {
                w.failed = Some(WriterEnd::Io(e));
                drop(w);
                self.notify.notify_one();
            }
        }
    }

    fn wake(&self) {
        self.notify.notify_one();
    }
}

/// Output state of one player.
pub struct Writer {
    stream: Arc<Stream>,
    conn_id: u64,
    stream_id: u32,
    chunk_size: u32,
    key_name: String,
    cursor: u64,
    /// Skip video until a keyframe (joined without a GOP, after a skip to the head, or a
    /// new publisher).
    waiting_key: bool,
    /// A publisher is live for this player.
    live: bool,
    /// The publisher left since the player started (the next publish is announced).
    unpublished: bool,
    /// Deadline to see a publisher, while none is live and none was seen.
    deadline: Option<tokio::time::Instant>,
    /// `--publisher-wait`, for saying why a player that waited in vain is closed.
    publisher_wait: Duration,
    recv_audio: bool,
    recv_video: bool,
    paused: bool,
    lag: LagCounter,
    write_timeout: Duration,
    /// Since when the socket has taken no bytes while some were queued.
    blocked_since: Option<Instant>,
    /// Why the player must end, found by the fan-out (reported by the player's task).
    failed: Option<WriterEnd>,
    queue: VecDeque<Bytes>,
    scratch: BytesMut,
    headers: Vec<Bytes>,
}

/// How a new writer starts.
pub struct Start {
    /// Where the cursor starts.
    pub cursor: u64,
    /// Whether a publisher is live.
    pub live: bool,
    /// Whether video waits for a keyframe.
    pub waiting_key: bool,
    /// Whether the player wants audio (receiveAudio).
    pub recv_audio: bool,
    /// Whether the player wants video (receiveVideo).
    pub recv_video: bool,
}

impl Writer {
    /// A writer for `stream` on message stream `stream_id`, starting as `start` says;
    /// `initial` is sent first (play responses, headers).
    pub fn new(
        stream: Arc<Stream>,
        conn_id: u64,
        cfg: &Config,
        stream_id: u32,
        start: Start,
        initial: Vec<Bytes>,
    ) -> Writer {
        let deadline = (!start.live).then(|| tokio::time::Instant::now() + cfg.publisher_wait);
        Writer {
            key_name: stream.key.to_string(),
            stream,
            conn_id,
            stream_id,
            chunk_size: cfg.chunk_size,
            cursor: start.cursor,
            waiting_key: start.waiting_key,
            live: start.live,
            unpublished: false,
            deadline,
            publisher_wait: cfg.publisher_wait,
            recv_audio: start.recv_audio,
            recv_video: start.recv_video,
            paused: false,
            lag: LagCounter::new(cfg.max_lag_skips),
            write_timeout: cfg.player_write_timeout,
            blocked_since: None,
            failed: None,
            queue: initial.into(),
            scratch: BytesMut::new(),
            headers: Vec::new(),
        }
    }

    /// Takes new entries into the queue and writes what the socket takes without
    /// blocking. `Err` when the player must end.
    fn pass(&mut self, sock: &OwnedWriteHalf) -> Result<Pass, WriterEnd> {
        if let Some(end) = self.failed.take() {
            return Err(end);
        }
        let (end, more) = self.collect();
        let blocked = self.write(sock).map_err(WriterEnd::Io)?;
        match end {
            Some(end) => Err(end),
            None => Ok(Pass {
                blocked,
                more: more && !blocked,
            }),
        }
    }

    /// Writes the queue until it is empty or the socket would block (true).
    fn write(&mut self, sock: &OwnedWriteHalf) -> io::Result<bool> {
        while !self.queue.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = proto::iov::fill(&self.queue, &mut iov);
            let offered: usize = iov[..n].iter().map(|s| s.len()).sum();
            let whole = n == self.queue.len();
            match sock.try_write_vectored(&iov[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    proto::iov::advance(&mut self.queue, written);
                    self.blocked_since = None;
                    if written < offered && whole {
                        // A short write: the socket buffer is full.
                        self.blocked_since = Some(Instant::now());
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked_since.get_or_insert_with(Instant::now);
                    return Ok(true);
                }
                Err(e) => return Err(e),
            }
        }
        self.blocked_since = None;
        Ok(false)
    }

    fn control(&mut self, c: Control) {
        match c {
            Control::Send(b) => self.queue.push_back(b),
            Control::ReceiveAudio(v) => self.recv_audio = v,
            Control::ReceiveVideo(v) => {
                if v && !self.recv_video {
                    self.waiting_key = true;
                }
                self.recv_video = v;
            }
            Control::Pause(p) => {
                if p {
                    self.status("status", "NetStream.Pause.Notify", "Paused live stream.");
                } else {
                    self.status(
                        "status",
                        "NetStream.Unpause.Notify",
                        "Unpaused live stream.",
                    );
                }
                self.paused = p;
            }
        }
    }

    fn status(&mut self, level: &str, code: &str, description: &str) {
        rtmp_out::on_status(
            level,
            code,
            description,
            self.stream_id,
            self.chunk_size,
            &mut self.scratch,
        );
        self.queue.push_back(self.scratch.split().freeze());
    }

    fn user_control(&mut self, msg: UserControl) {
        rtmp_out::user_control(msg, self.chunk_size, &mut self.scratch);
        self.queue.push_back(self.scratch.split().freeze());
    }

    /// Takes entries from the cursor into the queue. Returns why to stop, if it must, and
    /// whether entries remain after this batch.
    fn collect(&mut self) -> (Option<WriterEnd>, bool) {
        if self.paused {
            return (None, false);
        }
        let stream = self.stream.clone();
        let mut st = stream.lock();
        if let Some(end) = self.apply_lag(&mut st) {
            return (Some(end), false);
        }
        let mut taken = 0;
        while taken < BATCH_ENTRIES {
            let Some(entry) = st.ring.get(self.cursor) else {
                return (None, false);
            };
            self.cursor += 1;
            taken += 1;
            match &entry.item {
                Item::Frame(frame) => {
                    let video = frame.is_video().then_some(frame.is_keyframe());
                    self.take_frame(video, &entry.rtmp);
                }
                Item::Config { .. } | Item::Metadata { .. } => {
                    let rtmp = entry.rtmp.clone();
                    self.push_media(rtmp);
                }
                Item::Published { .. } => {
                    self.waiting_key = true;
                    if self.deadline.take().is_some() {
                        // Ends the "waiting for a publisher" the player started with.
                        tracing::info!(conn_id = self.conn_id, key = %self.key_name, "player started: the publisher arrived");
                    }
                    if self.unpublished {
                        self.user_control(UserControl::StreamBegin(self.stream_id));
                        let d = format!("{} is now published.", self.key_name);
                        self.status("status", "NetStream.Play.PublishNotify", &d);
                        self.unpublished = false;
                    }
                    self.live = true;
                }
                Item::Unpublished { .. } => {
                    if self.live {
                        self.user_control(UserControl::StreamEof(self.stream_id));
                        let d = format!("{} is now unpublished.", self.key_name);
                        self.status("status", "NetStream.Play.UnpublishNotify", &d);
                        self.unpublished = true;
                    }
                    self.live = false;
                }
                Item::Closed => return (Some(WriterEnd::StreamClosed), false),
            }
        }
        (None, self.cursor < st.ring.head())
    }

    /// Queues a frame unless this player skips it (`video`: `Some(keyframe)` for video):
    /// video waiting for a keyframe, or a track it asked not to receive.
    fn take_frame(&mut self, video: Option<bool>, rtmp: &Bytes) {
        if let Some(key) = video {
            if self.waiting_key && !key {
                return;
            }
            if key {
                self.waiting_key = false;
            }
        }
        let wanted = match video {
            Some(_) => self.recv_video,
            None => self.recv_audio,
        };
        if wanted {
            self.push_media(rtmp.clone());
        }
    }

    fn push_media(&mut self, rtmp: Bytes) {
        if self.stream_id == SHARED_STREAM_ID {
            self.queue.push_back(rtmp);
        } else if let Some(rest) = rewrite_stream_id(&rtmp, self.stream_id, &mut self.scratch) {
            self.queue.push_back(self.scratch.split().freeze());
            self.queue.push_back(rest);
        }
    }

    /// The lag policy: a cursor more than `--player-queue-bytes` behind the head (or off
    /// the ring) moves to the newest keyframe, with the current headers re-sent first.
    fn apply_lag(&mut self, st: &mut StreamState) -> Option<WriterEnd> {
        let (target, to_head) = match st.ring.check_lag(self.cursor) {
            Lag::Fine => return None,
            Lag::SkipTo(k) => (k, false),
            Lag::SkipToHead(h) => (h, true),
        };
        let (frames, bytes) = st.ring.frames_between(self.cursor, target);
        if self.lag.record(Instant::now()) {
            return Some(WriterEnd::TooSlow {
                skips: self.lag.count(),
                window: LAG_WINDOW,
            });
        }
        tracing::info!(
            conn_id = self.conn_id,
            frames,
            bytes,
            to_keyframe = !to_head,
            skips = self.lag.count(),
            "player fell behind; skipped to the newest keyframe"
        );
        self.cursor = target;
        self.waiting_key = to_head || self.waiting_key;
        let ms = st
            .ring
            .get(target)
            .map_or_else(|| st.timeline.to_ms(st.timeline.last_out()), |e| e.out_ms);
        self.headers.clear();
        st.headers_for(ms, self.stream_id, &mut self.headers);
        self.queue.extend(self.headers.drain(..));
        None
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Writes every queued buffer with vectored writes, consuming the queue (for the few
/// bytes a refused player gets before it is closed).
pub async fn write_queue<W: AsyncWrite + Unpin>(
    wr: &mut W,
    queue: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    while !queue.is_empty() {
        let written = {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = proto::iov::fill(queue, &mut iov);
            wr.write_vectored(&iov[..n]).await?
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        proto::iov::advance(queue, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counter_window() {
        let mut c = LagCounter::new(2);
        let t0 = Instant::now();
        assert!(!c.record(t0));
        assert!(!c.record(t0 + Duration::from_secs(1)));
        assert!(
            c.record(t0 + Duration::from_secs(2)),
            "third skip within 30 s"
        );
        let mut c = LagCounter::new(2);
        assert!(!c.record(t0));
        assert!(!c.record(t0 + Duration::from_secs(20)));
        assert!(
            !c.record(t0 + Duration::from_secs(31)),
            "first skip left the window"
        );
    }
}
