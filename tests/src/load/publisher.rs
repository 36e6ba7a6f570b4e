//! A publisher that sends a [`Source`] in real time, looping it with continuous timestamps,
//! and stamps the send time of every video frame into a [`SendClock`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::rtmp::session::ClientMode;

use super::conn::{types, Conn};
use super::flvfile::Source;

/// Slots keyed by the low 16 bits of a video frame's RTMP timestamp: its send time and its
/// sequence number. 65 s of distinct millisecond timestamps before a slot is reused.
pub struct SendClock {
    epoch: Instant,
    sent_ns: Vec<AtomicU64>,
    seq: Vec<AtomicU64>,
}

const SLOTS: usize = 1 << 16;

impl SendClock {
    /// An empty clock whose times count from now.
    pub fn new() -> Arc<SendClock> {
        Arc::new(SendClock {
            epoch: Instant::now(),
            sent_ns: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            seq: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Nanoseconds since the clock's epoch.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn stamp(&self, timestamp: u32, seq: u64) {
        let i = timestamp as usize % SLOTS;
        self.seq[i].store(seq, Ordering::Relaxed);
        self.sent_ns[i].store(self.now_ns(), Ordering::Release);
    }

    /// (send time in ns since the epoch, sequence number) of the video frame stamped with
    /// `timestamp`, if one was.
    pub fn lookup(&self, timestamp: u32) -> Option<(u64, u64)> {
        let i = timestamp as usize % SLOTS;
        let sent = self.sent_ns[i].load(Ordering::Acquire);
        (sent != 0).then(|| (sent, self.seq[i].load(Ordering::Relaxed)))
    }
}

/// Publishes `source` to `app/name` until `until`; stamps video frames into `clock` if
/// given. Returns the number of messages sent.
pub async fn publish(
    addr: SocketAddr,
    app: &str,
    name: &str,
    source: Arc<Source>,
    clock: Option<Arc<SendClock>>,
    until: Instant,
) -> Result<u64, String> {
    let err = |what: &str, e: std::io::Error| format!("publisher {name}: {what}: {e}");
    let mut c = Conn::open(addr, app, name, ClientMode::Publish, 60_000)
        .await
        .map_err(|e| err("publish", e))?;
    for h in &source.headers {
        c.message(h.type_id, 0, &h.body)
            .map_err(|e| err("send headers", e))?;
    }
    c.flush().await.map_err(|e| err("send headers", e))?;
    let start = tokio::time::Instant::now();
    let mut sent = 0u64;
    let mut video_seq = 0u64;
    for lap in 0u32.. {
        let base = lap * source.duration_ms;
        for t in &source.tags {
            let ts = base + t.timestamp;
            let at = start + Duration::from_millis(u64::from(ts));
            if at.into_std() >= until {
                return Ok(sent);
            }
            tokio::time::sleep_until(at).await;
            c.message(t.type_id, ts, &t.body)
                .map_err(|e| err("send", e))?;
            if t.type_id == types::VIDEO {
                if let Some(clock) = &clock {
                    video_seq += 1;
                    clock.stamp(ts, video_seq);
                }
            }
            c.flush().await.map_err(|e| err("send", e))?;
            sent += 1;
        }
    }
    Ok(sent)
}
