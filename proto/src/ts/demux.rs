//! The demuxer: bytes in any split to PSI tables, PES packets and PCRs of the first
//! program, with every kind of damage reported and contained to the unit it hit.
//!
//! ```text
//!  bytes --> Framer (sync) --> packet header --> PAT / PMT sections --> Program
//!                                           \--> PES reassembly -----> Pes
//! ```

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::packet::{Framer, PacketHeader, NULL_PID, PACKET_LEN};
use super::pes::{self, PesHeader};
use super::psi::{descriptor, Pat, Pmt, PmtStream, SectionBuffer, PAT_PID};
use super::TsError;

/// What a demuxer accepts before it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemuxLimits {
    /// Largest PES packet reassembled, header included. An unbounded video PES (length
    /// 0) that grows past it is dropped up to the next unit start.
    pub max_pes: usize,
    /// Most elementary streams followed in the program; further ones are ignored.
    pub max_streams: usize,
}

impl Default for DemuxLimits {
    fn default() -> Self {
        DemuxLimits {
            max_pes: 8 << 20,
            max_streams: 16,
        }
    }
}

/// The codec an elementary stream carries, from its stream type and descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamKind {
    /// H.264 Annex B (stream type 0x1B).
    H264,
    /// H.265 Annex B (0x24, or private data registered as `HEVC`).
    H265,
    /// AAC in ADTS (0x0F).
    AacAdts,
    /// AAC in LOAS/LATM (0x11).
    AacLatm,
    /// MPEG-1/2 audio, layers I to III (0x03, 0x04).
    MpegAudio,
    /// AC-3 (0x81, or private data with the `AC-3` registration or the DVB AC-3 descriptor).
    Ac3,
    /// E-AC-3 (0x87, or private data with `EAC3` or the DVB enhanced AC-3 descriptor).
    Eac3,
    /// Opus (private data registered as `Opus`).
    Opus {
        /// channel_config_code of the DVB Opus descriptor (2, stereo, when absent).
        channel_config: u8,
    },
}

