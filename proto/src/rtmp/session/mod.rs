//! Both sides of an RTMP connection as sans-IO state machines. [`ClientSession`] is the
//! client (relays, load tools: connect, publish or play). On the server side,
//! [`ServerSession`] runs a connection from the handshake through the
//! NetConnection/NetStream commands of publishers and players, up to the point where a
//! publisher streams or a player is handed over; [`PlayerHandoff`] is the state that
//! crosses processes then (the framed format carries it), and [`PlayerSession`]
//! continues the player from it in the hub. The rest of this page is about
//! [`ServerSession`].
//!
//! ```text
//!  socket bytes --> handle_input --> [handshake | chunk decoder --> message --> command]
//!                                                                       |
//!  socket <-- poll_transmit <-- chunk encoder <-- replies, control      v
//!                                                 poll_event: Connected, PublishRequest,
//!   accept_publish / reject_publish  ------->     Media, Metadata, Unpublished,
//!   accept_play / reject_play / into_player_state PlayRequest
//! ```
//!
//! # Driving a session
//!
//! [`ServerSession`] methods come in four groups, as in quinn-proto: getters
//! (`is_handshaking`, `is_paused`, `connect_info`, `bytes_received`), the input
//! `handle_input`, mutators for the application's decisions (`accept_publish`,
//! `reject_publish`, `accept_play`, `reject_play`, `send_status`), and the outputs
//! `poll_event` and `poll_transmit`. After every `handle_input`:
//!
//! 1. drain [`ServerSession::poll_event`] until it returns `None`, acting on each event
//!    (a publish or play request may be decided later: input is paused until then);
//! 2. call [`ServerSession::poll_transmit`] and write everything it produced;
//! 3. read more bytes, unless [`ServerSession::is_paused`], and feed them.
//!
//! After a decision, call `poll_transmit` again, then `handle_input` with the bytes
//! already buffered (a paused session left them there). When `handle_input` fails, call
//! `poll_transmit` once more (the reply explaining the failure may be in it), write it,
//! and close.
//!
//! The session reads no clock: handshake and idle timeouts belong to the driver.

mod caps;
mod client;
mod commands;
mod config;
mod error;
mod event;
mod handoff;
mod output;
mod player;
mod server;

pub use caps::{
    Announced, FourCcSet, Needs, PlayerCaps, AUDIO_FOURCCS, CAPS_EX_MODEX, CAPS_EX_MULTITRACK,
    CAPS_EX_NANO_OFFSET, CAPS_EX_RECONNECT, VIDEO_FOURCCS,
};
pub use client::{
    ClientConfig, ClientEvent, ClientMode, ClientRequest, ClientSession, RtmpUrl, ServerCaps,
    Status,
};
pub use config::SessionConfig;
pub use error::{ClientError, SessionError};
pub use event::{
    ConnectInfo, Media, MediaKind, MessageStreamId, PlayRequest, PublishRequest, PublishType,
    SessionEvent, UnpublishReason,
};
pub use handoff::PlayerHandoff;
pub use player::{CloseReason, PlayerConfig, PlayerError, PlayerEvent, PlayerSession};
pub use server::ServerSession;

use event::split_query;
