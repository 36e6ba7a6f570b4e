//! Live HLS (RFC 8216) segmenting, sans-IO: a stream's frames in, MPEG-TS segments and
//! the media playlist out.
//!
//! ```text
//!  config(track, codec, record) --> proto::ts::Muxer (tracks TS cannot carry are refused)
//!  frame(&Frame) --> [cut at the first video keyframe after the target duration
//!                     (audio-only: the first frame after it)] --> current segment bytes
//!  cut --> the last `count` segments (Bytes, shared when served) --> playlist(suffix)
//! ```
//!
//! Every segment starts with PAT and PMT and (with video) a keyframe. A publisher change
//! ([`Segmenter::restart`]) or a reader skip ([`Segmenter::skip`]) drops the unfinished
//! segment and marks the next one `EXT-X-DISCONTINUITY`. Memory is bounded: at most
//! `count` segments plus one being written, each at most [`MAX_SEGMENT_BYTES`] (a
//! segment growing past it is dropped and the segmenter waits for the next keyframe).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proto::media::{Codec, Frame, TrackKind};
use proto::ts::{MuxError, MuxOptions, Muxer};

/// Largest segment kept; a larger one (no keyframe for far too long) is dropped.
pub const MAX_SEGMENT_BYTES: usize = 32 << 20;

/// What a segmenter makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HlsOptions {
    /// A segment is cut at the first keyframe at least this long after its start.
    pub target: Duration,
    /// Segments kept (and listed in the playlist).
    pub count: usize,
}

/// One finished segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its media sequence number.
    pub seq: u64,
    /// Its duration, seconds.
    pub duration: f64,
    /// It follows a discontinuity (new publisher, skipped media).
    pub discontinuity: bool,
    /// The MPEG-TS bytes.
    pub data: Bytes,
}

/// One stream's HLS segmenter.
#[derive(Debug)]
pub struct Segmenter {
    options: HlsOptions,
    timescale: u32,
    muxer: Muxer,
    /// The tracks the muxer took, `(video, track)`.
    tracks: Vec<(bool, u8)>,
    /// DTS of the current segment's first frame; `None`: waiting for a segment start.
    start: Option<i64>,
    current: BytesMut,
    /// The next segment started follows a discontinuity.
    discontinuity: bool,
    /// Whether the current segment follows one.
    current_discontinuity: bool,
    segments: VecDeque<Segment>,
    next_seq: u64,
    /// Discontinuities that slid out of the window (`EXT-X-DISCONTINUITY-SEQUENCE`).
    discontinuity_seq: u64,
    /// `EXT-X-TARGETDURATION`, seconds: never decreases, so it never changes under a player
    /// but for a segment longer than any before.
    target_duration: u64,
}

impl Segmenter {
    /// A segmenter for a stream whose timestamps count `timescale` ticks per second.
    pub fn new(timescale: u32, options: HlsOptions) -> Segmenter {
        let target = options.target.as_secs_f64().ceil().max(1.0) as u64;
        Segmenter {
            options: HlsOptions {
                target: options.target,
                count: options.count.max(1),
            },
            timescale: timescale.max(1),
            muxer: Muxer::new(timescale, MuxOptions::default()),
            tracks: Vec::new(),
            start: None,
            current: BytesMut::new(),
            discontinuity: false,
            current_discontinuity: false,
            segments: VecDeque::new(),
            next_seq: 0,
            discontinuity_seq: 0,
            target_duration: target,
        }
    }

    /// Sets a track's configuration; a codec MPEG-TS cannot carry is refused and that
    /// track's frames are left out.
    pub fn config(&mut self, track: u8, codec: Codec, record: &[u8]) -> Result<(), MuxError> {
        let video = codec.kind() == TrackKind::Video;
        let known = self.tracks.iter().position(|&t| t == (video, track));
        match self.muxer.set_config(track, codec, record) {
            Ok(()) => {
                if known.is_none() {
                    self.tracks.push((video, track));
                }
                Ok(())
            }
            Err(e) => {
                if let Some(i) = known {
                    self.tracks.remove(i);
                }
                Err(e)
            }
        }
    }

    /// Takes one frame; true when it completed a segment.
    pub fn frame(&mut self, frame: &Frame) -> Result<bool, MuxError> {
        if !self.tracks.contains(&(frame.is_video(), frame.track)) {
            return Ok(false);
        }
        let has_video = self.tracks.iter().any(|t| t.0);
        let boundary = if has_video {
            frame.is_video_keyframe()
        } else {
            !frame.is_video()
        };
        let mut cut = false;
        match self.start {
            None if !boundary => return Ok(false),
            None => self.begin(frame.dts),
            Some(start) if boundary && frame.dts - start >= self.target_ticks() => {
                self.finish(frame.dts - start);
                self.begin(frame.dts);
                cut = true;
            }
            Some(_) => {}
        }
        self.muxer.write_frame(frame, &mut self.current)?;
        if self.current.len() > MAX_SEGMENT_BYTES {
            self.skip();
        }
        Ok(cut)
    }

