//! PES packets: the header (stream id, PTS, DTS) read from a reassembled packet, and
//! written for the muxer.

use bytes::BufMut;

/// Mask of a 33-bit PTS/DTS.
pub const TS_MASK: u64 = (1 << 33) - 1;

/// Stream ids whose PES packets have no optional header (ISO 13818-1 table 2-21).
fn has_no_optional_header(stream_id: u8) -> bool {
    matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
}

/// Why a PES packet could not be read. The packet is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PesError {
    /// No 00 00 01 start code prefix.
    #[error("PES start code missing")]
    NoStartCode,
    /// The header runs past the data.
    #[error("PES header truncated")]
    Truncated,
}

/// The header fields of a PES packet the demuxer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    /// stream_id.
    pub stream_id: u8,
    /// PES_packet_length (0 = unbounded, video only).
    pub packet_length: u16,
    /// Presentation timestamp, 33 bits of 90 kHz.
    pub pts: Option<u64>,
    /// Decode timestamp, 33 bits of 90 kHz (only with a PTS).
    pub dts: Option<u64>,
    /// data_alignment_indicator.
    pub aligned: bool,
    /// Offset of the payload (elementary stream data) in the packet.
    pub payload: usize,
}

/// Fixed part of a PES header: start code, stream id, packet length.
pub const FIXED_LEN: usize = 6;

/// Reads the start code, stream id and packet length; `None` if fewer than 6 bytes.
pub fn peek_length(data: &[u8]) -> Option<Result<(u8, u16), PesError>> {
    if data.len() < FIXED_LEN {
        return None;
    }
    if data[..3] != [0, 0, 1] {
        return Some(Err(PesError::NoStartCode));
    }
    Some(Ok((data[3], u16::from_be_bytes([data[4], data[5]]))))
}

fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1 & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

impl PesHeader {
    /// Parses the header at the start of a whole PES packet.
    pub fn parse(data: &[u8]) -> Result<Self, PesError> {
        let (stream_id, packet_length) = peek_length(data).ok_or(PesError::Truncated)??;
        let mut h = PesHeader {
            stream_id,
            packet_length,
            pts: None,
            dts: None,
            aligned: false,
            payload: FIXED_LEN,
        };
        if has_no_optional_header(stream_id) {
            return Ok(h);
        }
        if data.len() < 9 {
            return Err(PesError::Truncated);
        }
        h.aligned = data[6] & 0x04 != 0;
        let flags = data[7] >> 6;
        let header_len = usize::from(data[8]);
        h.payload = 9 + header_len;
        if data.len() < h.payload {
            return Err(PesError::Truncated);
        }
        let opt = &data[9..h.payload];
        match flags {
            0b10 if opt.len() >= 5 => h.pts = Some(timestamp(&opt[..5])),
            0b11 if opt.len() >= 10 => {
                h.pts = Some(timestamp(&opt[..5]));
                h.dts = Some(timestamp(&opt[5..10]));
            }
            0b10 | 0b11 => return Err(PesError::Truncated),
            _ => {}
        }
        Ok(h)
    }
}

fn put_timestamp(out: &mut impl BufMut, marker: u8, ts: u64) {
    let ts = ts & TS_MASK;
    out.put_u8((marker << 4) | ((ts >> 29) as u8 & 0x0e) | 1);
    out.put_u16((((ts >> 14) as u16) & 0xfffe) | 1);
    out.put_u16(((ts << 1) as u16 & 0xfffe) | 1);
}

/// Longest header [`write_header`] writes (with PTS and DTS).
pub const MAX_HEADER_LEN: usize = 19;

/// Writes a PES header for `payload_len` bytes of elementary stream data. The packet
/// length is 0 (unbounded) when it would not fit in 16 bits, as video allows.
pub fn write_header(
    out: &mut impl BufMut,
    stream_id: u8,
    pts: u64,
    dts: Option<u64>,
    payload_len: usize,
) {
    let dts = dts.filter(|&d| d != pts);
    let header_len = if dts.is_some() { 10 } else { 5 };
    let total = 3 + header_len + payload_len;
    out.put_slice(&[0, 0, 1, stream_id]);
    out.put_u16(u16::try_from(total).unwrap_or(0));
    // '10', not scrambled, data_alignment_indicator set.
    out.put_u8(0x84);
    out.put_u8(if dts.is_some() { 0xC0 } else { 0x80 });
    out.put_u8(header_len as u8);
    match dts {
        Some(d) => {
            put_timestamp(out, 0b0011, pts);
            put_timestamp(out, 0b0001, d);
        }
        None => put_timestamp(out, 0b0010, pts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn golden_header_with_pts_and_dts() {
        // Video PES as FFmpeg writes it: PTS 133200, DTS 126000, unbounded length.
        let mut bytes = [
            0x00, 0x00, 0x01, 0xe0, 0x00, 0x00, 0x80, 0xc0, 0x0a, 0x31, 0x00, 0x09, 0x10, 0xa1,
            0x11, 0x00, 0x07, 0xd8, 0x61,
        ];
        let h = PesHeader::parse(&bytes).unwrap();
        assert_eq!(h.stream_id, 0xe0);
        assert_eq!(h.pts, Some(133200));
        assert_eq!(h.dts, Some(126000));
        assert_eq!(h.payload, 19);
        let mut out = BytesMut::new();
        write_header(&mut out, 0xe0, 133200, Some(126000), 70000);
        // This side sets data_alignment_indicator; FFmpeg does not.
        bytes[6] = 0x84;
        assert_eq!(&out[..], &bytes);
    }

    #[test]
    fn timestamps_round_trip_all_33_bits() {
        for ts in [0, 1, TS_MASK, 0x1_2345_6789 & TS_MASK, 1 << 32] {
            let mut out = BytesMut::new();
            write_header(&mut out, 0xc0, ts, None, 10);
            assert_eq!(u16::from_be_bytes([out[4], out[5]]), 18);
            let h = PesHeader::parse(&out).unwrap();
            assert_eq!((h.pts, h.dts), (Some(ts), None));
        }
    }

    #[test]
    fn truncated_and_bad() {
        assert_eq!(
            PesHeader::parse(&[0, 0, 2, 0xe0, 0, 0, 0x80, 0x80, 5]),
            Err(PesError::NoStartCode)
        );
        assert_eq!(
            PesHeader::parse(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21]),
            Err(PesError::Truncated)
        );
        assert_eq!(
            PesHeader::parse(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 2, 0xff, 0xff]),
            Err(PesError::Truncated)
        );
    }
}
