//! Typed RTMP message bodies (RTMP 1.0 sections 5.4, 6.2 and 7.1): protocol control,
//! user control events, commands, data messages and aggregates.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::rtmp::amf0::{self, Amf0Value, AmfError, AmfLimits};
use crate::rtmp::chunk::RtmpMessage;

/// Message type ids.
pub mod types {
    /// Set Chunk Size (protocol control).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (protocol control).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (protocol control).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (protocol control).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (protocol control).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data.
    pub const AUDIO: u8 = 8;
    /// Video data.
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3.
    pub const DATA_AMF3: u8 = 15;
    /// Shared object message, AMF3.
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command message, AMF3.
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0.
    pub const DATA_AMF0: u8 = 18;
    /// Shared object message, AMF0.
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command message, AMF0.
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message.
    pub const AGGREGATE: u8 = 22;
}

/// User control event types (RTMP 1.0 section 7.1.7).
pub mod events {
    /// Stream Begin.
    pub const STREAM_BEGIN: u16 = 0;
    /// Stream EOF.
    pub const STREAM_EOF: u16 = 1;
    /// Stream Dry.
    pub const STREAM_DRY: u16 = 2;
    /// Set Buffer Length.
    pub const SET_BUFFER_LENGTH: u16 = 3;
    /// Stream Is Recorded.
    pub const STREAM_IS_RECORDED: u16 = 4;
    /// Ping Request.
    pub const PING_REQUEST: u16 = 6;
    /// Ping Response.
    pub const PING_RESPONSE: u16 = 7;
}

/// Why a message body could not be parsed. These are message-scoped: the caller decides
/// whether the connection survives.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MessageError {
    /// The body is shorter than its type requires.
    #[error("message type {type_id}: body of {got} bytes, need {need}")]
    Truncated {
        /// Message type id.
        type_id: u8,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// The function was given a message type it does not parse.
    #[error("message type {type_id} not handled here")]
    UnexpectedType {
        /// Message type id.
        type_id: u8,
    },
    /// A SetChunkSize of 0 or with bit 31 set.
    #[error("invalid chunk size {got}")]
    InvalidChunkSize {
        /// The value sent.
        got: u32,
    },
    /// The AMF payload is malformed or over the limits.
    #[error("AMF: {0}")]
    Amf(#[from] AmfError),
    /// A command whose first value is not a string.
    #[error("command without a name")]
    MissingCommandName,
    /// An aggregate message containing an aggregate message.
    #[error("aggregate message nested in an aggregate message")]
    NestedAggregate,
    /// A sub-message header or body runs past the end of the aggregate.
    #[error("aggregate message truncated at offset {offset}")]
    AggregateTruncated {
        /// Offset of the sub-message that does not fit.
        offset: usize,
    },
}

fn be32(type_id: u8, body: &[u8], at: usize) -> Result<u32, MessageError> {
    body.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(MessageError::Truncated {
            type_id,
            need: at + 4,
            got: body.len(),
        })
}

/// A protocol control message (types 1, 2, 3, 5, 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMessage {
    /// New maximum chunk size of the sender.
    SetChunkSize(u32),
    /// Discard the partial message on this chunk stream id.
    Abort(u32),
    /// Bytes received so far (sequence number).
    Acknowledgement(u32),
    /// Window size after which the peer expects an acknowledgement.
    WindowAckSize(u32),
    /// Limit the peer's output bandwidth.
    SetPeerBandwidth {
        /// Window size.
        size: u32,
        /// 0 hard, 1 soft, 2 dynamic.
        limit_type: u8,
    },
}

impl ControlMessage {
    /// Parses the body of a protocol control message of type `type_id`. Trailing bytes
    /// are ignored.
    pub fn parse(type_id: u8, body: &[u8]) -> Result<Self, MessageError> {
        let v = be32(type_id, body, 0)?;
        Ok(match type_id {
            types::SET_CHUNK_SIZE => {
                if v == 0 || v & 0x8000_0000 != 0 {
                    return Err(MessageError::InvalidChunkSize { got: v });
                }
                ControlMessage::SetChunkSize(v)
            }
            types::ABORT => ControlMessage::Abort(v),
            types::ACKNOWLEDGEMENT => ControlMessage::Acknowledgement(v),
            types::WINDOW_ACK_SIZE => ControlMessage::WindowAckSize(v),
            types::SET_PEER_BANDWIDTH => {
                let limit_type = *body.get(4).ok_or(MessageError::Truncated {
                    type_id,
                    need: 5,
                    got: body.len(),
                })?;
                ControlMessage::SetPeerBandwidth {
                    size: v,
                    limit_type,
                }
            }
            _ => return Err(MessageError::UnexpectedType { type_id }),
        })
    }

    /// The message type id of this message.
    pub fn type_id(&self) -> u8 {
        match self {
            ControlMessage::SetChunkSize(_) => types::SET_CHUNK_SIZE,
            ControlMessage::Abort(_) => types::ABORT,
            ControlMessage::Acknowledgement(_) => types::ACKNOWLEDGEMENT,
            ControlMessage::WindowAckSize(_) => types::WINDOW_ACK_SIZE,
            ControlMessage::SetPeerBandwidth { .. } => types::SET_PEER_BANDWIDTH,
        }
    }

