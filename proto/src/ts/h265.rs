//! H.265: NAL unit types, the SPS fields an HEVCDecoderConfigurationRecord repeats, and
//! the record itself (ISO/IEC 14496-15 8.3.3.1).

use bytes::{BufMut, BytesMut};

use super::annexb::NalClass;
use super::h264::take_u16_prefixed;
use crate::media::bits::{unescape_rbsp_prefix as unescape, BitReader};

/// First IRAP NAL unit type (BLA_W_LP); IRAP pictures are types 16 to 23.
pub const NAL_IRAP_FIRST: u8 = 16;
/// Last IRAP NAL unit type (reserved IRAP 23).
pub const NAL_IRAP_LAST: u8 = 23;
/// Video parameter set.
pub const NAL_VPS: u8 = 32;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// Picture parameter set.
pub const NAL_PPS: u8 = 34;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 35;
/// End of sequence.
pub const NAL_END_SEQUENCE: u8 = 36;
/// End of bitstream.
pub const NAL_END_STREAM: u8 = 37;
/// Filler data.
pub const NAL_FILLER: u8 = 38;

/// The type of an H.265 NAL unit.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// What the conversion to samples does with this NAL unit.
pub fn classify(nal: &[u8]) -> NalClass {
    let t = nal_type(nal);
    let id = match t {
        NAL_VPS => vps_id(nal),
        NAL_SPS => parse_sps(nal).map(|s| s.id),
        NAL_PPS => pps_id(nal),
        NAL_AUD | NAL_FILLER | NAL_END_SEQUENCE | NAL_END_STREAM => return NalClass::Dropped,
        _ => {
            return NalClass::Coded {
                keyframe: (NAL_IRAP_FIRST..=NAL_IRAP_LAST).contains(&t),
            }
        }
    };
    NalClass::ParameterSet { nal_type: t, id }
}

/// What the configuration record takes from an SPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    /// sps_seq_parameter_set_id.
    pub id: u32,
    /// The 12 bytes of general_profile_space .. general_level_idc.
    pub general: [u8; 12],
    /// sps_max_sub_layers_minus1.
    pub max_sub_layers_minus1: u8,
    /// sps_temporal_id_nesting_flag.
    pub temporal_id_nesting: bool,
    /// chroma_format_idc.
    pub chroma_format: u32,
    /// bit_depth_luma_minus8.
    pub bit_depth_luma_minus8: u32,
    /// bit_depth_chroma_minus8.
    pub bit_depth_chroma_minus8: u32,
}

/// Reads the leading fields of an SPS NAL unit (2-byte header included).
pub fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    let rbsp = unescape(nal.get(2..)?, 256);
    let mut r = BitReader::new(&rbsp);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as u8;
    let temporal_id_nesting = r.flag()?;
    let mut general = [0u8; 12];
    for b in &mut general {
        *b = r.bits(8)? as u8;
    }
    let subs = usize::from(max_sub_layers_minus1);
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(subs) {
        *p = (r.flag()?, r.flag()?);
    }
    if subs > 0 {
        r.skip(2 * (8 - subs))?;
    }
    for &(profile, level) in present.iter().take(subs) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    let id = r.ue()?;
    if id > 15 {
        return None;
    }
    let chroma_format = r.ue()?;
    if chroma_format == 3 {
        r.flag()?;
    }
    r.ue()?; // pic_width_in_luma_samples
    r.ue()?; // pic_height_in_luma_samples
    if r.flag()? {
        for _ in 0..4 {
            r.ue()?; // conformance window offsets
        }
    }
    Some(SpsInfo {
        id,
        general,
        max_sub_layers_minus1,
        temporal_id_nesting,
        chroma_format,
        bit_depth_luma_minus8: r.ue()?,
        bit_depth_chroma_minus8: r.ue()?,
    })
}

/// The vps_video_parameter_set_id of a VPS NAL unit.
pub fn vps_id(nal: &[u8]) -> Option<u32> {
    nal.get(2).map(|b| u32::from(b >> 4))
}

/// The pps_pic_parameter_set_id of a PPS NAL unit.
pub fn pps_id(nal: &[u8]) -> Option<u32> {
    let rbsp = unescape(nal.get(2..)?, 8);
    BitReader::new(&rbsp).ue().filter(|&id| id <= 63)
}

/// Builds an HEVCDecoderConfigurationRecord with 4-byte NAL lengths and arrays of the
/// VPS, SPS and PPS given. Fields the SPS does not give (min_spatial_segmentation,
/// parallelismType, frame rates) are 0, "unknown". `None` without an SPS that parses.
pub fn hevc_config<'a>(
    vps: impl Iterator<Item = &'a [u8]>,
    sps: impl Iterator<Item = &'a [u8]> + Clone,
    pps: impl Iterator<Item = &'a [u8]>,
) -> Option<BytesMut> {
    let s = parse_sps(sps.clone().next()?)?;
    let mut out = BytesMut::new();
    out.put_u8(1);
    out.put_slice(&s.general);
    out.put_u16(0xF000);
    out.put_u8(0xFC);
    out.put_u8(0xFC | (s.chroma_format & 3) as u8);
    out.put_u8(0xF8 | (s.bit_depth_luma_minus8 & 7) as u8);
    out.put_u8(0xF8 | (s.bit_depth_chroma_minus8 & 7) as u8);
    out.put_u16(0); // avgFrameRate
    out.put_u8(((s.max_sub_layers_minus1 + 1) << 3) | (u8::from(s.temporal_id_nesting) << 2) | 3);
    out.put_u8(3);
    put_array(&mut out, NAL_VPS, vps)?;
    put_array(&mut out, NAL_SPS, sps)?;
    put_array(&mut out, NAL_PPS, pps)?;
    Some(out)
}

