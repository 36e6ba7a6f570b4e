//! Reading FLV files (FLV 10.1 E.2, E.3): the header, then tags with their back-pointers,
//! from bytes already in memory. The counterpart of [`super::write_file_header`] and
//! [`super::write_tag_header`].
//!
//! A file cut short (a recording whose writer was killed) is not an error: reading stops
//! at the last complete tag and [`FlvFile::complete_len`] says how far that is.

use bytes::Bytes;
use thiserror::Error;

use super::TAG_HEADER_LEN;

/// Why bytes are not an FLV file.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlvFileError {
    /// No `FLV` signature, or fewer bytes than a header.
    #[error("not an FLV file")]
    NotFlv,
    /// A header size below 9 or beyond the data.
    #[error("FLV header size {0} is invalid")]
    BadHeaderSize(u32),
    /// A back-pointer that does not match the tag before it.
    #[error("PreviousTagSize {got} after the tag at byte {at}, expected {want}")]
    BadPreviousTagSize {
        /// Offset of the tag.
        at: usize,
        /// What the file says.
        got: u32,
        /// Tag header plus data size.
        want: u32,
    },
}

/// One tag of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTag {
    /// 8 audio, 9 video, 18 script data (the filter bit and reserved bits removed).
    pub tag_type: u8,
    /// Whether the filter (encryption) bit is set.
    pub filtered: bool,
    /// Timestamp in milliseconds (24 bits plus the extension byte).
    pub timestamp_ms: u32,
    /// The tag's data, sliced from the file.
    pub body: Bytes,
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvFile {
    /// The header's audio flag.
    pub has_audio: bool,
    /// The header's video flag.
    pub has_video: bool,
    /// Every complete tag, in file order.
    pub tags: Vec<FileTag>,
    /// Bytes up to the end of the last complete tag's back-pointer (the whole file unless
    /// it was cut short).
    pub complete_len: usize,
}

/// Reads `data` as an FLV file. Tag bodies are slices of `data`, not copies.
pub fn read_file(data: &Bytes) -> Result<FlvFile, FlvFileError> {
    if data.len() < 9 || &data[..3] != b"FLV" {
        return Err(FlvFileError::NotFlv);
    }
    let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]);
    if header_len < 9 || header_len as usize > data.len() {
        return Err(FlvFileError::BadHeaderSize(header_len));
    }
    let mut file = FlvFile {
        has_audio: data[4] & 0x04 != 0,
        has_video: data[4] & 0x01 != 0,
        tags: Vec::new(),
        complete_len: (header_len as usize + 4).min(data.len()),
    };
    // PreviousTagSize0 follows the header.
    let mut pos = header_len as usize + 4;
    while let Some(h) = data.get(pos..pos + TAG_HEADER_LEN) {
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
        let body_at = pos + TAG_HEADER_LEN;
        let end = body_at + size as usize;
        let Some(back) = data.get(end..end + 4) else {
            break;
        };
        let got = u32::from_be_bytes([back[0], back[1], back[2], back[3]]);
        let want = size + TAG_HEADER_LEN as u32;
        if got != want {
            return Err(FlvFileError::BadPreviousTagSize { at: pos, got, want });
        }
        file.tags.push(FileTag {
            tag_type: h[0] & 0x1f,
            filtered: h[0] & 0x20 != 0,
            timestamp_ms: u32::from_be_bytes([h[7], h[4], h[5], h[6]]),
            body: data.slice(body_at..end),
        });
        pos = end + 4;
        file.complete_len = pos;
    }
    Ok(file)
}
