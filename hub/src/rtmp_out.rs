//! Building RTMP output bytes: media entries once per frame for every player, and the
//! small per-player control, command and data messages.
//!
//! Media is always written as one FMT 0 chunk plus FMT 3 continuations
//! ([`proto::rtmp::chunk::write_fmt0`]), so its bytes depend only on the message stream
//! id, the chunk size and the frame; frames and sequence headers become a [`Wire`], which
//! leaves the payload of a message longer than a chunk where it is. The shared bytes use [`SHARED_STREAM_ID`]; a player
//! on another message stream id gets the same bytes with the first header rewritten
//! ([`rewrite_stream_id`]), because FMT 3 continuations do not carry the stream id.

use bytes::{BufMut, Bytes, BytesMut};
use proto::flv::{write_media_header, PacketKind, TAG_AUDIO, TAG_VIDEO};
use proto::media::{Codec, Frame};
use proto::rtmp::amf0::{self, Amf0Value};
use proto::rtmp::chunk::write_fmt0;
use proto::rtmp::message::{types, Command, ControlMessage, UserControl};

use crate::wire::{Built, Wire};

/// Chunk stream of protocol control and user control messages.
pub const CSID_CONTROL: u32 = 2;
/// Chunk stream of commands (onStatus).
pub const CSID_COMMAND: u32 = 3;
/// Chunk stream of audio.
pub const CSID_AUDIO: u32 = 4;
/// Chunk stream of data messages (onMetaData).
pub const CSID_DATA: u32 = 5;
/// Chunk stream of video.
pub const CSID_VIDEO: u32 = 6;
/// The message stream id the shared bytes are built for (what createStream returns first).
pub const SHARED_STREAM_ID: u32 = 1;

/// Serializes the media messages of one stream, reusing one scratch buffer for bodies.
#[derive(Debug)]
pub struct MediaWriter {
    chunk_size: u32,
    body: BytesMut,
    /// Where frames' chunk headers (and one-chunk messages) are written and split off.
    wire: BytesMut,
}

impl MediaWriter {
    /// A writer chunking at `chunk_size`.
    pub fn new(chunk_size: u32) -> MediaWriter {
        MediaWriter {
            chunk_size,
            body: BytesMut::new(),
            wire: BytesMut::new(),
        }
    }

    fn finish(&mut self, csid: u32, ts: u32, type_id: u8, stream_id: u32) -> Bytes {
        let len = self.body.len();
        let chunks = len / self.chunk_size.max(1) as usize;
        let mut out = BytesMut::with_capacity(len + 16 + chunks * 5);
        write_fmt0(
            csid,
            ts,
            type_id,
            stream_id,
            &self.body,
            self.chunk_size,
            &mut out,
        );
        self.body.clear();
        out.freeze()
    }

    /// A coded frame of `codec` as an audio or video message at RTMP time `ts`; `cts_ms`
    /// is its composition offset converted to milliseconds.
    pub fn frame(
        &mut self,
        codec: Codec,
        frame: &Frame,
        ts: u32,
        cts_ms: i32,
        stream_id: u32,
    ) -> Built {
        self.frame_offset(codec, frame, ts, cts_ms, 0, stream_id)
    }

    /// As [`MediaWriter::frame`], with a nanosecond presentation offset (`nanos` > 0
    /// writes an E-RTMP ModEx TimestampOffsetNano).
    pub fn frame_offset(
        &mut self,
        codec: Codec,
        frame: &Frame,
        ts: u32,
        cts_ms: i32,
        nanos: u32,
        stream_id: u32,
    ) -> Built {
        self.media(
            codec,
            frame.track,
            Self::frame_kind(frame, cts_ms),
            nanos,
            &frame.payload,
            ts,
            stream_id,
        )
    }

    /// The packet kind `frame` goes out as, with its composition offset `cts_ms`.
    pub fn frame_kind(frame: &Frame, cts_ms: i32) -> PacketKind {
        PacketKind::Frame {
            keyframe: frame.flags.keyframe(),
            disposable: frame.flags.disposable(),
            cts: cts_ms,
        }
    }

    /// A decoder configuration (sequence header) message.
    pub fn config(
        &mut self,
        codec: Codec,
        track: u8,
        payload: &Bytes,
        ts: u32,
        stream_id: u32,
    ) -> Built {
        self.media(codec, track, PacketKind::Config, 0, payload, ts, stream_id)
    }

