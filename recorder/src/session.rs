//! One stream's recording, sans-IO: which file is open, when a new one starts (segments,
//! gaps, config changes, write errors), timestamps relative to the file's first frame, and
//! the muxer commands for the writer. The hub link feeds it messages; it returns
//! [`Command`]s.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use proto::media::{Codec, Frame, TrackKind};

use crate::codecs;
use crate::flv::{self, FlvMuxer};
use crate::metadata::{self, SourceInfo};
use crate::mp4::{self, Mp4Muxer, Mp4Options};
use crate::mux::{Muxer, Sample, TrackInfo};
use crate::naming::{DateTime, NameInput, Namer};
use crate::writer::{next_file_id, Command, FileId};

/// Which container to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// FLV when every track fits legacy FLV (H.264, AAC, MP3; at most one video and one
    /// audio track, no nanosecond offsets), else fragmented MP4.
    Auto,
    /// FLV where possible (falls back to MP4 for codecs FLV does not carry, for
    /// multitrack streams and for nanosecond offsets).
    Flv,
    /// Fragmented MP4 always.
    Mp4,
}

/// Settings shared by every stream.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where and how files are named.
    pub namer: Namer,
    /// Container choice.
    pub format: Format,
    /// Start a new file at the first keyframe after this much media.
    pub segment: Option<Duration>,
    /// Target MP4 fragment length.
    pub fragment: Duration,
    /// After a write error, wait this long before trying a new file.
    pub retry_after: Duration,
}

/// Nanosecond offsets (E-RTMP ModEx TimestampOffsetNano) are kept in MP4 files by
/// writing them in this many ticks per stream tick (microseconds for RTMP's milliseconds).
const FINE_SCALE: u64 = 1000;

#[derive(Debug, Clone)]
struct Track {
    kind: TrackKind,
    number: u8,
    info: TrackInfo,
    /// ModEx TimestampOffsetNano for this track's next frame.
    nanos: u32,
}

impl Track {
    fn is(&self, kind: TrackKind, number: u8) -> bool {
        self.kind == kind && self.number == number
    }
}

struct OpenFile {
    id: FileId,
    muxer: Box<dyn Muxer>,
    origin: i64,
    /// Per stream track (the order of `StreamRecorder::tracks`): its muxer track index,
    /// or `None` when the container does not carry it.
    index: Vec<Option<usize>>,
    /// Per stream track: decode time of its last sample, in file ticks.
    last: Vec<u64>,
    /// Per stream track: whether its samples started (video waits for a keyframe).
    started: Vec<bool>,
    /// File ticks per stream tick: [`FINE_SCALE`] when nanosecond offsets are written.
    scale: u64,
    end: u64,
    failed: bool,
}

/// The recording state of one stream.
pub struct StreamRecorder {
    key: String,
    timescale: u32,
    settings: Arc<Settings>,
    /// Every track seen, video before audio, each kind by track number; muxer tracks
    /// keep this order.
    tracks: Vec<Track>,
    source: SourceInfo,
    file: Option<OpenFile>,
    seq: u32,
    video_seen: bool,
    /// The publisher sends nanosecond offsets: MP4 files get the finer timescale.
    nanos_seen: bool,
    blocked_until: Option<Instant>,
    unsupported_logged: bool,
}

impl std::fmt::Debug for StreamRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecorder")
            .field("key", &self.key)
            .field("file", &self.file.as_ref().map(|f| f.id))
            .finish()
    }
}

/// Sort key of a track: video first, then by track number.
fn order(kind: TrackKind, number: u8) -> (bool, u8) {
    (kind != TrackKind::Video, number)
}

impl StreamRecorder {
    /// A stream announced with `key` and `timescale`.
    pub fn new(key: String, timescale: u32, settings: Arc<Settings>) -> Self {
        StreamRecorder {
            key,
            timescale: timescale.max(1),
            settings,
            tracks: Vec::new(),
            source: SourceInfo::default(),
            file: None,
            seq: 0,
            video_seen: false,
            nanos_seen: false,
            blocked_until: None,
            unsupported_logged: false,
        }
    }