impl StreamKind {
    /// Classifies a PMT entry; `None` for stream types this demuxer does not carry.
    pub fn of(s: &PmtStream) -> Option<StreamKind> {
        let reg = s.registration();
        Some(match s.stream_type {
            0x1B => StreamKind::H264,
            0x24 => StreamKind::H265,
            0x0F => StreamKind::AacAdts,
            0x11 => StreamKind::AacLatm,
            0x03 | 0x04 => StreamKind::MpegAudio,
            0x81 => StreamKind::Ac3,
            0x87 => StreamKind::Eac3,
            0x06 => match reg {
                Some(r) if &r == b"Opus" => StreamKind::Opus {
                    channel_config: s
                        .descriptors(descriptor::DVB_EXTENSION)
                        .find_map(|b| match b {
                            [descriptor::EXT_OPUS, code, ..] => Some(*code),
                            _ => None,
                        })
                        .unwrap_or(2),
                },
                Some(r) if &r == b"AC-3" => StreamKind::Ac3,
                Some(r) if &r == b"EAC3" => StreamKind::Eac3,
                Some(r) if &r == b"HEVC" => StreamKind::H265,
                _ if s.descriptors(descriptor::DVB_AC3).next().is_some() => StreamKind::Ac3,
                _ if s.descriptors(descriptor::DVB_EAC3).next().is_some() => StreamKind::Eac3,
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Whether the stream is video.
    pub fn is_video(self) -> bool {
        matches!(self, StreamKind::H264 | StreamKind::H265)
    }
}

/// One elementary stream of the program being followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EsInfo {
    /// Its PID.
    pub pid: u16,
    /// stream_type from the PMT.
    pub stream_type: u8,
    /// The codec.
    pub kind: StreamKind,
}

/// A reassembled PES packet of a supported stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    /// PID it came on.
    pub pid: u16,
    /// Codec of the stream.
    pub kind: StreamKind,
    /// Presentation timestamp (33 bits, 90 kHz).
    pub pts: Option<u64>,
    /// Decode timestamp (33 bits, 90 kHz); absent when equal to the PTS.
    pub dts: Option<u64>,
    /// The random access indicator of its first packet.
    pub random_access: bool,
    /// The elementary stream bytes (after the PES header).
    pub data: Bytes,
}

/// What the demuxer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemuxEvent {
    /// A PMT was accepted (first one, or a new version): the streams now followed.
    Program {
        /// program_number.
        program: u16,
        /// PMT version_number.
        version: u8,
        /// The supported streams, in PMT order.
        streams: Vec<EsInfo>,
    },
    /// A stream of the program has a type this demuxer does not carry; it is ignored.
    Unsupported {
        /// Its PID.
        pid: u16,
        /// Its stream_type.
        stream_type: u8,
    },
    /// A PCR on the program's PCR PID.
    Pcr {
        /// 27 MHz ticks (42 bits: 33-bit base * 300 + extension).
        pcr: u64,
        /// The discontinuity indicator was set: timestamps may jump from here.
        discontinuity: bool,
    },
    /// A complete PES packet.
    Pes(Pes),
    /// Damage that was contained: the affected unit was dropped, demuxing goes on.
    Error(TsError),
}

/// Reassembly state of one elementary stream.
#[derive(Debug)]
struct EsState {
    info: EsInfo,
    cc: Option<u8>,
    /// The PES being assembled; `None` until the next unit start.
    buf: Option<BytesMut>,
    /// Length of the whole PES when the header says it (0 = unbounded).
    expected: Option<usize>,
    random_access: bool,
    /// Length of the last PES completed: the next one's buffer starts near it (video PES
    /// are usually unbounded, and growing from one TS payload copies each frame again
    /// for every doubling).
    last_len: usize,
}

#[derive(Debug)]
struct ProgramState {
    number: u16,
    pmt_pid: u16,
    pmt: SectionBuffer,
    pmt_cc: Option<u8>,
    version: Option<u8>,
    pcr_pid: u16,
}

/// Sans-IO MPEG-TS demuxer of the first program in the PAT.
#[derive(Debug)]
pub struct Demuxer {
    limits: DemuxLimits,
    framer: Framer,
    lost_sync: u64,
    pat: SectionBuffer,
    pat_cc: Option<u8>,
    program: Option<ProgramState>,
    streams: Vec<EsState>,
    events: VecDeque<DemuxEvent>,
    sections: Vec<Vec<u8>>,
}

impl Default for Demuxer {
    fn default() -> Self {
        Self::new(DemuxLimits::default())
    }
}

/// Continuity check: `Ok(true)` to use the packet, `Ok(false)` for a duplicate.
fn continuity(last: &mut Option<u8>, h: &PacketHeader) -> Result<bool, (u8, u8)> {
    if !h.has_payload {
        return Ok(true);
    }
    let prev = last.replace(h.cc);
    match prev {
        Some(p) if p == h.cc => Ok(false),
        Some(p) if !h.discontinuity && (p + 1) & 0x0f != h.cc => Err(((p + 1) & 0x0f, h.cc)),
        _ => Ok(true),
    }
}

impl Demuxer {
    /// A demuxer with the given limits.
    pub fn new(limits: DemuxLimits) -> Self {
        Demuxer {
            limits,
            framer: Framer::new(),
            lost_sync: 0,
            pat: SectionBuffer::default(),
            pat_cc: None,
            program: None,
            streams: Vec::new(),
            events: VecDeque::new(),
            sections: Vec::new(),
        }
    }

    /// Feeds bytes as they arrive (any split); events become available from
    /// [`Demuxer::poll_event`].
    pub fn handle_input(&mut self, data: &[u8]) {
        self.framer.push(data);
        while let Some(p) = self.framer.next_packet() {
            if self.framer.lost_sync() != self.lost_sync {
                self.lost_sync = self.framer.lost_sync();
                self.events.push_back(DemuxEvent::Error(TsError::LostSync));
            }
            self.packet(&p);
        }
    }

    /// The input was cut off where it may have been mid-unit (a live source went away):
    /// every PES still being assembled is dropped, the unbounded ones too, since their
    /// end is only known from a next unit start that never came. Returns how many were
    /// dropped.
    pub fn abandon(&mut self) -> usize {
        let mut n = 0;
        for s in &mut self.streams {
            if s.buf.take().is_some() {
                n += 1;
            }
        }
        n
    }

