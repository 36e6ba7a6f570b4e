//! FLV file framing (FLV 10.1 E.2, E.3): the file header, tag headers and back-pointers.

use bytes::{BufMut, BytesMut};

/// Tag type of an audio tag.
pub const TAG_AUDIO: u8 = 8;
/// Tag type of a video tag.
pub const TAG_VIDEO: u8 = 9;
/// Tag type of a script data (onMetaData) tag.
pub const TAG_SCRIPT: u8 = 18;
/// Bytes written by [`write_file_header`]: the 9-byte header and PreviousTagSize0.
pub const FILE_HEADER_LEN: usize = 13;
/// Bytes written by [`write_tag_header`].
pub const TAG_HEADER_LEN: usize = 11;

/// Appends the FLV file header (signature, version 1, flags, header size 9) and the
/// PreviousTagSize0 of 0 that follows it.
pub fn write_file_header(has_audio: bool, has_video: bool, out: &mut BytesMut) {
    out.put_slice(b"FLV");
    out.put_u8(1);
    out.put_u8(u8::from(has_audio) << 2 | u8::from(has_video));
    out.put_u32(9);
    out.put_u32(0);
}

/// Appends an 11-byte tag header: type, 24-bit data size, timestamp (low 24 bits then the
/// extension byte with bits 24-31), stream id 0. `data_size` above 24 bits is truncated:
/// FLV cannot describe such a tag, callers bound their tags first.
pub fn write_tag_header(tag_type: u8, data_size: u32, timestamp_ms: u32, out: &mut BytesMut) {
    out.put_u8(tag_type & 0x1f);
    out.put_slice(&data_size.to_be_bytes()[1..]);
    out.put_slice(&timestamp_ms.to_be_bytes()[1..]);
    out.put_u8((timestamp_ms >> 24) as u8);
    out.put_slice(&[0, 0, 0]);
}

/// Appends the PreviousTagSize that follows a tag: its header plus data size.
pub fn write_previous_tag_size(data_size: u32, out: &mut BytesMut) {
    out.put_u32(data_size.wrapping_add(TAG_HEADER_LEN as u32));
}
