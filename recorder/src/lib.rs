//! The recorder: a hub subscriber that writes every live stream to disk.
//!
//! ```text
//!  hub.sock --> hub_link (async: Subscribe, decode frames, send events)
//!                  |  per stream: session::StreamRecorder (sans-IO: files, segments, timestamps)
//!                  |                 +-- flv::FlvMuxer / mp4::Mp4Muxer (sans-IO: bytes out)
//!                  v  bounded channel of writer::Command
//!               writer thread (blocking file I/O, vectored writes, patches, fdatasync)
//!                  |  writer::Report (opened, closed, failed)
//!                  +--> hub_link: record_start / record_done events to the hub
//! ```
//!
//! Muxers never touch files and the file writer never parses media, so each is tested
//! alone; the hub link only moves messages between them.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod codecs;
pub mod flv;
pub mod hub_link;
pub mod metadata;
pub mod mp4;
pub mod mux;
pub mod naming;
pub mod session;
pub mod writer;
