//! MPEG-1/2/2.5 audio (layers I to III) frame headers: length and sample count, to cut a
//! PES into frames.

/// One MPEG audio frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpaHeader {
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// Samples per channel in the frame.
    pub samples: u32,
    /// Frame length in bytes, header included.
    pub frame_len: usize,
}

const BITRATES_V1: [[u16; 15]; 3] = [
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
];
const BITRATES_V2: [[u16; 15]; 2] = [
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

impl MpaHeader {
    /// Parses the 4-byte header at the start of `data`; `None` if it is not a valid one
    /// (free-format bitrates included: their length is not in the header).
    pub fn parse(data: &[u8]) -> Option<MpaHeader> {
        let h = u32::from_be_bytes(data.get(..4)?.try_into().ok()?);
        if h >> 21 != 0x7FF {
            return None;
        }
        let version = (h >> 19) & 3; // 0: 2.5, 2: 2, 3: 1
        let layer = 4 - ((h >> 17) & 3); // 1, 2, 3 (4: reserved)
        let bitrate_index = ((h >> 12) & 0xF) as usize;
        let rate_index = ((h >> 10) & 3) as usize;
        let padding = (h >> 9) & 1;
        if version == 1
            || layer == 4
            || bitrate_index == 0
            || bitrate_index == 15
            || rate_index == 3
        {
            return None;
        }
        let (kbps, base_rate) = if version == 3 {
            (
                BITRATES_V1[layer as usize - 1][bitrate_index],
                [44100, 48000, 32000],
            )
        } else {
            let table = if layer == 1 { 0 } else { 1 };
            let rates = if version == 2 {
                [22050, 24000, 16000]
            } else {
                [11025, 12000, 8000]
            };
            (BITRATES_V2[table][bitrate_index], rates)
        };
        let sample_rate = base_rate[rate_index];
        let bitrate = u32::from(kbps) * 1000;
        let (samples, frame_len) = match layer {
            1 => (384, (12 * bitrate / sample_rate + padding) * 4),
            2 => (1152, 144 * bitrate / sample_rate + padding),
            _ if version == 3 => (1152, 144 * bitrate / sample_rate + padding),
            _ => (576, 72 * bitrate / sample_rate + padding),
        };
        Some(MpaHeader {
            sample_rate,
            samples,
            frame_len: frame_len as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer3_frames() {
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding: 417 bytes.
        let h = MpaHeader::parse(&[0xff, 0xfb, 0x90, 0x64]).unwrap();
        assert_eq!((h.sample_rate, h.samples, h.frame_len), (44100, 1152, 417));
        // MPEG-2 layer III, 32 kbit/s, 24 kHz: 96 bytes of 576 samples.
        let h = MpaHeader::parse(&[0xff, 0xf3, 0x44, 0xc4]).unwrap();
        assert_eq!((h.sample_rate, h.samples, h.frame_len), (24000, 576, 96));
        assert_eq!(MpaHeader::parse(&[0xff, 0xfb, 0x00, 0x64]), None);
        assert_eq!(MpaHeader::parse(&[0xff, 0xfb, 0x9c, 0x64]), None);
    }
}
