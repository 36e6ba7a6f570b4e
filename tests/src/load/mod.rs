//! Load tools: the `loadgen` player/publisher swarm and the `nullserver` baseline, sharing
//! an async RTMP client connection built on `proto`'s sans-IO chunk stream and handshake.
//!
//! ```text
//!  loadgen run: publisher task --RTMP--> server under test --RTMP--> N player tasks
//!               (stamps each video frame's send time in `SendClock`; players read it back
//!                by RTMP timestamp: delivery latency is measured, not guessed)
//! ```

pub mod churn;
pub mod conn;
pub mod flvfile;
pub mod player;
pub mod procstat;
pub mod publisher;
pub mod stats;

/// The multi-threaded runtime of a load tool, with `threads` workers.
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime")
}
