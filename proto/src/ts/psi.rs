//! Program specific information: sections reassembled from packet payloads, their CRC-32,
//! and the two tables a single-program stream needs (PAT and PMT), read and written.

use bytes::{BufMut, BytesMut};

/// PID of the program association table.
pub const PAT_PID: u16 = 0;
/// table_id of a PAT section.
pub const TABLE_PAT: u8 = 0x00;
/// table_id of a PMT section.
pub const TABLE_PMT: u8 = 0x02;
/// Longest PAT/PMT section, header and CRC included (section_length is at most 1021).
pub const MAX_SECTION: usize = 1024;

/// Descriptor tags this module reads or writes.
pub mod descriptor {
    /// registration_descriptor: a 32-bit format identifier (`Opus`, `AC-3`, `EAC3`, `HEVC`).
    pub const REGISTRATION: u8 = 0x05;
    /// ISO 639 language descriptor.
    pub const LANGUAGE: u8 = 0x0A;
    /// DVB AC-3 descriptor.
    pub const DVB_AC3: u8 = 0x6A;
    /// DVB enhanced AC-3 descriptor.
    pub const DVB_EAC3: u8 = 0x7A;
    /// DVB extension descriptor (Opus: extension tag 0x80, then channel_config_code).
    pub const DVB_EXTENSION: u8 = 0x7F;
    /// Extension tag of the DVB Opus audio descriptor inside [`DVB_EXTENSION`].
    pub const EXT_OPUS: u8 = 0x80;
}

/// Why a section was refused. The section is ignored; the previous table stays in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PsiError {
    /// The CRC-32 at the end of the section does not match.
    #[error("section CRC mismatch")]
    Crc,
    /// section_length runs past the limit or the fields inside run past the section.
    #[error("section malformed")]
    Malformed,
    /// A table id other than the one expected on this PID.
    #[error("unexpected table id {0:#04x}")]
    UnexpectedTable(u8),
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial all ones, not reflected, no final xor).
/// Over a whole section including its CRC field the result is 0.
pub fn crc32(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[((crc >> 24) as u8 ^ b) as usize]
    })
}

/// Reassembles sections of one PID from packet payloads (pointer_field, sections spanning
/// packets, several sections in one packet, stuffing).
#[derive(Debug, Default)]
pub struct SectionBuffer {
    buf: Vec<u8>,
    /// Whether `buf` holds the start of a section being assembled.
    active: bool,
}

impl SectionBuffer {
    /// Forgets a partial section (continuity error on the PID).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    /// Feeds one packet payload; calls `out` with every complete section (header to CRC).
    pub fn push(&mut self, unit_start: bool, payload: &[u8], mut out: impl FnMut(&[u8])) {
        let mut rest = payload;
        if unit_start {
            let Some((&pointer, after)) = rest.split_first() else {
                self.reset();
                return;
            };
            let pointer = usize::from(pointer);
            if pointer > after.len() {
                self.reset();
                return;
            }
            if self.active {
                self.buf.extend_from_slice(&after[..pointer]);
                self.flush(&mut out);
            }
            self.reset();
            self.active = true;
            rest = &after[pointer..];
        } else if !self.active {
            return;
        }
        self.buf.extend_from_slice(rest);
        self.flush(&mut out);
    }

    /// Emits the complete sections at the front of `buf`.
    fn flush(&mut self, out: &mut impl FnMut(&[u8])) {
        let mut pos = 0;
        loop {
            let b = &self.buf[pos..];
            if matches!(b.first(), None | Some(0xFF)) {
                // Stuffing: the rest of the packet carries no further section.
                self.reset();
                return;
            }
            if b.len() < 3 {
                break;
            }
            let len = 3 + usize::from(u16::from_be_bytes([b[1] & 0x0f, b[2]]));
            if len > MAX_SECTION {
                self.reset();
                return;
            }
            if b.len() < len {
                break;
            }
            out(&b[..len]);
            pos += len;
        }
        self.buf.drain(..pos);
    }
}

/// The fields of the long section header every PAT/PMT section has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LongHeader {
    table_id: u8,
    /// transport_stream_id (PAT) or program_number (PMT).
    id: u16,
    version: u8,
    current: bool,
}

/// Checks the CRC and the long header; returns the header and the table body.
fn open_section(section: &[u8], table_id: u8) -> Result<(LongHeader, &[u8]), PsiError> {
    if section.len() < 12 {
        return Err(PsiError::Malformed);
    }
    if section[0] != table_id {
        return Err(PsiError::UnexpectedTable(section[0]));
    }
    if crc32(section) != 0 {
        return Err(PsiError::Crc);
    }
    let h = LongHeader {
        table_id: section[0],
        id: u16::from_be_bytes([section[3], section[4]]),
        version: (section[5] >> 1) & 0x1f,
        current: section[5] & 1 != 0,
    };
    Ok((h, &section[8..section.len() - 4]))
}

