//! The message headers of the framed format. Variant order is part of the wire format:
//! append new variants at the end, never reorder (see FORMAT.md).

use serde::{Deserialize, Serialize};

use crate::flv::PacketKind;
use crate::media::{Codec, Frame, FrameFlags};
use crate::rtmp::session::PlayerHandoff;

/// Version carried in [`Header::Hello`]; peers with a different version are refused.
pub const FORMAT_VERSION: u16 = 1;

/// What the peer that says hello is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Sends streams (ingest-rtmp, ingest-srt, custom producers).
    Publisher,
    /// Hands one RTMP player connection (fd attached) to the hub.
    PlayerHandoff,
    /// Receives streams and/or events (recorder, relayer, hookd, custom consumers).
    Subscriber,
    /// The hub itself, answering a hello.
    Hub,
    /// Asks the hub to do something for an operator (the supervisor, ingest-rtmp at a
    /// graceful shutdown): today [`Header::Reconnect`]. The hub answers each request.
    Control,
}

/// Why a publish was refused by the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The key is live and the hub runs with `--on-duplicate reject`.
    Duplicate,
    /// The hub is at its stream limit.
    Capacity,
    /// Refused by policy (auth, hooks).
    Denied,
}

/// One event for hooks and observers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event name: `publish`, `unpublish`, `play`, `stop`, `record_start`, `record_done`,
    /// ... (every kind and its fields: FORMAT.md section 3.1).
    pub kind: String,
    /// Stream key (`app/name`), empty when not about a stream.
    pub key: String,
    /// Connection id in the emitting process, 0 when none.
    pub conn_id: u64,
    /// Remote address, empty when none.
    pub remote: String,
    /// Further fields as name/value pairs (path, bytes, duration, reason ...).
    pub fields: Vec<(String, String)>,
}

/// How a player served by another process reached it ([`Header::Player`]). Variant order
/// is part of the wire format: append, never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlayerProtocol {
    /// An SRT caller with `m=request` (ingest-srt).
    Srt,
}

impl PlayerProtocol {
    /// The name events, metrics and the API give it (`srt`).
    pub fn as_str(self) -> &'static str {
        match self {
            PlayerProtocol::Srt => "srt",
        }
    }
}

/// How many [`Header`] variants this format version has (indices 0 to 20). A message
/// whose header starts with a higher variant index comes from a newer sender and is
/// skipped whole by [`crate::ipc::FrameDecoder`] (FORMAT.md section 3).
pub const KNOWN_HEADERS: u32 = 21;

