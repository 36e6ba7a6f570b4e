//! FLV files for the codecs legacy FLV carries (H.264, AAC, MP3 and the old FLV codecs,
//! passed through): the file header, an `onMetaData` script tag whose duration and size are
//! patched in place when the file closes, the sequence headers, then one tag per sample.

//!
//! The byte layouts (file header, tag headers, tag body headers) are `proto::flv`'s, the
//! same code that parses what publishers send.

mod meta;
mod muxer;

pub use meta::{write_body, MetaFields, MetaPatches};
pub use muxer::{supported, FlvMuxer};
