//! The fragmented MP4 muxer: holds each track's last sample until the next one gives its
//! duration, and closes a fragment about every `fragment` ticks (earlier at a video
//! keyframe once half of that has passed), so a crash loses at most the open fragment.

use bytes::{Bytes, BytesMut};
use proto::media::TrackKind;

use super::fragment::{write_fragment_header, SampleEntry, Traf, FLAGS_NON_SYNC, FLAGS_SYNC};
use super::init::write_init;
use crate::mux::{Chunk, Muxer, Sample, TrackInfo};

/// Tunables of [`Mp4Muxer`].
#[derive(Debug, Clone, Copy)]
pub struct Mp4Options {
    /// Ticks per second of every timestamp given (the stream's timescale).
    pub timescale: u32,
    /// Target fragment length in ticks.
    pub fragment: u64,
    /// A fragment is closed once it holds this many bytes, whatever its length (keeps
    /// every trun data offset far inside 32 bits).
    pub max_fragment_bytes: u64,
}

impl Mp4Options {
    /// One-second fragments of at most 256 MiB.
    pub fn new(timescale: u32) -> Self {
        Mp4Options {
            timescale,
            fragment: u64::from(timescale),
            max_fragment_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Default)]
struct TrackState {
    video: bool,
    pending: Option<Sample>,
    entries: Vec<SampleEntry>,
    data: Vec<Bytes>,
    base_dts: u64,
    span: u64,
    bytes: u64,
    last_duration: u32,
}

/// Writes fragmented MP4 for a fixed set of tracks.
#[derive(Debug)]
pub struct Mp4Muxer {
    tracks: Vec<TrackInfo>,
    opts: Mp4Options,
    state: Vec<TrackState>,
    sequence: u32,
}

impl Mp4Muxer {
    /// A muxer for `tracks` (track ids in the file are index + 1).
    pub fn new(tracks: Vec<TrackInfo>, opts: Mp4Options) -> Self {
        let state = tracks
            .iter()
            .map(|t| TrackState {
                video: t.kind() == TrackKind::Video,
                ..TrackState::default()
            })
            .collect();
        Mp4Muxer {
            tracks,
            opts,
            state,
            sequence: 0,
        }
    }

    fn enqueue(&mut self, track: usize, s: Sample, duration: u32, out: &mut Vec<Chunk>) -> bool {
        let mut flushed = false;
        let st = &self.state[track];
        if st.video && s.keyframe && st.span >= self.opts.fragment / 2 {
            self.emit(out);
            flushed = true;
        }
        let st = &mut self.state[track];
        if st.entries.is_empty() {
            st.base_dts = s.dts;
        }
        st.entries.push(SampleEntry {
            duration,
            size: s.data.len() as u32,
            flags: if s.keyframe || !st.video {
                FLAGS_SYNC
            } else {
                FLAGS_NON_SYNC
            },
            cts: s.cts,
        });
        st.span += u64::from(duration);
        st.bytes += s.data.len() as u64;
        st.last_duration = duration;
        st.data.push(s.data);
        let bytes: u64 = self.state.iter().map(|t| t.bytes).sum();
        if self.state.iter().any(|t| t.span >= self.opts.fragment)
            || bytes >= self.opts.max_fragment_bytes
        {
            self.emit(out);
            flushed = true;
        }
        flushed
    }

    fn emit(&mut self, out: &mut Vec<Chunk>) {
        if self.state.iter().all(|t| t.entries.is_empty()) {
            return;
        }
        self.sequence += 1;
        let trafs: Vec<Traf<'_>> = self
            .state
            .iter()
            .enumerate()
            .map(|(i, t)| Traf {
                track_id: i as u32 + 1,
                base_dts: t.base_dts,
                samples: &t.entries,
            })
            .collect();
        let mut header = BytesMut::new();
        write_fragment_header(&mut header, self.sequence, &trafs);
        out.push(Chunk::Append(header.freeze()));
        for t in &mut self.state {
            out.extend(t.data.drain(..).map(Chunk::Append));
            t.entries.clear();
            t.span = 0;
            t.bytes = 0;
        }
    }
}

impl Muxer for Mp4Muxer {
    fn header(&mut self, out: &mut Vec<Chunk>) {
        let mut b = BytesMut::new();
        write_init(&mut b, &self.tracks, self.opts.timescale);
        out.push(Chunk::Append(b.freeze()));
    }

    fn push(&mut self, track: usize, sample: Sample, out: &mut Vec<Chunk>) -> bool {
        let Some(st) = self.state.get_mut(track) else {
            return false;
        };
        let Some(prev) = st.pending.replace(sample) else {
            return false;
        };
        let next_dts = st.pending.as_ref().map_or(prev.dts, |s| s.dts);
        let duration = u32::try_from(next_dts.saturating_sub(prev.dts)).unwrap_or(u32::MAX);
        self.enqueue(track, prev, duration, out)
    }

    fn finish(&mut self, out: &mut Vec<Chunk>) {
        for i in 0..self.state.len() {
            if let Some(s) = self.state[i].pending.take() {
                let d = match self.state[i].last_duration {
                    0 => self.opts.timescale / 50,
                    d => d,
                };
                self.enqueue(i, s, d, out);
            }
        }
        self.emit(out);
    }

    fn extension(&self) -> &'static str {
        "mp4"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::media::Codec;

    fn sample(dts: u64, key: bool, len: usize) -> Sample {
        Sample {
            dts,
            cts: 0,
            keyframe: key,
            data: Bytes::from(vec![0xab; len]),
        }
    }

    #[test]
    fn fragments_hold_every_sample_once() {
        let tracks = vec![
            TrackInfo::new(
                Codec::H264,
                Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
            ),
            TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10])),
        ];
        let mut m = Mp4Muxer::new(tracks, Mp4Options::new(1000));
        let mut out = Vec::new();
        m.header(&mut out);
        let mut fragments = 0;
        let mut total = 0;
        for i in 0..250u64 {
            // video 25 fps, keyframe every 2 s; audio every 20 ms
            if m.push(0, sample(i * 40, i % 50 == 0, 100), &mut out) {
                fragments += 1;
            }
            total += 100;
            for j in 0..2u64 {
                if m.push(1, sample(i * 40 + j * 20, true, 10), &mut out) {
                    fragments += 1;
                }
                total += 10;
            }
        }
        m.finish(&mut out);
        assert!(fragments >= 9, "{fragments}");
        let data: u64 = out
            .iter()
            .filter_map(|c| match c {
                Chunk::Append(b) if b.len() == 100 || b.len() == 10 => Some(b.len() as u64),
                _ => None,
            })
            .sum();
        assert_eq!(data, total);
        let mut file = Vec::new();
        crate::mux::apply(&mut file, &out);
        // Walk top-level boxes: ftyp, moov, then moof/mdat pairs covering the file.
        let mut pos = 0;
        let mut kinds = Vec::new();
        while pos < file.len() {
            let size = u32::from_be_bytes(file[pos..pos + 4].try_into().unwrap()) as usize;
            kinds.push(file[pos + 4..pos + 8].to_vec());
            pos += size;
        }
        assert_eq!(pos, file.len());
        assert_eq!(&kinds[0], b"ftyp");
        assert_eq!(&kinds[1], b"moov");
        assert_eq!(kinds.len() % 2, 0);
    }
}