    /// A new publisher with `timescale`: the unfinished segment is dropped, and the next
    /// one (after the new tracks' configurations) follows a discontinuity.
    pub fn restart(&mut self, timescale: u32) {
        let seen = self.start.is_some() || !self.segments.is_empty();
        self.skip();
        self.discontinuity = seen;
        self.timescale = timescale.max(1);
        self.muxer = Muxer::new(self.timescale, MuxOptions::default());
        self.tracks.clear();
    }

    /// Media was skipped (the reader fell behind): the unfinished segment is dropped and
    /// the next one starts at a keyframe after a discontinuity.
    pub fn skip(&mut self) {
        if self.start.take().is_some() {
            self.discontinuity = true;
        }
        self.current.clear();
    }

    /// The segments kept, oldest first.
    pub fn segments(&self) -> &VecDeque<Segment> {
        &self.segments
    }

    /// The segment `seq`, if kept.
    pub fn segment(&self, seq: u64) -> Option<&Segment> {
        let first = self.segments.front()?.seq;
        self.segments
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    /// The media playlist; each segment URI is `SEQ.ts` followed by `suffix` (the
    /// request's `?query`, so that a token reaches the segment requests too).
    pub fn playlist(&self, suffix: &str) -> String {
        let mut text = String::with_capacity(128 + self.segments.len() * (32 + suffix.len()));
        let first = self.segments.front().map_or(self.next_seq, |s| s.seq);
        let _ = write!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{first}\n",
            self.target_duration
        );
        if self.discontinuity_seq > 0 {
            let _ = writeln!(
                text,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_seq
            );
        }
        for s in &self.segments {
            if s.discontinuity {
                text.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = write!(text, "#EXTINF:{:.3},\n{}.ts{suffix}\n", s.duration, s.seq);
        }
        text
    }

    fn target_ticks(&self) -> i64 {
        (self.options.target.as_secs_f64() * f64::from(self.timescale)) as i64
    }

    fn begin(&mut self, dts: i64) {
        self.start = Some(dts);
        self.current_discontinuity = std::mem::take(&mut self.discontinuity);
        self.muxer.repeat_psi();
        if let Some(last) = self.segments.back() {
            self.current.reserve(last.data.len());
        }
    }

    fn finish(&mut self, ticks: i64) {
        let duration = ticks.max(0) as f64 / f64::from(self.timescale);
        self.target_duration = self.target_duration.max(duration.ceil() as u64);
        self.segments.push_back(Segment {
            seq: self.next_seq,
            duration,
            discontinuity: self.current_discontinuity,
            data: self.current.split().freeze(),
        });
        self.next_seq += 1;
        while self.segments.len() > self.options.count {
            if let Some(gone) = self.segments.pop_front() {
                self.discontinuity_seq += u64::from(gone.discontinuity);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::media::FrameFlags;

    /// avcC of a 64x64 baseline stream (one SPS, one PPS).
    const AVCC: &[u8] = &[
        0x01, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0x00, 0x09, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x04,
        0x6C, 0x84, 0x01, 0x00, 0x04, 0x68, 0xCB, 0x83, 0xCB,
    ];
    /// AudioSpecificConfig: AAC-LC, 44.1 kHz, stereo.
    const ASC: &[u8] = &[0x12, 0x10];

    fn opts() -> HlsOptions {
        HlsOptions {
            target: Duration::from_secs(2),
            count: 3,
        }
    }

    fn video(ms: i64, key: bool) -> Frame {
        Frame {
            track: 0,
            kind: TrackKind::Video,
            dts: ms,
            cts: 0,
            flags: FrameFlags::new(key, false),
            payload: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
        }
    }

    fn audio(ms: i64) -> Frame {
        Frame {
            track: 0,
            kind: TrackKind::Audio,
            dts: ms,
            cts: 0,
            flags: FrameFlags::KEYFRAME,
            payload: Bytes::from_static(&[0x21, 0x10, 0x04]),
        }
    }

    fn av() -> Segmenter {
        let mut s = Segmenter::new(1000, opts());
        s.config(0, Codec::H264, AVCC).unwrap();
        s.config(0, Codec::Aac, ASC).unwrap();
        s
    }

    /// 25 fps video from `from` with a keyframe every `gop_ms`, and audio every 40 ms, up
    /// to `end_ms`.
    fn feed(s: &mut Segmenter, from: i64, end_ms: i64, gop_ms: i64) -> usize {
        let mut cuts = 0;
        let mut ms = from;
        while ms < end_ms {
            cuts += usize::from(s.frame(&video(ms, (ms - from) % gop_ms == 0)).unwrap());
            cuts += usize::from(s.frame(&audio(ms)).unwrap());
            ms += 40;
        }
        cuts
    }

    #[test]
    fn cuts_at_the_first_keyframe_after_the_target() {
        let mut s = av();
        // Keyframes every 1.2 s: the first one at or after 2 s from a start is at 2.4 s.
        assert_eq!(feed(&mut s, 0, 7240, 1200), 3);
        let durations: Vec<f64> = s.segments().iter().map(|g| g.duration).collect();
        assert_eq!(durations, vec![2.4, 2.4, 2.4]);
        for g in s.segments() {
            assert_eq!(g.data[0], 0x47, "sync byte");
            // The first packet is the PAT (PID 0), with the unit start flag.
            assert_eq!((g.data[1], g.data[2]), (0x40, 0x00));
            assert!(g.data.len().is_multiple_of(188));
        }
    }

    #[test]
    fn frames_before_the_first_keyframe_are_left_out() {
        let mut s = av();
        assert!(!s.frame(&audio(0)).unwrap());
        assert!(!s.frame(&video(0, false)).unwrap());
        assert_eq!(feed(&mut s, 1000, 5000, 1000), 1);
        assert_eq!(s.segments()[0].duration, 2.0);
    }

    #[test]
    fn audio_only_cuts_on_time_and_every_segment_has_psi() {
        let mut s = Segmenter::new(1000, opts());
        s.config(0, Codec::Aac, ASC).unwrap();
        let mut ms = 0;
        while ms <= 6100 {
            s.frame(&audio(ms)).unwrap();
            ms += 23;
        }
        assert_eq!(s.segments().len(), 3);
        for g in s.segments() {
            assert!((2.0..2.03).contains(&g.duration), "{}", g.duration);
            assert_eq!((g.data[0], g.data[1], g.data[2]), (0x47, 0x40, 0x00));
        }
    }

    #[test]
    fn a_codec_ts_cannot_carry_is_left_out() {
        let mut s = Segmenter::new(1000, opts());
        assert!(s.config(0, Codec::Av1, &[0x81, 0, 0, 0]).is_err());
        s.config(0, Codec::Aac, ASC).unwrap();
        assert!(!s.frame(&video(0, true)).unwrap());
        // Audio-only cutting: the AV1 track does not count as video.
        let mut ms = 0;
        while ms <= 2100 {
            s.frame(&audio(ms)).unwrap();
            ms += 50;
        }
        assert_eq!(s.segments().len(), 1);
    }

    #[test]
    fn the_window_slides_and_the_playlist_matches() {
        let mut s = av();
        assert_eq!(feed(&mut s, 0, 10_040, 2000), 5);
        assert_eq!(s.segments().len(), 3);
        assert!(s.segment(1).is_none());
        assert_eq!(s.segment(3).map(|g| g.seq), Some(3));
        assert!(s.segment(5).is_none(), "still being written");
        assert_eq!(
            s.playlist(""),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n\
             #EXTINF:2.000,\n2.ts\n#EXTINF:2.000,\n3.ts\n#EXTINF:2.000,\n4.ts\n"
        );
    }

    #[test]
    fn a_new_publisher_is_a_discontinuity_and_the_query_is_kept() {
        let mut s = av();
        feed(&mut s, 0, 4040, 2000);
        assert_eq!(s.segments().len(), 2);
        s.restart(1000);
        // The new publisher's configurations, then media from 5 s with 2.4 s GOPs.
        s.config(0, Codec::H264, AVCC).unwrap();
        s.config(0, Codec::Aac, ASC).unwrap();
        assert_eq!(feed(&mut s, 5000, 12_200, 2400), 2);
        assert_eq!(
            s.playlist("?token=t"),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:1\n\
             #EXTINF:2.000,\n1.ts?token=t\n#EXT-X-DISCONTINUITY\n#EXTINF:2.400,\n2.ts?token=t\n\
             #EXTINF:2.400,\n3.ts?token=t\n"
        );
        // Once the discontinuity slid out, the playlist counts it.
        assert_eq!(feed(&mut s, 12_200, 17_200, 2400), 3);
        let text = s.playlist("");
        assert!(
            text.starts_with(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:4\n\
                 #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXTINF:2.400,\n4.ts\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_empty_playlist_lists_nothing() {
        let s = av();
        assert_eq!(
            s.playlist(""),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        );
    }
}
