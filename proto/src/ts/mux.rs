//! The muxer: hub frames to a single-program transport stream (PAT, PMT, PCR, one PES per
//! frame), for SRT play and HLS segments.
//!
//! ```text
//!  set_config(track, codec, config) --> PMT stream (type, descriptors), parameter sets
//!  write_frame(&Frame, out) --> [PAT PMT] PES: video = AUD + (VPS/SPS/PPS before each
//!                                 keyframe) + Annex B NAL units; AAC = ADTS + raw frame;
//!                                 MP3/AC-3/E-AC-3 as they are; Opus = control header + packet
//! ```
//!
//! Timestamps are rescaled from the stream's timescale to 90 kHz and offset so the first
//! frame's DTS is [`MuxOptions::delay`]; the PCR, on the first video PID (or the first audio
//! one when there is no video), runs `delay` behind the DTS, which gives decoders that much
//! buffer. PAT and PMT are written before the first frame, before every video keyframe and
//! at least every [`MuxOptions::psi_interval`]; a track added or changed in a way the PMT
//! shows bumps its version.

use bytes::{BufMut, Bytes, BytesMut};

use super::adts::{self, AscInfo};
use super::annexb;
use super::h264;
use super::h265;
use super::opus;
use super::packet::{PACKET_LEN, SYNC};
use super::pes;
use super::psi::{descriptor, Pat, Pmt, PmtStream, PAT_PID};
use super::timestamp::CLOCK_RATE;
use crate::media::{Codec, Frame, TrackKind};

/// PID of the PMT.
pub const PMT_PID: u16 = 0x1000;
/// PID of the first elementary stream; further ones count up.
pub const FIRST_ES_PID: u16 = 0x100;
/// program_number of the single program.
pub const PROGRAM: u16 = 1;

/// Settings of a [`Muxer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxOptions {
    /// Longest time between two PAT/PMT pairs, 90 kHz ticks.
    pub psi_interval: u64,
    /// How far the PCR runs behind the DTS, 90 kHz ticks; also the first DTS.
    pub delay: u64,
}

impl Default for MuxOptions {
    fn default() -> Self {
        MuxOptions {
            psi_interval: u64::from(CLOCK_RATE) / 10,
            delay: u64::from(CLOCK_RATE) * 7 / 10,
        }
    }
}

/// Why the muxer refused a configuration or a frame. The caller drops that track or frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MuxError {
    /// MPEG-TS has no mapping for this codec here (AV1, VP8/9, FLAC, VVC, legacy FLV codecs).
    #[error("codec {} cannot be carried in MPEG-TS", .0.name())]
    UnsupportedCodec(Codec),
    /// The configuration record does not parse.
    #[error("bad {} configuration record", .0.name())]
    BadConfig(Codec),
    /// A frame of a track that has no configuration.
    #[error("frame of unconfigured {} track {track}", if *.video { "video" } else { "audio" })]
    UnknownTrack {
        /// Whether it is video.
        video: bool,
        /// Track number.
        track: u8,
    },
    /// More tracks than PIDs and stream ids allow (16 per kind).
    #[error("too many tracks")]
    TooManyTracks,
}

#[derive(Debug)]
struct Track {
    video: bool,
    number: u8,
    codec: Codec,
    pid: u16,
    stream_id: u8,
    cc: u8,
    /// Video: the parameter sets in Annex B (before keyframes) and the NAL length size.
    parameter_sets: Bytes,
    length_size: usize,
    /// AAC: the fields ADTS headers repeat.
    asc: Option<AscInfo>,
    stream: PmtStream,
}

/// Sans-IO MPEG-TS muxer of one program.
#[derive(Debug)]
pub struct Muxer {
    options: MuxOptions,
    timescale: u32,
    tracks: Vec<Track>,
    pmt_version: u8,
    pmt_changed: bool,
    pat_cc: u8,
    pmt_cc: u8,
    /// Added to rescaled timestamps; set by the first frame.
    offset: Option<i64>,
    last_psi: Option<i64>,
    /// Scratch for one PES payload, reused.
    pes: BytesMut,
    /// The PAT section then the PMT section, built when the tracks change.
    sections: BytesMut,
    pat_len: usize,
}

fn stream_type(codec: Codec) -> Result<u8, MuxError> {
    Ok(match codec {
        Codec::H264 => 0x1B,
        Codec::H265 => 0x24,
        Codec::Aac => 0x0F,
        Codec::Mp3 => 0x03,
        Codec::Ac3 => 0x81,
        Codec::Eac3 => 0x87,
        Codec::Opus => 0x06,
        other => return Err(MuxError::UnsupportedCodec(other)),
    })
}

