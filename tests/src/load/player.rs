//! A player that plays a stream and checks what it gets: a sequence header before coded
//! video, a keyframe as the first coded frame, an intact chunk stream, and (with a
//! [`SendClock`]) no missing frames; it reports bytes, join time and delivery latency.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use proto::rtmp::session::{ClientEvent, ClientMode, MediaKind};
use tokio::sync::watch;

use super::conn::Conn;
use super::publisher::SendClock;
use crate::flv::{audio_packet, video_packet, Packet};

/// What one player saw.
#[derive(Debug, Default, Clone)]
pub struct PlayerReport {
    /// Why it stopped early (connection or protocol failure), if it did.
    pub error: Option<String>,
    /// Broken expectations (header order, first frame not a keyframe).
    pub violations: Vec<String>,
    /// Bytes read from the socket.
    pub bytes: u64,
    /// From `play` sent to the first coded keyframe, milliseconds.
    pub join_ms: Option<f64>,
    /// Delivery latency of video frames received in the measurement window, microseconds.
    pub latencies_us: Vec<u32>,
    /// Coded video frames received.
    pub video_frames: u64,
    /// Coded audio frames received.
    pub audio_frames: u64,
    /// Video frames the publisher sent that never arrived (between ones that did).
    pub missed: u64,
}

/// Shared counters and signals of a run.
#[derive(Clone)]
pub struct Shared {
    /// Bytes read by every player together.
    pub bytes: Arc<AtomicU64>,
    /// Latencies are recorded once this is true.
    pub measuring: watch::Receiver<bool>,
    /// Players stop when this turns true.
    pub stop: watch::Receiver<bool>,
    /// Send times of the publisher, for latency and missed frames.
    pub clock: Option<Arc<SendClock>>,
}

/// Plays `app/name` until told to stop.
pub async fn play(addr: SocketAddr, app: &str, name: &str, mut shared: Shared) -> PlayerReport {
    let mut r = PlayerReport::default();
    let mut c = match Conn::open(addr, app, name, ClientMode::Play, 4096).await {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("play: {e}"));
            return r;
        }
    };
    let sent = Instant::now();
    let mut seen_video_header = false;
    let mut seen_audio_header = false;
    let mut first_coded = true;
    let mut last_seq: Option<u64> = None;
    let mut counted = 0u64;
    loop {
        let m = tokio::select! {
            m = c.next() => m,
            _ = shared.stop.changed() => break,
        };
        let m = match m {
            Ok(ClientEvent::Media(m)) => m,
            Ok(_) => continue,
            Err(e) => {
                r.error = Some(format!("after {} video frames: {e}", r.video_frames));
                break;
            }
        };
        let read = c.bytes_read();
        shared.bytes.fetch_add(read - counted, Ordering::Relaxed);
        counted = read;
        match m.kind {
            MediaKind::Video => match video_packet(&m.payload) {
                Packet::SequenceHeader => seen_video_header = true,
                Packet::Coded { keyframe } => {
                    if !seen_video_header {
                        r.violations
                            .push("coded video before a sequence header".into());
                    }
                    if first_coded {
                        first_coded = false;
                        if !keyframe {
                            r.violations
                                .push("first coded video frame is not a keyframe".into());
                        }
                    }
                    if r.join_ms.is_none() && keyframe {
                        r.join_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    r.video_frames += 1;
                    if let Some((sent_ns, seq)) =
                        shared.clock.as_ref().and_then(|c| c.lookup(m.timestamp))
                    {
                        if let Some(last) = last_seq {
                            r.missed += seq.saturating_sub(last + 1);
                        }
                        last_seq = Some(seq);
                        if *shared.measuring.borrow() {
                            let now = shared.clock.as_ref().map_or(0, |c| c.now_ns());
                            let us = now.saturating_sub(sent_ns) / 1000;
                            r.latencies_us.push(us.min(u64::from(u32::MAX)) as u32);
                        }
                    }
                }
                Packet::Other => {}
            },
            MediaKind::Audio => match audio_packet(&m.payload) {
                Packet::SequenceHeader => seen_audio_header = true,
                Packet::Coded { .. } => {
                    if !seen_audio_header && r.audio_frames == 0 {
                        r.violations
                            .push("coded audio before a sequence header".into());
                    }
                    r.audio_frames += 1;
                }
                Packet::Other => {}
            },
        }
    }
    r.bytes = c.bytes_read();
    r
}