    /// The stream key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The file being written, if any.
    pub fn current_file(&self) -> Option<FileId> {
        self.file.as_ref().filter(|f| !f.failed).map(|f| f.id)
    }

    fn position(&self, kind: TrackKind, number: u8) -> Option<usize> {
        self.tracks.iter().position(|t| t.is(kind, number))
    }

    /// A track's decoder configuration. Every track of the stream is recorded (E-RTMP
    /// multitrack ids included). A change of an existing track, or a new track, ends the
    /// current file; the next one starts with the new set.
    pub fn on_track_config(
        &mut self,
        track: u8,
        codec: Codec,
        config: Bytes,
        out: &mut Vec<Command>,
    ) {
        let kind = codec.kind();
        let existing = self.position(kind, track);
        if let Some(t) = existing.map(|i| &self.tracks[i]) {
            if t.info.codec == codec && t.info.config == config {
                return;
            }
        }
        let mut info = TrackInfo::new(codec, config);
        // The colour description outlives a new sequence start of the same codec.
        info.color = existing
            .map(|i| &self.tracks[i].info)
            .filter(|i| i.codec == codec)
            .and_then(|i| i.color);
        codecs::describe_from_config(&mut info);
        let t = Track {
            kind,
            number: track,
            info,
            nanos: 0,
        };
        let reason = match existing {
            Some(i) => {
                self.tracks[i] = t;
                "config_change"
            }
            None => {
                let at = self
                    .tracks
                    .partition_point(|t| order(t.kind, t.number) < order(kind, track));
                self.tracks.insert(at, t);
                "track_added"
            }
        };
        // The open file's track list no longer matches (indexes shift on insertion).
        self.close(reason, out);
    }

    /// E-RTMP video metadata of a track (`colorInfo`): the colour boxes of the files
    /// opened after it. A file already open keeps its init segment (FFmpeg sends the
    /// object after its first keyframe and repeats it; splitting files on it would cut
    /// every recording in two).
    pub fn on_track_metadata(&mut self, track: u8, payload: &[u8]) {
        let Some(i) = self.position(TrackKind::Video, track) else {
            return;
        };
        let Some(color) = codecs::color::parse(payload) else {
            tracing::debug!(key = %self.key, track, "video metadata other than colorInfo ignored");
            return;
        };
        self.tracks[i].info.color = (!color.is_empty()).then_some(color);
    }

    /// E-RTMP ModEx TimestampOffsetNano: the next frame of the track is presented
    /// `nanos` after its timestamp. MP4 files opened once this was seen write it (their
    /// timescale is [`FINE_SCALE`] times the stream's); FLV and files opened before keep
    /// the stream's resolution.
    pub fn on_timestamp_offset(&mut self, track: u8, video: bool, nanos: u32) {
        self.nanos_seen = true;
        if let Some(i) = self.position(TrackKind::from_video(video), track) {
            self.tracks[i].nanos = nanos.min(999_999);
        }
    }

    /// The stream's `onMetaData` (used by the files opened after it).
    pub fn on_metadata(&mut self, payload: &[u8]) {
        self.source = metadata::parse(payload);
    }

    /// The hub dropped data for us: end the file rather than write a gap into it.
    pub fn on_dropped(&mut self, frames: u64, bytes: u64, out: &mut Vec<Command>) {
        tracing::warn!(key = %self.key, frames, bytes, "hub dropped data for the recorder, starting a new file");
        self.close("dropped", out);
    }

    /// The stream ended (or the hub connection did).
    pub fn on_end(&mut self, reason: &str, out: &mut Vec<Command>) {
        self.close(reason, out);
    }

    /// The writer failed on `file`; returns the media duration written in milliseconds
    /// when it was this stream's file. Recording resumes in a new file after the retry delay.
    pub fn on_write_failed(&mut self, file: FileId, now: Instant) -> Option<u64> {
        let end = self.file.as_ref().filter(|f| f.id == file)?.end;
        let ms = self.ms(end);
        self.file = None;
        self.blocked_until = Some(now + self.settings.retry_after);
        Some(ms)
    }

