//! Limits and announced values of a server session.

use crate::rtmp::amf0::AmfLimits;
use crate::rtmp::chunk::ChunkLimits;

/// How a [`super::ServerSession`] bounds its peer and what it announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Bounds on the chunk stream (message size, chunk streams, buffered bytes).
    pub chunk_limits: ChunkLimits,
    /// Budget for the AMF values of one command message. Default [`AmfLimits::command`].
    pub command_limits: AmfLimits,
    /// Budget for the AMF values of one data message (metadata). Default
    /// [`AmfLimits::data`].
    pub data_limits: AmfLimits,
    /// Chunk size announced to and used toward the client after `connect`. Default 4096.
    pub chunk_size: u32,
    /// Window acknowledgement size and peer bandwidth announced after `connect`.
    /// Default 2 500 000.
    pub window_ack_size: u32,
    /// Most message streams one connection may create. Default 8.
    pub max_streams: usize,
    /// Whether the application sends E-RTMP reconnect requests
    /// ([`super::ServerSession::request_reconnect`]): `connect`'s answer then announces
    /// the Reconnect capability to clients that announced it. Default false.
    pub reconnect: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_limits: ChunkLimits::default(),
            command_limits: AmfLimits::command(),
            data_limits: AmfLimits::data(),
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            max_streams: 8,
            reconnect: false,
        }
    }
}