    /// Appends the message body.
    pub fn write_body(&self, out: &mut BytesMut) {
        match *self {
            ControlMessage::SetChunkSize(v)
            | ControlMessage::Abort(v)
            | ControlMessage::Acknowledgement(v)
            | ControlMessage::WindowAckSize(v) => out.put_u32(v),
            ControlMessage::SetPeerBandwidth { size, limit_type } => {
                out.put_u32(size);
                out.put_u8(limit_type);
            }
        }
    }
}

/// A user control message (type 4) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    /// The stream is ready for use.
    StreamBegin(u32),
    /// Playback of the stream is over.
    StreamEof(u32),
    /// No more data on the stream for now.
    StreamDry(u32),
    /// The client's buffer length for a stream.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        millis: u32,
    },
    /// The stream is a recorded stream.
    StreamIsRecorded(u32),
    /// Ping request carrying the server's timestamp.
    PingRequest(u32),
    /// Ping response echoing the request's timestamp.
    PingResponse(u32),
    /// Any other event, body kept as is.
    Other {
        /// Event type.
        event_type: u16,
        /// Event data after the type.
        data: Bytes,
    },
}

impl UserControl {
    /// Parses a user control message body.
    pub fn parse(body: &Bytes) -> Result<Self, MessageError> {
        let t = types::USER_CONTROL;
        let Some(head) = body.get(..2) else {
            return Err(MessageError::Truncated {
                type_id: t,
                need: 2,
                got: body.len(),
            });
        };
        let event_type = u16::from_be_bytes([head[0], head[1]]);
        Ok(match event_type {
            events::STREAM_BEGIN => UserControl::StreamBegin(be32(t, body, 2)?),
            events::STREAM_EOF => UserControl::StreamEof(be32(t, body, 2)?),
            events::STREAM_DRY => UserControl::StreamDry(be32(t, body, 2)?),
            events::SET_BUFFER_LENGTH => UserControl::SetBufferLength {
                stream_id: be32(t, body, 2)?,
                millis: be32(t, body, 6)?,
            },
            events::STREAM_IS_RECORDED => UserControl::StreamIsRecorded(be32(t, body, 2)?),
            events::PING_REQUEST => UserControl::PingRequest(be32(t, body, 2)?),
            events::PING_RESPONSE => UserControl::PingResponse(be32(t, body, 2)?),
            _ => UserControl::Other {
                event_type,
                data: body.slice(2..),
            },
        })
    }

    /// Appends the message body.
    pub fn write_body(&self, out: &mut BytesMut) {
        match self {
            UserControl::StreamBegin(v) => put_event(out, events::STREAM_BEGIN, *v),
            UserControl::StreamEof(v) => put_event(out, events::STREAM_EOF, *v),
            UserControl::StreamDry(v) => put_event(out, events::STREAM_DRY, *v),
            UserControl::SetBufferLength { stream_id, millis } => {
                put_event(out, events::SET_BUFFER_LENGTH, *stream_id);
                out.put_u32(*millis);
            }
            UserControl::StreamIsRecorded(v) => put_event(out, events::STREAM_IS_RECORDED, *v),
            UserControl::PingRequest(v) => put_event(out, events::PING_REQUEST, *v),
            UserControl::PingResponse(v) => put_event(out, events::PING_RESPONSE, *v),
            UserControl::Other { event_type, data } => {
                out.put_u16(*event_type);
                out.put_slice(data);
            }
        }
    }
}

fn put_event(out: &mut BytesMut, event: u16, v: u32) {
    out.put_u16(event);
    out.put_u32(v);
}

/// A command message (type 20, or 17 for AMF3 clients).
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Command name ("connect", "publish", "_result", ...).
    pub name: String,
    /// Transaction id.
    pub transaction_id: f64,
    /// Command object (Null when the command has none).
    pub object: Amf0Value,
    /// Further arguments.
    pub args: Vec<Amf0Value>,
}

/// Decodes the AMF values of a type 15/17/18/20 body. AMF3-flavoured types start with a
/// format byte 0x00 that is skipped (values then follow in AMF0, with the avmplus marker
/// switching single values to AMF3); AMF3 values that AMF0 can express are converted, so
/// callers see one shape for both flavours.
fn decode_values(
    type_id: u8,
    amf3_type: u8,
    amf0_type: u8,
    body: &[u8],
    limits: &AmfLimits,
) -> Result<Vec<Amf0Value>, MessageError> {
    let body = if type_id == amf3_type {
        // The first value is always a string (marker 0x02), so a leading 0x00 can only be
        // the format selector.
        match body.first() {
            Some(0) => &body[1..],
            _ => body,
        }
    } else if type_id == amf0_type {
        body
    } else {
        return Err(MessageError::UnexpectedType { type_id });
    };
    let mut values = amf0::decode_all(body, limits)?;
    if type_id == amf3_type {
        for v in &mut values {
            if let Amf0Value::Avmplus(inner) = v {
                *v = inner.to_amf0();
            }
        }
    }
    Ok(values)
}