/// A program association table: the program numbers and their PMT PIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pat {
    /// version_number.
    pub version: u8,
    /// transport_stream_id.
    pub transport_stream_id: u16,
    /// (program_number, PMT PID), program 0 (the network PID) left out.
    pub programs: Vec<(u16, u16)>,
}

impl Pat {
    /// Parses a PAT section. `Ok(None)` for a not-yet-current table.
    pub fn parse(section: &[u8]) -> Result<Option<Pat>, PsiError> {
        let (h, body) = open_section(section, TABLE_PAT)?;
        if !h.current {
            return Ok(None);
        }
        let programs = body
            .chunks_exact(4)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u16::from_be_bytes([c[2] & 0x1f, c[3]]),
                )
            })
            .filter(|&(n, _)| n != 0)
            .collect();
        Ok(Some(Pat {
            version: h.version,
            transport_stream_id: h.id,
            programs,
        }))
    }

    /// Writes the section (header to CRC).
    pub fn write(&self, out: &mut BytesMut) {
        write_section(
            out,
            TABLE_PAT,
            self.transport_stream_id,
            self.version,
            |b| {
                for &(n, pid) in &self.programs {
                    b.put_u16(n);
                    b.put_u16(0xE000 | pid);
                }
            },
        );
    }
}

/// One elementary stream of a PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmtStream {
    /// stream_type.
    pub stream_type: u8,
    /// elementary_PID.
    pub pid: u16,
    /// The ES_info descriptors, as carried (tag, length, body ...).
    pub descriptors: Vec<u8>,
}

impl PmtStream {
    /// The bodies of the descriptors with this tag.
    pub fn descriptors(&self, tag: u8) -> impl Iterator<Item = &[u8]> {
        iter_descriptors(&self.descriptors).filter_map(move |(t, b)| (t == tag).then_some(b))
    }

    /// The format identifier of the first registration descriptor.
    pub fn registration(&self) -> Option<[u8; 4]> {
        self.descriptors(descriptor::REGISTRATION)
            .find_map(|b| b.get(..4).map(|f| [f[0], f[1], f[2], f[3]]))
    }
}

/// Iterates (tag, body) over a descriptor loop; stops at a descriptor that runs past it.
pub fn iter_descriptors(mut d: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&tag, rest) = d.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let len = usize::from(len);
        if len > rest.len() {
            d = &[];
            return None;
        }
        let (body, rest) = rest.split_at(len);
        d = rest;
        Some((tag, body))
    })
}

/// A program map table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pmt {
    /// program_number.
    pub program: u16,
    /// version_number.
    pub version: u8,
    /// PCR_PID (0x1FFF: none).
    pub pcr_pid: u16,
    /// Program-level descriptors, as carried.
    pub descriptors: Vec<u8>,
    /// The elementary streams in table order.
    pub streams: Vec<PmtStream>,
}

impl Pmt {
    /// Parses a PMT section. `Ok(None)` for a not-yet-current table.
    pub fn parse(section: &[u8]) -> Result<Option<Pmt>, PsiError> {
        let (h, body) = open_section(section, TABLE_PMT)?;
        if !h.current {
            return Ok(None);
        }
        if body.len() < 4 {
            return Err(PsiError::Malformed);
        }
        let pcr_pid = u16::from_be_bytes([body[0] & 0x1f, body[1]]);
        let info_len = usize::from(u16::from_be_bytes([body[2] & 0x0f, body[3]]));
        let rest = &body[4..];
        if info_len > rest.len() {
            return Err(PsiError::Malformed);
        }
        let (descriptors, mut rest) = rest.split_at(info_len);
        let mut streams = Vec::new();
        while !rest.is_empty() {
            if rest.len() < 5 {
                return Err(PsiError::Malformed);
            }
            let stream_type = rest[0];
            let pid = u16::from_be_bytes([rest[1] & 0x1f, rest[2]]);
            let es_len = usize::from(u16::from_be_bytes([rest[3] & 0x0f, rest[4]]));
            if 5 + es_len > rest.len() {
                return Err(PsiError::Malformed);
            }
            streams.push(PmtStream {
                stream_type,
                pid,
                descriptors: rest[5..5 + es_len].to_vec(),
            });
            rest = &rest[5 + es_len..];
        }
        Ok(Some(Pmt {
            program: h.id,
            version: h.version,
            pcr_pid,
            descriptors: descriptors.to_vec(),
            streams,
        }))
    }

