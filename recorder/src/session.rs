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
    /// FLV when every track fits legacy FLV (H.264, AAC, MP3), else fragmented MP4.
    Auto,
    /// FLV where possible (falls back to MP4 for codecs FLV does not carry).
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

#[derive(Debug, Clone)]
struct Track {
    number: u8,
    info: TrackInfo,
}

struct OpenFile {
    id: FileId,
    muxer: Box<dyn Muxer>,
    origin: i64,
    /// Muxer track index of video and audio.
    index: [Option<usize>; 2],
    last: [u64; 2],
    video_started: bool,
    end: u64,
    failed: bool,
}

/// The recording state of one stream.
pub struct StreamRecorder {
    key: String,
    timescale: u32,
    settings: Arc<Settings>,
    video: Option<Track>,
    audio: Option<Track>,
    source: SourceInfo,
    file: Option<OpenFile>,
    seq: u32,
    video_seen: bool,
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

const V: usize = 0;
const A: usize = 1;

impl StreamRecorder {
    /// A stream announced with `key` and `timescale`.
    pub fn new(key: String, timescale: u32, settings: Arc<Settings>) -> Self {
        StreamRecorder {
            key,
            timescale: timescale.max(1),
            settings,
            video: None,
            audio: None,
            source: SourceInfo::default(),
            file: None,
            seq: 0,
            video_seen: false,
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

    /// A track's decoder configuration. Only track 0 of each kind is recorded. A change
    /// of an existing track ends the current file; the next one starts with the new config.
    pub fn on_track_config(
        &mut self,
        track: u8,
        codec: Codec,
        config: Bytes,
        out: &mut Vec<Command>,
    ) {
        if track != 0 {
            tracing::debug!(key = %self.key, track, "extra track not recorded");
            return;
        }
        let slot = match codec.kind() {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        };
        if let Some(t) = slot {
            if t.info.codec == codec && t.info.config == config {
                return;
            }
        }
        let mut info = TrackInfo::new(codec, config);
        // The colour description outlives a new sequence start of the same codec.
        info.color = slot
            .as_ref()
            .filter(|t| t.info.codec == codec)
            .and_then(|t| t.info.color);
        codecs::describe_from_config(&mut info);
        let changed = slot.is_some();
        *slot = Some(Track {
            number: track,
            info,
        });
        if self.file.is_some() {
            let reason = if changed {
                "config_change"
            } else {
                "track_added"
            };
            self.close(reason, out);
        }
    }

    /// E-RTMP video metadata of a track (`colorInfo`): the colour boxes of the files
    /// opened after it. A file already open keeps its init segment (FFmpeg sends the
    /// object after its first keyframe and repeats it; splitting files on it would cut
    /// every recording in two).
    pub fn on_track_metadata(&mut self, track: u8, payload: &[u8]) {
        let Some(t) = self.video.as_mut().filter(|t| t.number == track) else {
            return;
        };
        let Some(color) = codecs::color::parse(payload) else {
            tracing::debug!(key = %self.key, track, "video metadata other than colorInfo ignored");
            return;
        };
        let color = (!color.is_empty()).then_some(color);
        t.info.color = color;
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
            dts,
            cts,
            payload: data,
            ..
        } = frame;
        let k = if video { V } else { A };
        let Some(t) = (if video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        }) else {
            return;
        };
        if t.number != track {
            return;
        }
        if keyframe || !video {
            // Sizes and AC-3 configs the config record did not give (used by later files).
            let _ = codecs::describe_from_frame(&mut t.info, &data);
        }
        if video {
            self.video_seen = true;
        }
        let has_video = self.video.is_some();
        // Segment boundary: at a video keyframe (or any frame of an audio-only stream).
        if let (Some(f), Some(seg)) = (&self.file, self.settings.segment) {
            let boundary = if has_video { video && keyframe } else { true };
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
                keyframe
            } else {
                !has_video || !self.video_seen
            };
            if !may_open || !self.open(wall, dts, out) {
                return;
            }
        }
        let Some(f) = self.file.as_mut() else { return };
        let Some(index) = f.index[k] else { return };
        if video && !f.video_started {
            if !keyframe {
                return;
            }
            f.video_started = true;
        }
        let rel = (dts.saturating_sub(f.origin).max(0) as u64).max(f.last[k]);
        f.last[k] = rel;
        f.end = f.end.max(rel);
        let mut chunks = Vec::new();
        let sync = f.muxer.push(
            index,
            Sample {
                dts: rel,
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

    fn open(&mut self, wall: SystemTime, dts: i64, out: &mut Vec<Command>) -> bool {
        let mut video = self.video.as_ref().map(|t| t.info.clone());
        let mut audio = self.audio.as_ref().map(|t| t.info.clone());
        let s = &self.source;
        if let Some(v) = video.as_mut() {
            if let (Some(w), Some(h)) = (s.width, s.height) {
                if w >= 1.0 && h >= 1.0 && w < 65536.0 && h < 65536.0 {
                    v.width = w as u32;
                    v.height = h as u32;
                }
            }
            v.frame_rate = s
                .frame_rate
                .filter(|f| *f > 0.0 && *f < 1000.0)
                .unwrap_or(0.0);
        }
        if let Some(a) = audio.as_mut() {
            if a.sample_rate == 0 {
                a.sample_rate = s.audio_rate.filter(|r| *r > 0.0 && *r < 1e6).unwrap_or(0.0) as u32;
            }
            if a.channels == 0 {
                a.channels = s
                    .audio_channels
                    .filter(|c| *c >= 1.0 && *c < 256.0)
                    .unwrap_or(0.0) as u16;
            }
        }
        let all_flv = video
            .iter()
            .chain(audio.iter())
            .all(|t| flv::supported(t.codec));
        let use_flv = all_flv && self.settings.format != Format::Mp4;
        let fits = |t: &TrackInfo| {
            if use_flv {
                flv::supported(t.codec)
            } else {
                mp4::entry::supported(t.codec)
            }
        };
        let video = video.filter(fits);
        let audio = audio.filter(fits);
        if video.is_none() && audio.is_none() {
            if !self.unsupported_logged {
                tracing::warn!(key = %self.key, "no track of this stream can be recorded");
                self.unsupported_logged = true;
            }
            return false;
        }
        let mut index = [None, None];
        let mut tracks = Vec::new();
        if let Some(v) = video {
            index[V] = Some(tracks.len());
            tracks.push(v);
        }
        if let Some(a) = audio {
            index[A] = Some(tracks.len());
            tracks.push(a);
        }
        let mut muxer: Box<dyn Muxer> = if use_flv {
            Box::new(FlvMuxer::new(tracks, self.timescale))
        } else {
            let mut o = Mp4Options::new(self.timescale);
            o.fragment = (self.settings.fragment.as_millis() as u64 * u64::from(self.timescale)
                / 1000)
                .max(1);
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
        self.file = Some(OpenFile {
            id,
            muxer,
            origin: dts,
            index,
            last: [0, 0],
            video_started: false,
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
}
