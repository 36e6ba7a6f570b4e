//! AC-3 and E-AC-3 syncframes: length and sample count to cut a PES into frames. Their
//! configuration travels empty, as Enhanced RTMP defines it (consumers that need `dac3` /
//! `dec3`, like the recorder's MP4, build it from a syncframe).

use crate::media::bits::BitReader;

/// One AC-3 or E-AC-3 syncframe header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ac3Header {
    /// Whether this is E-AC-3 (bsid 11 to 16).
    pub enhanced: bool,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// Samples per channel in the syncframe.
    pub samples: u32,
    /// Syncframe length in bytes.
    pub frame_len: usize,
    /// fscod.
    pub fscod: u8,
    /// bsid.
    pub bsid: u8,
    /// bsmod (0 for E-AC-3, where it sits deeper in the header).
    pub bsmod: u8,
    /// acmod.
    pub acmod: u8,
    /// lfeon.
    pub lfeon: bool,
    /// frmsizecod >> 1 (AC-3 bit_rate_code).
    pub bit_rate_code: u8,
    /// strmtyp (E-AC-3).
    pub stream_type: u8,
}

/// AC-3 syncframe sizes in 16-bit words by frmsizecod >> 1, for 48, 44.1 and 32 kHz.
const FRAME_WORDS: [[u16; 3]; 19] = [
    [64, 69, 96],
    [80, 87, 120],
    [96, 104, 144],
    [112, 121, 168],
    [128, 139, 192],
    [160, 174, 240],
    [192, 208, 288],
    [224, 243, 336],
    [256, 278, 384],
    [320, 348, 480],
    [384, 417, 576],
    [448, 487, 672],
    [512, 557, 768],
    [640, 696, 960],
    [768, 835, 1152],
    [896, 975, 1344],
    [1024, 1114, 1536],
    [1152, 1253, 1728],
    [1280, 1393, 1920],
];

const RATES: [u32; 3] = [48000, 44100, 32000];

impl Ac3Header {
    /// Parses the syncframe header at the start of `data`; `None` if it is not a valid one.
    pub fn parse(data: &[u8]) -> Option<Ac3Header> {
        if data.len() < 8 || data[0] != 0x0B || data[1] != 0x77 {
            return None;
        }
        let bsid = data[5] >> 3;
        let mut r = BitReader::new(&data[2..]);
        if bsid <= 10 {
            r.skip(16)?; // crc1
            let fscod = r.bits(2)? as u8;
            let frmsizecod = r.bits(6)? as usize;
            if fscod == 3 || frmsizecod >= 38 {
                return None;
            }
            let odd = frmsizecod & 1;
            let words = FRAME_WORDS[frmsizecod >> 1][usize::from(fscod)] as usize;
            // Only 44.1 kHz uses the odd codes to add a word.
            let words = words + if fscod == 1 { odd } else { 0 };
            r.skip(5)?; // bsid
            let bsmod = r.bits(3)? as u8;
            let acmod = r.bits(3)? as u8;
            if acmod & 1 != 0 && acmod != 1 {
                r.skip(2)?; // cmixlev
            }
            if acmod & 4 != 0 {
                r.skip(2)?; // surmixlev
            }
            if acmod == 2 {
                r.skip(2)?; // dsurmod
            }
            let lfeon = r.flag()?;
            Some(Ac3Header {
                enhanced: false,
                sample_rate: RATES[usize::from(fscod)],
                samples: 1536,
                frame_len: words * 2,
                fscod,
                bsid,
                bsmod,
                acmod,
                lfeon,
                bit_rate_code: (frmsizecod >> 1) as u8,
                stream_type: 0,
            })
        } else if bsid <= 16 {
            let stream_type = r.bits(2)? as u8;
            r.skip(3)?; // substreamid
            let frmsiz = r.bits(11)? as usize;
            let fscod = r.bits(2)? as u8;
            let (sample_rate, blocks) = if fscod == 3 {
                let fscod2 = r.bits(2)? as usize;
                if fscod2 == 3 {
                    return None;
                }
                (RATES[fscod2] / 2, 6)
            } else {
                let numblkscod = r.bits(2)?;
                (RATES[usize::from(fscod)], [1, 2, 3, 6][numblkscod as usize])
            };
            let acmod = r.bits(3)? as u8;
            let lfeon = r.flag()?;
            Some(Ac3Header {
                enhanced: true,
                sample_rate,
                samples: 256 * blocks,
                frame_len: (frmsiz + 1) * 2,
                fscod,
                bsid,
                bsmod: 0,
                acmod,
                lfeon,
                bit_rate_code: 0,
                stream_type,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ac3_frame() {
        // 48 kHz, 64 kbit/s (frmsizecod 8), bsid 8, bsmod 0, acmod 1 (mono), no LFE.
        let h = Ac3Header::parse(&[0x0b, 0x77, 0, 0, 0x08, 0x40, 0x20, 0x00]).unwrap();
        assert!(!h.enhanced);
        assert_eq!((h.sample_rate, h.samples, h.frame_len), (48000, 1536, 256));
        assert_eq!((h.bsid, h.acmod, h.lfeon), (8, 1, false));
        assert_eq!((h.fscod, h.bsmod, h.bit_rate_code), (0, 0, 4));
    }

    #[test]
    fn eac3_frame() {
        // Independent stream, frmsiz 255 (512 bytes), 48 kHz, 6 blocks, acmod 2, bsid 16.
        let h = Ac3Header::parse(&[0x0b, 0x77, 0x00, 0xff, 0x34, 0x80, 0, 0]).unwrap();
        assert!(h.enhanced);
        assert_eq!((h.sample_rate, h.samples, h.frame_len), (48000, 1536, 512));
        assert_eq!((h.acmod, h.lfeon, h.bsid), (2, false, 16));
        assert_eq!(
            Ac3Header::parse(&[0x0b, 0x77, 0, 0, 0xc8, 0x40, 0, 0]),
            None
        );
    }
}