/// The `code` of an E-RTMP reconnect request (`onStatus` on message stream 0).
pub const RECONNECT_REQUEST: &str = "NetConnection.Connect.ReconnectRequest";

impl Command {
    /// Parses a command body (type 20, or 17). A missing transaction id reads as 0 and a
    /// missing command object as Null.
    pub fn parse(type_id: u8, body: &[u8], limits: &AmfLimits) -> Result<Self, MessageError> {
        let values = decode_values(
            type_id,
            types::COMMAND_AMF3,
            types::COMMAND_AMF0,
            body,
            limits,
        )?;
        let mut it = values.into_iter();
        let name = match it.next() {
            Some(Amf0Value::String(s)) | Some(Amf0Value::LongString(s)) => s,
            _ => return Err(MessageError::MissingCommandName),
        };
        let transaction_id = it.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let object = it.next().unwrap_or(Amf0Value::Null);
        Ok(Command {
            name,
            transaction_id,
            object,
            args: it.collect(),
        })
    }

    /// Appends the command as an AMF0 (type 20) body.
    pub fn write_body(&self, out: &mut BytesMut) {
        amf0::encode(&Amf0Value::String(self.name.clone()), out);
        amf0::encode(&Amf0Value::Number(self.transaction_id), out);
        amf0::encode(&self.object, out);
        for a in &self.args {
            amf0::encode(a, out);
        }
    }

    /// An `onStatus` command (transaction id 0, Null command object) whose info object
    /// has `level`, `code` and `description`.
    pub fn on_status(level: &str, code: &str, description: &str) -> Command {
        Command {
            name: "onStatus".to_owned(),
            transaction_id: 0.0,
            object: Amf0Value::Null,
            args: vec![Amf0Value::object([
                ("level", Amf0Value::String(level.to_owned())),
                ("code", Amf0Value::String(code.to_owned())),
                ("description", Amf0Value::String(description.to_owned())),
            ])],
        }
    }

    /// An E-RTMP `onStatus` `NetConnection.Connect.ReconnectRequest` (level `status`, for
    /// message stream 0), with `tcUrl` in the info object when the client is to reconnect
    /// elsewhere and `description` when one is given.
    pub fn reconnect_request(tc_url: Option<&str>, description: Option<&str>) -> Command {
        let s = |v: &str| Amf0Value::String(v.to_owned());
        let mut info = vec![
            ("level".to_owned(), s("status")),
            ("code".to_owned(), s(RECONNECT_REQUEST)),
        ];
        if let Some(d) = description {
            info.push(("description".to_owned(), s(d)));
        }
        if let Some(url) = tc_url {
            info.push(("tcUrl".to_owned(), s(url)));
        }
        Command {
            name: "onStatus".to_owned(),
            transaction_id: 0.0,
            object: Amf0Value::Null,
            args: vec![Amf0Value::Object(info)],
        }
    }
}

/// Parses the values of a data message (type 18, or 15), e.g. `@setDataFrame`,
/// `onMetaData`, {...}.
pub fn parse_data(
    type_id: u8,
    body: &[u8],
    limits: &AmfLimits,
) -> Result<Vec<Amf0Value>, MessageError> {
    decode_values(type_id, types::DATA_AMF3, types::DATA_AMF0, body, limits)
}

/// Length of a sub-message header in an aggregate (an FLV tag header).
const SUB_HEADER: usize = 11;

/// Splits an aggregate message (type 22) into its sub-messages (type, timestamp adjusted
/// per spec, body as Bytes slice).
///
/// Each sub-message is an FLV tag: an 11-byte header, the body and a 4-byte back pointer.
/// Timestamps are shifted so that the first sub-message has the aggregate's timestamp.
/// Sub-messages keep the aggregate's chunk stream and message stream ids.
pub fn parse_aggregate(msg: &RtmpMessage, out: &mut Vec<RtmpMessage>) -> Result<(), MessageError> {
    if msg.type_id != types::AGGREGATE {
        return Err(MessageError::UnexpectedType {
            type_id: msg.type_id,
        });
    }
    let p = &msg.payload;
    let mut offset = 0usize;
    let mut shift: Option<u32> = None;
    while offset < p.len() {
        let Some(h) = p.get(offset..offset + SUB_HEADER) else {
            return Err(MessageError::AggregateTruncated { offset });
        };
        let type_id = h[0];
        if type_id == types::AGGREGATE {
            return Err(MessageError::NestedAggregate);
        }
        let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let body_start = offset + SUB_HEADER;
        let body_end = body_start + size;
        if body_end + 4 > p.len() {
            return Err(MessageError::AggregateTruncated { offset });
        }
        let shift = *shift.get_or_insert(msg.timestamp.wrapping_sub(ts));
        out.push(RtmpMessage {
            csid: msg.csid,
            timestamp: ts.wrapping_add(shift),
            type_id,
            stream_id: msg.stream_id,
            payload: p.slice(body_start..body_end),
        });
        offset = body_end + 4;
    }
    Ok(())
}