    /// The end of the input: completes a PES whose end is only known from the next unit
    /// start (unbounded video PES), drops any other partial PES.
    pub fn finish(&mut self) {
        for i in 0..self.streams.len() {
            let s = &self.streams[i];
            if s.buf.is_some() && s.expected.is_none() {
                self.complete(i);
            } else if s.buf.is_some() {
                let pid = s.info.pid;
                self.streams[i].buf = None;
                self.events
                    .push_back(DemuxEvent::Error(TsError::PesTruncated { pid }));
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }

    /// Bytes skipped while looking for packet sync.
    pub fn skipped_bytes(&self) -> u64 {
        self.framer.skipped()
    }

    fn error(&mut self, e: TsError) {
        self.events.push_back(DemuxEvent::Error(e));
    }

    fn packet(&mut self, p: &[u8; PACKET_LEN]) {
        let h = match PacketHeader::parse(p) {
            Ok(h) => h,
            Err(e) => {
                let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
                self.drop_unit(pid);
                return self.error(TsError::Packet { pid, error: e });
            }
        };
        if h.pid == NULL_PID {
            return;
        }
        if h.transport_error {
            self.drop_unit(h.pid);
            return self.error(TsError::TransportError { pid: h.pid });
        }
        if let Some(prog) = &self.program {
            if h.pid == prog.pcr_pid {
                if let Some(pcr) = h.pcr {
                    self.events.push_back(DemuxEvent::Pcr {
                        pcr,
                        discontinuity: h.discontinuity,
                    });
                }
            }
        }
        let payload = &p[h.payload..];
        if h.pid == PAT_PID {
            self.psi_packet(&h, payload, true);
        } else if self.program.as_ref().is_some_and(|pr| pr.pmt_pid == h.pid) {
            self.psi_packet(&h, payload, false);
        } else if let Some(i) = self.streams.iter().position(|s| s.info.pid == h.pid) {
            self.es_packet(i, &h, payload);
        }
    }

    /// A packet of this PID was lost or unusable: whatever unit it was part of is dropped.
    fn drop_unit(&mut self, pid: u16) {
        if pid == PAT_PID {
            self.pat.reset();
        } else if let Some(prog) = self.program.as_mut().filter(|p| p.pmt_pid == pid) {
            prog.pmt.reset();
        } else if let Some(s) = self.streams.iter_mut().find(|s| s.info.pid == pid) {
            s.buf = None;
        }
    }

    /// A packet of the PAT or of the followed program's PMT: continuity, then sections.
    fn psi_packet(&mut self, h: &PacketHeader, payload: &[u8], pat: bool) {
        let (buffer, cc) = match (pat, self.program.as_mut()) {
            (true, _) => (&mut self.pat, &mut self.pat_cc),
            (false, Some(prog)) => (&mut prog.pmt, &mut prog.pmt_cc),
            (false, None) => return,
        };
        match continuity(cc, h) {
            Ok(true) => {}
            Ok(false) => return,
            Err((expected, got)) => {
                buffer.reset();
                self.events
                    .push_back(DemuxEvent::Error(TsError::Continuity {
                        pid: h.pid,
                        expected,
                        got,
                    }));
            }
        }
        let mut sections = std::mem::take(&mut self.sections);
        sections.clear();
        buffer.push(h.unit_start, payload, |s| sections.push(s.to_vec()));
        for s in &sections {
            let applied = if pat {
                Pat::parse(s).map(|t| t.map(|t| self.apply_pat(&t)))
            } else {
                Pmt::parse(s).map(|t| t.map(|t| self.apply_pmt(t)))
            };
            if let Err(error) = applied {
                self.error(TsError::Psi { pid: h.pid, error });
            }
        }
        self.sections = sections;
    }

    fn apply_pat(&mut self, pat: &Pat) {
        let Some(&(number, pmt_pid)) = pat.programs.first() else {
            return;
        };
        if let Some(prog) = &self.program {
            // Following a program that is still listed: keep it, wherever it now is.
            match pat.programs.iter().find(|&&(n, _)| n == prog.number) {
                Some(&(_, pid)) if pid == prog.pmt_pid => return,
                Some(&(n, pid)) => return self.follow(n, pid),
                None => {}
            }
        }
        self.follow(number, pmt_pid);
    }

    fn follow(&mut self, number: u16, pmt_pid: u16) {
        self.program = Some(ProgramState {
            number,
            pmt_pid,
            pmt: SectionBuffer::default(),
            pmt_cc: None,
            version: None,
            pcr_pid: NULL_PID,
        });
        self.streams.clear();
    }

    fn apply_pmt(&mut self, pmt: Pmt) {
        let Some(prog) = self.program.as_mut() else {
            return;
        };
        if pmt.program != prog.number || prog.version == Some(pmt.version) {
            return;
        }
        prog.version = Some(pmt.version);
        prog.pcr_pid = pmt.pcr_pid;
        let mut infos = Vec::new();
        let mut unsupported = Vec::new();
        for s in &pmt.streams {
            match StreamKind::of(s) {
                Some(kind) if infos.len() < self.limits.max_streams => infos.push(EsInfo {
                    pid: s.pid,
                    stream_type: s.stream_type,
                    kind,
                }),
                _ => unsupported.push((s.pid, s.stream_type)),
            }
        }
        // Streams that keep their PID and codec keep their reassembly state.
        let mut old = std::mem::take(&mut self.streams);
        self.streams = infos
            .iter()
            .map(|&info| match old.iter().position(|s| s.info == info) {
                Some(i) => old.swap_remove(i),
                None => EsState {
                    info,
                    cc: None,
                    buf: None,
                    expected: None,
                    random_access: false,
                    last_len: 0,
                },
            })
            .collect();
        self.events.push_back(DemuxEvent::Program {
            program: pmt.program,
            version: pmt.version,
            streams: infos,
        });
        for (pid, stream_type) in unsupported {
            self.events
                .push_back(DemuxEvent::Unsupported { pid, stream_type });
        }
    }

    fn es_packet(&mut self, i: usize, h: &PacketHeader, payload: &[u8]) {
        let max = self.limits.max_pes;
        let s = &mut self.streams[i];
        let pid = s.info.pid;
        match continuity(&mut s.cc, h) {
            Ok(true) => {}
            Ok(false) => return,
            Err((expected, got)) => {
                s.buf = None;
                self.error(TsError::Continuity { pid, expected, got });
            }
        }
        if h.scrambling != 0 {
            self.streams[i].buf = None;
            return self.error(TsError::Scrambled { pid });
        }
        if !h.has_payload {
            return;
        }
        if h.unit_start {
            if self.streams[i].buf.is_some() {
                if self.streams[i].expected.is_none() {
                    self.complete(i);
                } else {
                    self.streams[i].buf = None;
                    self.error(TsError::PesTruncated { pid });
                }
            }
            let s = &mut self.streams[i];
            s.random_access = h.random_access;
            s.expected = None;
            // A quarter more than the last PES: room for a larger frame without a copy,
            // and a small frame after a keyframe does not keep the keyframe's size.
            let hint = (s.last_len + s.last_len / 4).min(max);
            s.buf = Some(BytesMut::with_capacity(hint.max(payload.len())));
        }
        let s = &mut self.streams[i];
        let Some(buf) = s.buf.as_mut() else {
            return;
        };
        buf.extend_from_slice(payload);
        if s.expected.is_none() {
            match pes::peek_length(buf) {
                None => {}
                Some(Err(error)) => {
                    s.buf = None;
                    return self.error(TsError::Pes { pid, error });
                }
                Some(Ok((_, 0))) => {}
                Some(Ok((_, len))) => {
                    let total = pes::FIXED_LEN + usize::from(len);
                    s.expected = Some(total);
                    buf.reserve(total.saturating_sub(buf.len()));
                }
            }
        }
        let len = buf.len();
        match s.expected {
            Some(total) if len >= total => {
                buf.truncate(total);
                self.complete(i);
            }
            _ if len > max => {
                s.buf = None;
                self.error(TsError::PesTooLarge { pid, limit: max });
            }
            _ => {}
        }
    }

    /// Parses the PES assembled for stream `i` and reports it.
    fn complete(&mut self, i: usize) {
        let s = &mut self.streams[i];
        let Some(buf) = s.buf.take() else {
            return;
        };
        let info = s.info;
        s.last_len = buf.len();
        let data = buf.freeze();
        match PesHeader::parse(&data) {
            Ok(h) => self.events.push_back(DemuxEvent::Pes(Pes {
                pid: info.pid,
                kind: info.kind,
                pts: h.pts,
                dts: h.dts,
                random_access: s.random_access,
                data: data.slice(h.payload.min(data.len())..),
            })),
            Err(error) => self.error(TsError::Pes {
                pid: info.pid,
                error,
            }),
        }
    }
}
