//! Sample rate and channels from audio configurations (AudioSpecificConfig, OpusHead, FLAC
//! STREAMINFO, dac3/dec3) and from MP3/AC-3/E-AC-3 frame headers, plus the dac3/dec3 payloads
//! MP4 needs when the source sent none.

use std::borrow::Cow;

use proto::media::bits::BitReader;

/// Sample rate in Hz and channel count.
pub type RateChannels = (u32, u16);

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// From an AAC AudioSpecificConfig.
pub fn aac_config(asc: &[u8]) -> Option<RateChannels> {
    let mut r = BitReader::new(asc);
    if r.bits(5)? == 31 {
        r.skip(6)?;
    }
    let idx = r.bits(4)?;
    let rate = if idx == 15 {
        r.bits(24)?
    } else {
        *AAC_RATES.get(idx as usize)?
    };
    let ch = r.bits(4)?;
    let channels = match ch {
        7 => 8,
        1..=6 => ch as u16,
        _ => 2,
    };
    Some((rate, channels))
}

/// The fields of an OpusHead (RFC 7845 section 5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    /// Output channel count.
    pub channels: u8,
    /// Samples (at 48 kHz) to discard at the start.
    pub pre_skip: u16,
    /// Original input sample rate (informational).
    pub input_rate: u32,
    /// Output gain, Q7.8 dB.
    pub gain: i16,
    /// Channel mapping family.
    pub family: u8,
    /// Stream count, coupled count and mapping (families other than 0).
    pub mapping: Vec<u8>,
}

impl Default for OpusHead {
    fn default() -> Self {
        OpusHead {
            channels: 2,
            pre_skip: 0,
            input_rate: 48000,
            gain: 0,
            family: 0,
            mapping: Vec::new(),
        }
    }
}

/// Parses an OpusHead; `None` when it is not one.
pub fn opus_head(d: &[u8]) -> Option<OpusHead> {
    if d.len() < 19 || &d[..8] != b"OpusHead" {
        return None;
    }
    let channels = d[9];
    let family = d[18];
    let mapping = if family != 0 {
        d.get(19..21 + usize::from(channels))?.to_vec()
    } else {
        Vec::new()
    };
    Some(OpusHead {
        channels,
        pre_skip: u16::from_le_bytes([d[10], d[11]]),
        input_rate: u32::from_le_bytes([d[12], d[13], d[14], d[15]]),
        gain: i16::from_le_bytes([d[16], d[17]]),
        family,
        mapping,
    })
}

/// FLAC metadata blocks without the `fLaC` signature. A bare 34-byte STREAMINFO (as
/// FFmpeg's FLV muxer sends it) gets its block header.
pub fn flac_blocks(config: &[u8]) -> Cow<'_, [u8]> {
    let b = config.strip_prefix(b"fLaC").unwrap_or(config);
    if b.len() == STREAMINFO_LEN {
        let mut v = vec![0x80, 0, 0, STREAMINFO_LEN as u8];
        v.extend_from_slice(b);
        return Cow::Owned(v);
    }
    Cow::Borrowed(b)
}

const STREAMINFO_LEN: usize = 34;

/// From FLAC metadata blocks starting with STREAMINFO (with or without `fLaC`).
pub fn flac_streaminfo(config: &[u8]) -> Option<RateChannels> {
    let b = flac_blocks(config);
    if b.len() < 4 + STREAMINFO_LEN || b[0] & 0x7f != 0 {
        return None;
    }
    let mut r = BitReader::new(&b[4 + 10..]);
    let rate = r.bits(20)?;
    let ch = r.bits(3)? + 1;
    Some((rate, ch as u16))
}

const AC3_RATES: [u32; 3] = [48000, 44100, 32000];
const ACMOD_CHANNELS: [u16; 8] = [2, 1, 2, 3, 3, 4, 4, 5];

/// From a dac3 payload.
pub fn dac3(d: &[u8]) -> Option<RateChannels> {
    let mut r = BitReader::new(d);
    let fscod = r.bits(2)?;
    r.skip(5 + 3)?;
    let acmod = r.bits(3)?;
    let lfe = r.bits(1)?;
    Some((
        *AC3_RATES.get(fscod as usize)?,
        ACMOD_CHANNELS[acmod as usize] + lfe as u16,
    ))
}

/// From a dec3 payload (its first independent substream).
pub fn dec3(d: &[u8]) -> Option<RateChannels> {
    let mut r = BitReader::new(d);
    r.skip(13 + 3)?;
    let fscod = r.bits(2)?;
    r.skip(5 + 1 + 1 + 3)?;
    let acmod = r.bits(3)?;
    let lfe = r.bits(1)?;
    Some((
        *AC3_RATES.get(fscod as usize)?,
        ACMOD_CHANNELS[acmod as usize] + lfe as u16,
    ))
}

