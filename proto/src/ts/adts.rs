//! AAC in ADTS: frame headers, the AudioSpecificConfig they imply, and ADTS headers
//! written back for the muxer.

use crate::media::bits::BitReader;

/// Sampling frequencies by sampling_frequency_index.
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Samples per raw AAC frame.
pub const SAMPLES_PER_FRAME: u32 = 1024;

/// One ADTS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// audioObjectType - 1 (0 Main, 1 LC, 2 SSR, 3 LTP).
    pub profile: u8,
    /// sampling_frequency_index.
    pub sample_rate_index: u8,
    /// channel_configuration (0: in a PCE inside the frame).
    pub channel_config: u8,
    /// Header length: 7, or 9 with a CRC.
    pub header_len: usize,
    /// Whole frame length, header included.
    pub frame_len: usize,
    /// number_of_raw_data_blocks_in_frame + 1.
    pub blocks: u8,
}

impl AdtsHeader {
    /// Parses the header at the start of `data`; `None` if it is not a valid one.
    pub fn parse(data: &[u8]) -> Option<AdtsHeader> {
        if data.len() < 7 || data[0] != 0xFF || data[1] & 0xF6 != 0xF0 {
            return None;
        }
        let h = AdtsHeader {
            profile: data[2] >> 6,
            sample_rate_index: (data[2] >> 2) & 0x0f,
            channel_config: ((data[2] & 1) << 2) | (data[3] >> 6),
            header_len: if data[1] & 1 == 0 { 9 } else { 7 },
            frame_len: (usize::from(data[3] & 3) << 11)
                | (usize::from(data[4]) << 3)
                | usize::from(data[5] >> 5),
            blocks: (data[6] & 3) + 1,
        };
        if usize::from(h.sample_rate_index) >= SAMPLE_RATES.len() || h.frame_len < h.header_len {
            return None;
        }
        Some(h)
    }

    /// The sampling rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        SAMPLE_RATES[usize::from(self.sample_rate_index)]
    }

    /// The 2-byte AudioSpecificConfig of this stream (GASpecificConfig all zero).
    pub fn audio_specific_config(&self) -> [u8; 2] {
        let object_type = self.profile + 1;
        [
            (object_type << 3) | (self.sample_rate_index >> 1),
            ((self.sample_rate_index & 1) << 7) | (self.channel_config << 3),
        ]
    }
}

/// The fields of an AudioSpecificConfig an ADTS header can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AscInfo {
    /// audioObjectType (1 to 4 fit ADTS; others are written as LC).
    pub object_type: u8,
    /// sampling_frequency_index (15, explicit, is refused).
    pub sample_rate_index: u8,
    /// channelConfiguration.
    pub channel_config: u8,
}

/// Reads the leading fields of an AudioSpecificConfig; `None` for an explicit frequency.
pub fn parse_asc(asc: &[u8]) -> Option<AscInfo> {
    let mut r = BitReader::new(asc);
    let mut object_type = r.bits(5)? as u8;
    if object_type == 31 {
        object_type = 32 + r.bits(6)? as u8;
    }
    let sample_rate_index = r.bits(4)? as u8;
    if usize::from(sample_rate_index) >= SAMPLE_RATES.len() {
        return None;
    }
    let channel_config = r.bits(4)? as u8;
    Some(AscInfo {
        object_type,
        sample_rate_index,
        channel_config,
    })
}

/// An ADTS header (no CRC) for a raw frame of `payload_len` bytes.
pub fn write_header(asc: &AscInfo, payload_len: usize) -> [u8; 7] {
    // ADTS can only say Main, LC, SSR or LTP; HE-AAC streams are signalled implicitly as LC.
    let profile = match asc.object_type {
        1..=4 => asc.object_type - 1,
        _ => 1,
    };
    let len = (payload_len + 7).min(0x1FFF);
    let sr = asc.sample_rate_index;
    let ch = asc.channel_config & 7;
    [
        0xFF,
        0xF1,
        (profile << 6) | (sr << 2) | (ch >> 2),
        ((ch & 3) << 6) | (len >> 11) as u8,
        (len >> 3) as u8,
        ((len as u8 & 7) << 5) | 0x1F,
        0xFC,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_from_ffmpeg() {
        // The first ADTS header FFmpeg writes for 48 kHz mono AAC-LC (frame of 335 bytes).
        let h = AdtsHeader::parse(&[0xff, 0xf1, 0x4c, 0x40, 0x29, 0xff, 0xfc]).unwrap();
        assert_eq!(
            (h.profile, h.sample_rate_index, h.channel_config),
            (1, 3, 1)
        );
        assert_eq!((h.header_len, h.frame_len, h.blocks), (7, 335, 1));
        assert_eq!(h.sample_rate(), 48000);
        assert_eq!(h.audio_specific_config(), [0x11, 0x88]);
        let asc = parse_asc(&[0x11, 0x88]).unwrap();
        assert_eq!(
            write_header(&asc, 328),
            [0xff, 0xf1, 0x4c, 0x40, 0x29, 0xff, 0xfc]
        );
        assert_eq!(
            AdtsHeader::parse(&[0xff, 0xf1, 0x7c, 0x40, 0x29, 0xff, 0xfc]),
            None
        );
        assert_eq!(
            AdtsHeader::parse(&[0xff, 0xf1, 0x4c, 0x40, 0x00, 0x1f, 0xfc]),
            None
        );
    }
}
