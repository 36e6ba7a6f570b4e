//! One SRT player (`m=request`): a hub subscriber of its key whose frames are muxed into
//! MPEG-TS (`proto::ts::Muxer`: PAT/PMT, PCR, parameter sets before keyframes, ADTS) and
//! handed to the endpoint, which sends them on the player's SRT connection.
//!
//! ```text
//!  hub --Announce/TrackConfig/Frame--> Muxer --TS (multiples of 1316 bytes)--> endpoint
//!      <--Player, Event play/stop-------'        Out::Data (byte budget)        |
//!                                       skip to the next keyframe <-- behind ----'
//! ```
//!
//! The subscription names its player (`Header::Player`: key, conn id, address), so the
//! hub counts it as a player of the key from the moment it subscribes, also while it
//! waits for the key to go live (a relayer's pull mode starts a pull for it), until the
//! subscription closes.
//!
//! The hub starts a subscriber at the newest keyframe of its GOP cache, so a player gets
//! PAT/PMT and the parameter sets first. A player that cannot keep up (its queue toward
//! the endpoint is over budget, or the SRT sender had to drop packets the player never
//! acknowledged) skips whole GOPs: frames are dropped before muxing, up to the next video
//! keyframe, so the TS it gets stays continuous. Too many skips in a minute end it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proto::ipc::{self, Event, FrameDecoder, Header, Message, PlayerProtocol};
use proto::media::{StreamKey, TrackKind};
use proto::srt::Stats;
use proto::ts::{MuxOptions, Muxer};
use telemetry::hub_conn::{self, HubConn, OpenError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

/// SRT payload size: seven TS packets, what every SRT sender uses.
pub(crate) const PAYLOAD: usize = 7 * 188;
/// The window in which GOP skips are counted against `--play-max-skips`.
const SKIP_WINDOW: Duration = Duration::from_secs(60);

/// State the endpoint and the player task share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Bytes handed to the endpoint and not yet taken by it.
    pub(crate) queued: AtomicUsize,
    /// Set by the endpoint when the SRT sender dropped packets (the player is behind).
    pub(crate) behind: AtomicBool,
}

/// How a player connection ended, from the endpoint.
#[derive(Debug)]
pub(crate) struct Closed {
    pub(crate) reason: String,
    pub(crate) stats: Stats,
}

/// What a player task sends the endpoint, in order, on one channel for all players.
#[derive(Debug)]
pub(crate) enum Out {
    /// The key is live: accept the caller (the connection's handshake is pending).
    Ready {
        peer: (SocketAddr, u32),
        shared: Arc<Shared>,
        closed: oneshot::Sender<Closed>,
    },
    /// Refuse the pending caller: the key is not live, or the hub is unreachable.
    Refuse {
        peer: (SocketAddr, u32),
        not_found: bool,
        why: String,
    },
    /// TS packets, a multiple of 188 bytes.
    Data(Bytes),
    /// The stream ended (or the hub went away): flush, then shut the connection down.
    End(String),
}

/// What a player needs to know.
#[derive(Debug, Clone)]
pub(crate) struct PlayerArgs {
    pub(crate) hub: PathBuf,
    pub(crate) key: StreamKey,
    pub(crate) conn_id: u64,
    pub(crate) remote: SocketAddr,
    /// The endpoint's id of the connection (`Out` messages carry it).
    pub(crate) local_id: u32,
    pub(crate) peer: (SocketAddr, u32),
    /// How long a key that is not live may take to appear before the caller is refused.
    pub(crate) wait: Duration,
    /// Byte budget of `Out::Data` not yet taken by the endpoint.
    pub(crate) queue_bytes: usize,
    /// GOP skips allowed per minute before the player is disconnected as too slow.
    pub(crate) max_skips: u32,
    /// How long the endpoint may take to flush and close after the stream ended.
    pub(crate) linger: Duration,
}

