//! The part of an ingest process that is the same whatever protocol the publisher speaks
//! (RTMP in `ingest-rtmp`, SRT in `ingest-srt`): each publisher's stream goes to the hub
//! through a [`link::Link`] (bounded queue, keyframe resync), all of them over one shared
//! hub connection per process (`mux.rs`: one vectored write per read tick for every
//! publisher, reconnect and re-announce of every stream after a hub restart), or with
//! `--out` into one [`pipe::Pipe`] in the framed format.
//!
//! ```text
//!  publisher A --> Link (bounded) --+
//!  publisher B --> Link (bounded) --+--one writev per tick--> hub.sock   (link.rs, mux.rs)
//!  publisher C --> Link (bounded) --> forwarder --> writer task --> stdout  (pipe.rs)
//! ```
#![forbid(unsafe_code)]

pub mod events;
pub mod link;
mod mux;
pub mod pipe;

/// The stream handle a publisher's messages are given to its [`link::Link`] with; the link
/// puts the stream's own handle on the connection in its place.
pub const STREAM: u32 = 1;

/// Held for each stream by the shared hub connection (and by the pipe's writer) until
/// everything it was given is written: ingest-rtmp's orderly shutdown waits for these to drop.
pub type Guard = Box<dyn Send + Sync>;

/// Who is publishing, as the hub and pipe readers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The component name in the Hello (`ingest-rtmp`, `ingest-srt`).
    pub component: &'static str,
    /// Timestamp units per second of the stream's frames (1000 for RTMP, 90000 for TS).
    pub timescale: u32,
}

/// The one-line reason a listen address cannot be used, with what to do about the usual
/// causes (`scheme` is `rtmp` or `srt`, for the message).
pub fn listen_error(scheme: &str, addr: std::net::SocketAddr, e: std::io::Error) -> String {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another server is listening there: stop it or choose another --listen"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: choose another --listen"
        }
        _ => "",
    };
    format!("cannot listen on {scheme}://{addr}: {e}{hint}")
}
