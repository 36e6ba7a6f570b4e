//! Transport stream packets: finding sync in a byte stream (188- or 204-byte packets, any
//! garbage before them) and reading the 4-byte header and the adaptation field.

use bytes::{Buf, BytesMut};

/// Length of a transport stream packet without Reed-Solomon parity.
pub const PACKET_LEN: usize = 188;
/// Length of a packet followed by 16 bytes of Reed-Solomon parity (DVB, ATSC).
pub const PACKET_LEN_RS: usize = 204;
/// The sync byte every packet starts with.
pub const SYNC: u8 = 0x47;
/// The null packet PID (stuffing).
pub const NULL_PID: u16 = 0x1FFF;

/// Sync bytes that must follow a candidate sync byte, one packet length apart, before the
/// framer trusts it.
const CONFIRMATIONS: usize = 2;

/// The header and adaptation field of one packet; the payload is `packet[payload..]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// Transport error indicator: a lower layer saw an uncorrectable error.
    pub transport_error: bool,
    /// A PES packet or PSI section starts in this payload.
    pub unit_start: bool,
    /// Packet identifier (13 bits).
    pub pid: u16,
    /// Transport scrambling control (0 = clear).
    pub scrambling: u8,
    /// Whether the packet has a payload.
    pub has_payload: bool,
    /// Continuity counter (4 bits).
    pub cc: u8,
    /// Adaptation field discontinuity indicator.
    pub discontinuity: bool,
    /// Adaptation field random access indicator.
    pub random_access: bool,
    /// Program clock reference in 27 MHz ticks, when present.
    pub pcr: Option<u64>,
    /// Offset of the payload in the 188 bytes.
    pub payload: usize,
}

/// Why a single packet was not usable. The packet is skipped; its PID's unit is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// adaptation_field_control 0 (reserved).
    ReservedAdaptationControl,
    /// The adaptation field length runs past the packet.
    AdaptationTooLong,
}

impl PacketHeader {
    /// Reads the header of one 188-byte packet (the sync byte is not checked again).
    pub fn parse(p: &[u8; PACKET_LEN]) -> Result<Self, PacketError> {
        let afc = (p[3] >> 4) & 0x3;
        let mut h = PacketHeader {
            transport_error: p[1] & 0x80 != 0,
            unit_start: p[1] & 0x40 != 0,
            pid: u16::from_be_bytes([p[1] & 0x1f, p[2]]),
            scrambling: p[3] >> 6,
            has_payload: afc & 0x1 != 0,
            cc: p[3] & 0x0f,
            discontinuity: false,
            random_access: false,
            pcr: None,
            payload: 4,
        };
        if afc == 0 {
            return Err(PacketError::ReservedAdaptationControl);
        }
        if afc & 0x2 != 0 {
            let len = usize::from(p[4]);
            // 183 bytes at most with no payload, 182 with one.
            let max = if h.has_payload { 182 } else { 183 };
            if len > max {
                return Err(PacketError::AdaptationTooLong);
            }
            if len > 0 {
                let flags = p[5];
                h.discontinuity = flags & 0x80 != 0;
                h.random_access = flags & 0x40 != 0;
                if flags & 0x10 != 0 && len >= 7 {
                    let b = &p[6..12];
                    let base = (u64::from(b[0]) << 25)
                        | (u64::from(b[1]) << 17)
                        | (u64::from(b[2]) << 9)
                        | (u64::from(b[3]) << 1)
                        | u64::from(b[4] >> 7);
                    let ext = (u64::from(b[4] & 1) << 8) | u64::from(b[5]);
                    h.pcr = Some(base * 300 + ext);
                }
            }
            h.payload = 5 + len;
        }
        Ok(h)
    }
}

/// Cuts a byte stream into 188-byte packets, whatever the split of the input.
///
/// Out of sync, a sync byte is trusted only when two more follow it at the same packet
/// length (188, or 204 with parity); bytes before it are counted as skipped. In sync, a
/// packet that does not start with the sync byte loses sync and the search starts again
/// one byte later. The result does not depend on how the input was split.
#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
    /// The packet length once in sync.
    stride: Option<usize>,
    skipped: u64,
    lost_sync: u64,
}

impl Framer {
    /// A framer waiting for sync.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends input bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes discarded while searching for sync, so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Times sync was lost after being found.
    pub fn lost_sync(&self) -> u64 {
        self.lost_sync
    }

    /// The next whole packet, or `None` until more input arrives.
    pub fn next_packet(&mut self) -> Option<[u8; PACKET_LEN]> {
        loop {
            let stride = match self.stride {
                Some(s) => s,
                None => self.find_sync()?,
            };
            if self.buf.len() < PACKET_LEN {
                return None;
            }
            if self.buf[0] != SYNC {
                self.stride = None;
                self.lost_sync += 1;
                self.buf.advance(1);
                self.skipped += 1;
                continue;
            }
            // A 204-byte packet's parity is only dropped once it has fully arrived, so a
            // split inside the parity cannot change what comes out.
            if self.buf.len() < stride {
                return None;
            }
            let mut p = [0u8; PACKET_LEN];
            p.copy_from_slice(&self.buf[..PACKET_LEN]);
            self.buf.advance(stride);
            return Some(p);
        }
    }