/// Why the subscription ended.
#[derive(Debug, thiserror::Error)]
enum HubError {
    #[error("hub socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("hub protocol: {0}")]
    Ipc(#[from] ipc::IpcError),
    #[error("hub error: {0}")]
    Hub(String),
    #[error(transparent)]
    Open(#[from] OpenError),
}

struct Player {
    args: PlayerArgs,
    tx: mpsc::UnboundedSender<(u32, Out)>,
    shared: Arc<Shared>,
    /// The hub's handle of our key on this connection.
    handle: u32,
    timescale: u32,
    muxer: Muxer,
    has_video: bool,
    /// Dropping frames up to the next video keyframe.
    skipping: bool,
    skips: VecDeque<Instant>,
    skipped_frames: u64,
    /// Muxed bytes not yet handed over (less than one payload between flushes).
    ts: BytesMut,
    warned: Vec<(bool, u8)>,
}

/// Runs one player from its subscription to the end of its connection.
pub(crate) async fn run(args: PlayerArgs, tx: mpsc::UnboundedSender<(u32, Out)>) {
    let id = args.local_id;
    let peer = args.peer;
    let refuse = |not_found, why| {
        let _ = tx.send((
            id,
            Out::Refuse {
                peer,
                not_found,
                why,
            },
        ));
    };
    let mut buf = BytesMut::with_capacity(64 << 10);
    let decoder = FrameDecoder::default();
    let joined = tokio::time::timeout(args.wait, subscribe(&args, &decoder, &mut buf)).await;
    let (sock, handle, timescale) = match joined {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return refuse(false, format!("hub unavailable: {e}")),
        Err(_) => {
            let waited = humantime::format_duration(args.wait);
            return refuse(true, format!("{} is not live (waited {waited})", args.key));
        }
    };
    let shared = Arc::new(Shared::default());
    let (closed_tx, closed_rx) = oneshot::channel();
    if tx
        .send((
            id,
            Out::Ready {
                peer,
                shared: shared.clone(),
                closed: closed_tx,
            },
        ))
        .is_err()
    {
        return;
    }
    let mut p = Player {
        tx,
        shared,
        handle,
        timescale,
        muxer: Muxer::new(timescale, MuxOptions::default()),
        has_video: false,
        skipping: false,
        skips: VecDeque::new(),
        skipped_frames: 0,
        ts: BytesMut::with_capacity(64 << 10),
        warned: Vec::new(),
        args,
    };
    let started = Instant::now();
    let (mut rd, mut wr) = sock.into_split();
    let _ = wr.write_all(&p.event("play", Vec::new())).await;
    tracing::info!(key = %p.args.key, "playing");
    let mut closed_rx = closed_rx;
    let ended = p.pump(&mut rd, &decoder, &mut buf, &mut closed_rx).await;
    let closed = match ended {
        Ok(closed) => Some(closed),
        Err(reason) => {
            // The end can come in one read with the stream's last frames: what they left
            // short of a whole payload goes out before the end, not with it dropped (the
            // player's last frame was cut: "Invalid level prefix" in 3 runs of 4).
            p.hand_over(true);
            tracing::info!(key = %p.args.key, %reason, "ending the SRT player");
            let _ = p.tx.send((p.args.local_id, Out::End(reason)));
            tokio::time::timeout(p.args.linger + Duration::from_secs(2), closed_rx)
                .await
                .ok()
                .and_then(Result::ok)
        }
    };
    let (reason, stats) = match closed {
        Some(c) => (c.reason, c.stats),
        None => ("shutdown".to_string(), Stats::default()),
    };
    let fields = vec![
        ("reason".to_string(), reason.clone()),
        ("bytes".to_string(), stats.sent_bytes.to_string()),
        (
            "duration_ms".to_string(),
            started.elapsed().as_millis().to_string(),
        ),
        ("player".to_string(), "srt".to_string()),
    ];
    let _ = wr.write_all(&p.event("stop", fields)).await;
    tracing::info!(
        key = %p.args.key,
        %reason,
        bytes = stats.sent_bytes,
        packets = stats.sent_packets,
        retransmitted = stats.sent_retransmitted,
        naks = stats.naks_received,
        dropped = stats.sent_dropped,
        skipped_frames = p.skipped_frames,
        rtt_ms = f64::from(stats.rtt_us) / 1000.0,
        "SRT player stopped"
    );
}

/// Connects, sends Hello, `Player` (so the hub counts this player of our key for as
/// long as the connection lives) and Subscribe to exactly our key, then waits for its
/// `Announce`: the socket, the key's handle and its timescale.
async fn subscribe(
    args: &PlayerArgs,
    decoder: &FrameDecoder,
    buf: &mut BytesMut,
) -> Result<(UnixStream, u32, u32), HubError> {
    let mut opening = BytesMut::new();
    ipc::encode_player_subscription(
        ipc::hello_name(
            crate::ORIGIN.component,
            std::process::id(),
            Some(args.conn_id),
        ),
        args.key.to_string(),
        PlayerProtocol::Srt,
        args.conn_id,
        args.remote.to_string(),
        &mut opening,
    );
    let HubConn {
        mut sock,
        buf: rest,
    } = hub_conn::open(&args.hub, &opening).await?;
    buf.extend_from_slice(&rest);
    loop {
        while let Some(msg) = decoder.decode(buf)? {
            match msg.header {
                Header::Error { message } => return Err(HubError::Hub(message)),
                Header::Announce {
                    stream,
                    key,
                    timescale,
                } if key == args.key.as_str() => return Ok((sock, stream, timescale)),
                _ => {}
            }
        }
        if sock.read_buf(buf).await? == 0 {
            return Err(HubError::Hub("the hub closed the connection".into()));
        }
    }
}

impl Player {
    fn event(&self, kind: &str, fields: Vec<(String, String)>) -> BytesMut {
        let mut fields = fields;
        if fields.is_empty() {
            fields.push(("player".to_string(), "srt".to_string()));
        }
        let mut out = BytesMut::new();
        ipc::encode(
            &Header::Event(Event {
                kind: kind.into(),
                key: self.args.key.to_string(),
                conn_id: self.args.conn_id,
                remote: self.args.remote.to_string(),
                fields,
            }),
            &[],
            &mut out,
        );
        out
    }

    /// Moves frames until the connection closes (`Ok`) or the stream ends (`Err(reason)`).
    async fn pump(
        &mut self,
        rd: &mut tokio::net::unix::OwnedReadHalf,
        decoder: &FrameDecoder,
        buf: &mut BytesMut,
        closed: &mut oneshot::Receiver<Closed>,
    ) -> Result<Closed, String> {
        loop {
            loop {
                let msg = match decoder.decode(buf) {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => return Err(format!("hub protocol: {e}")),
                };
                self.on_message(msg)?;
            }
            // Nothing more at hand: what is muxed goes out now, not with the next frame.
            self.hand_over(true);
            tokio::select! {
                r = rd.read_buf(buf) => match r {
                    Ok(0) => return Err("the hub closed the connection".into()),
                    Ok(_) => {}
                    Err(e) => return Err(format!("hub socket: {e}")),
                },
                c = &mut *closed => {
                    return c.map_err(|_| "ingest-srt is shutting down".to_string());
                }
            }
        }
    }

    fn on_message(&mut self, msg: Message) -> Result<(), String> {
        match msg.header {
            Header::Announce {
                stream,
                key,
                timescale,
            } if key == self.args.key.as_str() => {
                // After a takeover the hub announces the key again; its timestamps carry on.
                if timescale != self.timescale {
                    return Err("the new publisher's timescale differs".into());
                }
                self.handle = stream;
            }
            Header::TrackConfig {
                stream,
                track,
                codec,
            } if stream == self.handle => {
                let video = codec.kind() == TrackKind::Video;
                match self.muxer.set_config(track, codec, &msg.payload) {
                    Ok(()) => self.has_video |= video,
                    Err(e) => {
                        if !self.warned.contains(&(video, track)) {
                            self.warned.push((video, track));
                            tracing::warn!(key = %self.args.key, track, error = %e, "track not sent to the SRT player");
                        }
                    }
                }
            }
            Header::Frame { .. } => {
                if let Some((stream, frame)) = msg.frame() {
                    if stream == self.handle {
                        self.on_frame(&frame)?;
                    }
                }
            }
            Header::Dropped { stream, frames, .. } if stream == self.handle => {
                tracing::debug!(key = %self.args.key, frames, "the hub skipped frames for this player");
                self.skipped_frames += frames;
                self.count_skip()?;
            }
            // After a takeover the same key is announced again: carry on.
            Header::EndOfStream { stream, reason }
                if stream == self.handle && reason != "takeover" =>
            {
                return Err(format!("the stream ended ({reason})"));
            }
            Header::Error { message } => return Err(format!("hub error: {message}")),
            _ => {}
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: &proto::media::Frame) -> Result<(), String> {
        let over_budget =
            self.shared.queued.load(Ordering::Relaxed) + self.ts.len() > self.args.queue_bytes;
        if !self.skipping && (over_budget || self.shared.behind.swap(false, Ordering::Relaxed)) {
            self.skipping = true;
            self.count_skip()?;
        }
        if self.skipping {
            let resume = if self.has_video {
                frame.is_video_keyframe()
            } else {
                !over_budget
            };
            if !resume {
                self.skipped_frames += 1;
                return Ok(());
            }
            self.skipping = false;
            self.shared.behind.store(false, Ordering::Relaxed);
        }
        if let Err(e) = self.muxer.write_frame(frame, &mut self.ts) {
            tracing::trace!(key = %self.args.key, error = %e, "frame not muxed");
        }
        self.hand_over(false);
        Ok(())
    }

    /// Records a GOP skip; `Err` when there were too many within a minute.
    fn count_skip(&mut self) -> Result<(), String> {
        let now = Instant::now();
        while self
            .skips
            .front()
            .is_some_and(|&t| now.duration_since(t) > SKIP_WINDOW)
        {
            self.skips.pop_front();
        }
        self.skips.push_back(now);
        tracing::info!(key = %self.args.key, skips = self.skips.len(), "SRT player behind, skipping to the next keyframe");
        if self.skips.len() > self.args.max_skips as usize {
            return Err(format!(
                "too slow: skipped {} times within {}s",
                self.skips.len(),
                SKIP_WINDOW.as_secs()
            ));
        }
        Ok(())
    }

    /// Hands whole payloads to the endpoint, and the rest too when `all`.
    fn hand_over(&mut self, all: bool) {
        let n = if all {
            self.ts.len()
        } else {
            self.ts.len() - self.ts.len() % PAYLOAD
        };
        if n == 0 {
            return;
        }
        let data = self.ts.split_to(n).freeze();
        self.shared.queued.fetch_add(n, Ordering::Relaxed);
        let _ = self.tx.send((self.args.local_id, Out::Data(data)));
    }
}