    /// The FLV tag body (E-RTMP header and payload) of a packet of `codec` on `track`,
    /// for the messages that are not frames (video metadata, channel configuration,
    /// end of sequence); with [`MediaWriter::tag`] it becomes the RTMP message.
    pub fn tag_body(codec: Codec, track: u8, kind: PacketKind, payload: &Bytes) -> Bytes {
        let mut body = BytesMut::with_capacity(payload.len() + 16);
        let rest = write_media_header(codec, track, kind, 0, payload, &mut body);
        body.extend_from_slice(&rest);
        body.freeze()
    }

    /// An audio, video or data message whose body is `body` (an FLV tag body; its type
    /// is the FLV tag type, which RTMP shares).
    pub fn tag(&mut self, tag_type: u8, body: &[u8], ts: u32, stream_id: u32) -> Bytes {
        self.body.extend_from_slice(body);
        let csid = match tag_type {
            TAG_AUDIO => CSID_AUDIO,
            TAG_VIDEO => CSID_VIDEO,
            _ => CSID_DATA,
        };
        self.finish(csid, ts, tag_type, stream_id)
    }

    #[allow(clippy::too_many_arguments)]
    fn media(
        &mut self,
        codec: Codec,
        track: u8,
        kind: PacketKind,
        nanos: u32,
        payload: &Bytes,
        ts: u32,
        stream_id: u32,
    ) -> Built {
        let video = codec.kind() == proto::media::TrackKind::Video;
        let rest = write_media_header(codec, track, kind, nanos, payload, &mut self.body);
        let (csid, type_id) = if video {
            (CSID_VIDEO, types::VIDEO)
        } else {
            (CSID_AUDIO, types::AUDIO)
        };
        let skip = payload.len() - rest.len();
        let built = Wire::build(
            (csid, ts, type_id, stream_id),
            &self.body,
            payload,
            skip,
            self.chunk_size,
            &mut self.wire,
        );
        self.body.clear();
        built
    }

    /// An `onMetaData` data message; `payload` holds the AMF0 values as published.
    pub fn metadata(&mut self, payload: &[u8], ts: u32, stream_id: u32) -> Bytes {
        self.body.extend_from_slice(payload);
        self.finish(CSID_DATA, ts, types::DATA_AMF0, stream_id)
    }
}

/// Length of the FMT 0 header (basic header for csid < 64, 11-byte message header) at the
/// start of every shared entry.
pub const FMT0_HEADER_LEN: usize = 12;

/// Copies the first chunk header of `shared` into `hdr` with the message stream id
/// replaced, and returns the rest of `shared` (sliced, not copied). `None` if `shared` is
/// shorter than a header.
pub fn rewrite_stream_id(shared: &Bytes, stream_id: u32, hdr: &mut BytesMut) -> Option<Bytes> {
    let head = shared.get(..FMT0_HEADER_LEN)?;
    hdr.extend_from_slice(&head[..8]);
    hdr.put_u32_le(stream_id);
    Some(shared.slice(FMT0_HEADER_LEN..))
}

/// Appends a protocol control message (chunk stream 2, message stream 0).
pub fn control(msg: ControlMessage, chunk_size: u32, out: &mut BytesMut) {
    let mut body = BytesMut::with_capacity(8);
    msg.write_body(&mut body);
    write_fmt0(CSID_CONTROL, 0, msg.type_id(), 0, &body, chunk_size, out);
}

/// Appends a user control message (chunk stream 2, message stream 0).
pub fn user_control(msg: UserControl, chunk_size: u32, out: &mut BytesMut) {
    let mut body = BytesMut::with_capacity(16);
    msg.write_body(&mut body);
    write_fmt0(
        CSID_CONTROL,
        0,
        types::USER_CONTROL,
        0,
        &body,
        chunk_size,
        out,
    );
}

/// Appends an `onStatus` command on `stream_id`.
pub fn on_status(
    level: &str,
    code: &str,
    description: &str,
    stream_id: u32,
    chunk_size: u32,
    out: &mut BytesMut,
) {
    let mut body = BytesMut::with_capacity(128);
    Command::on_status(level, code, description).write_body(&mut body);
    write_fmt0(
        CSID_COMMAND,
        0,
        types::COMMAND_AMF0,
        stream_id,
        &body,
        chunk_size,
        out,
    );
}

