//! MPEG-TS (ISO/IEC 13818-1), sans-IO: the demuxer that turns SRT payloads into the
//! normalized frames of [`crate::media`], and the muxer that turns frames back into TS.
//!
//! ```text
//!  bytes --> demux::Demuxer --> Pes --> frames::FrameReader --> TsEvent::{Config, Frame}
//!            (packet, psi, pes)          (h264/h265 + annexb, adts, mpa, ac3, opus,
//!                                          timestamp: one clock per program)
//!  frames --> mux::Muxer --> 188-byte packets (PAT, PMT, PCR, PES)
//! ```
//!
//! What comes out of [`FrameReader`] is exactly what `ingest-rtmp` makes from FLV: H.264
//! and H.265 as length-prefixed NAL units with an `avcC`/`hvcC` built from the parameter
//! sets (and rebuilt when they change), AAC as raw frames with an AudioSpecificConfig,
//! MP3, AC-3, E-AC-3 and Opus frames with the configuration payloads of FORMAT.md. Every
//! audio frame gets its own timestamp, counted in samples from its PES's PTS. Timestamps
//! are 90 kHz ticks (`timescale` 90000) on one timeline per program, starting at 0.
//!
//! Damage is contained: a continuity error, a bad CRC, a truncated or oversized PES or a
//! corrupt codec header costs the unit it hit, is reported as [`TsEvent::Error`], and the
//! demuxer carries on at the next unit start. Every length read from the input is checked
//! against a bound before anything is allocated for it.

pub mod ac3;
pub mod adts;
pub mod annexb;
pub mod demux;
pub mod frames;
pub mod h264;
pub mod h265;
pub mod latm;
pub mod mpa;
pub mod mux;
pub mod opus;
pub mod packet;
mod params;
pub mod pes;
pub mod psi;
pub mod timestamp;

pub use demux::{DemuxEvent, DemuxLimits, Demuxer, EsInfo, Pes, StreamKind};
pub use frames::{FrameReader, ReaderOptions, TsEvent};
pub use mux::{MuxError, MuxOptions, Muxer};

/// Damage the demuxer contained, with the PID it hit. None of these stop demuxing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsError {
    /// A packet did not start with the sync byte; the framer searched for sync again.
    #[error("lost packet sync")]
    LostSync,
    /// A packet header that cannot be read.
    #[error("PID {pid}: bad packet ({error:?})")]
    Packet {
        /// PID of the packet.
        pid: u16,
        /// What was wrong.
        error: packet::PacketError,
    },
    /// The transport error indicator was set.
    #[error("PID {pid}: transport error indicator set")]
    TransportError {
        /// PID of the packet.
        pid: u16,
    },
    /// A packet is missing (continuity counter skipped): the unit in progress was dropped.
    #[error("PID {pid}: continuity counter {got}, expected {expected}")]
    Continuity {
        /// PID of the packet.
        pid: u16,
        /// Counter expected.
        expected: u8,
        /// Counter found.
        got: u8,
    },
    /// A scrambled packet (no descrambling here).
    #[error("PID {pid}: scrambled")]
    Scrambled {
        /// PID of the packet.
        pid: u16,
    },
    /// A PAT or PMT section was refused.
    #[error("PID {pid}: {error}")]
    Psi {
        /// PID of the section.
        pid: u16,
        /// What was wrong.
        error: psi::PsiError,
    },
    /// A PES packet was refused.
    #[error("PID {pid}: {error}")]
    Pes {
        /// PID of the PES.
        pid: u16,
        /// What was wrong.
        error: pes::PesError,
    },
    /// A PES grew past [`DemuxLimits::max_pes`]; it is dropped up to the next unit start.
    #[error("PID {pid}: PES larger than {limit} bytes")]
    PesTooLarge {
        /// PID of the PES.
        pid: u16,
        /// The limit.
        limit: usize,
    },
    /// A PES ended before the length its header announced.
    #[error("PID {pid}: PES truncated")]
    PesTruncated {
        /// PID of the PES.
        pid: u16,
    },
    /// Bytes of an audio PES that are not a valid frame of its codec were skipped.
    #[error("PID {pid}: {bytes} bytes of invalid audio frames skipped")]
    AudioSync {
        /// PID of the stream.
        pid: u16,
        /// Bytes skipped.
        bytes: usize,
    },
    /// A video access unit arrived before its parameter sets; it was dropped.
    #[error("PID {pid}: video before its parameter sets")]
    NoParameterSets {
        /// PID of the stream.
        pid: u16,
    },
    /// A PES with no timestamp and nothing before it to count from; it was dropped.
    #[error("PID {pid}: no timestamp")]
    NoTimestamp {
        /// PID of the stream.
        pid: u16,
    },
}
