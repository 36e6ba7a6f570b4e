//! Fragmented MP4 (ISO/IEC 14496-12): an init segment (ftyp, moov with mvex) then one
//! moof+mdat per fragment. Writers are pure functions appending to a `BytesMut`; sample
//! data is never copied into them, the mdat header is followed by the samples' own `Bytes`.

pub mod boxes;
pub mod entry;
pub mod fragment;
pub mod init;
mod muxer;

pub use muxer::{Mp4Muxer, Mp4Options};
