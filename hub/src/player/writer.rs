//! A player's output: a cursor into its stream's shared ring, woken when entries arrive,
//! writing the shared chunk bytes with vectored writes, and the lag policy.
//!
//! Per frame nothing is allocated for a player: the writer clones `Bytes` handles (a
//! reference count) into a reused queue and writes them with `write_vectored`. Only rare
//! events (status messages, headers after a skip) are serialized per player.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use proto::rtmp::message::UserControl;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, Notify};

use crate::config::{Config, LAG_WINDOW};
use crate::ring::{Item, Lag};
use crate::rtmp_out::{self, rewrite_stream_id, SHARED_STREAM_ID};
use crate::stream::{Stream, StreamState};

/// Most entries taken from the ring per write.
const BATCH_ENTRIES: usize = 256;
/// Most slices passed to one `write_vectored` call (below every IOV_MAX).
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
    /// Nobody published the key within `--publisher-wait`.
    #[error("stream not found")]
    NotFound,
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

/// Output state of one player.
pub struct Writer {
    stream: Arc<Stream>,
    waker: Arc<Notify>,
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
    recv_audio: bool,
    recv_video: bool,
    paused: bool,
    lag: LagCounter,
    write_timeout: std::time::Duration,
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
}

impl Writer {
    /// A writer for `stream` on message stream `stream_id`, starting as `start` says;
    /// `initial` is sent first (play responses, headers).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stream: Arc<Stream>,
        waker: Arc<Notify>,
        cfg: &Config,
        stream_id: u32,
        start: Start,
        initial: Vec<Bytes>,
        recv_audio: bool,
        recv_video: bool,
    ) -> Writer {
        let deadline = (!start.live).then(|| tokio::time::Instant::now() + cfg.publisher_wait);
        Writer {
            key_name: stream.key.to_string(),
            stream,
            waker,
            stream_id,
            chunk_size: cfg.chunk_size,
            cursor: start.cursor,
            waiting_key: start.waiting_key,
            live: start.live,
            unpublished: false,
            deadline,
            recv_audio,
            recv_video,
            paused: false,
            lag: LagCounter::new(cfg.max_lag_skips),
            write_timeout: cfg.player_write_timeout,
            queue: initial.into(),
            scratch: BytesMut::new(),
            headers: Vec::new(),
        }
    }

    /// Runs until the player must be closed; the final bytes (if any) are written first.
    pub async fn run(
        &mut self,
        wr: &mut OwnedWriteHalf,
        ctl: &mut mpsc::Receiver<Control>,
    ) -> WriterEnd {
        loop {
            loop {
                match ctl.try_recv() {
                    Ok(c) => self.control(c),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return WriterEnd::InputClosed,
                }
            }
            let end = self.collect();
            if let Err(e) = self.flush(wr).await {
                return e;
            }
            if let Some(end) = end {
                let _ = wr.flush().await;
                return end;
            }
            if self.has_more() {
                continue;
            }
            let deadline = self.deadline;
            tokio::select! {
                _ = self.waker.notified() => {}
                c = ctl.recv() => match c {
                    Some(c) => self.control(c),
                    None => return WriterEnd::InputClosed,
                },
                _ = sleep_until(deadline) => {
                    if !self.live {
                        self.status("error", "NetStream.Play.StreamNotFound", "No such stream.");
                        let _ = self.flush(wr).await;
                        return WriterEnd::NotFound;
                    }
                    self.deadline = None;
                }
            }
        }
    }

    /// Writes the queue; a socket that takes nothing for the write timeout ends the player.
    /// The lag policy runs between batches, so a player that stopped reading altogether
    /// would otherwise hold its connection (and a ring cursor) forever.
    async fn flush(&mut self, wr: &mut OwnedWriteHalf) -> Result<(), WriterEnd> {
        match tokio::time::timeout(self.write_timeout, write_queue(wr, &mut self.queue)).await {
            Ok(r) => r.map_err(WriterEnd::from),
            Err(_) => Err(WriterEnd::Stalled(self.write_timeout)),
        }
    }

    fn has_more(&self) -> bool {
        !self.paused && self.cursor < self.stream.lock().ring.head()
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

    /// Takes entries from the cursor into the queue. Returns why to stop, if it must.
    fn collect(&mut self) -> Option<WriterEnd> {
        if self.paused {
            return None;
        }
        let stream = self.stream.clone();
        let mut st = stream.lock();
        if let Some(end) = self.apply_lag(&mut st) {
            return Some(end);
        }
        let mut taken = 0;
        while taken < BATCH_ENTRIES {
            let Some(entry) = st.ring.get(self.cursor) else {
                break;
            };
            self.cursor += 1;
            taken += 1;
            match &entry.item {
                Item::Frame { video, flags, .. } => {
                    let video = *video;
                    if video {
                        let key = flags & proto::media::FLAG_KEYFRAME != 0;
                        if self.waiting_key && !key {
                            continue;
                        }
                        if key {
                            self.waiting_key = false;
                        }
                    }
                    if (video && !self.recv_video) || (!video && !self.recv_audio) {
                        continue;
                    }
                    let rtmp = entry.rtmp.clone();
                    self.push_media(rtmp);
                }
                Item::Config { .. } | Item::Metadata { .. } => {
                    let rtmp = entry.rtmp.clone();
                    self.push_media(rtmp);
                }
                Item::Published { .. } => {
                    self.waiting_key = true;
                    self.deadline = None;
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
                Item::Closed => return Some(WriterEnd::StreamClosed),
            }
        }
        None
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

/// Writes every queued buffer with vectored writes, consuming the queue.
pub async fn write_queue<W: AsyncWrite + Unpin>(
    wr: &mut W,
    queue: &mut VecDeque<Bytes>,
) -> io::Result<()> {
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
    use std::time::Duration;

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
