//! Picture size from video configuration records and keyframes: H.264 and H.265 sequence
//! parameter sets, the AV1 sequence header, and VP8/VP9 keyframe headers.

use proto::media::bits::{unescape_rbsp, BitReader};

/// Width and height in pixels.
pub type Size = (u32, u32);

/// Picture size from an AVCDecoderConfigurationRecord (its first SPS).
pub fn h264_size_from_avcc(avcc: &[u8]) -> Option<Size> {
    if avcc.len() < 8 || avcc[0] != 1 {
        return None;
    }
    let n_sps = avcc[5] & 0x1f;
    if n_sps == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([avcc[6], avcc[7]]));
    let sps = avcc.get(8..8 + len)?;
    h264_sps_size(sps)
}

/// Picture size from an H.264 SPS NAL unit (with its one-byte NAL header).
pub fn h264_sps_size(nal: &[u8]) -> Option<Size> {
    let rbsp = unescape_rbsp(nal.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile = r.bits(8)?;
    r.skip(16)?;
    r.ue()?;
    let mut chroma = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma = r.ue()?;
        if chroma == 3 {
            r.skip(1)?;
        }
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
        if r.flag()? {
            let lists = if chroma == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?;
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.skip(1)?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?;
    r.skip(1)?;
    let w_mbs = u64::from(r.ue()?) + 1;
    let h_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.skip(1)?;
    }
    r.skip(1)?;
    let (mut cl, mut cr, mut ct, mut cb) = (0u64, 0u64, 0u64, 0u64);
    if r.flag()? {
        cl = r.ue()?.into();
        cr = r.ue()?.into();
        ct = r.ue()?.into();
        cb = r.ue()?.into();
    }
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let frame_factor = 2 - u64::from(frame_mbs_only);
    let width = (w_mbs * 16).checked_sub(sub_w * (cl + cr))?;
    let height = (h_units * 16 * frame_factor).checked_sub(sub_h * frame_factor * (ct + cb))?;
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            // delta_scale is -128..=127 (H.264 7.4.2.1.1.1); anything else is no SPS, and
            // would overflow the sum.
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return None;
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Picture size from an HEVCDecoderConfigurationRecord (its first SPS).
pub fn h265_size_from_hvcc(hvcc: &[u8]) -> Option<Size> {
    let n_arrays = *hvcc.get(22)?;
    let mut pos = 23;
    for _ in 0..n_arrays {
        let kind = hvcc.get(pos)? & 0x3f;
        let count = u16::from_be_bytes([*hvcc.get(pos + 1)?, *hvcc.get(pos + 2)?]);
        pos += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*hvcc.get(pos)?, *hvcc.get(pos + 1)?]));
            let nal = hvcc.get(pos + 2..pos + 2 + len)?;
            if kind == 33 {
                return h265_sps_size(nal);
            }
            pos += 2 + len;
        }
    }
    None
}

/// Picture size from an H.265 SPS NAL unit (with its two-byte NAL header).
pub fn h265_sps_size(nal: &[u8]) -> Option<Size> {
    let rbsp = unescape_rbsp(nal.get(2..)?);
    let mut r = BitReader::new(&rbsp);
    r.skip(4)?;
    let max_sub_layers_minus1 = r.bits(3)?;
    r.skip(1)?;
    // profile_tier_level: general part, then per sub-layer flags and parts.
    r.skip(96)?;
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
        *p = (r.flag()?, r.flag()?);
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.skip(2)?;
        }
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1 as usize) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    r.ue()?;
    let chroma = r.ue()?;
    if chroma == 3 {
        r.skip(1)?;
    }
    let width = u64::from(r.ue()?);
    let height = u64::from(r.ue()?);
    let (mut cl, mut cr, mut ct, mut cb) = (0u64, 0u64, 0u64, 0u64);
    if r.flag()? {
        cl = r.ue()?.into();
        cr = r.ue()?.into();
        ct = r.ue()?.into();
        cb = r.ue()?.into();
    }
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let w = width.checked_sub(sub_w * (cl + cr))?;
    let h = height.checked_sub(sub_h * (ct + cb))?;
    Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}

/// Picture size from an AV1CodecConfigurationRecord's config OBUs, or from any buffer of
/// low-overhead OBUs (a keyframe sample) holding a sequence header.
pub fn av1_size(data: &[u8]) -> Option<Size> {
    let obus = if data.len() >= 4 && data[0] == 0x81 {
        &data[4..]
    } else {
        data
    };
    let mut pos = 0;
    // Bounded by the buffer: every OBU advances at least one byte.
    while pos < obus.len() {
        let header = obus[pos];
        let kind = (header >> 3) & 0x0f;
        let ext = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        pos += 1 + usize::from(ext);
        let size = if has_size {
            let (v, n) = leb128(obus.get(pos..)?)?;
            pos += n;
            usize::try_from(v).ok()?
        } else {
            obus.len().checked_sub(pos)?
        };
        let end = pos.checked_add(size)?;
        let body = obus.get(pos..end)?;
        if kind == 1 {
            return av1_sequence_header_size(body);
        }
        pos = end;
    }
    None
}

