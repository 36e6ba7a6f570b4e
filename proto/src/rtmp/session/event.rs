//! What the session reports to the application.

use std::fmt;

use bytes::Bytes;

use crate::rtmp::handshake::HandshakeKind;

/// A message stream id, as returned by `createStream` (0 is the connection's own stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageStreamId(pub u32);

impl fmt::Display for MessageStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The `type` argument of `publish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishType {
    /// `live` (also what an absent or unknown type means).
    Live,
    /// `record`.
    Record,
    /// `append`.
    Append,
}

impl PublishType {
    pub(super) fn from_arg(s: Option<&str>) -> Self {
        match s {
            Some("record") => PublishType::Record,
            Some("append") => PublishType::Append,
            _ => PublishType::Live,
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Message type 8: an FLV audio tag body.
    Audio,
    /// Message type 9: an FLV video tag body.
    Video,
}

/// Why a publishing stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpublishReason {
    /// The client sent `FCUnpublish`.
    FcUnpublish,
    /// The client sent `closeStream`.
    CloseStream,
    /// The client sent `deleteStream`.
    DeleteStream,
}

impl UnpublishReason {
    /// A short name for logs and `EndOfStream` reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            UnpublishReason::FcUnpublish => "FCUnpublish",
            UnpublishReason::CloseStream => "closeStream",
            UnpublishReason::DeleteStream => "deleteStream",
        }
    }
}

/// The interesting parts of a `connect` command.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectInfo {
    /// The `app` property without any `?query`.
    pub app: String,
    /// The `?query` of the `app` property, without the `?` (OBS sends the server URL's
    /// query there: `rtmp://host/live?token=X` gives app `live?token=X`).
    pub app_query: Option<String>,
    /// The `tcUrl` property, if sent.
    pub tc_url: Option<String>,
    /// The `flashVer` property, if sent.
    pub flash_ver: Option<String>,
    /// The `objectEncoding` property (0 when absent).
    pub object_encoding: f64,
    /// The E-RTMP `capsEx` bits the client announced (`CAPS_EX_*`; 0 for a legacy client).
    pub caps_ex: u32,
    /// The codecs the client announced (`fourCcList`, `videoFourCcInfoMap`,
    /// `audioFourCcInfoMap`).
    pub announced: super::Announced,
}

/// A `publish` command waiting for [`super::ServerSession::accept_publish`] or
/// [`super::ServerSession::reject_publish`].
#[derive(Debug, Clone, PartialEq)]
pub struct PublishRequest {
    /// The message stream it came on.
    pub stream_id: MessageStreamId,
    /// The app from `connect`.
    pub app: String,
    /// The stream name without any `?query`.
    pub name: String,
    /// The `?query` part of the name, without the `?`.
    pub query: Option<String>,
    /// The publishing type.
    pub kind: PublishType,
}

/// A `play` command waiting for [`super::ServerSession::accept_play`] or
/// [`super::ServerSession::reject_play`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlayRequest {
    /// The message stream it came on.
    pub stream_id: MessageStreamId,
    /// The app from `connect`.
    pub app: String,
    /// The stream name without any `?query`.
    pub name: String,
    /// The `?query` part of the name, without the `?`.
    pub query: Option<String>,
    /// `start`: -2 live or recorded (default), -1 live only, >= 0 recorded from there.
    pub start: f64,
    /// `duration`: -1 until the end (default).
    pub duration: f64,
    /// `reset` (default true).
    pub reset: bool,
    /// Transaction id of the command.
    pub transaction_id: f64,
}

/// One audio or video message of a publishing stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// The publishing message stream.
    pub stream_id: MessageStreamId,
    /// Audio or video.
    pub kind: MediaKind,
    /// RTMP timestamp in milliseconds (32 bits, wrapping).
    pub timestamp: u32,
    /// The FLV tag body, sliced out of the input without copying.
    pub payload: Bytes,
}

/// Something the application must see or decide on, from
/// [`super::ServerSession::poll_event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The handshake is complete.
    HandshakeDone {
        /// Which handshake the client used.
        kind: HandshakeKind,
    },
    /// `connect` was answered with success.
    Connected(ConnectInfo),
    /// `connect` was refused as asked by [`super::ServerSession::refuse_connect`]; the
    /// `_error` is queued for transmission and the connection should be closed after it.
    ConnectRejected {
        /// The description sent to the client.
        description: String,
    },
    /// A client asks to publish; answer with `accept_publish` or `reject_publish`. Input is
    /// not processed until then.
    PublishRequest(PublishRequest),
    /// Stream metadata (`@setDataFrame` or a bare `onMetaData`).
    Metadata {
        /// The publishing message stream.
        stream_id: MessageStreamId,
        /// RTMP timestamp of the data message.
        timestamp: u32,
        /// AMF0 values after the `@setDataFrame` string: `"onMetaData"` and its object or
        /// ECMA array. Sliced out of the input when the client sent AMF0.
        data: Bytes,
    },
    /// A data message of a publishing stream other than its metadata (`onCuePoint`,
    /// `onTextData`, `onCaptionInfo`, `@clearDataFrame`, ...).
    Data {
        /// The publishing message stream.
        stream_id: MessageStreamId,
        /// RTMP timestamp of the data message.
        timestamp: u32,
        /// AMF0 values, handler name first, without a `@setDataFrame` in front. Sliced
        /// out of the input when the client sent AMF0.
        data: Bytes,
    },
    /// Audio or video of a publishing stream.
    Media(Media),
    /// A publishing stream ended.
    Unpublished {
        /// The message stream that stopped publishing.
        stream_id: MessageStreamId,
        /// Which command ended it.
        reason: UnpublishReason,
    },
    /// The session refused a command itself and answered it with an error `onStatus`
    /// (a `publish` or `play` without a stream key, a second publish on one connection):
    /// a client mistake, for the application to log. The connection stays open.
    Refused {
        /// The message stream the command came on.
        stream_id: MessageStreamId,
        /// `publish` or `play`.
        command: &'static str,
        /// The `onStatus` code sent.
        code: &'static str,
        /// The `onStatus` description sent.
        description: String,
    },
    /// A client asks to play; answer with `accept_play` or `reject_play`. Input is not
    /// processed after the `play` command, so the bytes that follow it stay in the input
    /// buffer for whoever serves the player.
    PlayRequest(PlayRequest),
}

/// Splits `name?query` into the name and the query.
pub(super) fn split_query(s: &str) -> (String, Option<String>) {
    match s.split_once('?') {
        Some((n, q)) => (n.to_owned(), Some(q.to_owned())),
        None => (s.to_owned(), None),
    }
}