    /// Writes the section (header to CRC).
    pub fn write(&self, out: &mut BytesMut) {
        write_section(out, TABLE_PMT, self.program, self.version, |b| {
            b.put_u16(0xE000 | self.pcr_pid);
            b.put_u16(0xF000 | self.descriptors.len() as u16);
            b.put_slice(&self.descriptors);
            for s in &self.streams {
                b.put_u8(s.stream_type);
                b.put_u16(0xE000 | s.pid);
                b.put_u16(0xF000 | s.descriptors.len() as u16);
                b.put_slice(&s.descriptors);
            }
        });
    }
}

/// Writes a single long-form section: header, `body`, CRC-32.
fn write_section(
    out: &mut BytesMut,
    table_id: u8,
    id: u16,
    version: u8,
    body: impl FnOnce(&mut BytesMut),
) {
    let start = out.len();
    out.put_u8(table_id);
    out.put_u16(0); // section_length, patched below
    out.put_u16(id);
    out.put_u8(0xC1 | ((version & 0x1f) << 1));
    out.put_u8(0); // section_number
    out.put_u8(0); // last_section_number
    body(out);
    let len = out.len() - start - 3 + 4;
    let b = 0xB000 | (len as u16 & 0x0fff);
    out[start + 1..start + 3].copy_from_slice(&b.to_be_bytes());
    let crc = crc32(&out[start..]);
    out.put_u32(crc);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PAT FFmpeg writes for one program (number 1, PMT PID 0x1000), section only.
    const FFMPEG_PAT: [u8; 16] = [
        0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04,
        0xb2,
    ];

    #[test]
    fn crc_of_known_pat() {
        assert_eq!(crc32(&FFMPEG_PAT[..12]), 0x2ab104b2);
        assert_eq!(crc32(&FFMPEG_PAT), 0);
    }

    #[test]
    fn pat_round_trip() {
        let pat = Pat::parse(&FFMPEG_PAT).unwrap().unwrap();
        assert_eq!(pat.programs, vec![(1, 0x1000)]);
        assert_eq!(pat.transport_stream_id, 1);
        let mut out = BytesMut::new();
        pat.write(&mut out);
        assert_eq!(&out[..], &FFMPEG_PAT);
        let mut bad = FFMPEG_PAT;
        bad[9] ^= 1;
        assert_eq!(Pat::parse(&bad), Err(PsiError::Crc));
    }

    #[test]
    fn pmt_round_trip() {
        let pmt = Pmt {
            program: 1,
            version: 3,
            pcr_pid: 0x100,
            descriptors: vec![],
            streams: vec![
                PmtStream {
                    stream_type: 0x1b,
                    pid: 0x100,
                    descriptors: vec![],
                },
                PmtStream {
                    stream_type: 0x06,
                    pid: 0x101,
                    descriptors: vec![0x05, 4, b'O', b'p', b'u', b's', 0x7f, 2, 0x80, 2],
                },
            ],
        };
        let mut out = BytesMut::new();
        pmt.write(&mut out);
        let back = Pmt::parse(&out).unwrap().unwrap();
        assert_eq!(back, pmt);
        assert_eq!(back.streams[1].registration(), Some(*b"Opus"));
        let ext: Vec<_> = back.streams[1]
            .descriptors(descriptor::DVB_EXTENSION)
            .collect();
        assert_eq!(ext, vec![&[0x80, 2][..]]);
        assert_eq!(
            Pmt::parse(&FFMPEG_PAT),
            Err(PsiError::UnexpectedTable(TABLE_PAT))
        );
    }

    #[test]
    fn sections_across_packets_and_stuffing() {
        let mut sec = BytesMut::new();
        Pat {
            version: 0,
            transport_stream_id: 1,
            programs: (1..40).map(|n| (n, 0x100 + n)).collect(),
        }
        .write(&mut sec);
        let mut first = vec![0u8];
        first.extend_from_slice(&sec[..100]);
        let second = &sec[100..];
        let mut got = Vec::new();
        let mut sb = SectionBuffer::default();
        sb.push(true, &first, |s| got.push(s.to_vec()));
        assert!(got.is_empty());
        let mut tail = second.to_vec();
        tail.extend_from_slice(&[0xff; 20]);
        sb.push(false, &tail, |s| got.push(s.to_vec()));
        assert_eq!(got, vec![sec.to_vec()]);
        // A continuation with no section in progress is ignored.
        sb.push(false, second, |s| got.push(s.to_vec()));
        assert_eq!(got.len(), 1);
    }
}
