//! The media a loadgen publisher sends: the tags of an FLV file, loaded once and shared.

use std::path::Path;

use bytes::Bytes;

use super::conn::types;

/// One tag of the source.
#[derive(Clone, Debug)]
pub struct SourceTag {
    /// RTMP message type (8 audio, 9 video, 18 data).
    pub type_id: u8,
    /// Milliseconds from the start of the file.
    pub timestamp: u32,
    /// The tag body, shared by every publisher.
    pub body: Bytes,
}

/// A loaded FLV file.
#[derive(Clone, Debug)]
pub struct Source {
    /// Sequence headers and metadata (sent once, at timestamp 0).
    pub headers: Vec<SourceTag>,
    /// Everything else, in file order.
    pub tags: Vec<SourceTag>,
    /// Media time of the file: the last timestamp plus one frame (the loop length).
    pub duration_ms: u32,
}

fn is_header(kind: u8, body: &[u8]) -> bool {
    match kind {
        types::DATA => true,
        types::VIDEO => crate::flv::video_packet(body) == crate::flv::Packet::SequenceHeader,
        types::AUDIO => crate::flv::audio_packet(body) == crate::flv::Packet::SequenceHeader,
        _ => false,
    }
}

impl Source {
    /// Reads `path` (an FLV file with audio and/or video).
    pub fn load(path: &Path) -> Result<Source, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (tags, _) = crate::flv::read_tags(&data)?;
        let mut headers = Vec::new();
        let mut media = Vec::new();
        for t in tags {
            let tag = SourceTag {
                type_id: t.kind,
                timestamp: t.timestamp,
                body: Bytes::from(t.body),
            };
            if is_header(t.kind, &tag.body) {
                headers.push(tag);
            } else if t.kind == types::VIDEO
                && crate::flv::video_packet(&tag.body) == crate::flv::Packet::Other
            {
                // An end of sequence would end the stream in the middle of a loop.
                continue;
            } else {
                media.push(tag);
            }
        }
        let last = media.iter().map(|t| t.timestamp).max().unwrap_or(0);
        if media.is_empty() {
            return Err(format!("{}: no media tags", path.display()));
        }
        Ok(Source {
            headers,
            tags: media,
            duration_ms: last + 33,
        })
    }

    /// Average bit rate of the media, bits per second.
    pub fn bitrate(&self) -> f64 {
        let bytes: usize = self.tags.iter().map(|t| t.body.len()).sum();
        bytes as f64 * 8.0 / (f64::from(self.duration_ms) / 1000.0)
    }
}
