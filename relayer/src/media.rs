//! What flows from the hub link to the destinations: a stream's items in hub order, with
//! timestamps already in RTMP milliseconds, and their FLV tag bodies.

use bytes::{Bytes, BytesMut};
use proto::flv::{write_audio_header, write_video_header, PacketKind};
use proto::media::{Codec, FrameFlags, TrackKind};
use proto::rtmp::session::MediaKind;

/// One item of a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A decoder configuration.
    Config {
        /// Codec of the track.
        codec: Codec,
        /// Track id.
        track: u8,
        /// The configuration record.
        data: Bytes,
    },
    /// `onMetaData` AMF0 values.
    Metadata(Bytes),
    /// A data message other than `onMetaData` (`onCuePoint`, `onTextData`, ...), in
    /// order with the frames around it.
    Data {
        /// RTMP milliseconds (wrapping).
        ts: u32,
        /// Its AMF0 values, handler name first.
        body: Bytes,
    },
    /// A coded frame.
    Frame(Frame),
    /// An Enhanced RTMP packet of a track that is neither a frame nor a configuration:
    /// video Metadata (`colorInfo`), SequenceEnd or audio MultichannelConfig. Metadata
    /// and MultichannelConfig describe the track from here on (kept in [`Headers`] for
    /// later connections).
    ///
    /// [`Headers`]: crate::destination::Headers
    Side {
        /// Codec of the track.
        codec: Codec,
        /// Track id.
        track: u8,
        /// [`PacketKind::Metadata`], [`PacketKind::EndOfSequence`] or
        /// [`PacketKind::ChannelConfig`].
        kind: PacketKind,
        /// RTMP milliseconds (wrapping).
        ts: u32,
        /// The packet's body after its header (AMF0 values, the channel layout, nothing).
        body: Bytes,
    },
}

/// A coded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Codec of the track.
    pub codec: Codec,
    /// Track id.
    pub track: u8,
    /// Decode time, RTMP milliseconds (wrapping).
    pub ts: u32,
    /// Composition offset, milliseconds.
    pub cts: i32,
    /// Keyframe, disposable.
    pub flags: FrameFlags,
    /// A point a destination may start at: a video keyframe, or any audio frame of a
    /// stream without video.
    pub sync: bool,
    /// The frame in normalized form.
    pub data: Bytes,
    /// E-RTMP ModEx TimestampOffsetNano (0: none): the frame is presented this many
    /// nanoseconds after its timestamps say.
    pub nanos: u32,
}

impl Item {
    /// Bytes the item holds (for queue budgets).
    pub fn len(&self) -> usize {
        match self {
            Item::Config { data, .. }
            | Item::Metadata(data)
            | Item::Data { body: data, .. }
            | Item::Side { body: data, .. } => data.len(),
            Item::Frame(f) => f.data.len(),
        }
    }

    /// Whether the item holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds the FLV tag header of a config or frame into `head` (cleared first): the tag
/// body is `head` followed by the shared payload, which is never copied into it. Returns
/// audio or video.
pub fn tag_head(codec: Codec, track: u8, kind: PacketKind, head: &mut BytesMut) -> MediaKind {
    head.clear();
    if codec.kind() == TrackKind::Video {
        write_video_header(codec, track, kind, head);
        MediaKind::Video
    } else {
        write_audio_header(codec, track, kind, head);
        MediaKind::Audio
    }
}

/// The packet kind of a frame.
pub fn frame_kind(f: &Frame) -> PacketKind {
    PacketKind::Frame {
        keyframe: f.flags.keyframe(),
        disposable: f.flags.disposable(),
        cts: f.cts,
    }
}

/// Converts a timestamp in `timescale` ticks to RTMP milliseconds (wrapping at 2^32).
pub fn to_ms(ticks: i64, timescale: u32) -> i64 {
    if timescale == 1000 || timescale == 0 {
        ticks
    } else {
        ((i128::from(ticks) * 1000).div_euclid(i128::from(timescale))) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_tag_heads() {
        let mut b = BytesMut::new();
        let k = tag_head(Codec::Aac, 0, PacketKind::Config, &mut b);
        assert_eq!((k, &b[..]), (MediaKind::Audio, &[0xaf, 0][..]));
        let k = tag_head(Codec::Opus, 1, PacketKind::Config, &mut b);
        assert_eq!(
            (k, &b[..]),
            (MediaKind::Audio, &b"\x95\x00Opus\x01"[..]),
            "multitrack: the track id follows the FourCC"
        );
        let f = Frame {
            codec: Codec::H264,
            track: 0,
            ts: 0,
            cts: 40,
            flags: FrameFlags::KEYFRAME,
            sync: true,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            nanos: 0,
        };
        let k = tag_head(f.codec, 0, frame_kind(&f), &mut b);
        assert_eq!((k, &b[..]), (MediaKind::Video, &[0x17, 1, 0, 0, 40][..]));
    }

    #[test]
    fn timescales() {
        assert_eq!(to_ms(90_000, 90_000), 1000);
        assert_eq!(to_ms(-90, 90_000), -1);
        assert_eq!(to_ms(1234, 1000), 1234);
    }
}