/// Appends the `|RtmpSampleAccess` data message (audio and video sample access allowed).
pub fn sample_access(stream_id: u32, chunk_size: u32, out: &mut BytesMut) {
    let mut body = BytesMut::with_capacity(32);
    amf0::encode(&Amf0Value::String("|RtmpSampleAccess".into()), &mut body);
    amf0::encode(&Amf0Value::Boolean(true), &mut body);
    amf0::encode(&Amf0Value::Boolean(true), &mut body);
    write_fmt0(
        CSID_DATA,
        0,
        types::DATA_AMF0,
        stream_id,
        &body,
        chunk_size,
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_avc_frame_two_chunks() {
        let mut w = MediaWriter::new(8);
        // An AVC inter frame, cts 0, one 5-byte NAL unit (length-prefixed: 9 bytes).
        let nalu = [0, 0, 0, 5, 0x41, 0x9a, 0x02, 0x04, 0x11];
        let frame = Frame {
            track: 0,
            kind: proto::media::TrackKind::Video,
            dts: 0,
            cts: 0,
            flags: proto::media::FrameFlags::NONE,
            payload: Bytes::copy_from_slice(&nalu),
        };
        let built = w.frame(Codec::H264, &frame, 0x10203, 0, 1);
        let b = Bytes::from(built.wire.to_vec());
        // The wire holds the chunk headers; the payload stays in the frame's buffer.
        assert_eq!(built.wire.own_bytes(), 12 + 5 + 1);
        assert_eq!(built.payload.as_ptr(), frame.payload.as_ptr());
        // Legacy AVC tag header: 0x27 (inter, AVC), packet type 1, cts 0 (3 bytes).
        let expected: &[u8] = &[
            0x06, // FMT 0, csid 6
            0x01, 0x02, 0x03, // timestamp
            0x00, 0x00, 14,   // length: 5 header + 9 payload
            0x09, // video
            0x01, 0x00, 0x00, 0x00, // message stream id 1, little endian
            0x27, 0x01, 0x00, 0x00, 0x00, 0, 0, 0,    // first 8 bytes of the body
            0xC6, // FMT 3, csid 6
            5, 0x41, 0x9a, 0x02, 0x04, 0x11,
        ];
        assert_eq!(&b[..], expected);

        let mut hdr = BytesMut::new();
        let rest = rewrite_stream_id(&b, 3, &mut hdr).unwrap();
        assert_eq!(&hdr[..], &[0x06, 1, 2, 3, 0, 0, 14, 9, 3, 0, 0, 0]);
        assert_eq!(&rest[..], &expected[12..]);
    }

    #[test]
    fn golden_aac_config_and_metadata() {
        let mut w = MediaWriter::new(4096);
        let built = w.config(Codec::Aac, 0, &Bytes::from_static(&[0x12, 0x10]), 0, 1);
        let b = built.wire.to_vec();
        // One chunk: the payload kept is the end of the chunk bytes.
        assert_eq!(&built.payload[..], &[0x12, 0x10]);
        assert_eq!(built.payload.as_ptr(), built.wire.first()[14..].as_ptr());
        assert_eq!(
            &b[..],
            &[0x04, 0, 0, 0, 0, 0, 4, 0x08, 1, 0, 0, 0, 0xAF, 0x00, 0x12, 0x10]
        );
        let b = w.metadata(&[0x05], 0x0100_0000, 1);
        assert_eq!(
            &b[..],
            &[0x05, 0xFF, 0xFF, 0xFF, 0, 0, 1, 0x12, 1, 0, 0, 0, 0x01, 0, 0, 0, 0x05]
        );
    }

    #[test]
    fn golden_control_messages() {
        let mut out = BytesMut::new();
        control(ControlMessage::SetChunkSize(4096), 128, &mut out);
        user_control(UserControl::StreamBegin(1), 128, &mut out);
        assert_eq!(
            &out[..],
            &[
                0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0x00, // SetChunkSize
                0x02, 0, 0, 0, 0, 0, 6, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // StreamBegin 1
            ]
        );
    }
}
