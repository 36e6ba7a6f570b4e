//! AAC in LOAS/LATM (ISO/IEC 14496-3 1.7), as stream type 0x11 carries it: the
//! AudioSyncStream framing, the StreamMuxConfig with its in-band AudioSpecificConfig, and
//! the (not byte-aligned) payloads of each AudioMuxElement copied out as raw AAC frames.
//!
//! Supported: one program and one layer (what encoders and muxers produce), every
//! frameLengthType-0 stream (the AAC case), audioMuxVersion 0 and 1.

use bytes::{BufMut, Bytes, BytesMut};

use super::adts::SAMPLE_RATES;
use crate::media::bits::BitReader;

/// The 11-bit LOAS sync word.
const SYNC: u32 = 0x2B7;

/// Length of the LOAS frame (header included) at the start of `d`: `Ok(None)` when fewer
/// than 3 bytes are there, `Err(())` when it is not a LOAS header.
pub(crate) fn frame_len(d: &[u8]) -> Result<Option<usize>, ()> {
    if d.len() < 3 {
        return Ok(None);
    }
    let v = u32::from_be_bytes([0, d[0], d[1], d[2]]);
    if v >> 13 != SYNC {
        return Err(());
    }
    Ok(Some(3 + (v & 0x1FFF) as usize))
}

/// The configuration a StreamMuxConfig gave.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MuxConfig {
    asc: Bytes,
    sample_rate: u32,
    sub_frames: u8,
}

/// LATM decoding state of one stream (the configuration may be sent once and reused).
#[derive(Debug, Default, Clone)]
pub struct LatmDecoder {
    config: Option<MuxConfig>,
}

/// One AudioMuxElement's frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatmFrames {
    /// The AudioSpecificConfig in force (byte-aligned copy).
    pub asc: Bytes,
    /// Its sampling rate.
    pub sample_rate: u32,
    /// The raw AAC frames, in order.
    pub frames: Vec<Bytes>,
}

fn latm_value(r: &mut BitReader<'_>) -> Option<u32> {
    let bytes = r.bits(2)? + 1;
    let mut v = 0u32;
    for _ in 0..bytes {
        v = (v << 8) | r.bits(8)?;
    }
    Some(v)
}

/// Copies `bits` bits from `r` into bytes (the last one zero-padded).
fn copy_bits(r: &mut BitReader<'_>, bits: usize) -> Option<Bytes> {
    if r.remaining() < bits {
        return None;
    }
    let mut out = BytesMut::with_capacity(bits.div_ceil(8));
    let mut left = bits;
    while left >= 8 {
        out.put_u8(r.bits(8)? as u8);
        left -= 8;
    }
    if left > 0 {
        out.put_u8((r.bits(left as u32)? << (8 - left)) as u8);
    }
    Some(out.freeze())
}

fn object_type(r: &mut BitReader<'_>) -> Option<u32> {
    let t = r.bits(5)?;
    Some(if t == 31 { 32 + r.bits(6)? } else { t })
}

fn sample_rate(r: &mut BitReader<'_>) -> Option<u32> {
    let i = r.bits(4)?;
    if i == 15 {
        r.bits(24)
    } else {
        SAMPLE_RATES.get(i as usize).copied()
    }
}

/// Reads an AudioSpecificConfig; returns its sampling rate (the core rate).
fn read_asc(r: &mut BitReader<'_>) -> Option<u32> {
    let mut aot = object_type(r)?;
    let rate = sample_rate(r)?;
    let channels = r.bits(4)?;
    if aot == 5 || aot == 29 {
        sample_rate(r)?; // extension rate
        aot = object_type(r)?;
        if aot == 22 {
            r.bits(4)?;
        }
    }
    match aot {
        1 | 2 | 3 | 4 | 6 | 7 | 17 | 19 | 20 | 21 | 22 | 23 => {
            r.flag()?; // frameLengthFlag
            if r.flag()? {
                r.bits(14)?; // coreCoderDelay
            }
            let extension = r.flag()?;
            if channels == 0 {
                return None; // program_config_element: not carried
            }
            if aot == 6 || aot == 20 {
                r.bits(3)?;
            }
            if extension {
                if aot == 22 {
                    r.bits(16)?;
                }
                if matches!(aot, 17 | 19 | 20 | 23) {
                    r.bits(3)?;
                }
                r.flag()?;
            }
        }
        _ => return None,
    }
    Some(rate)
}

