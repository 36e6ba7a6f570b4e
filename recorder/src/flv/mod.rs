//! FLV files for the codecs legacy FLV carries (H.264, AAC, MP3 and the old FLV codecs,
//! passed through): the file header, an `onMetaData` script tag whose duration and size are
//! patched in place when the file closes, the sequence headers, then one tag per sample.

mod meta;
mod muxer;
mod tags;

pub use meta::{write_body, MetaFields, MetaPatches};
pub use muxer::{supported, FlvMuxer};
pub use tags::{
    audio_body_header, file_header, tag_header, video_body_header, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO,
};