    fn ms(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1000 / u128::from(self.timescale)) as u64
    }

    fn close(&mut self, reason: &str, out: &mut Vec<Command>) {
        if let Some(mut f) = self.file.take() {
            let mut chunks = Vec::new();
            f.muxer.finish(&mut chunks);
            let duration_ms = self.ms(f.end);
            out.push(Command::Close {
                file: f.id,
                chunks,
                reason: reason.to_owned(),
                duration_ms,
            });
            self.seq += 1;
        }
    }

    /// One media frame, as the hub sends it.
    pub fn on_frame(
        &mut self,
        now: Instant,
        wall: SystemTime,
        frame: Frame,
        out: &mut Vec<Command>,
    ) {
        let (keyframe, video) = (frame.is_keyframe(), frame.is_video());
        let Frame {
            track,
            kind,
            dts,
            cts,
            payload: data,
            ..
        } = frame;
        let Some(ti) = self.position(kind, track) else {
            return;
        };
        let t = &mut self.tracks[ti];
        let nanos = std::mem::take(&mut t.nanos);
        if keyframe || !video {
            // Sizes and AC-3 configs the config record did not give (used by later files).
            let _ = codecs::describe_from_frame(&mut t.info, &data);
        }
        if video {
            self.video_seen = true;
        }
        let has_video = self
            .tracks
            .first()
            .is_some_and(|t| t.kind == TrackKind::Video);
        // Files and segments start at keyframes of the first video track; the others
        // join at their own next keyframe.
        let primary = video && ti == 0;
        // Segment boundary: at a video keyframe (or any frame of an audio-only stream).
        if let (Some(f), Some(seg)) = (&self.file, self.settings.segment) {
            let boundary = if has_video { primary && keyframe } else { true };
            let seg_ticks = seg.as_millis() as u64 * u64::from(self.timescale) / 1000;
            let rel = dts.saturating_sub(f.origin).max(0) as u64;
            if boundary && rel >= seg_ticks {
                self.close("segment", out);
            }
        }
        if self.file.is_none() {
            if self.blocked_until.is_some_and(|t| now < t) {
                return;
            }
            // A file starts at a video keyframe, or on audio before the stream's first
            // video frame (audio that precedes video is kept), or on anything audio-only.
            let may_open = if video {
                primary && keyframe
            } else {
                !has_video || !self.video_seen
            };
            if !may_open || !self.open(wall, dts, out) {
                return;
            }
        }
        let timescale = u64::from(self.timescale);
        let Some(f) = self.file.as_mut() else { return };
        let Some(index) = f.index[ti] else { return };
        if !f.started[ti] {
            if video && !keyframe {
                return;
            }
            f.started[ti] = true;
        }
        let rel = dts.saturating_sub(f.origin).max(0) as u64;
        let offset = if f.scale > 1 {
            u64::from(nanos) * timescale * f.scale / 1_000_000_000
        } else {
            0
        };
        let at = (rel * f.scale + offset).max(f.last[ti]);
        f.last[ti] = at;
        f.end = f.end.max(rel);
        let cts = i32::try_from(i64::from(cts) * f.scale as i64).unwrap_or(if cts < 0 {
            i32::MIN
        } else {
            i32::MAX
        });
        let mut chunks = Vec::new();
        let sync = f.muxer.push(
            index,
            Sample {
                dts: at,
                cts,
                keyframe,
                data,
            },
            &mut chunks,
        );
        if !chunks.is_empty() {
            out.push(Command::Write {
                file: f.id,
                chunks,
                sync,
            });
        }
    }

    /// What a new file knows of track `t`: its configuration with the source's
    /// description (size, rate, language, name) applied.
    fn describe(&self, t: &Track) -> TrackInfo {
        let mut info = t.info.clone();
        let s = self.source.track(t.kind, t.number);
        match t.kind {
            TrackKind::Video => {
                if let (Some(w), Some(h)) = (s.width, s.height) {
                    if w >= 1.0 && h >= 1.0 && w < 65536.0 && h < 65536.0 {
                        info.width = w as u32;
                        info.height = h as u32;
                    }
                }
                info.frame_rate = s
                    .frame_rate
                    .filter(|f| *f > 0.0 && *f < 1000.0)
                    .unwrap_or(0.0);
            }
            TrackKind::Audio => {
                if info.sample_rate == 0 {
                    info.sample_rate =
                        s.audio_rate.filter(|r| *r > 0.0 && *r < 1e6).unwrap_or(0.0) as u32;
                }
                if info.channels == 0 {
                    info.channels = s
                        .audio_channels
                        .filter(|c| *c >= 1.0 && *c < 256.0)
                        .unwrap_or(0.0) as u16;
                }
            }
        }
        info.language = s.language;
        info.name = s.name;
        info
    }

    fn open(&mut self, wall: SystemTime, dts: i64, out: &mut Vec<Command>) -> bool {
        let infos: Vec<TrackInfo> = self.tracks.iter().map(|t| self.describe(t)).collect();
        // Legacy FLV holds one track of each kind; more tracks need MP4.
        let one_each = [TrackKind::Video, TrackKind::Audio]
            .iter()
            .all(|k| self.tracks.iter().filter(|t| t.kind == *k).count() <= 1);
        // FLV would also lose nanosecond offsets.
        let all_flv = one_each && !self.nanos_seen && infos.iter().all(|t| flv::supported(t.codec));
        let use_flv = all_flv && self.settings.format != Format::Mp4;
        let fits = |t: &TrackInfo| {
            if use_flv {
                flv::supported(t.codec)
            } else {
                mp4::entry::supported(t.codec)
            }
        };
        let mut index = Vec::with_capacity(infos.len());
        let mut tracks = Vec::new();
        for info in infos {
            if fits(&info) {
                index.push(Some(tracks.len()));
                tracks.push(info);
            } else {
                index.push(None);
            }
        }
        if tracks.is_empty() {
            if !self.unsupported_logged {
                tracing::warn!(key = %self.key, "no track of this stream can be recorded");
                self.unsupported_logged = true;
            }
            return false;
        }
        let fine = u32::try_from(u64::from(self.timescale) * FINE_SCALE).ok();
        let scale = match fine {
            Some(_) if self.nanos_seen && !use_flv => FINE_SCALE,
            _ => 1,
        };
        let mut muxer: Box<dyn Muxer> = if use_flv {
            Box::new(FlvMuxer::new(tracks, self.timescale))
        } else {
            let file_scale = u64::from(self.timescale) * scale;
            let mut o = Mp4Options::new(file_scale as u32);
            o.fragment = (self.settings.fragment.as_millis() as u64 * file_scale / 1000).max(1);
            Box::new(Mp4Muxer::new(tracks, o))
        };
        let path = match self.settings.namer.path(&NameInput {
            key: &self.key,
            time: DateTime::utc(wall),
            seq: self.seq,
            ext: muxer.extension(),
        }) {
            Ok(p) => p,
            Err(e) => {
                if !self.unsupported_logged {
                    tracing::warn!(key = %self.key, error = %e, "cannot name a file for this stream");
                    self.unsupported_logged = true;
                }
                return false;
            }
        };
        let mut chunks = Vec::new();
        muxer.header(&mut chunks);
        let id = next_file_id();
        out.push(Command::Open {
            file: id,
            path,
            chunks,
        });
        self.blocked_until = None;
        let n = index.len();
        self.file = Some(OpenFile {
            id,
            muxer,
            origin: dts,
            index,
            last: vec![0; n],
            started: vec![false; n],
            scale,
            end: 0,
            failed: false,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::DEFAULT_PATTERN;
    use proto::media::FrameFlags;

    fn settings(segment: Option<u64>) -> Arc<Settings> {
        Arc::new(Settings {
            namer: Namer::new("/rec", DEFAULT_PATTERN).unwrap(),
            format: Format::Auto,
            segment: segment.map(Duration::from_secs),
            fragment: Duration::from_secs(1),
            retry_after: Duration::from_secs(2),
        })
    }

    #[derive(Debug, PartialEq)]
    enum K {
        Open,
        Write,
        Close(String),
    }

    fn kinds(cmds: &mut Vec<Command>) -> Vec<K> {
        cmds.drain(..)
            .map(|c| match c {
                Command::Open { .. } => K::Open,
                Command::Write { .. } => K::Write,
                Command::Close { reason, .. } => K::Close(reason),
            })
            .collect()
    }

    struct H {
        s: StreamRecorder,
        now: Instant,
        out: Vec<Command>,
    }

    impl H {
        fn new(segment: Option<u64>, video: bool) -> H {
            let mut s = StreamRecorder::new("live/x".into(), 1000, settings(segment));
            let mut out = Vec::new();
            if video {
                s.on_track_config(
                    0,
                    Codec::H264,
                    Bytes::from_static(&[1, 0x64, 0, 0x1f]),
                    &mut out,
                );
            }
            s.on_track_config(0, Codec::Aac, Bytes::from_static(&[0x12, 0x10]), &mut out);
            assert!(out.is_empty());
            H {
                s,
                now: Instant::now(),
                out,
            }
        }
        fn v(&mut self, dts: i64, key: bool) -> Vec<K> {
            let frame = Frame {
                track: 0,
                kind: TrackKind::Video,
                dts,
                cts: 0,
                flags: FrameFlags::new(key, false),
                payload: Bytes::from_static(&[0; 9]),
            };
            self.s
                .on_frame(self.now, SystemTime::now(), frame, &mut self.out);
            kinds(&mut self.out)
        }
        fn a(&mut self, dts: i64) -> Vec<K> {
            let frame = Frame {
                track: 0,
                kind: TrackKind::Audio,
                dts,
                cts: 0,
                flags: FrameFlags::KEYFRAME,
                payload: Bytes::from_static(&[0; 4]),
            };
            self.s
                .on_frame(self.now, SystemTime::now(), frame, &mut self.out);
            kinds(&mut self.out)
        }
    }

    #[test]
    fn audio_before_video_opens_the_file() {
        let mut h = H::new(None, true);
        assert_eq!(h.a(0), vec![K::Open, K::Write]);
        assert_eq!(h.v(10, false), vec![], "video starts at a keyframe");
        assert_eq!(h.v(50, true), vec![K::Write]);
    }

    #[test]
    fn segments_cut_at_keyframes() {
        let mut h = H::new(Some(1), true);
        assert_eq!(h.v(0, true), vec![K::Open, K::Write]);
        assert_eq!(h.v(1200, false), vec![K::Write]);
        assert_eq!(h.a(1200), vec![K::Write]);
        assert_eq!(
            h.v(1400, true),
            vec![K::Close("segment".into()), K::Open, K::Write]
        );
    }

    #[test]
    fn audio_only_segments_on_any_frame() {
        let mut h = H::new(Some(1), false);
        assert_eq!(h.a(0), vec![K::Open, K::Write]);
        assert_eq!(h.a(999), vec![K::Write]);
        assert_eq!(h.a(1000).first(), Some(&K::Close("segment".into())));
    }

    #[test]
    fn dropped_waits_for_a_keyframe() {
        let mut h = H::new(None, true);
        h.v(0, true);
        h.a(0);
        h.s.on_dropped(5, 500, &mut h.out);
        assert_eq!(kinds(&mut h.out), vec![K::Close("dropped".into())]);
        assert_eq!(h.a(100), vec![], "no audio-only head after a gap");
        assert_eq!(h.v(120, false), vec![]);
        assert_eq!(h.v(160, true), vec![K::Open, K::Write]);
    }

    #[test]
    fn write_failure_resumes_after_the_delay() {
        let mut h = H::new(None, true);
        h.v(0, true);
        let id = h.s.current_file().unwrap();
        assert_eq!(h.s.on_write_failed(id, h.now), Some(0));
        assert_eq!(h.s.current_file(), None);
        assert_eq!(h.v(1000, true), vec![], "still inside the retry delay");
        h.now += Duration::from_secs(3);
        assert_eq!(h.v(3000, true), vec![K::Open, K::Write]);
        assert_ne!(h.s.current_file(), Some(id));
    }

    #[test]
    fn config_change_and_new_track_start_new_files() {
        let mut h = H::new(None, false);
        h.a(0);
        h.s.on_track_config(0, Codec::Aac, Bytes::from_static(&[0x12, 0x10]), &mut h.out);
        assert_eq!(kinds(&mut h.out), vec![], "same config: nothing");
        h.s.on_track_config(
            0,
            Codec::H264,
            Bytes::from_static(&[1, 0x64, 0, 0x1f]),
            &mut h.out,
        );
        assert_eq!(kinds(&mut h.out), vec![K::Close("track_added".into())]);
        assert_eq!(h.v(40, true), vec![K::Open, K::Write]);
        h.s.on_track_config(
            0,
            Codec::H264,
            Bytes::from_static(&[1, 0x4d, 0, 0x1f]),
            &mut h.out,
        );
        assert_eq!(kinds(&mut h.out), vec![K::Close("config_change".into())]);
    }

    #[test]
    fn timestamps_are_relative_and_monotonic() {
        let mut h = H::new(None, true);
        h.v(5000, true);
        h.a(4990); // slightly before the origin: clamped to 0, never negative
        h.s.on_end("unpublish", &mut h.out);
        let Some(Command::Close { duration_ms, .. }) = h.out.pop() else {
            panic!()
        };
        assert_eq!(duration_ms, 0);
    }

    /// Every chunk of every command, applied to one in-memory file.
    fn file_bytes(cmds: &[Command]) -> Vec<u8> {
        let mut file = Vec::new();
        for c in cmds {
            match c {
                Command::Open { chunks, .. }
                | Command::Write { chunks, .. }
                | Command::Close { chunks, .. } => crate::mux::apply(&mut file, chunks),
            }
        }
        file
    }

    fn frame(kind: TrackKind, track: u8, dts: i64, key: bool) -> Frame {
        Frame {
            track,
            kind,
            dts,
            cts: 0,
            flags: FrameFlags::new(key, false),
            payload: Bytes::from_static(&[7; 5]),
        }
    }

    fn count(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).filter(|w| *w == needle).count()
    }

    #[test]
    fn every_track_of_a_multitrack_stream_is_recorded() {
        let mut s = StreamRecorder::new("live/mt".into(), 1000, settings(None));
        let mut out = Vec::new();
        let avc = Bytes::from_static(&[1, 0x64, 0, 0x1f]);
        let aac = Bytes::from_static(&[0x12, 0x10]);
        // Out of order on purpose: the file lists video 0, video 1, audio 0, audio 2.
        s.on_track_config(2, Codec::Aac, aac.clone(), &mut out);
        s.on_track_config(1, Codec::H264, avc.clone(), &mut out);
        s.on_track_config(0, Codec::Aac, aac, &mut out);
        s.on_track_config(0, Codec::H264, avc, &mut out);
        let mut meta = vec![0x02, 0, 10];
        meta.extend_from_slice(b"onMetaData\x03\x00\x13audioTrackIdInfoMap\x03\x00\x012\x03");
        meta.extend_from_slice(b"\x00\x08language\x02\x00\x03fra\x00\x04name\x02\x00\x02FR");
        meta.extend_from_slice(b"\x00\x00\x09\x00\x00\x09\x00\x00\x09");
        s.on_metadata(&meta);
        assert!(out.is_empty());
        let now = Instant::now();
        let wall = SystemTime::now();
        // Video 1 starts with an inter frame: it waits for its own keyframe.
        s.on_frame(now, wall, frame(TrackKind::Video, 1, 0, false), &mut out);
        assert!(out.is_empty(), "no file before the first track's keyframe");
        for i in 0..10 {
            let key = i % 5 == 0;
            s.on_frame(now, wall, frame(TrackKind::Video, 0, i * 40, key), &mut out);
            s.on_frame(
                now,
                wall,
                frame(TrackKind::Video, 1, i * 40, i == 3),
                &mut out,
            );
            s.on_frame(
                now,
                wall,
                frame(TrackKind::Audio, 0, i * 40, true),
                &mut out,
            );
            s.on_frame(
                now,
                wall,
                frame(TrackKind::Audio, 2, i * 40, true),
                &mut out,
            );
            s.on_frame(
                now,
                wall,
                frame(TrackKind::Audio, 7, i * 40, true),
                &mut out,
            );
        }
        s.on_end("unpublish", &mut out);
        assert_eq!(
            out.iter()
                .filter(|c| matches!(c, Command::Open { .. }))
                .count(),
            1
        );
        let Some(Command::Open { path, .. }) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(path.extension().unwrap(), "mp4", "multitrack needs MP4");
        let file = file_bytes(&out);
        assert_eq!(count(&file, b"trak"), 4);
        assert_eq!(count(&file, b"trex"), 4);
        assert_eq!(count(&file, b"avc1"), 2);
        assert_eq!(count(&file, b"mp4a"), 2);
        // Track ids 1..4 in the order above; audio 2 carries its language and name.
        let mdhd: Vec<usize> = file
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == b"mdhd")
            .map(|(i, _)| i)
            .collect();
        let langs: Vec<&[u8]> = mdhd.iter().map(|i| &file[i + 24..i + 26]).collect();
        assert_eq!(
            langs,
            [[0x55, 0xc4], [0x55, 0xc4], [0x55, 0xc4], [0x1a, 0x41]]
        );
        assert_eq!(count(&file, b"\xa9nam\x00\x02\x55\xc4FR"), 1);
        // Every sample of every track is there once: 10 + 7 (video 1 from its keyframe)
        // + 10 + 10 samples of 5 bytes (track 7 was never configured).
        let samples: u32 = file
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == b"trun")
            .map(|(i, _)| u32::from_be_bytes(file[i + 8..i + 12].try_into().unwrap()))
            .sum();
        assert_eq!(samples, 37);
    }

    #[test]
    fn nanosecond_offsets_refine_mp4_timing() {
        let mut s = StreamRecorder::new("live/ns".into(), 1000, settings(None));
        let mut out = Vec::new();
        s.on_track_config(
            0,
            Codec::H264,
            Bytes::from_static(&[1, 0x64, 0, 0x1f]),
            &mut out,
        );
        let now = Instant::now();
        // 30 fps: 0, 33.333333, 66.666667, 100 ms as milliseconds plus nanoseconds.
        for (i, (ms, nanos)) in [(0, 0), (33, 333_333), (66, 666_667), (100, 0)]
            .into_iter()
            .enumerate()
        {
            if nanos > 0 {
                s.on_timestamp_offset(0, true, nanos);
            } else if i == 0 {
                s.on_timestamp_offset(0, true, 1);
            }
            let f = frame(TrackKind::Video, 0, 5000 + ms, i == 0);
            s.on_frame(now, SystemTime::now(), f, &mut out);
        }
        s.on_end("unpublish", &mut out);
        let file = file_bytes(&out);
        assert!(!file.is_empty(), "{out:?}");
        let mvhd = file.windows(4).position(|w| w == b"mvhd").unwrap();
        assert_eq!(&file[mvhd + 16..mvhd + 20], &1_000_000u32.to_be_bytes());
        let trun = file.windows(4).position(|w| w == b"trun").unwrap();
        #[rustfmt::skip]
        let want: &[u8] = &[
            b't', b'r', b'u', b'n', 1, 0, 0x0f, 0x01, 0, 0, 0, 4, 0, 0, 0, 0,
            0, 0, 0x82, 0x35, 0, 0, 0, 5, 2, 0, 0, 0, 0, 0, 0, 0, // 33 333 us
            0, 0, 0x82, 0x35, 0, 0, 0, 5, 1, 1, 0, 0, 0, 0, 0, 0, // 33 333 us
            0, 0, 0x82, 0x36, 0, 0, 0, 5, 1, 1, 0, 0, 0, 0, 0, 0, // 33 334 us
        ];
        let got = &file[trun..trun + want.len()];
        assert_eq!(&got[..12], &want[..12]);
        assert_eq!(&got[16..], &want[16..], "durations: {got:02x?}");
        let tfdt = file.windows(4).position(|w| w == b"tfdt").unwrap();
        assert_eq!(&file[tfdt + 8..tfdt + 16], &0u64.to_be_bytes());
    }

    #[test]
    fn offsets_seen_after_a_file_opened_wait_for_the_next_file() {
        let mut h = H::new(None, true);
        h.v(0, true);
        h.s.on_timestamp_offset(0, true, 500_000);
        assert_eq!(
            h.v(40, false),
            vec![K::Write],
            "the file keeps its timescale"
        );
    }
}