    /// Searches for a confirmed sync byte; drops what precedes it. `None` = need more input.
    fn find_sync(&mut self) -> Option<usize> {
        let mut i = 0;
        let found = loop {
            let Some(off) = self.buf[i..].iter().position(|&b| b == SYNC) else {
                i = self.buf.len();
                break None;
            };
            i += off;
            match self.confirm(i) {
                Some(Some(stride)) => break Some(stride),
                Some(None) => i += 1,
                None => break None,
            }
        };
        self.skipped += i as u64;
        self.buf.advance(i);
        if found.is_some() {
            self.stride = found;
        }
        found
    }

    /// `Some(Some(len))`: confirmed at `len`; `Some(None)`: not a sync; `None`: need more.
    fn confirm(&self, i: usize) -> Option<Option<usize>> {
        let mut undecided = false;
        for stride in [PACKET_LEN, PACKET_LEN_RS] {
            let mut ok = true;
            for k in 1..=CONFIRMATIONS {
                match self.buf.get(i + k * stride) {
                    Some(&SYNC) => {}
                    Some(_) => {
                        ok = false;
                        break;
                    }
                    None => {
                        // Cannot decide yet; a 188 candidate must not be confirmed ahead
                        // of a 204 one that would need more bytes, and vice versa.
                        undecided = true;
                        ok = false;
                        break;
                    }
                }
            }
            if ok && !undecided {
                return Some(Some(stride));
            }
        }
        if undecided {
            None
        } else {
            Some(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u16, cc: u8) -> [u8; PACKET_LEN] {
        let mut p = [0xffu8; PACKET_LEN];
        p[0] = SYNC;
        p[1] = 0x40 | (pid >> 8) as u8;
        p[2] = pid as u8;
        p[3] = 0x10 | cc;
        p
    }

    #[test]
    fn header_with_pcr() {
        let mut p = packet(0x100, 3);
        p[3] = 0x30 | 3;
        p[4] = 7;
        p[5] = 0x50; // random access + PCR
                     // PCR base 0x1_0000_0001, extension 5.
        p[6..12].copy_from_slice(&[0x80, 0x00, 0x00, 0x00, 0x80 | 0x7e, 0x05]);
        let h = PacketHeader::parse(&p).unwrap();
        assert_eq!(h.pid, 0x100);
        assert!(h.unit_start && h.has_payload && h.random_access && !h.discontinuity);
        assert_eq!(h.cc, 3);
        assert_eq!(h.pcr, Some(0x1_0000_0001 * 300 + 5));
        assert_eq!(h.payload, 12);
    }

    #[test]
    fn adaptation_too_long() {
        let mut p = packet(1, 0);
        p[3] = 0x30;
        p[4] = 183;
        assert_eq!(PacketHeader::parse(&p), Err(PacketError::AdaptationTooLong));
        p[3] = 0x20;
        assert!(PacketHeader::parse(&p).is_ok());
        p[3] = 0x00;
        assert_eq!(
            PacketHeader::parse(&p),
            Err(PacketError::ReservedAdaptationControl)
        );
    }

    fn run(input: &[u8], split: usize) -> (Vec<u16>, u64) {
        let mut f = Framer::new();
        let mut pids = Vec::new();
        for piece in input.chunks(split) {
            f.push(piece);
            while let Some(p) = f.next_packet() {
                pids.push(PacketHeader::parse(&p).unwrap().pid);
            }
        }
        (pids, f.skipped())
    }

    #[test]
    fn finds_sync_after_garbage_in_any_split() {
        let mut input = vec![0x47, 1, 2, 0x47, 9];
        for i in 0..5 {
            input.extend_from_slice(&packet(i, 0));
        }
        for split in [1, 7, 188, 1000] {
            assert_eq!(run(&input, split), (vec![0, 1, 2, 3, 4], 5));
        }
    }

    #[test]
    fn reads_204_byte_packets() {
        let mut input = Vec::new();
        for i in 0..4 {
            input.extend_from_slice(&packet(i, 0));
            input.extend_from_slice(&[0x47; 16]);
        }
        for split in [1, 13, 204, 4096] {
            assert_eq!(run(&input, split).0, vec![0, 1, 2, 3]);
        }
    }

    #[test]
    fn resyncs_after_a_lost_sync_byte() {
        let mut input = Vec::new();
        for i in 0..8 {
            input.extend_from_slice(&packet(i, 0));
        }
        input[3 * 188] = 0x46; // packet 3 loses its sync byte
        for split in [1, 50, 2000] {
            assert_eq!(run(&input, split).0, vec![0, 1, 2, 4, 5, 6, 7]);
        }
    }
}
