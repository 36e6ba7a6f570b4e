//! H.264: NAL unit types, the SPS fields an AVCDecoderConfigurationRecord repeats, and the
//! record itself (ISO/IEC 14496-15 5.3.3.1).

use bytes::{BufMut, BytesMut};

use super::annexb::NalClass;
use crate::media::bits::{unescape_rbsp_prefix as unescape, BitReader};

/// Coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// Supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// Picture parameter set.
pub const NAL_PPS: u8 = 8;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// End of sequence.
pub const NAL_END_SEQUENCE: u8 = 10;
/// End of stream.
pub const NAL_END_STREAM: u8 = 11;
/// Filler data.
pub const NAL_FILLER: u8 = 12;

/// The type of an H.264 NAL unit.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// What the conversion to samples does with this NAL unit.
pub fn classify(nal: &[u8]) -> NalClass {
    match nal_type(nal) {
        t @ NAL_SPS => NalClass::ParameterSet {
            nal_type: t,
            id: parse_sps(nal).map(|s| s.id),
        },
        t @ NAL_PPS => NalClass::ParameterSet {
            nal_type: t,
            id: pps_id(nal),
        },
        NAL_AUD | NAL_FILLER | NAL_END_SEQUENCE | NAL_END_STREAM => NalClass::Dropped,
        t => NalClass::Coded {
            keyframe: t == NAL_IDR,
        },
    }
}

/// What the configuration record takes from an SPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    /// seq_parameter_set_id.
    pub id: u32,
    /// profile_idc.
    pub profile: u8,
    /// The constraint flags byte.
    pub compatibility: u8,
    /// level_idc.
    pub level: u8,
    /// chroma_format_idc (1 when the profile has no such field).
    pub chroma_format: u32,
    /// bit_depth_luma_minus8.
    pub bit_depth_luma_minus8: u32,
    /// bit_depth_chroma_minus8.
    pub bit_depth_chroma_minus8: u32,
}

/// Profiles whose SPS carries chroma_format_idc and bit depths.
fn has_chroma_info(profile: u8) -> bool {
    matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Reads the leading fields of an SPS NAL unit (header byte included).
pub fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    let rbsp = unescape(nal.get(1..)?, 64);
    let mut r = BitReader::new(&rbsp);
    let profile = r.bits(8)? as u8;
    let compatibility = r.bits(8)? as u8;
    let level = r.bits(8)? as u8;
    let id = r.ue()?;
    let mut info = SpsInfo {
        id,
        profile,
        compatibility,
        level,
        chroma_format: 1,
        bit_depth_luma_minus8: 0,
        bit_depth_chroma_minus8: 0,
    };
    if id > 31 {
        return None;
    }
    if has_chroma_info(profile) {
        info.chroma_format = r.ue()?;
        if info.chroma_format == 3 {
            r.flag()?;
        }
        info.bit_depth_luma_minus8 = r.ue()?;
        info.bit_depth_chroma_minus8 = r.ue()?;
    }
    Some(info)
}

/// The pic_parameter_set_id of a PPS NAL unit.
pub fn pps_id(nal: &[u8]) -> Option<u32> {
    let rbsp = unescape(nal.get(1..)?, 8);
    BitReader::new(&rbsp).ue().filter(|&id| id <= 255)
}

/// Builds an AVCDecoderConfigurationRecord with 4-byte NAL lengths. `None` without an SPS
/// that parses, or with a set longer than 65535 bytes.
pub fn avc_config<'a>(
    sps: impl Iterator<Item = &'a [u8]> + Clone,
    pps: impl Iterator<Item = &'a [u8]> + Clone,
) -> Option<BytesMut> {
    let first = parse_sps(sps.clone().next()?)?;
    let mut out = BytesMut::new();
    out.put_slice(&[1, first.profile, first.compatibility, first.level, 0xFF]);
    put_sets(&mut out, sps, 0xE0, 31)?;
    put_sets(&mut out, pps, 0, 255)?;
    // FFmpeg writes the extension for every profile but Baseline, Main and Extended.
    if !matches!(first.profile, 66 | 77 | 88) {
        out.put_u8(0xFC | (first.chroma_format & 3) as u8);
        out.put_u8(0xF8 | (first.bit_depth_luma_minus8 & 7) as u8);
        out.put_u8(0xF8 | (first.bit_depth_chroma_minus8 & 7) as u8);
        out.put_u8(0);
    }
    Some(out)
}