/// Rescales `v` ticks of `timescale` to 90 kHz, rounding down.
fn to_90k(v: i64, timescale: u32) -> i64 {
    if timescale == CLOCK_RATE {
        return v;
    }
    (i128::from(v) * i128::from(CLOCK_RATE)).div_euclid(i128::from(timescale.max(1))) as i64
}

impl Muxer {
    /// A muxer for a stream whose timestamps count `timescale` ticks per second.
    pub fn new(timescale: u32, options: MuxOptions) -> Self {
        Muxer {
            options,
            timescale: timescale.max(1),
            tracks: Vec::new(),
            pmt_version: 0,
            pmt_changed: true,
            pat_cc: 0,
            pmt_cc: 0,
            offset: None,
            last_psi: None,
            pes: BytesMut::new(),
            sections: BytesMut::new(),
            pat_len: 0,
        }
    }

    /// Sets (or replaces) the configuration of a track. A new track, or a change the PMT
    /// shows, gets a new PMT version before the next frame.
    pub fn set_config(&mut self, track: u8, codec: Codec, config: &[u8]) -> Result<(), MuxError> {
        let stream_type = stream_type(codec)?;
        let video = codec.kind() == TrackKind::Video;
        let mut parameter_sets = BytesMut::new();
        let mut length_size = 4;
        let mut asc = None;
        let mut descriptors = Vec::new();
        match codec {
            Codec::H264 | Codec::H265 => {
                let sets = if codec == Codec::H264 {
                    h264::avc_config_sets(config)
                } else {
                    h265::hevc_config_sets(config)
                };
                let (size, sets) = sets.ok_or(MuxError::BadConfig(codec))?;
                length_size = size;
                for s in sets {
                    annexb::put_start_code(&mut parameter_sets, s);
                }
            }
            Codec::Aac => {
                asc = Some(adts::parse_asc(config).ok_or(MuxError::BadConfig(codec))?);
            }
            Codec::Opus => {
                descriptors.extend_from_slice(&[descriptor::REGISTRATION, 4]);
                descriptors.extend_from_slice(b"Opus");
                descriptors.extend_from_slice(&[
                    descriptor::DVB_EXTENSION,
                    2,
                    descriptor::EXT_OPUS,
                    opus::channel_config(config),
                ]);
            }
            _ => {}
        }
        let existing = self
            .tracks
            .iter()
            .position(|t| t.video == video && t.number == track);
        let i = match existing {
            Some(i) => i,
            None => {
                let kind_count = self.tracks.iter().filter(|t| t.video == video).count();
                if kind_count >= 16 {
                    return Err(MuxError::TooManyTracks);
                }
                let pid = FIRST_ES_PID + self.tracks.len() as u16;
                self.tracks.push(Track {
                    video,
                    number: track,
                    codec,
                    pid,
                    stream_id: 0,
                    cc: 0,
                    parameter_sets: Bytes::new(),
                    length_size: 4,
                    asc: None,
                    stream: PmtStream {
                        stream_type: 0,
                        pid,
                        descriptors: Vec::new(),
                    },
                });
                self.tracks.len() - 1
            }
        };
        let kind_index = self.tracks[..i].iter().filter(|t| t.video == video).count() as u8;
        let t = &mut self.tracks[i];
        t.codec = codec;
        t.stream_id = match codec {
            Codec::H264 | Codec::H265 => 0xE0 + kind_index,
            // AC-3, E-AC-3 and Opus travel as private_stream_1, as FFmpeg writes them.
            Codec::Ac3 | Codec::Eac3 | Codec::Opus => 0xBD,
            _ => 0xC0 + kind_index,
        };
        t.parameter_sets = parameter_sets.freeze();
        t.length_size = length_size;
        t.asc = asc;
        let stream = PmtStream {
            stream_type,
            pid: t.pid,
            descriptors,
        };
        if t.stream != stream {
            t.stream = stream;
            if existing.is_some() || self.offset.is_some() {
                self.pmt_version = (self.pmt_version + 1) & 0x1f;
            }
            self.pmt_changed = true;
        }
        Ok(())
    }

    /// Writes PAT and PMT before the next frame whatever the interval (a new HLS segment
    /// that does not start at a video keyframe must start with them too).
    pub fn repeat_psi(&mut self) {
        self.last_psi = None;
    }