/// A dac3 payload built from an AC-3 sync frame.
pub fn dac3_from_frame(f: &[u8]) -> Option<[u8; 3]> {
    if f.len() < 8 || f[0..2] != [0x0b, 0x77] {
        return None;
    }
    let mut r = BitReader::new(&f[4..]);
    let fscod = r.bits(2)?;
    let frmsizecod = r.bits(6)?;
    let bsid = r.bits(5)?;
    let bsmod = r.bits(3)?;
    let acmod = r.bits(3)?;
    if acmod & 1 != 0 && acmod != 1 {
        r.skip(2)?;
    }
    if acmod & 4 != 0 {
        r.skip(2)?;
    }
    if acmod == 2 {
        r.skip(2)?;
    }
    let lfe = r.bits(1)?;
    let v: u32 = (fscod << 22)
        | (bsid << 17)
        | (bsmod << 14)
        | (acmod << 11)
        | (lfe << 10)
        | ((frmsizecod >> 1) << 5);
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

/// A dec3 payload (one independent substream) built from an E-AC-3 sync frame.
pub fn dec3_from_frame(f: &[u8]) -> Option<[u8; 5]> {
    if f.len() < 6 || f[0..2] != [0x0b, 0x77] {
        return None;
    }
    let mut r = BitReader::new(&f[2..]);
    r.skip(2 + 3)?;
    let frmsiz = r.bits(11)?;
    let fscod = r.bits(2)?;
    let (rate, blocks) = if fscod == 3 {
        let fscod2 = r.bits(2)?;
        (AC3_RATES.get(fscod2 as usize)? / 2, 6)
    } else {
        let n = r.bits(2)?;
        (AC3_RATES[fscod as usize], [1, 2, 3, 6][n as usize])
    };
    let acmod = r.bits(3)?;
    let lfe = r.bits(1)?;
    let bsid = r.bits(5)?;
    let bytes = u64::from(frmsiz + 1) * 2;
    let kbps = bytes * 8 * u64::from(rate) / (256 * blocks) / 1000;
    let data_rate = kbps.min(0x1fff);
    // data_rate(13) num_ind_sub(3) | fscod(2) bsid(5) reserved(1) asvc(1) bsmod(3)
    // acmod(3) lfeon(1) reserved(3) num_dep_sub(4) reserved(1)
    let mut v: u64 = data_rate << 3;
    v = (v << 2) | u64::from(fscod.min(2));
    v = (v << 5) | u64::from(bsid);
    v <<= 1 + 1 + 3;
    v = (v << 3) | u64::from(acmod);
    v = (v << 1) | u64::from(lfe);
    v <<= 3 + 4 + 1;
    let b = v.to_be_bytes();
    Some([b[3], b[4], b[5], b[6], b[7]])
}

/// From an MPEG audio (MP3) frame header.
pub fn mp3_frame(f: &[u8]) -> Option<RateChannels> {
    if f.len() < 4 || f[0] != 0xff || f[1] & 0xe0 != 0xe0 {
        return None;
    }
    let version = (f[1] >> 3) & 3;
    let idx = usize::from((f[2] >> 2) & 3);
    let base = *[44100, 48000, 32000].get(idx)?;
    let rate = match version {
        3 => base,
        2 => base / 2,
        0 => base / 4,
        _ => return None,
    };
    let channels = if f[3] >> 6 == 3 { 1 } else { 2 };
    Some((rate, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac() {
        assert_eq!(aac_config(&[0x12, 0x10]), Some((44100, 2)));
        assert_eq!(aac_config(&[0x11, 0x90]), Some((48000, 2)));
        assert_eq!(aac_config(&[0x12]), None);
    }

    #[test]
    fn opus() {
        let head = [
            b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0,
            0, 0,
        ];
        let h = opus_head(&head).unwrap();
        assert_eq!((h.channels, h.pre_skip, h.input_rate), (2, 312, 48000));
        assert_eq!(opus_head(&head[..18]), None);
    }

    #[test]
    fn ac3() {
        // 48 kHz, bsid 8, bsmod 0, acmod 2 (stereo), no LFE, 192 kb/s (frmsizecod 20).
        let frame = [0x0b, 0x77, 0, 0, 0x14, 0x40, 0x43, 0x00];
        let dac3 = dac3_from_frame(&frame).unwrap();
        assert_eq!(dac3, [0x10, 0x11, 0x40]);
        assert_eq!(super::dac3(&dac3), Some((48000, 2)));
    }

    #[test]
    fn mp3() {
        assert_eq!(mp3_frame(&[0xff, 0xfb, 0x90, 0x64]), Some((44100, 2)));
        assert_eq!(mp3_frame(&[0xff, 0xfb, 0x90, 0xc4]), Some((44100, 1)));
    }
}