/// The NAL length size and the parameter sets (SPS then PPS) of an
/// AVCDecoderConfigurationRecord; `None` if it is malformed.
pub fn avc_config_sets(config: &[u8]) -> Option<(usize, Vec<&[u8]>)> {
    let length_size = usize::from(config.get(4)? & 3) + 1;
    let mut sets = Vec::new();
    let mut rest = config.get(5..)?;
    for mask in [0x1f, 0xff] {
        let (&n, r) = rest.split_first()?;
        rest = r;
        for _ in 0..(n & mask) {
            let (set, r) = take_u16_prefixed(rest)?;
            sets.push(set);
            rest = r;
        }
    }
    Some((length_size, sets))
}

/// Splits a 16-bit length-prefixed item off the front of `data`.
pub(crate) fn take_u16_prefixed(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    let rest = &data[2..];
    (len <= rest.len()).then(|| rest.split_at(len))
}

fn put_sets<'a>(
    out: &mut BytesMut,
    sets: impl Iterator<Item = &'a [u8]>,
    mark: u8,
    max: usize,
) -> Option<()> {
    let count_at = out.len();
    out.put_u8(mark);
    let mut n = 0;
    for s in sets.take(max) {
        out.put_u16(u16::try_from(s.len()).ok()?);
        out.put_slice(s);
        n += 1;
    }
    out[count_at] = mark | n;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPS and PPS of libx264 for 64x64 yuv444p (High 4:4:4 Predictive, level 1.0), from
    /// FFmpeg's avcC in tests/vectors/flv/h264_aac.flv.
    const SPS: [u8; 23] = [
        0x67, 0xf4, 0x00, 0x0a, 0x91, 0x9b, 0x28, 0x84, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00,
        0x80, 0x00, 0x00, 0x0a, 0x07, 0x89, 0x12, 0xcb,
    ];
    const PPS: [u8; 6] = [0x68, 0xeb, 0xe3, 0xc4, 0x48, 0x44];

    #[test]
    fn sps_fields() {
        let s = parse_sps(&SPS).unwrap();
        assert_eq!((s.profile, s.compatibility, s.level), (244, 0, 10));
        assert_eq!(s.id, 0);
        assert_eq!(s.chroma_format, 3);
        assert_eq!((s.bit_depth_luma_minus8, s.bit_depth_chroma_minus8), (0, 0));
        assert_eq!(pps_id(&PPS), Some(0));
        assert_eq!(parse_sps(&[0x67, 0x64]), None);
    }

    #[test]
    fn record_equals_ffmpegs() {
        let c = avc_config([&SPS[..]].into_iter(), [&PPS[..]].into_iter()).unwrap();
        let ffmpeg = [
            0x01, 0xf4, 0x00, 0x0a, 0xff, 0xe1, 0x00, 0x17, 0x67, 0xf4, 0x00, 0x0a, 0x91, 0x9b,
            0x28, 0x84, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0a, 0x07,
            0x89, 0x12, 0xcb, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xc4, 0x48, 0x44, 0xff, 0xf8,
            0xf8, 0x00,
        ];
        assert_eq!(&c[..], &ffmpeg[..]);
        let (size, sets) = avc_config_sets(&ffmpeg).unwrap();
        assert_eq!((size, sets), (4, vec![&SPS[..], &PPS[..]]));
        assert_eq!(avc_config_sets(&ffmpeg[..20]), None);
    }
}
