//! PES packets to hub frames: Annex B to length-prefixed samples with their
//! configuration records, audio PES cut into single frames with their own timestamps,
//! every timestamp on the program clock.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::ac3::Ac3Header;
use super::adts::{AdtsHeader, SAMPLES_PER_FRAME};
use super::annexb::{self, NalClass};
use super::demux::{DemuxEvent, DemuxLimits, Demuxer, Pes, StreamKind};
use super::latm::{self, LatmDecoder};
use super::mpa::MpaHeader;
use super::opus;
use super::params::ParamSets;
use super::timestamp::{delta33, ProgramClock, CLOCK_RATE};
use super::{h264, h265, TsError};
use crate::media::{Codec, Frame, FrameFlags, TrackKind};

/// Settings of a [`FrameReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Demuxer limits.
    pub limits: DemuxLimits,
    /// A timestamp step larger than this (90 kHz ticks) is a discontinuity: the timeline
    /// continues from where it was instead of jumping.
    pub max_gap: u64,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            limits: DemuxLimits::default(),
            max_gap: 10 * u64::from(CLOCK_RATE),
        }
    }
}

/// Longest partial audio frame carried from one PES to the next.
const MAX_CARRY: usize = 16 * 1024;

/// What a [`FrameReader`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsEvent {
    /// Decoder configuration of a track, before its first frame and whenever it changes.
    Config {
        /// Track number.
        track: u8,
        /// Codec.
        codec: Codec,
        /// The configuration record (FORMAT.md section 5), possibly empty.
        config: Bytes,
    },
    /// A frame: track 0 for the first video and the first audio stream of the program,
    /// 1, 2 ... for further ones of the same kind; timestamps 90 kHz on the program's
    /// timeline.
    Frame(Frame),
    /// A stream of the program that is not carried (its PID and stream type).
    Unsupported {
        /// PID.
        pid: u16,
        /// stream_type.
        stream_type: u8,
    },
    /// Damage contained to one unit; reading goes on.
    Error(TsError),
}

#[derive(Debug)]
struct VideoState {
    params: ParamSets,
    has_config: bool,
    last_dts: Option<u64>,
    /// The last output DTS.
    last_out: Option<i64>,
}

#[derive(Debug)]
struct AudioState {
    config: Option<Bytes>,
    /// Timestamp of the PES the frames are counted from, and the samples since.
    base: Option<i64>,
    samples: u64,
    rate: u32,
    carry: BytesMut,
    latm: LatmDecoder,
    /// DTS of the last frame reported.
    last_out: Option<i64>,
}

impl AudioState {
    fn now(&self) -> Option<i64> {
        let rate = u64::from(self.rate.max(1));
        let ticks = (self.samples * u64::from(CLOCK_RATE) + rate / 2) / rate;
        Some(self.base? + ticks as i64)
    }

    /// Moves the count to a new base, keeping the current rate.
    fn rebase(&mut self, ts: i64) {
        self.base = Some(ts);
        self.samples = 0;
    }

    fn advance(&mut self, samples: u32, rate: u32) {
        if rate != self.rate {
            if let Some(now) = self.now() {
                self.rebase(now);
            }
            self.rate = rate;
        }
        self.samples += u64::from(samples);
    }
}

#[derive(Debug)]
enum State {
    Video(VideoState),
    Audio(AudioState),
}

#[derive(Debug)]
struct Track {
    pid: u16,
    kind: StreamKind,
    number: u8,
    state: State,
}

/// One audio frame found in a payload.
struct AudioUnit {
    /// Bytes of container header before the codec frame (ADTS header, Opus control header).
    skip: usize,
    /// Whole length, header included.
    len: usize,
    samples: u32,
    rate: u32,
    config: Option<Bytes>,
}

