//! Wire formats of the media server, with no I/O: the framed IPC format the processes
//! speak to each other, and the RTMP, AMF, FLV, MPEG-TS, SRT and WebSocket formats they speak to the world.
//!
//! ```text
//!  bytes from a socket --> rtmp::handshake --> rtmp::chunk --> rtmp::session --> flv --> media
//!                                                                                        |
//!  bytes to a socket  <-- rtmp::chunk <-- flv <----------- ipc (hub.sock, pipes) <-------+
//!
//!  datagrams <--> srt::{Listener, Caller} --> srt::Connection (ARQ, TSBPD, AES-CTR) --> payloads
//! ```
//!
//! Every function here takes bytes and returns values or bytes; the binaries own the
//! sockets, the clocks and the tasks.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod flv;
pub mod glob;
pub mod iov;
pub mod ipc;
pub mod media;
pub mod metrics;
pub mod rtmp;
pub mod srt;
pub mod ts;
pub mod websocket;
