//! One coded sample, the unit every process passes on: the framed format carries it, the
//! hub's ring holds it, the recorder and every writer consume it.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::TrackKind;

/// What a frame is besides its bytes. On the wire (FORMAT.md) this is one `u8`: bit 0
/// keyframe, bit 1 disposable; other bits are carried through untouched and ignored.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FrameFlags(u8);

impl FrameFlags {
    /// No flag set: an ordinary inter frame.
    pub const NONE: FrameFlags = FrameFlags(0);
    /// A random access point (keyframe / IDR; every audio frame sets it).
    pub const KEYFRAME: FrameFlags = FrameFlags(0x01);
    /// The frame may be dropped without breaking decoding (FLV disposable inter frame).
    pub const DISPOSABLE: FrameFlags = FrameFlags(0x02);

    /// Flags from their parts.
    pub fn new(keyframe: bool, disposable: bool) -> FrameFlags {
        let mut f = FrameFlags::NONE;
        if keyframe {
            f = f | FrameFlags::KEYFRAME;
        }
        if disposable {
            f = f | FrameFlags::DISPOSABLE;
        }
        f
    }

    /// Flags as carried on the wire.
    pub fn from_bits(bits: u8) -> FrameFlags {
        FrameFlags(bits)
    }

    /// The wire byte.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether the frame is a random access point.
    pub fn keyframe(self) -> bool {
        self.0 & FrameFlags::KEYFRAME.0 != 0
    }

    /// Whether the frame may be dropped without breaking decoding.
    pub fn disposable(self) -> bool {
        self.0 & FrameFlags::DISPOSABLE.0 != 0
    }
}

impl std::ops::BitOr for FrameFlags {
    type Output = FrameFlags;
    fn bitor(self, rhs: FrameFlags) -> FrameFlags {
        FrameFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for FrameFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut set = f.debug_set();
        if self.keyframe() {
            set.entry(&format_args!("KEYFRAME"));
        }
        if self.disposable() {
            set.entry(&format_args!("DISPOSABLE"));
        }
        let rest = self.0 & !(FrameFlags::KEYFRAME.0 | FrameFlags::DISPOSABLE.0);
        if rest != 0 {
            set.entry(&format_args!("{rest:#04x}"));
        }
        set.finish()
    }
}

/// One coded sample of one track, in the normalized form of its codec (FORMAT.md
/// section 5). Timestamps are in the timescale of the stream the frame belongs to.
/// Cloning is cheap: the payload is a shared [`Bytes`] handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Track number (0 = the default track of its kind; E-RTMP multitrack ids otherwise).
    pub track: u8,
    /// Audio or video; with `track` it names the track.
    pub kind: TrackKind,
    /// Decode timestamp.
    pub dts: i64,
    /// Presentation minus decode timestamp.
    pub cts: i32,
    /// Keyframe / disposable.
    pub flags: FrameFlags,
    /// The coded sample.
    pub payload: Bytes,
}

impl Frame {
    /// Whether the frame belongs to a video track.
    pub fn is_video(&self) -> bool {
        self.kind == TrackKind::Video
    }

    /// Whether the frame is a random access point.
    pub fn is_keyframe(&self) -> bool {
        self.flags.keyframe()
    }

    /// Whether the frame is a video keyframe: where a reader that lost frames may resume.
    pub fn is_video_keyframe(&self) -> bool {
        self.is_video() && self.is_keyframe()
    }

    /// Presentation timestamp (`dts + cts`).
    pub fn pts(&self) -> i64 {
        self.dts + i64::from(self.cts)
    }
}

impl TrackKind {
    /// The kind from the framed format's `video` flag.
    pub fn from_video(video: bool) -> TrackKind {
        if video {
            TrackKind::Video
        } else {
            TrackKind::Audio
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_their_bits() {
        assert_eq!(FrameFlags::new(true, false), FrameFlags::KEYFRAME);
        assert_eq!(FrameFlags::new(true, true).bits(), 0x03);
        let odd = FrameFlags::from_bits(0x81);
        assert!(odd.keyframe() && !odd.disposable());
        assert_eq!(odd.bits(), 0x81);
        assert_eq!(
            format!("{:?}", FrameFlags::new(true, true)),
            "{KEYFRAME, DISPOSABLE}"
        );
    }
}
