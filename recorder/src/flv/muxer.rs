//! The FLV muxer: header, onMetaData, sequence headers, then one tag per sample, each tag
//! complete when handed out (a crash loses at most the tag being written).

use bytes::{BufMut, Bytes, BytesMut};
use proto::media::{Codec, TrackKind};

use super::meta::{write_body, MetaFields, MetaPatches};
use crate::mux::{Chunk, Muxer, Sample, TrackInfo};
use proto::flv::{
    write_audio_header, write_file_header, write_previous_tag_size, write_tag_header,
    write_video_header, PacketKind, TAG_AUDIO, TAG_HEADER_LEN, TAG_SCRIPT, TAG_VIDEO,
};

/// Bytes of the FLV header plus PreviousTagSize0: where the first tag starts.
const FIRST_TAG: u64 = 13;

/// Whether legacy FLV carries `codec`.
pub fn supported(codec: Codec) -> bool {
    matches!(
        codec,
        Codec::H264
            | Codec::Aac
            | Codec::Mp3
            | Codec::LegacyVideo { .. }
            | Codec::LegacyAudio { .. }
    )
}

fn codec_id(codec: Codec) -> f64 {
    match codec {
        Codec::H264 => 7.0,
        Codec::Aac => 10.0,
        Codec::Mp3 => 2.0,
        Codec::LegacyVideo { codec_id } => f64::from(codec_id),
        Codec::LegacyAudio { header } => f64::from(header >> 4),
        _ => 0.0,
    }
}

/// Writes FLV for at most one video and one audio track.
#[derive(Debug)]
pub struct FlvMuxer {
    tracks: Vec<TrackInfo>,
    timescale: u64,
    written: u64,
    patches: MetaPatches,
    meta_body: u64,
    last_ms: u64,
    video_frames: u64,
    first_video_ms: Option<u64>,
    last_video_ms: u64,
}

impl FlvMuxer {
    /// A muxer for `tracks` with timestamps in `timescale` ticks per second.
    pub fn new(tracks: Vec<TrackInfo>, timescale: u32) -> Self {
        FlvMuxer {
            tracks,
            timescale: u64::from(timescale.max(1)),
            written: 0,
            patches: MetaPatches::default(),
            meta_body: 0,
            last_ms: 0,
            video_frames: 0,
            first_video_ms: None,
            last_video_ms: 0,
        }
    }

    fn ms(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1000 / u128::from(self.timescale)) as u64
    }

    fn tag(
        &mut self,
        kind: u8,
        ts_ms: u64,
        head: &[u8],
        data: Option<Bytes>,
        out: &mut Vec<Chunk>,
    ) {
        let body = head.len() + data.as_ref().map_or(0, Bytes::len);
        let mut h = BytesMut::with_capacity(TAG_HEADER_LEN + head.len());
        // FLV timestamps are 32-bit milliseconds and wrap, as FLV's own do.
        write_tag_header(kind, body as u32, ts_ms as u32, &mut h);
        h.put_slice(head);
        let mut tail = BytesMut::with_capacity(4);
        write_previous_tag_size(body as u32, &mut tail);
        self.written += (TAG_HEADER_LEN + body) as u64 + 4;
        match data {
            Some(d) => {
                out.push(Chunk::Append(h.freeze()));
                out.push(Chunk::Append(d));
            }
            None => {
                // Small tags go out as one buffer.
                h.put_slice(&tail);
                out.push(Chunk::Append(h.freeze()));
                return;
            }
        }
        out.push(Chunk::Append(tail.freeze()));
    }
}

impl Muxer for FlvMuxer {
    fn header(&mut self, out: &mut Vec<Chunk>) {
        let video = self
            .tracks
            .iter()
            .find(|t| t.kind() == TrackKind::Video)
            .cloned();
        let audio = self
            .tracks
            .iter()
            .find(|t| t.kind() == TrackKind::Audio)
            .cloned();
        let mut b = BytesMut::new();
        write_file_header(audio.is_some(), video.is_some(), &mut b);
        out.push(Chunk::Append(b.freeze()));
        self.written = FIRST_TAG;
        let fields = MetaFields {
            video: video.as_ref().map(|v| {
                (
                    f64::from(v.width),
                    f64::from(v.height),
                    v.frame_rate,
                    codec_id(v.codec),
                )
            }),
            audio: audio.as_ref().map(|a| {
                (
                    codec_id(a.codec),
                    f64::from(a.sample_rate),
                    f64::from(a.channels.max(1)),
                )
            }),
        };
        let mut body = BytesMut::new();
        self.patches = write_body(&fields, &mut body);
        self.meta_body = self.written + 11;
        let body = body.freeze();
        self.tag(TAG_SCRIPT, 0, &body, None, out);
        if let Some(v) = video.filter(|v| v.codec == Codec::H264 && !v.config.is_empty()) {
            let mut h = BytesMut::new();
            write_video_header(v.codec, 0, PacketKind::Config, &mut h);
            self.tag(TAG_VIDEO, 0, &h, Some(v.config.clone()), out);
        }
        if let Some(a) = audio.filter(|a| a.codec == Codec::Aac && !a.config.is_empty()) {
            let mut h = BytesMut::new();
            write_audio_header(a.codec, 0, PacketKind::Config, &mut h);
            self.tag(TAG_AUDIO, 0, &h, Some(a.config.clone()), out);
        }
    }

