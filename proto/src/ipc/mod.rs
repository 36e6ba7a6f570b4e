//! The framed format every process speaks on UDS connections and pipes (FORMAT.md).

mod codec;
mod event_id;
mod header;
mod peer_name;

pub use codec::{
    check_hello, encode, encode_frame, encode_header, encode_player_subscription,
    encode_subscription, header_bytes, FrameDecoder, IpcError, Message, DEFAULT_MAX_HEADER,
    DEFAULT_MAX_PAYLOAD, PREFIX_LEN,
};
pub use event_id::EventId;
pub use header::{
    Event, Header, PlayerProtocol, RejectReason, Role, SidePacket, FORMAT_VERSION, KNOWN_HEADERS,
};
pub use peer_name::{hello_conn_id, hello_name};