    /// Appends the packets of one frame (and PAT/PMT when due) to `out`.
    pub fn write_frame(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), MuxError> {
        let i = self
            .tracks
            .iter()
            .position(|t| t.video == frame.is_video() && t.number == frame.track)
            .ok_or(MuxError::UnknownTrack {
                video: frame.is_video(),
                track: frame.track,
            })?;
        let dts90 = to_90k(frame.dts, self.timescale);
        let pts90 = to_90k(frame.dts + i64::from(frame.cts), self.timescale);
        let offset = *self.offset.get_or_insert(self.options.delay as i64 - dts90);
        let (dts, pts) = (dts90 + offset, pts90 + offset);
        let keyframe = frame.is_keyframe();
        let due = self
            .last_psi
            .is_none_or(|t| dts - t >= self.options.psi_interval as i64);
        if self.pmt_changed || due || frame.is_video_keyframe() {
            self.write_psi(out);
            self.last_psi = Some(dts);
        }
        let pcr_pid = self.pcr_pid();
        let t = &mut self.tracks[i];
        let mut es = std::mem::take(&mut self.pes);
        es.clear();
        elementary_stream(t, frame, keyframe, &mut es);
        let mut header = [0u8; pes::MAX_HEADER_LEN];
        let mut w = &mut header[..];
        let wrap = |v: i64| v.rem_euclid(1 << 33) as u64;
        let dts_field = (frame.is_video() && pts != dts).then(|| wrap(dts));
        pes::write_header(&mut w, t.stream_id, wrap(pts), dts_field, es.len());
        let header_len = pes::MAX_HEADER_LEN - w.len();
        let pcr = (t.pid == pcr_pid).then(|| wrap(dts - self.options.delay as i64) * 300);
        write_packets(
            out,
            t.pid,
            &mut t.cc,
            &[&header[..header_len], &es],
            pcr,
            frame.is_video_keyframe(),
        );
        self.pes = es;
        Ok(())
    }

    /// The PID carrying the PCR: the first video track's, else the first track's.
    fn pcr_pid(&self) -> u16 {
        self.tracks
            .iter()
            .find(|t| t.video)
            .or(self.tracks.first())
            .map_or(0x1FFF, |t| t.pid)
    }

    /// Writes PAT and PMT; the sections are built again only when the tracks changed.
    fn write_psi(&mut self, out: &mut BytesMut) {
        if self.pmt_changed || self.sections.is_empty() {
            self.sections.clear();
            Pat {
                version: 0,
                transport_stream_id: 1,
                programs: vec![(PROGRAM, PMT_PID)],
            }
            .write(&mut self.sections);
            self.pat_len = self.sections.len();
            Pmt {
                program: PROGRAM,
                version: self.pmt_version,
                pcr_pid: self.pcr_pid(),
                descriptors: Vec::new(),
                streams: self.tracks.iter().map(|t| t.stream.clone()).collect(),
            }
            .write(&mut self.sections);
            self.pmt_changed = false;
        }
        let (pat, pmt) = self.sections.split_at(self.pat_len);
        // Sections here are far below one packet; pointer_field 0 puts them first.
        write_packets(out, PAT_PID, &mut self.pat_cc, &[&[0], pat], None, false);
        write_packets(out, PMT_PID, &mut self.pmt_cc, &[&[0], pmt], None, false);
    }
}

/// The elementary stream bytes of one frame.
fn elementary_stream(t: &Track, frame: &Frame, keyframe: bool, es: &mut BytesMut) {
    match t.codec {
        Codec::H264 | Codec::H265 => {
            let hevc = t.codec == Codec::H265;
            let nals = || annexb::length_prefixed(&frame.payload, t.length_size);
            let classify = |n: &[u8]| {
                if hevc {
                    h265::classify(n)
                } else {
                    h264::classify(n)
                }
            };
            // An access unit delimiter first, as H.222 wants for these codecs.
            if hevc {
                es.put_slice(&[0, 0, 0, 1, 0x46, 0x01, 0x50]);
            } else {
                es.put_slice(&[0, 0, 0, 1, 0x09, 0xF0]);
            }
            let in_band =
                nals().any(|n| matches!(classify(n), annexb::NalClass::ParameterSet { .. }));
            if keyframe && !in_band {
                es.put_slice(&t.parameter_sets);
            }
            for nal in nals() {
                if classify(nal) != annexb::NalClass::Dropped {
                    annexb::put_start_code(es, nal);
                }
            }
        }
        Codec::Aac => {
            if let Some(asc) = &t.asc {
                es.put_slice(&adts::write_header(asc, frame.payload.len()));
            }
            es.put_slice(&frame.payload);
        }
        Codec::Opus => {
            opus::write_control_header(es, frame.payload.len());
            es.put_slice(&frame.payload);
        }
        _ => es.put_slice(&frame.payload),
    }
}