    fn push(&mut self, track: usize, s: Sample, out: &mut Vec<Chunk>) -> bool {
        let Some(t) = self.tracks.get(track) else {
            return false;
        };
        let codec = t.codec;
        let ms = self.ms(s.dts);
        self.last_ms = self.last_ms.max(ms);
        let mut h = BytesMut::with_capacity(5);
        let kind = if codec.kind() == TrackKind::Video {
            let cts = (i64::from(s.cts) * 1000 / self.timescale as i64) as i32;
            let frame = PacketKind::Frame {
                keyframe: s.keyframe,
                disposable: false,
                cts,
            };
            write_video_header(codec, 0, frame, &mut h);
            self.video_frames += 1;
            self.first_video_ms.get_or_insert(ms);
            self.last_video_ms = ms;
            TAG_VIDEO
        } else {
            let frame = PacketKind::Frame {
                keyframe: true,
                disposable: false,
                cts: 0,
            };
            write_audio_header(codec, 0, frame, &mut h);
            TAG_AUDIO
        };
        self.tag(kind, ms, &h, Some(s.data), out);
        true
    }

    fn finish(&mut self, out: &mut Vec<Chunk>) {
        let at = |off: usize| self.meta_body + off as u64;
        let duration = self.last_ms as f64 / 1000.0;
        out.push(Chunk::Patch {
            offset: at(self.patches.duration),
            data: Bytes::copy_from_slice(&duration.to_be_bytes()),
        });
        out.push(Chunk::Patch {
            offset: at(self.patches.filesize),
            data: Bytes::copy_from_slice(&(self.written as f64).to_be_bytes()),
        });
        if let (Some(off), Some(first)) = (self.patches.framerate, self.first_video_ms) {
            let span = self.last_video_ms.saturating_sub(first);
            if span > 0 && self.video_frames > 1 {
                let fps = (self.video_frames - 1) as f64 * 1000.0 / span as f64;
                let fps = (fps * 100.0).round() / 100.0;
                out.push(Chunk::Patch {
                    offset: at(off),
                    data: Bytes::copy_from_slice(&fps.to_be_bytes()),
                });
            }
        }
    }

    fn extension(&self) -> &'static str {
        "flv"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::apply;

    #[test]
    fn tags_and_patches() {
        let mut v = TrackInfo::new(Codec::H264, Bytes::from_static(&[1, 2, 3]));
        v.width = 320;
        v.height = 240;
        let a = TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10]));
        let mut m = FlvMuxer::new(vec![v, a], 1000);
        let mut out = Vec::new();
        m.header(&mut out);
        for i in 0..26u64 {
            let s = Sample {
                dts: i * 40,
                cts: 80,
                keyframe: i == 0,
                data: Bytes::from_static(&[0xaa; 7]),
            };
            assert!(m.push(0, s, &mut out));
        }
        m.finish(&mut out);
        let mut f = Vec::new();
        apply(&mut f, &out);
        assert_eq!(&f[..3], b"FLV");
        // Walk tags, checking PreviousTagSize of each.
        let mut pos = 13;
        let mut kinds = Vec::new();
        while pos < f.len() {
            let size = u32::from_be_bytes([0, f[pos + 1], f[pos + 2], f[pos + 3]]) as usize;
            kinds.push(f[pos]);
            let prev = u32::from_be_bytes(f[pos + 11 + size..pos + 15 + size].try_into().unwrap());
            assert_eq!(prev as usize, 11 + size);
            pos += 15 + size;
        }
        assert_eq!(pos, f.len());
        assert_eq!(&kinds[..3], &[18, 9, 8]);
        let info = crate::metadata::parse(&f[13 + 11..]);
        assert_eq!(info.frame_rate, Some(25.0));
        assert_eq!(info.width, Some(320.0));
        let body = &f[24..];
        let d = body.windows(8).position(|w| w == b"duration").unwrap() + 9;
        assert_eq!(f64::from_be_bytes(body[d..d + 8].try_into().unwrap()), 1.0);
        let s = body.windows(8).position(|w| w == b"filesize").unwrap() + 9;
        assert_eq!(
            f64::from_be_bytes(body[s..s + 8].try_into().unwrap()),
            f.len() as f64
        );
    }
}