/// The frame at `data[pos..]`: `Ok(None)` if incomplete, `Err(())` if not a valid frame.
fn audio_unit(kind: StreamKind, data: &[u8], pos: usize) -> Result<Option<AudioUnit>, ()> {
    let d = &data[pos..];
    let need_more = |min: usize| d.len() < min;
    match kind {
        StreamKind::AacAdts => {
            if need_more(7) {
                return Ok(None);
            }
            let h = AdtsHeader::parse(d).ok_or(())?;
            if h.blocks != 1 || h.frame_len < h.header_len {
                return Err(());
            }
            Ok((d.len() >= h.frame_len).then(|| AudioUnit {
                skip: h.header_len,
                len: h.frame_len,
                samples: SAMPLES_PER_FRAME,
                rate: h.sample_rate(),
                config: Some(Bytes::copy_from_slice(&h.audio_specific_config())),
            }))
        }
        StreamKind::MpegAudio => {
            if need_more(4) {
                return Ok(None);
            }
            let h = MpaHeader::parse(d).ok_or(())?;
            Ok((d.len() >= h.frame_len).then_some(AudioUnit {
                skip: 0,
                len: h.frame_len,
                samples: h.samples,
                rate: h.sample_rate,
                config: None,
            }))
        }
        StreamKind::Ac3 | StreamKind::Eac3 => {
            if need_more(8) {
                return Ok(None);
            }
            let h = Ac3Header::parse(d).ok_or(())?;
            if h.enhanced != (kind == StreamKind::Eac3) || h.frame_len < 8 {
                return Err(());
            }
            // An E-AC-3 access unit is an independent substream and the dependent ones
            // (7.1 and up) that follow it.
            let mut len = h.frame_len;
            while h.enhanced && d.len() > len {
                match Ac3Header::parse(&d[len..]) {
                    Some(dep) if dep.enhanced && dep.stream_type == 1 => len += dep.frame_len,
                    Some(_) => break,
                    None if d.len() - len < 8 => return Ok(None),
                    None => break,
                }
            }
            // No configuration record: Enhanced RTMP defines none for AC-3 and E-AC-3.
            Ok((d.len() >= len).then_some(AudioUnit {
                skip: 0,
                len,
                samples: h.samples,
                rate: h.sample_rate,
                config: None,
            }))
        }
        StreamKind::Opus { channel_config } => {
            if d.len() < 2 || d[0] != 0x7F || d[1] & 0xE0 != 0xE0 {
                return if d.len() < 2 { Ok(None) } else { Err(()) };
            }
            let Some(u) = opus::next_unit(data, pos) else {
                return Ok(None);
            };
            let packet = &data[u.start..u.start + u.len];
            let samples = opus::packet_samples(packet).ok_or(())?;
            Ok(Some(AudioUnit {
                skip: u.start - pos,
                len: u.start - pos + u.len,
                samples,
                rate: opus::SAMPLE_RATE,
                config: Some(opus::opus_head(channel_config).freeze()),
            }))
        }
        StreamKind::AacLatm => {
            // The frames inside are decoded by the caller, with the stream's LATM state.
            let Some(len) = latm::frame_len(d)? else {
                return Ok(None);
            };
            Ok((d.len() >= len).then_some(AudioUnit {
                skip: 3,
                len,
                samples: SAMPLES_PER_FRAME,
                rate: 0,
                config: None,
            }))
        }
        StreamKind::H264 | StreamKind::H265 => Err(()),
    }
}

fn codec_of(kind: StreamKind) -> Codec {
    match kind {
        StreamKind::H264 => Codec::H264,
        StreamKind::H265 => Codec::H265,
        StreamKind::AacAdts | StreamKind::AacLatm => Codec::Aac,
        StreamKind::MpegAudio => Codec::Mp3,
        StreamKind::Ac3 => Codec::Ac3,
        StreamKind::Eac3 => Codec::Eac3,
        StreamKind::Opus { .. } => Codec::Opus,
    }
}

/// Sans-IO reader: TS bytes in, configurations and frames out.
#[derive(Debug)]
pub struct FrameReader {
    demux: Demuxer,
    clock: ProgramClock,
    tracks: Vec<Track>,
    events: VecDeque<TsEvent>,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new(ReaderOptions::default())
    }
}

