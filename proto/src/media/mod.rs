//! The normalized media model shared by every process.

mod codec;
mod key;

pub use codec::{Codec, TrackKind};
pub use key::{KeyError, StreamKey, MAX_KEY_LEN};

/// Frame flag: a random access point (keyframe / IDR; every audio frame sets it).
pub const FLAG_KEYFRAME: u8 = 0x01;
/// Frame flag: the frame may be dropped without breaking decoding (FLV disposable inter).
pub const FLAG_DISPOSABLE: u8 = 0x02;