/// A message header. The payload that follows depends on the variant (FORMAT.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Header {
    /// First message on every connection, both directions. Payload: none.
    Hello {
        /// [`FORMAT_VERSION`] of the sender.
        version: u16,
        /// What the sender is.
        role: Role,
        /// Free-form sender name (component and pid) for logs.
        name: String,
    },
    /// A publisher starts a stream. Payload: none.
    Announce {
        /// Sender-chosen handle used by every later message of this stream on this connection.
        stream: u32,
        /// Stream key, `app/name`.
        key: String,
        /// Ticks per second of every timestamp in this stream (1000 for RTMP, 90000 for TS).
        timescale: u32,
    },
    /// The hub's answer to an `Announce`. Payload: none.
    AnnounceReply {
        /// The stream handle from `Announce`.
        stream: u32,
        /// `None` when accepted.
        rejected: Option<RejectReason>,
    },
    /// Decoder configuration of one track; sent before its first frame and whenever it
    /// changes. Payload: the configuration record (see [`Codec`]), possibly empty.
    TrackConfig {
        /// Stream handle.
        stream: u32,
        /// Track number (0 = the default track of its kind; E-RTMP multitrack ids otherwise).
        track: u8,
        /// Codec of the track.
        codec: Codec,
    },
    /// One media sample (a [`Frame`] without its payload; see [`Header::frame`] and
    /// [`super::Message::frame`]). Payload: the sample in its normalized form.
    Frame {
        /// Stream handle.
        stream: u32,
        /// Track number.
        track: u8,
        /// Whether the track is video (so a reader need not remember track configs).
        video: bool,
        /// Decode timestamp in the stream's timescale.
        dts: i64,
        /// Presentation minus decode timestamp, same timescale.
        cts: i32,
        /// Keyframe / disposable (one byte on the wire).
        flags: FrameFlags,
    },
    /// Stream metadata. Payload: AMF0 values, the `onMetaData` string then its object or
    /// ECMA array, as RTMP `@setDataFrame` carries them after the `@setDataFrame` string.
    Metadata {
        /// Stream handle.
        stream: u32,
    },
    /// The stream ended. Payload: none.
    EndOfStream {
        /// Stream handle.
        stream: u32,
        /// Human-readable reason (`unpublish`, `disconnect`, `takeover`, ...).
        reason: String,
    },
    /// An event for hooks. Payload: none.
    Event(Event),
    /// A subscriber asks for streams and/or events. Payload: none.
    Subscribe {
        /// Glob patterns on stream keys (`*` matches any run of characters); empty = all.
        patterns: Vec<String>,
        /// Whether to receive media of matching streams.
        media: bool,
        /// Whether to receive events.
        events: bool,
    },
    /// An RTMP player handed to the hub; the TCP socket arrives with it (SCM_RIGHTS).
    /// Payload: none.
    PlayerHandoff(Box<PlayerHandoff>),
    /// The hub dropped data for this subscriber on this stream (it fell behind). The next
    /// video frame it receives for the stream is a keyframe. Payload: none.
    Dropped {
        /// Stream handle.
        stream: u32,
        /// Frames dropped.
        frames: u64,
        /// Bytes dropped.
        bytes: u64,
    },
    /// The hub ends a publisher's stream (another publisher took the key over). Payload: none.
    Revoke {
        /// Stream handle.
        stream: u32,
        /// Why.
        reason: String,
    },
    /// A fatal error; the sender closes the connection after it. Payload: none.
    Error {
        /// What went wrong.
        message: String,
    },
    /// E-RTMP video metadata of one track (`colorInfo`: HDR colour description); it
    /// applies to the frames of the track that follow and replaces the previous one.
    /// Payload: AMF0 values, the name (`colorInfo`) then its value, as carried.
    TrackMetadata {
        /// Stream handle.
        stream: u32,
        /// Track number.
        track: u8,
        /// Codec of the track (it says audio or video, and the FourCC to write).
        codec: Codec,
        /// Decode timestamp in the stream's timescale.
        dts: i64,
    },
    /// The end of a track's coded sequence (E-RTMP SequenceEnd, AVC end of sequence).
    /// Payload: none.
    EndOfSequence {
        /// Stream handle.
        stream: u32,
        /// Track number.
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// Decode timestamp in the stream's timescale.
        dts: i64,
    },
    /// The speaker layout of an audio track (E-RTMP MultichannelConfig). Payload: the
    /// body as carried: channel order (u8), channel count (u8), then the mapping (one
    /// byte per channel, order Custom) or the channel flags (u32 big-endian, order Native).
    ChannelConfig {
        /// Stream handle.
        stream: u32,
        /// Track number.
        track: u8,
        /// Codec of the track.
        codec: Codec,
    },
    /// A data message other than `onMetaData` (`onCuePoint`, `onTextData`,
    /// `onCaptionInfo`, `@clearDataFrame`, ...), in order with the frames around it.
    /// Payload: AMF0 values, the handler name first, as sent (without `@setDataFrame`).
    Data {
        /// Stream handle.
        stream: u32,
        /// Decode timestamp in the stream's timescale.
        dts: i64,
    },
    /// The next `Frame` of this track is presented `nanos` nanoseconds after its
    /// timestamps say (E-RTMP ModEx TimestampOffsetNano). Payload: none.
    TimestampOffset {
        /// Stream handle.
        stream: u32,
        /// Track number.
        track: u8,
        /// Whether the track is video.
        video: bool,
        /// 1 to 999 999.
        nanos: u32,
    },
    /// E-RTMP reconnect request. From a `Control` peer to the hub: ask the RTMP clients
    /// of `key` (every RTMP client when `None`) that announced the Reconnect capability to
    /// reconnect; the hub answers with an `Event` of kind `reconnect_request`. From the
    /// hub to a publisher: send the client publishing stream `stream` a
    /// `NetConnection.Connect.ReconnectRequest`. Payload: none.
    Reconnect {
        /// Stream handle (hub to publisher); 0 from a `Control` peer.
        stream: u32,
        /// The stream key; `None` from a `Control` peer: every stream.
        key: Option<String>,
        /// Where the client is to reconnect (the request's `tcUrl`); `None`: where it is.
        tc_url: Option<String>,
        /// Why, for people (the request's `description`).
        description: Option<String>,
    },
    /// An `Announce` on behalf of one client connection of the sender, for a connection
    /// that carries the streams of many clients (an ingest process's shared link): the
    /// hub logs and reports the stream under `conn_id` rather than under the connection's
    /// hello name. Answered by `AnnounceReply`. Payload: none.
    AnnounceClient {
        /// Sender-chosen handle used by every later message of this stream on this connection.
        stream: u32,
        /// Stream key, `app/name`.
        key: String,
        /// Ticks per second of every timestamp in this stream (1000 for RTMP, 90000 for TS).
        timescale: u32,
        /// The sender's id of the client connection that publishes the stream.
        conn_id: u64,
    },
    /// From a subscriber that serves one player of `key` (ingest-srt's SRT players),
    /// after its `Hello` and before its `Subscribe`: the hub counts it as a player of the
    /// key (`players` events, API, metrics), waiting for a publisher or not, for as long
    /// as this connection lives. Payload: none.
    Player {
        /// Stream key, `app/name`, the player plays.
        key: String,
        /// How the player reached the sender.
        protocol: PlayerProtocol,
        /// The sender's id of the player's client connection.
        conn_id: u64,
        /// The player's address.
        remote: String,
    },
}