impl FrameReader {
    /// A reader with the given options.
    pub fn new(options: ReaderOptions) -> Self {
        FrameReader {
            demux: Demuxer::new(options.limits),
            clock: ProgramClock::new(options.max_gap),
            tracks: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// Feeds bytes as they arrive, in any split.
    pub fn handle_input(&mut self, data: &[u8]) {
        self.demux.handle_input(data);
        self.drain();
    }

    /// The input was cut off (a live source disconnected): the frames still being
    /// assembled are dropped rather than passed on possibly truncated (see
    /// [`Demuxer::abandon`]). Returns how many were dropped.
    pub fn abandon(&mut self) -> usize {
        let n = self.demux.abandon();
        self.drain();
        n
    }

    /// The end of the input: the last unbounded video PES is complete.
    pub fn finish(&mut self) {
        self.demux.finish();
        self.drain();
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<TsEvent> {
        self.events.pop_front()
    }

    /// Bytes skipped while looking for packet sync.
    pub fn skipped_bytes(&self) -> u64 {
        self.demux.skipped_bytes()
    }

    fn drain(&mut self) {
        while let Some(e) = self.demux.poll_event() {
            match e {
                DemuxEvent::Program { streams, .. } => {
                    let mut old = std::mem::take(&mut self.tracks);
                    let (mut videos, mut audios) = (0u8, 0u8);
                    for s in streams {
                        let counter = if s.kind.is_video() {
                            &mut videos
                        } else {
                            &mut audios
                        };
                        let number = *counter;
                        *counter = counter.saturating_add(1);
                        let same = old
                            .iter()
                            .position(|t| t.pid == s.pid && t.kind == s.kind && t.number == number);
                        let track = match same {
                            Some(i) => old.swap_remove(i),
                            None => Track {
                                pid: s.pid,
                                kind: s.kind,
                                number,
                                state: if s.kind.is_video() {
                                    State::Video(VideoState {
                                        params: ParamSets::default(),
                                        has_config: false,
                                        last_dts: None,
                                        last_out: None,
                                    })
                                } else {
                                    State::Audio(AudioState {
                                        config: None,
                                        base: None,
                                        samples: 0,
                                        rate: 1,
                                        carry: BytesMut::new(),
                                        latm: LatmDecoder::default(),
                                        last_out: None,
                                    })
                                },
                            },
                        };
                        self.tracks.push(track);
                    }
                }
                DemuxEvent::Unsupported { pid, stream_type } => self
                    .events
                    .push_back(TsEvent::Unsupported { pid, stream_type }),
                DemuxEvent::Pcr { discontinuity, .. } => {
                    if discontinuity {
                        self.clock.discontinuity();
                    }
                }
                DemuxEvent::Pes(pes) => self.pes(pes),
                DemuxEvent::Error(e) => {
                    if let TsError::Continuity { pid, .. }
                    | TsError::PesTruncated { pid }
                    | TsError::PesTooLarge { pid, .. }
                    | TsError::TransportError { pid } = e
                    {
                        // The audio bytes carried over belong to the lost unit.
                        if let Some(t) = self.tracks.iter_mut().find(|t| t.pid == pid) {
                            if let State::Audio(a) = &mut t.state {
                                a.carry.clear();
                            }
                        }
                    }
                    self.events.push_back(TsEvent::Error(e));
                }
            }
        }
    }

    fn pes(&mut self, pes: Pes) {
        let Some(i) = self.tracks.iter().position(|t| t.pid == pes.pid) else {
            return;
        };
        let t = &mut self.tracks[i];
        let (number, kind) = (t.number, t.kind);
        match &mut t.state {
            State::Video(v) => video(v, number, kind, &pes, &mut self.clock, &mut self.events),
            State::Audio(a) => audio(a, number, kind, &pes, &mut self.clock, &mut self.events),
        }
    }
}

fn video(
    v: &mut VideoState,
    track: u8,
    kind: StreamKind,
    pes: &Pes,
    clock: &mut ProgramClock,
    events: &mut VecDeque<TsEvent>,
) {
    let hevc = kind == StreamKind::H265;
    let mut out = BytesMut::with_capacity(pes.data.len() + 32);
    let mut keyframe = false;
    for nal in annexb::nal_units(&pes.data) {
        let class = if hevc {
            h265::classify(nal)
        } else {
            h264::classify(nal)
        };
        match class {
            NalClass::ParameterSet {
                nal_type,
                id: Some(id),
            } => v.params.insert(nal_type, id, nal),
            NalClass::ParameterSet { id: None, .. } | NalClass::Dropped => {}
            NalClass::Coded { keyframe: key } => {
                keyframe |= key;
                annexb::put_length_prefixed(&mut out, nal);
            }
        }
    }
    if v.params.take_changed() {
        let config = if hevc {
            h265::hevc_config(
                v.params.of_type(h265::NAL_VPS),
                v.params.of_type(h265::NAL_SPS),
                v.params.of_type(h265::NAL_PPS),
            )
        } else {
            h264::avc_config(
                v.params.of_type(h264::NAL_SPS),
                v.params.of_type(h264::NAL_PPS),
            )
        };
        if let Some(config) = config {
            v.has_config = true;
            events.push_back(TsEvent::Config {
                track,
                codec: codec_of(kind),
                config: config.freeze(),
            });
        }
    }
    if out.is_empty() {
        return;
    }
    if !v.has_config {
        events.push_back(TsEvent::Error(TsError::NoParameterSets { pid: pes.pid }));
        return;
    }
    let Some(raw_dts) = pes.dts.or(pes.pts).or(v.last_dts) else {
        events.push_back(TsEvent::Error(TsError::NoTimestamp { pid: pes.pid }));
        return;
    };
    v.last_dts = Some(raw_dts);
    // DTS never steps back within a track (jitter is clamped; a restart is a new segment).
    let dts = clock.map_after(raw_dts, v.last_out);
    let dts = v.last_out.map_or(dts, |last| dts.max(last));
    v.last_out = Some(dts);
    let cts = pes.pts.map_or(0, |pts| {
        delta33(pts, raw_dts).clamp(0, i64::from(i32::MAX)) as i32
    });
    events.push_back(TsEvent::Frame(Frame {
        track,
        kind: TrackKind::Video,
        dts,
        cts,
        flags: FrameFlags::new(keyframe, false),
        payload: out.freeze(),
    }));
}

fn audio(
    a: &mut AudioState,
    track: u8,
    kind: StreamKind,
    pes: &Pes,
    clock: &mut ProgramClock,
    events: &mut VecDeque<TsEvent>,
) {
    // Frames that began in the previous PES keep its timing; the PTS is that of the first
    // frame starting in this one.
    let carried = a.carry.len();
    let data = if carried == 0 {
        pes.data.clone()
    } else {
        a.carry.extend_from_slice(&pes.data);
        a.carry.split().freeze()
    };
    // The PES timestamp is taken as given (a tick of rounding jitter included) unless it
    // would put this track back in time.
    let last = a.last_out;
    let pes_ts = pes.pts.map(|pts| {
        let ts = clock.map_after(pts, last);
        last.map_or(ts, |last| ts.max(last))
    });
    if carried == 0 {
        if let Some(ts) = pes_ts {
            a.rebase(ts);
        }
    }
    if a.base.is_none() {
        events.push_back(TsEvent::Error(TsError::NoTimestamp { pid: pes.pid }));
        return;
    }
    let mut pos = 0;
    let mut skipped = 0;
    let mut rebased = carried == 0;
    while pos < data.len() {
        if !rebased && pos >= carried {
            if let Some(ts) = pes_ts {
                a.rebase(ts);
            }
            rebased = true;
        }
        match audio_unit(kind, &data, pos) {
            Err(()) => {
                pos += 1;
                skipped += 1;
            }
            Ok(None) => {
                if data.len() - pos <= MAX_CARRY {
                    a.carry.extend_from_slice(&data[pos..]);
                } else {
                    skipped += data.len() - pos;
                }
                break;
            }
            Ok(Some(u)) if kind == StreamKind::AacLatm => {
                match a.latm.decode(&data[pos + u.skip..pos + u.len]) {
                    Some(out) => {
                        for payload in out.frames {
                            let item = AudioItem {
                                config: out.asc.clone(),
                                payload,
                                samples: u.samples,
                                rate: out.sample_rate,
                            };
                            emit(a, track, kind, item, events);
                        }
                    }
                    None => skipped += u.len,
                }
                pos += u.len;
            }
            Ok(Some(u)) => {
                // MP3, AC-3 and E-AC-3 have no configuration record: an empty one announces
                // the track.
                let item = AudioItem {
                    config: u.config.unwrap_or_default(),
                    payload: data.slice(pos + u.skip..pos + u.len),
                    samples: u.samples,
                    rate: u.rate,
                };
                emit(a, track, kind, item, events);
                pos += u.len;
            }
        }
    }
    if let Some(now) = a.now() {
        clock.observe(now);
    }
    if skipped > 0 {
        events.push_back(TsEvent::Error(TsError::AudioSync {
            pid: pes.pid,
            bytes: skipped,
        }));
    }
}

/// One audio frame ready to report.
struct AudioItem {
    config: Bytes,
    payload: Bytes,
    samples: u32,
    rate: u32,
}

/// Reports one audio frame (after its configuration when that changed) at the track's
/// current time, then counts its samples.
fn emit(
    a: &mut AudioState,
    track: u8,
    kind: StreamKind,
    item: AudioItem,
    events: &mut VecDeque<TsEvent>,
) {
    let AudioItem {
        config,
        payload,
        samples,
        rate,
    } = item;
    if a.config.as_ref() != Some(&config) {
        a.config = Some(config.clone());
        events.push_back(TsEvent::Config {
            track,
            codec: codec_of(kind),
            config,
        });
    }
    let dts = a.now().unwrap_or_default();
    a.last_out = Some(dts);
    events.push_back(TsEvent::Frame(Frame {
        track,
        kind: TrackKind::Audio,
        dts,
        cts: 0,
        flags: FrameFlags::KEYFRAME,
        payload,
    }));
    a.advance(samples, rate);
}