fn leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in data.iter().take(8).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn av1_sequence_header_size(body: &[u8]) -> Option<Size> {
    let mut r = BitReader::new(body);
    r.skip(3)?;
    r.skip(1)?;
    let reduced = r.flag()?;
    if reduced {
        r.skip(5)?;
    } else {
        let mut decoder_model = false;
        let mut buffer_delay_len = 0;
        if r.flag()? {
            r.skip(64)?;
            if r.flag()? {
                r.uvlc()?;
            }
            decoder_model = r.flag()?;
            if decoder_model {
                buffer_delay_len = r.bits(5)? + 1;
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay = r.flag()?;
        let ops = r.bits(5)? + 1;
        for _ in 0..ops {
            r.skip(12)?;
            let level = r.bits(5)?;
            if level > 7 {
                r.skip(1)?;
            }
            if decoder_model && r.flag()? {
                r.skip(2 * buffer_delay_len as usize + 1)?;
            }
            if initial_display_delay && r.flag()? {
                r.skip(4)?;
            }
        }
    }
    let wb = r.bits(4)? + 1;
    let hb = r.bits(4)? + 1;
    let w = u64::from(r.bits(wb)?) + 1;
    let h = u64::from(r.bits(hb)?) + 1;
    Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}

/// Picture size from a VP8 keyframe.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<Size> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((w.into(), h.into()))
}

/// Picture size from a VP9 keyframe's uncompressed header.
pub fn vp9_keyframe_size(frame: &[u8]) -> Option<Size> {
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 2 {
        return None;
    }
    let low = r.bit()?;
    let high = r.bit()?;
    let profile = (high << 1) | low;
    if profile == 3 {
        r.skip(1)?;
    }
    if r.flag()? || r.flag()? {
        // show_existing_frame, or not a keyframe
        return None;
    }
    r.skip(2)?;
    if r.bits(24)? != 0x49_83_42 {
        return None;
    }
    if profile >= 2 {
        r.skip(1)?;
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.skip(1)?;
        if profile == 1 || profile == 3 {
            r.skip(3)?;
        }
    } else if profile == 1 || profile == 3 {
        r.skip(1)?;
    }
    let w = r.bits(16)? + 1;
    let h = r.bits(16)? + 1;
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_sps() {
        // x264 High profile 320x240 SPS.
        let sps = [
            0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03,
            0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
        ];
        assert_eq!(h264_sps_size(&sps), Some((320, 240)));
        let mut avcc = vec![1, 0x64, 0, 0x0d, 0xff, 0xe1, 0, sps.len() as u8];
        avcc.extend_from_slice(&sps);
        assert_eq!(h264_size_from_avcc(&avcc), Some((320, 240)));
        for n in 0..avcc.len() {
            let _ = h264_size_from_avcc(&avcc[..n]);
        }
    }

    #[test]
    fn h265_sps() {
        // x265 Main profile 318x178 SPS (conformance window crops 320x184).
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0b, 0x9d, 0x49, 0x96, 0x56, 0x69, 0x24,
            0xca, 0xf0, 0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84,
        ];
        assert_eq!(h265_sps_size(&sps), Some((318, 178)));
        let mut hvcc = vec![0u8; 22];
        hvcc[0] = 1;
        hvcc.extend_from_slice(&[1, 0x80 | 33, 0, 1, 0, sps.len() as u8]);
        hvcc.extend_from_slice(&sps);
        assert_eq!(h265_size_from_hvcc(&hvcc), Some((318, 178)));
        for n in 0..hvcc.len() {
            let _ = h265_size_from_hvcc(&hvcc[..n]);
        }
    }

    #[test]
    fn av1_sequence_header() {
        // reduced_still_picture_header=0, no timing, 1 op point level 0, 16-bit sizes.
        // seq_profile 0 (000) still 0 reduced 0 | timing 0 | idd 0 | ops-1 00000 |
        // idc 0x000 (12) | level 00000 | wb-1 1111 | hb-1 1111 | w-1 (16) | h-1 (16)
        let mut bits = String::from("000");
        bits += "0";
        bits += "0";
        bits += "0";
        bits += "0";
        bits += "00000";
        bits += "000000000000";
        bits += "00000";
        bits += "1111";
        bits += "1111";
        bits += &format!("{:016b}", 1279);
        bits += &format!("{:016b}", 719);
        let body = bytes_of(&bits);
        let mut obu = vec![0x0a, body.len() as u8];
        obu.extend_from_slice(&body);
        assert_eq!(av1_size(&obu), Some((1280, 720)));
        let mut av1c = vec![0x81, 0, 0, 0];
        av1c.extend_from_slice(&obu);
        assert_eq!(av1_size(&av1c), Some((1280, 720)));
        for n in 0..av1c.len() {
            let _ = av1_size(&av1c[..n]);
        }
    }

    #[test]
    fn vp8_vp9() {
        let vp8 = [0x50, 0x2f, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        assert_eq!(vp8_keyframe_size(&vp8), Some((320, 240)));
        // frame_marker 10, profile 0 (0,0), show_existing 0, frame_type 0, show 1, er 0,
        // sync 49 83 42, color_space 001, range 0, w-1 = 319, h-1 = 239
        let mut bits = String::from("10000010");
        bits += "010010011000001101000010";
        bits += "0010";
        bits += &format!("{:016b}", 319);
        bits += &format!("{:016b}", 239);
        assert_eq!(vp9_keyframe_size(&bytes_of(&bits)), Some((320, 240)));
    }

    /// The bytes a string of `0` and `1` spells, most significant bit first, its last
    /// byte padded with zero bits.
    fn bytes_of(bits: &str) -> Vec<u8> {
        bits.as_bytes()
            .chunks(8)
            .map(|c| {
                let byte = c.iter().fold(0u8, |b, &bit| b << 1 | (bit - b'0'));
                byte << (8 - c.len())
            })
            .collect()
    }
}