fn read_mux_config(r: &mut BitReader<'_>) -> Option<MuxConfig> {
    let version = r.flag()?;
    let version_a = if version { r.flag()? } else { false };
    if version_a {
        return None;
    }
    if version {
        latm_value(r)?; // taraBufferFullness
    }
    let same_time = r.flag()?;
    let sub_frames = r.bits(6)? as u8;
    let programs = r.bits(4)?;
    let layers = r.bits(3)?;
    if programs != 0 || layers != 0 || !same_time {
        return None;
    }
    let (asc, sample_rate) = if version {
        let len = latm_value(r)? as usize;
        let mut probe = r.clone();
        let rate = read_asc(&mut probe)?;
        (copy_bits(r, len)?, rate)
    } else {
        let mut probe = r.clone();
        let start = probe.remaining();
        let rate = read_asc(&mut probe)?;
        let used = start - probe.remaining();
        (copy_bits(r, used)?, rate)
    };
    let frame_length_type = r.bits(3)?;
    if frame_length_type != 0 {
        return None;
    }
    r.bits(8)?; // latmBufferFullness
                // Other data follows the payloads and is not needed: only its length field is read.
    if r.flag()? {
        if version {
            latm_value(r)?;
        } else {
            while r.flag()? {
                r.bits(8)?;
            }
            r.bits(8)?;
        }
    }
    if r.flag()? {
        r.bits(8)?; // crcCheckSum
    }
    Some(MuxConfig {
        asc,
        sample_rate,
        sub_frames,
    })
}

impl LatmDecoder {
    /// Decodes the AudioMuxElement of one LOAS frame (`frame` without its 3-byte header).
    /// `None` if it is malformed, uses what is not supported, or reuses a configuration
    /// that never came.
    pub fn decode(&mut self, element: &[u8]) -> Option<LatmFrames> {
        let mut r = BitReader::new(element);
        if !r.flag()? {
            self.config = Some(read_mux_config(&mut r)?);
        }
        let config = self.config.as_ref()?;
        let mut frames = Vec::with_capacity(usize::from(config.sub_frames) + 1);
        for _ in 0..=config.sub_frames {
            let mut len = 0usize;
            loop {
                let b = r.bits(8)? as usize;
                len += b;
                if b != 255 {
                    break;
                }
            }
            frames.push(copy_bits(&mut r, len * 8)?);
        }
        Some(LatmFrames {
            asc: config.asc.clone(),
            sample_rate: config.sample_rate,
            frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from a string of bits (zero-padded to a byte).
    fn pack(bits: &str) -> Vec<u8> {
        let mut bits = bits.replace(' ', "");
        while !bits.len().is_multiple_of(8) {
            bits.push('0');
        }
        (0..bits.len() / 8)
            .map(|i| u8::from_str_radix(&bits[i * 8..i * 8 + 8], 2).unwrap())
            .collect()
    }

    /// A LOAS frame around an AudioMuxElement given as bits.
    fn loas(element: &str) -> Vec<u8> {
        let body = pack(element);
        let head = (SYNC << 13) | body.len() as u32;
        let mut out = head.to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&body);
        out
    }

    // useSameStreamMux 0, audioMuxVersion 0, allStreamsSameTimeFraming 1, numSubFrames 0,
    // numProgram 0, numLayer 0, ASC 0x1188 (AAC-LC 48 kHz mono), frameLengthType 0,
    // latmBufferFullness 0xFF, no other data, no CRC.
    const CONFIG: &str = "0 0 1 000000 0000 000 0001000110001000 000 11111111 0 0";
    // Payload length 3, then DE AD BE, off the byte grid.
    const PAYLOAD: &str = "00000011 11011110 10101101 10111110";

    #[test]
    fn decodes_config_and_unaligned_payload() {
        let f = loas(&format!("{CONFIG} {PAYLOAD}"));
        assert_eq!(frame_len(&f), Ok(Some(f.len())));
        assert_eq!(frame_len(&[0x12, 0, 0]), Err(()));
        let mut d = LatmDecoder::default();
        let out = d.decode(&f[3..]).unwrap();
        assert_eq!(&out.asc[..], &[0x11, 0x88]);
        assert_eq!(out.sample_rate, 48000);
        assert_eq!(out.frames, vec![Bytes::from_static(&[0xde, 0xad, 0xbe])]);
        // The configuration reused (useSameStreamMux 1).
        let again = d.decode(&pack(&format!("1 {PAYLOAD}"))).unwrap();
        assert_eq!(again, out);
        // Reuse with no configuration yet, or a payload longer than the element: refused.
        assert!(LatmDecoder::default()
            .decode(&pack(&format!("1 {PAYLOAD}")))
            .is_none());
        assert!(d.decode(&pack("1 00000100 11011110")).is_none());
    }
}