/// A track's E-RTMP packet that is neither a configuration nor a frame, as
/// [`Header::TrackMetadata`], [`Header::EndOfSequence`] or [`Header::ChannelConfig`]
/// carries it (see [`Header::side_packet`]); the message's payload is the packet's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidePacket {
    /// Stream handle.
    pub stream: u32,
    /// Track number.
    pub track: u8,
    /// Codec of the track.
    pub codec: Codec,
    /// [`PacketKind::Metadata`], [`PacketKind::EndOfSequence`] or
    /// [`PacketKind::ChannelConfig`].
    pub kind: PacketKind,
    /// Decode timestamp in the stream's timescale; `None` for a speaker layout, which has
    /// no time of its own.
    pub dts: Option<i64>,
}

impl Header {
    /// The header that carries `frame` on stream handle `stream`; its payload is
    /// `frame.payload`.
    pub fn frame(stream: u32, frame: &Frame) -> Header {
        Header::Frame {
            stream,
            track: frame.track,
            video: frame.is_video(),
            dts: frame.dts,
            cts: frame.cts,
            flags: frame.flags,
        }
    }

    /// The track packet a `TrackMetadata`, `EndOfSequence` or `ChannelConfig` header
    /// announces; `None` for any other header.
    pub fn side_packet(&self) -> Option<SidePacket> {
        let (stream, track, codec, kind, dts) = match *self {
            Header::TrackMetadata {
                stream,
                track,
                codec,
                dts,
            } => (stream, track, codec, PacketKind::Metadata, Some(dts)),
            Header::EndOfSequence {
                stream,
                track,
                codec,
                dts,
            } => (stream, track, codec, PacketKind::EndOfSequence, Some(dts)),
            Header::ChannelConfig {
                stream,
                track,
                codec,
            } => (stream, track, codec, PacketKind::ChannelConfig, None),
            _ => return None,
        };
        Some(SidePacket {
            stream,
            track,
            codec,
            kind,
            dts,
        })
    }

    /// The stream handle this message is about, for the messages that carry one.
    /// Multiplexers (several publishers onto one pipe) rewrite it in place.
    pub fn stream_mut(&mut self) -> Option<&mut u32> {
        match self {
            Header::Announce { stream, .. }
            | Header::AnnounceClient { stream, .. }
            | Header::AnnounceReply { stream, .. }
            | Header::TrackConfig { stream, .. }
            | Header::Frame { stream, .. }
            | Header::Metadata { stream }
            | Header::EndOfStream { stream, .. }
            | Header::Dropped { stream, .. }
            | Header::Revoke { stream, .. }
            | Header::TrackMetadata { stream, .. }
            | Header::EndOfSequence { stream, .. }
            | Header::ChannelConfig { stream, .. }
            | Header::Data { stream, .. }
            | Header::TimestampOffset { stream, .. }
            | Header::Reconnect { stream, .. } => Some(stream),
            Header::Hello { .. }
            | Header::Event(_)
            | Header::Subscribe { .. }
            | Header::PlayerHandoff(_)
            | Header::Player { .. }
            | Header::Error { .. } => None,
        }
    }
}

#[cfg(test)]
mod stream_mut_tests {
    use super::*;

    #[test]
    fn rewrites_only_stream_messages() {
        let mut f = Header::Frame {
            stream: 1,
            track: 0,
            video: true,
            dts: 5,
            cts: 0,
            flags: FrameFlags::KEYFRAME,
        };
        *f.stream_mut().expect("frame has a stream") = 7;
        assert!(matches!(
            f,
            Header::Frame {
                stream: 7,
                dts: 5,
                ..
            }
        ));
        let mut e = Header::Error {
            message: "x".into(),
        };
        assert!(e.stream_mut().is_none());
    }

    #[test]
    fn side_packets_of_the_three_track_headers_only() {
        let (stream, track, codec) = (3, 1, Codec::Opus);
        let p = |kind, dts| Some((kind, dts));
        let cases = [
            (
                Header::TrackMetadata {
                    stream,
                    track,
                    codec,
                    dts: 9,
                },
                p(PacketKind::Metadata, Some(9)),
            ),
            (
                Header::EndOfSequence {
                    stream,
                    track,
                    codec,
                    dts: 10,
                },
                p(PacketKind::EndOfSequence, Some(10)),
            ),
            (
                Header::ChannelConfig {
                    stream,
                    track,
                    codec,
                },
                p(PacketKind::ChannelConfig, None),
            ),
            (
                Header::TimestampOffset {
                    stream,
                    track,
                    video: false,
                    nanos: 5,
                },
                None,
            ),
            (Header::Data { stream, dts: 9 }, None),
        ];
        for (h, want) in cases {
            let got = h.side_packet();
            assert_eq!(got.map(|s| (s.kind, s.dts)), want, "{h:?}");
            let handle = got.map(|s| (s.stream, s.track, s.codec));
            assert_eq!(handle, want.map(|_| (stream, track, codec)), "{h:?}");
        }
    }
}
