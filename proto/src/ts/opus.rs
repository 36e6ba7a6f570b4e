//! Opus in MPEG-TS (the Opus mapping of ETSI TS 102 366 style control headers): access
//! units behind a control header, durations from the TOC byte, and the OpusHead a
//! channel configuration code stands for.

use bytes::{BufMut, BytesMut};

/// Opus runs at 48 kHz whatever the input rate.
pub const SAMPLE_RATE: u32 = 48000;

/// One access unit found in a PES payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusUnit {
    /// Offset of the Opus packet in the payload.
    pub start: usize,
    /// Length of the Opus packet.
    pub len: usize,
}

/// Reads the control header at `data[pos..]`; `None` if it is not a valid one or the
/// packet runs past the data.
pub fn next_unit(data: &[u8], pos: usize) -> Option<OpusUnit> {
    let d = data.get(pos..)?;
    if d.len() < 2 || d[0] != 0x7F || d[1] & 0xE0 != 0xE0 {
        return None;
    }
    let flags = d[1];
    let mut i = 2;
    let mut len = 0usize;
    loop {
        let b = *d.get(i)?;
        i += 1;
        len += usize::from(b);
        if b != 0xFF {
            break;
        }
    }
    if flags & 0x10 != 0 {
        i += 2; // start_trim
    }
    if flags & 0x08 != 0 {
        i += 2; // end_trim
    }
    if flags & 0x04 != 0 {
        i += 1 + usize::from(*d.get(i)?);
    }
    if i + len > d.len() {
        return None;
    }
    Some(OpusUnit {
        start: pos + i,
        len,
    })
}

/// Writes the control header for a packet of `len` bytes (no trims, no extension).
pub fn write_control_header(out: &mut BytesMut, len: usize) {
    out.put_slice(&[0x7F, 0xE0]);
    let mut n = len;
    while n >= 255 {
        out.put_u8(0xFF);
        n -= 255;
    }
    out.put_u8(n as u8);
}

/// Samples (at 48 kHz) in an Opus packet, from its TOC byte (RFC 6716 3.1).
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config & 3)],
        12..=15 => [480, 960][usize::from(config & 1)],
        _ => [120, 240, 480, 960][usize::from(config & 3)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    Some(per_frame * frames)
}

const STREAMS: [u8; 8] = [1, 1, 2, 2, 3, 4, 4, 5];
const COUPLED: [u8; 8] = [0, 1, 1, 2, 2, 2, 3, 3];
const MAPPING: [[u8; 8]; 8] = [
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 1, 0, 0, 0, 0, 0, 0],
    [0, 2, 1, 0, 0, 0, 0, 0],
    [0, 1, 2, 3, 0, 0, 0, 0],
    [0, 4, 1, 2, 3, 0, 0, 0],
    [0, 4, 1, 2, 3, 5, 0, 0],
    [0, 4, 1, 2, 3, 5, 6, 0],
    [0, 6, 1, 2, 3, 4, 5, 7],
];

/// The OpusHead (RFC 7845 5.1) for a DVB channel_config_code: 1 to 8 channels in the
/// Vorbis order; any other code is taken as stereo.
pub fn opus_head(channel_config: u8) -> BytesMut {
    let channels = match channel_config {
        1..=8 => channel_config,
        _ => 2,
    };
    let mut out = BytesMut::with_capacity(21 + 8);
    out.put_slice(b"OpusHead");
    out.put_u8(1);
    out.put_u8(channels);
    out.put_u16_le(0); // pre-skip: not carried in TS
    out.put_u32_le(SAMPLE_RATE);
    out.put_u16_le(0); // output gain
    if channels <= 2 {
        out.put_u8(0);
    } else {
        let i = usize::from(channels - 1);
        out.put_u8(1);
        out.put_u8(STREAMS[i]);
        out.put_u8(COUPLED[i]);
        out.put_slice(&MAPPING[i][..usize::from(channels)]);
    }
    out
}

/// The channel_config_code for a stream described by an OpusHead (stereo when empty or
/// unreadable).
pub fn channel_config(head: &[u8]) -> u8 {
    match head.get(9) {
        Some(&c) if head.starts_with(b"OpusHead") && (1..=8).contains(&c) => c,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_header_round_trip() {
        let mut out = BytesMut::new();
        write_control_header(&mut out, 300);
        assert_eq!(&out[..], &[0x7f, 0xe0, 0xff, 45]);
        out.extend_from_slice(&[0xfc; 300]);
        write_control_header(&mut out, 3);
        out.extend_from_slice(&[0xfc, 1, 2]);
        assert_eq!(next_unit(&out, 0), Some(OpusUnit { start: 4, len: 300 }));
        assert_eq!(next_unit(&out, 304), Some(OpusUnit { start: 307, len: 3 }));
        assert_eq!(
            next_unit(&out[..305], 0),
            Some(OpusUnit { start: 4, len: 300 })
        );
        assert_eq!(next_unit(&out[..303], 0), None);
    }

    #[test]
    fn durations() {
        assert_eq!(packet_samples(&[0xfc]), Some(960)); // CELT FB 20 ms, one frame
        assert_eq!(packet_samples(&[0x0b << 3 | 1]), Some(5760)); // SILK 60 ms, two
        assert_eq!(packet_samples(&[0x83, 0x03]), Some(360)); // CELT 2.5 ms, three
        assert_eq!(packet_samples(&[]), None);
    }

    #[test]
    fn heads() {
        let h = opus_head(2);
        assert_eq!(h.len(), 19);
        assert_eq!(channel_config(&h), 2);
        let h = opus_head(6);
        assert_eq!(&h[18..], &[1, 4, 2, 0, 4, 1, 2, 3, 5]);
        assert_eq!(channel_config(&h), 6);
    }
}
