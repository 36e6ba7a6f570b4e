//! End-to-end test support: drives the real `hub` and `ingest-rtmp` binaries over loopback
//! with FFmpeg, independent RTMP clients and a byte-level RTMP client.
//!
//! ```text
//!  Server::start ──spawn──> hub --socket <tmp>/hub.sock        (waits for "listening on unix:")
//!                └─spawn──> ingest-rtmp --listen 127.0.0.1:0   (waits for "listening on rtmp://IP:PORT")
//!  ffmpeg::publish ──RTMP──> ingest-rtmp ──hub.sock──> hub ──RTMP──> ffmpeg::Player / RtmpClient
//! ```
//!
//! Every child process runs in its own process group and is killed (group included) and
//! reaped when its guard drops. Waiting is always on an observable (a log line, a pipe
//! closing, a file growing, bytes on a socket) with a bounded deadline, never a bare sleep.
//! Tests that start servers hold [`serial`] so that on a 2-core machine they run one at a
//! time even when the test harness runs threads in parallel.

pub mod bins;
pub mod ffmpeg;
pub mod flv;
pub mod gst;
pub mod http;
pub mod http_stub;
pub mod hub_events;
pub mod jwt;
pub mod load;
pub mod log;
pub mod neighbour;
pub mod proc;
pub mod prom;
pub mod reconnect;
pub mod recorder;
pub mod rtmp_client;
pub mod scenario;
pub mod server;
pub mod srt;
pub mod supervised;
pub mod test_ca;
pub mod tools;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use server::{Server, ServerOpts};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serializes tests that start processes within one test binary. A test that panicked
/// while holding it does not poison the others.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A point in time `secs` seconds from now.
pub fn deadline_in(secs: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(secs)
}