/// Cuts `parts` (one unit: a PES or a section) into packets on `pid`; the first gets the
/// unit start flag, the PCR and the random access indicator; the last is stuffed with an
/// adaptation field to 188 bytes.
fn write_packets(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    parts: &[&[u8]],
    pcr: Option<u64>,
    random_access: bool,
) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut written = 0;
    let mut part = 0;
    let mut part_pos = 0;
    let mut first = true;
    while written < total || first {
        // Adaptation field content (after its length byte): flags + PCR.
        let mut af = [0u8; 7];
        let mut af_len = 0;
        if first && (pcr.is_some() || random_access) {
            af[0] = if random_access { 0x40 } else { 0 };
            af_len = 1;
            if let Some(pcr) = pcr {
                af[0] |= 0x10;
                let base = pcr / 300;
                let ext = pcr % 300;
                af[1] = (base >> 25) as u8;
                af[2] = (base >> 17) as u8;
                af[3] = (base >> 9) as u8;
                af[4] = (base >> 1) as u8;
                af[5] = ((base as u8 & 1) << 7) | 0x7E | (ext >> 8) as u8;
                af[6] = ext as u8;
                af_len = 7;
            }
        }
        let header_room = 4 + if af_len > 0 { 1 + af_len } else { 0 };
        let left = total - written;
        let payload_len = left.min(PACKET_LEN - header_room);
        // Stuffing so the packet is exactly 188 bytes.
        let stuffing = PACKET_LEN - header_room - payload_len;
        let has_af = af_len > 0 || stuffing > 0;
        out.put_u8(SYNC);
        out.put_u16((if first { 0x4000 } else { 0 }) | pid);
        out.put_u8(if has_af { 0x30 } else { 0x10 } | (*cc & 0x0f));
        *cc = (*cc + 1) & 0x0f;
        if has_af && af_len == 0 {
            // Stuffing only: the length byte is the first byte of it.
            out.put_u8((stuffing - 1) as u8);
            if stuffing > 1 {
                out.put_u8(0);
                out.put_bytes(0xFF, stuffing - 2);
            }
        } else if has_af {
            out.put_u8((af_len + stuffing) as u8);
            out.put_slice(&af[..af_len]);
            out.put_bytes(0xFF, stuffing);
        }
        let mut n = payload_len;
        while n > 0 {
            let p = parts[part];
            let take = (p.len() - part_pos).min(n);
            out.put_slice(&p[part_pos..part_pos + take]);
            part_pos += take;
            n -= take;
            if part_pos == p.len() {
                part += 1;
                part_pos = 0;
            }
        }
        written += payload_len;
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::FrameFlags;
    use crate::ts::{DemuxEvent, Demuxer};

    fn frame(video: bool, dts: i64, data: &'static [u8]) -> Frame {
        Frame {
            track: 0,
            kind: TrackKind::from_video(video),
            dts,
            cts: 0,
            flags: FrameFlags::KEYFRAME,
            payload: Bytes::from_static(data),
        }
    }

    #[test]
    fn refusals() {
        let mut m = Muxer::new(1000, MuxOptions::default());
        assert_eq!(
            m.set_config(0, Codec::Av1, &[]),
            Err(MuxError::UnsupportedCodec(Codec::Av1))
        );
        assert_eq!(
            m.set_config(0, Codec::H264, &[1, 2]),
            Err(MuxError::BadConfig(Codec::H264))
        );
        let mut out = BytesMut::new();
        assert_eq!(
            m.write_frame(&frame(false, 0, b"x"), &mut out),
            Err(MuxError::UnknownTrack {
                video: false,
                track: 0
            })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn psi_pcr_and_a_new_track_mid_stream() {
        let mut m = Muxer::new(1000, MuxOptions::default());
        m.set_config(0, Codec::Mp3, &[]).unwrap();
        let mut out = BytesMut::new();
        m.write_frame(&frame(false, 0, &[0xff; 10]), &mut out)
            .unwrap();
        // PAT, PMT, one PES packet carrying the PCR (audio-only: on the audio PID).
        assert_eq!(out.len(), 3 * 188);
        let pes = &out[2 * 188..];
        assert_eq!(u16::from_be_bytes([pes[1] & 0x1f, pes[2]]), FIRST_ES_PID);
        assert_eq!(pes[5] & 0x10, 0x10, "PCR flag");
        m.set_config(0, Codec::Ac3, &[]).unwrap();
        // 40 ms later in milliseconds: the PMT is rewritten with a new version.
        m.write_frame(&frame(false, 40, &[0xff; 10]), &mut out)
            .unwrap();
        let mut d = Demuxer::default();
        d.handle_input(&out);
        let versions: Vec<(u8, u8)> = std::iter::from_fn(|| d.poll_event())
            .filter_map(|e| match e {
                DemuxEvent::Program {
                    version, streams, ..
                } => Some((version, streams[0].stream_type)),
                _ => None,
            })
            .collect();
        assert_eq!(versions, vec![(0, 0x03), (1, 0x81)]);
    }
}
