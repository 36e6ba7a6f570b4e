//! The relayer: a hub subscriber that pushes live streams to other RTMP servers (each
//! destination independent, bounded and reconnecting).
//!
//! ```text
//!  hub.sock --> link (subscribe) --> per stream: Headers + one GopQueue per destination
//!                                      --> destination task: proto ClientSession --> TCP
//!  hub.sock <-- destination state events (relay, relay_codec_unsupported)
//! ```

pub mod backoff;
pub mod callback;
pub mod destination;
pub mod link;
pub mod media;
pub mod pull;
pub mod queue;
pub mod rtmp_conn;
pub mod rules;
pub mod srt_conn;
pub mod state_gauge;
