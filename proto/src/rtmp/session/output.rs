//! What both session sides share on the way out (a chunk encoder, the pending bytes, a
//! scratch body) and the metadata extraction both apply on the way in.

use bytes::{Bytes, BytesMut};

use crate::rtmp::amf0::{self, AmfLimits};
use crate::rtmp::chunk::{ChunkEncoder, RtmpMessage};
use crate::rtmp::message::{parse_data, types, Command, ControlMessage, MessageError, UserControl};

/// Chunk stream of protocol and user control messages.
pub(super) const CSID_CONTROL: u32 = 2;
/// Chunk stream of commands.
pub(super) const CSID_COMMAND: u32 = 3;

/// Serializes messages toward the peer into one pending buffer.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) encoder: ChunkEncoder,
    pub(super) bytes: BytesMut,
    scratch: BytesMut,
}

impl Output {
    pub(super) fn new() -> Output {
        Output {
            encoder: ChunkEncoder::new(),
            bytes: BytesMut::new(),
            scratch: BytesMut::new(),
        }
    }

    pub(super) fn message(&mut self, csid: u32, ts: u32, type_id: u8, stream_id: u32, body: &[u8]) {
        self.encoder
            .write(csid, ts, type_id, stream_id, body, &mut self.bytes);
    }

    fn scratch_message(&mut self, csid: u32, type_id: u8, stream_id: u32) {
        self.encoder
            .write(csid, 0, type_id, stream_id, &self.scratch, &mut self.bytes);
    }

    pub(super) fn control(&mut self, m: &ControlMessage) {
        self.scratch.clear();
        m.write_body(&mut self.scratch);
        self.scratch_message(CSID_CONTROL, m.type_id(), 0);
    }

    pub(super) fn user_control(&mut self, m: &UserControl) {
        self.scratch.clear();
        m.write_body(&mut self.scratch);
        self.scratch_message(CSID_CONTROL, types::USER_CONTROL, 0);
    }

    pub(super) fn command(&mut self, stream_id: u32, cmd: &Command) {
        self.scratch.clear();
        cmd.write_body(&mut self.scratch);
        self.scratch_message(CSID_COMMAND, types::COMMAND_AMF0, stream_id);
    }

    /// Moves the pending bytes to the end of `out`.
    pub(super) fn take(&mut self, out: &mut BytesMut) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.bytes);
        } else {
            out.extend_from_slice(&self.bytes);
            self.bytes.clear();
        }
    }
}

/// A data message of a stream, sorted for the application.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum DataMessage {
    /// `onMetaData` (`@setDataFrame` wrapped or bare): its AMF0 values `"onMetaData"` and
    /// the object.
    Metadata(Bytes),
    /// Any other handler (`onCuePoint`, `onTextData`, `@clearDataFrame`, ...): its AMF0
    /// values, handler name first, without a `@setDataFrame` in front.
    Other(Bytes),
}

/// Sorts a data message and returns its AMF0 values past any `@setDataFrame`, sliced out
/// of the message when it is AMF0. `None` for a message without a handler name.
pub(super) fn data_message(
    msg: &RtmpMessage,
    limits: &AmfLimits,
) -> Result<Option<DataMessage>, MessageError> {
    let values = parse_data(msg.type_id, &msg.payload, limits)?;
    let skip = match values.first().and_then(|v| v.as_str()) {
        Some("@setDataFrame") => 1,
        Some(_) => 0,
        None => return Ok(None),
    };
    let Some(name) = values.get(skip).and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let is_metadata = name == "onMetaData";
    let bytes = if msg.type_id == types::DATA_AMF0 {
        // Slice after the leading string (or long string), whose length is known.
        let at = match (skip, msg.payload.first()) {
            (0, _) => 0,
            (_, Some(0x0C)) => 5 + values[0].as_str().map_or(0, str::len),
            _ => 3 + values[0].as_str().map_or(0, str::len),
        };
        msg.payload.slice(at.min(msg.payload.len())..)
    } else {
        // AMF3 flavoured: re-encode what parse_data converted to AMF0.
        let mut out = BytesMut::new();
        for v in &values[skip..] {
            amf0::encode(v, &mut out);
        }
        out.freeze()
    };
    Ok(Some(if is_metadata {
        DataMessage::Metadata(bytes)
    } else {
        DataMessage::Other(bytes)
    }))
}
