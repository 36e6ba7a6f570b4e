//! RTMP wire formats, sans-IO: handshake, chunk stream, AMF0/AMF3 values and typed
//! message bodies.
//!
//! ```text
//!  bytes --> handshake --> chunk::ChunkDecoder --> RtmpMessage --> message::{ControlMessage,
//!                                                                  UserControl, Command, parse_data}
//!  RtmpMessage bodies <-- message::*::write_body <-- chunk::ChunkEncoder / write_fmt0 --> bytes
//! ```

pub mod amf0;
pub mod amf3;
pub mod chunk;
pub mod handshake;
pub mod message;
pub mod session;