/// The NAL length size and every NAL unit of the arrays of an
/// HEVCDecoderConfigurationRecord (VPS, SPS, PPS, SEI, in record order); `None` if it is
/// malformed.
pub fn hevc_config_sets(config: &[u8]) -> Option<(usize, Vec<&[u8]>)> {
    let length_size = usize::from(config.get(21)? & 3) + 1;
    let arrays = *config.get(22)?;
    let mut rest = config.get(23..)?;
    let mut sets = Vec::new();
    for _ in 0..arrays {
        let n = u16::from_be_bytes([*rest.get(1)?, *rest.get(2)?]);
        rest = &rest[3..];
        for _ in 0..n {
            let (set, r) = take_u16_prefixed(rest)?;
            sets.push(set);
            rest = r;
        }
    }
    Some((length_size, sets))
}

fn put_array<'a>(
    out: &mut BytesMut,
    nal_type: u8,
    sets: impl Iterator<Item = &'a [u8]>,
) -> Option<()> {
    // array_completeness: every set of this type is in the record.
    out.put_u8(0x80 | nal_type);
    let count_at = out.len();
    out.put_u16(0);
    let mut n: u16 = 0;
    for s in sets {
        out.put_u16(u16::try_from(s.len()).ok()?);
        out.put_slice(s);
        n += 1;
    }
    out[count_at..count_at + 2].copy_from_slice(&n.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The parameter sets and record header of libx265 for 64x64 yuv444p, from FFmpeg's
    // hvcC in tests/vectors/flv/hevc_aac.flv.
    const VPS: [u8; 23] = [
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x04, 0x08, 0x00, 0x00, 0x03, 0x00, 0x9e, 0x08, 0x00,
        0x00, 0x03, 0x00, 0x00, 0x1e, 0x95, 0x90, 0x09,
    ];
    const SPS: [u8; 44] = [
        0x42, 0x01, 0x01, 0x04, 0x08, 0x00, 0x00, 0x03, 0x00, 0x9e, 0x08, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x1e, 0x90, 0x04, 0x10, 0x20, 0xb2, 0xca, 0xc9, 0x24, 0x99, 0x5e, 0x02, 0xdc, 0x08,
        0x08, 0x00, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x00, 0xa0, 0x80,
    ];
    const PPS: [u8; 8] = [0x44, 0x01, 0xc1, 0x72, 0x86, 0x0c, 0x42, 0x24];
    const FFMPEG_HEADER: [u8; 22] = [
        0x01, 0x04, 0x08, 0x00, 0x00, 0x00, 0x9e, 0x08, 0x00, 0x00, 0x00, 0x00, 0x1e, 0xf0, 0x00,
        0xfc, 0xff, 0xf8, 0xf8, 0x00, 0x00, 0x0f,
    ];

    #[test]
    fn sps_fields() {
        let s = parse_sps(&SPS).unwrap();
        assert_eq!(s.id, 0);
        assert_eq!(s.general[0] & 0x1f, 4); // Rext profile
        assert_eq!(s.general[11], 30); // level 1.0
        assert_eq!(s.chroma_format, 3);
        assert_eq!((s.bit_depth_luma_minus8, s.bit_depth_chroma_minus8), (0, 0));
        assert_eq!(vps_id(&VPS), Some(0));
        assert_eq!(pps_id(&PPS), Some(0));
        assert_eq!(
            classify(&VPS),
            NalClass::ParameterSet {
                nal_type: NAL_VPS,
                id: Some(0)
            }
        );
        assert_eq!(classify(&[0x26, 0x01]), NalClass::Coded { keyframe: true });
        assert_eq!(classify(&[0x46, 0x01]), NalClass::Dropped);
    }

    #[test]
    fn record_matches_ffmpegs_and_reads_back() {
        let c = hevc_config(
            [&VPS[..]].into_iter(),
            [&SPS[..]].into_iter(),
            [&PPS[..]].into_iter(),
        )
        .unwrap();
        // FFmpeg's record also carries an SEI array; everything before the arrays is equal.
        assert_eq!(&c[..FFMPEG_HEADER.len()], &FFMPEG_HEADER);
        assert_eq!(c[22], 3);
        let (size, sets) = hevc_config_sets(&c).unwrap();
        assert_eq!((size, sets), (4, vec![&VPS[..], &SPS[..], &PPS[..]]));
        assert_eq!(hevc_config_sets(&c[..40]), None);
    }
}
