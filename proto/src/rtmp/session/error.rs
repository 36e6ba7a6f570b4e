//! Errors of the server session. Every variant is connection-scoped: the driver sends what
//! [`super::ServerSession::poll_transmit`] still has (the `_error`/onStatus that explains
//! the failure) and closes the connection.

use thiserror::Error;

use crate::rtmp::chunk::ChunkError;
use crate::rtmp::handshake::HandshakeError;
use crate::rtmp::message::MessageError;

/// Why a session ended.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SessionError {
    /// The handshake failed.
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    /// The chunk stream is corrupt or over a limit.
    #[error("{0}")]
    Chunk(#[from] ChunkError),
    /// A message body could not be parsed.
    #[error("message type {type_id}: {source}")]
    Message {
        /// Message type id.
        type_id: u8,
        /// What was wrong with it.
        source: MessageError,
    },
    /// A command other than `connect` arrived before `connect`.
    #[error("command {command:?} before connect")]
    NotConnected {
        /// The command name.
        command: String,
    },
    /// A stream command on a message stream that createStream never returned.
    #[error("command {command:?} on message stream {stream_id}, which was never created")]
    UnknownMessageStream {
        /// The command name.
        command: String,
        /// The message stream id it came on.
        stream_id: u32,
    },
    /// More `createStream` calls than the configured number of message streams.
    #[error("createStream flood: more than {max} streams on one connection")]
    TooManyStreams {
        /// The configured limit.
        max: usize,
    },
    /// `play` on a connection that publishes.
    #[error("play on a connection that publishes")]
    PlayOnPublisher,
    /// `publish` on a connection that plays.
    #[error("publish on a connection that plays")]
    PublishOnPlayer,
    /// Audio or video on a connection that plays.
    #[error("media (message type {type_id}) from a player")]
    MediaFromPlayer {
        /// Message type id (8 audio, 9 video).
        type_id: u8,
    },
    /// Audio or video on a message stream that is not publishing.
    #[error("media (message type {type_id}) on message stream {stream_id} before publish")]
    MediaBeforePublish {
        /// Message type id (8 audio, 9 video).
        type_id: u8,
        /// The message stream id it came on.
        stream_id: u32,
    },
    /// [`super::ServerSession::into_player_state`] called when the session is not a
    /// player whose play was accepted, or with a message half received.
    #[error("cannot hand the player over: {reason}")]
    NotHandoffReady {
        /// What is missing.
        reason: &'static str,
    },
}

impl SessionError {
    /// The protocol layer that failed, for logs: `handshake`, `chunk`, `amf`, `message`
    /// or `command`.
    pub fn layer(&self) -> &'static str {
        match self {
            SessionError::Handshake(_) => "handshake",
            SessionError::Chunk(_) => "chunk",
            SessionError::Message {
                source: MessageError::Amf(_),
                ..
            } => "amf",
            SessionError::Message { .. } => "message",
            SessionError::NotConnected { .. }
            | SessionError::UnknownMessageStream { .. }
            | SessionError::TooManyStreams { .. }
            | SessionError::PlayOnPublisher
            | SessionError::PublishOnPlayer
            | SessionError::NotHandoffReady { .. } => "command",
            SessionError::MediaFromPlayer { .. } | SessionError::MediaBeforePublish { .. } => {
                "media"
            }
        }
    }
}

/// Why a client session ended. Connection-scoped: the driver closes the connection.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClientError {
    /// The handshake failed.
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    /// The server's chunk stream is corrupt or over a limit.
    #[error("{0}")]
    Chunk(#[from] ChunkError),
    /// A message body from the server could not be parsed.
    #[error("message type {type_id}: {source}")]
    Message {
        /// Message type id.
        type_id: u8,
        /// What was wrong with it.
        source: MessageError,
    },
    /// The server refused a command (`_error`, or an `onStatus` of level `error`).
    #[error("{command} refused: {code} ({description})")]
    Rejected {
        /// The command refused: `connect`, `createStream`, `publish`, `play` or `close`
        /// (the server sent `close`).
        command: &'static str,
        /// The status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// The server's description.
        description: String,
    },
    /// The server answered a command with something unusable.
    #[error("bad answer to {command}: {what}")]
    BadAnswer {
        /// The command.
        command: &'static str,
        /// What was wrong.
        what: &'static str,
    },
    /// Media or metadata offered before the server started the publish.
    #[error("not publishing")]
    NotPublishing,
}

impl ClientError {
    /// The protocol layer that failed, for logs: `handshake`, `chunk`, `amf`, `message`
    /// or `command`.
    pub fn layer(&self) -> &'static str {
        match self {
            ClientError::Handshake(_) => "handshake",
            ClientError::Chunk(_) => "chunk",
            ClientError::Message {
                source: MessageError::Amf(_),
                ..
            } => "amf",
            ClientError::Message { .. } => "message",
            ClientError::Rejected { .. }
            | ClientError::BadAnswer { .. }
            | ClientError::NotPublishing => "command",
        }
    }
}
