//! The normalized media model shared by every process.

pub mod bits;
mod codec;
mod frame;
mod key;

pub use codec::{Codec, TrackKind};
pub use frame::{Frame, FrameFlags};
pub use key::{KeyError, StreamKey, MAX_KEY_LEN};
