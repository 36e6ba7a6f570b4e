//! The hub: stream registry and router.
//!
//! ```text
//!  publishers --hub.sock--> publisher.rs --> registry.rs --> stream.rs { timeline, configs,
//!                                                             metadata, ring.rs }
//!                                                                   | Bytes built once
//!                       player/output.rs <----------------------------+----> subscriber.rs
//!                       (proto PlayerSession + cursor.rs)                  (cursor.rs)
//!  ingest-rtmp --fd + PlayerHandoff--> player/handoff.rs --> player/driver.rs (the task)
//!  supervisor, ingest-rtmp --Control--> control.rs --> reconnect.rs (orders to players
//!                                                      and publishers)
//! ```
//!
//! Every frame is serialized into RTMP chunks once (rtmp_out.rs) and appended to its
//! stream's ring; every reader holds a [`cursor::Cursor`] into that ring, players write
//! the shared buffers with vectored writes ([`write`]). Slow readers skip whole GOPs; the
//! publisher never waits. The RTMP protocol of a player after the handoff is
//! `proto::rtmp::session::PlayerSession`; the hub only drives it.
//!
//! Everything but the socket tasks is testable without sockets: ring, stream, cursor and
//! the lag and stall policies take `now` as an argument.

pub mod auth_counts;
pub mod config;
pub mod conns;
pub mod control;
pub mod cursor;
pub mod deadline;
pub mod events;
pub mod hls;
pub mod http;
pub mod peer;
pub mod player;
pub mod publisher;
pub mod reconnect;
pub mod registry;
pub mod reports;
pub mod ring;
pub mod rtmp_out;
pub mod served_player;
pub mod server;
pub mod stats;
pub mod stream;
pub mod subscriber;
pub mod timeline;
pub mod wire;
pub mod write;

#[cfg(test)]
mod loopback_tests;
