//! Just enough FLV for the tests, written independently of `proto`: classify RTMP/FLV audio
//! and video tag bodies (legacy and Enhanced RTMP), build H.264/AAC tag bodies, and read
//! FLV files (tolerating a truncated last tag, as a killed recorder leaves).

/// What an audio or video tag body is, as far as a player's start-up is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet {
    /// Decoder configuration (AVC/HEVC/AV1 record, AudioSpecificConfig, OpusHead ...).
    SequenceHeader,
    /// A coded frame; `keyframe` is meaningful for video only.
    Coded {
        /// The frame type says keyframe.
        keyframe: bool,
    },
    /// Anything else (end of sequence, metadata, command frames, empty bodies).
    Other,
}

/// Classifies a video tag body (RTMP message type 9).
pub fn video_packet(body: &[u8]) -> Packet {
    let Some(&b0) = body.first() else {
        return Packet::Other;
    };
    let frame_type = (b0 >> 4) & 0x07;
    let keyframe = frame_type == 1;
    if b0 & 0x80 != 0 {
        // Enhanced RTMP: low nibble is the packet type, a FourCC follows.
        let mut packet_type = b0 & 0x0f;
        if packet_type == 6 {
            // Multitrack: the real packet type is the low nibble of the next byte.
            packet_type = body.get(1).map_or(0xff, |b| b & 0x0f);
        }
        if frame_type == 5 {
            return Packet::Other; // command frame, not media
        }
        return match packet_type {
            0 => Packet::SequenceHeader,
            1 | 3 => Packet::Coded { keyframe },
            _ => Packet::Other,
        };
    }
    if frame_type == 5 {
        return Packet::Other;
    }
    match b0 & 0x0f {
        // AVC, and the legacy (non-standard) HEVC id 12: AVCPacketType follows.
        7 | 12 => match body.get(1) {
            Some(0) => Packet::SequenceHeader,
            Some(1) => Packet::Coded { keyframe },
            _ => Packet::Other,
        },
        _ => Packet::Coded { keyframe },
    }
}

/// Classifies an audio tag body (RTMP message type 8).
pub fn audio_packet(body: &[u8]) -> Packet {
    let Some(&b0) = body.first() else {
        return Packet::Other;
    };
    match b0 >> 4 {
        10 => match body.get(1) {
            Some(0) => Packet::SequenceHeader,
            Some(1) => Packet::Coded { keyframe: true },
            _ => Packet::Other,
        },
        9 => {
            let mut packet_type = b0 & 0x0f;
            if packet_type == 5 {
                packet_type = body.get(1).map_or(0xff, |b| b & 0x0f);
            }
            match packet_type {
                0 => Packet::SequenceHeader,
                1 => Packet::Coded { keyframe: true },
                _ => Packet::Other,
            }
        }
        _ => Packet::Coded { keyframe: true },
    }
}

/// A real 64x64 H.264 Constrained Baseline SPS (from x264), so the configuration record
/// the raw client publishes parses as what it claims to be.
pub const SPS_64X64: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0a, 0xda, 0x10, 0x9b, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
    0x03, 0x01, 0xe0, 0xf1, 0x22, 0x6a,
];
/// The PPS that goes with [`SPS_64X64`].
pub const PPS_64X64: &[u8] = &[0x68, 0xce, 0x0f, 0xc8];

/// An AVC sequence header tag body: `0x17 0x00 cts(0)` + AVCDecoderConfigurationRecord with
/// one SPS and one PPS and 4-byte NAL lengths.
pub fn avc_sequence_header(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut out = vec![0x17, 0x00, 0, 0, 0];
    out.extend([0x01, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    out.extend((sps.len() as u16).to_be_bytes());
    out.extend(sps);
    out.push(0x01);
    out.extend((pps.len() as u16).to_be_bytes());
    out.extend(pps);
    out
}

/// An AVC coded frame tag body with each NAL unit prefixed by its 4-byte length.
pub fn avc_frame(keyframe: bool, cts: i32, nalus: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![if keyframe { 0x17 } else { 0x27 }, 0x01];
    out.extend(&cts.to_be_bytes()[1..]);
    for nalu in nalus {
        out.extend((nalu.len() as u32).to_be_bytes());
        out.extend(*nalu);
    }
    out
}

/// An AAC sequence header tag body (`0xAF 0x00` + AudioSpecificConfig): AAC-LC, 48 kHz, stereo.
pub fn aac_sequence_header() -> Vec<u8> {
    vec![0xaf, 0x00, 0x11, 0x90]
}

/// An AAC raw frame tag body.
pub fn aac_frame(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0xaf, 0x01];
    out.extend(data);
    out
}

/// One FLV tag read from a file.
#[derive(Clone, Debug)]
pub struct Tag {
    /// 8 audio, 9 video, 18 script data.
    pub kind: u8,
    /// Timestamp in milliseconds (with the extension byte).
    pub timestamp: u32,
    /// The tag body.
    pub body: Vec<u8>,
}

/// The complete tags of an FLV file (read by `proto::flv::read_file`), and the length of
/// the prefix they span (header and complete tags, including each tag's trailing
/// PreviousTagSize).
pub fn read_tags(data: &[u8]) -> Result<(Vec<Tag>, usize), String> {
    let file = proto::flv::read_file(&bytes::Bytes::copy_from_slice(data))
        .map_err(|e| format!("{e} ({} bytes)", data.len()))?;
    let tags = file
        .tags
        .into_iter()
        .map(|t| Tag {
            kind: t.tag_type,
            timestamp: t.timestamp_ms,
            body: t.body.to_vec(),
        })
        .collect();
    Ok((tags, file.complete_len))
}

/// Checks what a player must see first: the first video tag is a sequence header and the
/// first coded video frame is a keyframe; the same for audio sequence headers if any audio
/// arrives. `bodies` are (message type, body) in arrival order.
pub fn check_start<'a>(bodies: impl IntoIterator<Item = (u8, &'a [u8])>) -> Result<(), String> {
    let mut first_video = None;
    let mut first_coded_video = None;
    let mut first_audio = None;
    for (kind, body) in bodies {
        match kind {
            9 => {
                let p = video_packet(body);
                first_video.get_or_insert(p);
                if matches!(p, Packet::Coded { .. }) && first_coded_video.is_none() {
                    first_coded_video = Some(p);
                }
            }
            8 => {
                first_audio.get_or_insert(audio_packet(body));
            }
            _ => {}
        }
    }
    match first_video {
        Some(Packet::SequenceHeader) => {}
        other => {
            return Err(format!(
                "first video message is {other:?}, not a sequence header"
            ))
        }
    }
    match first_coded_video {
        Some(Packet::Coded { keyframe: true }) => {}
        other => {
            return Err(format!(
                "first coded video frame is {other:?}, not a keyframe"
            ))
        }
    }
    match first_audio {
        None | Some(Packet::SequenceHeader) => Ok(()),
        other => Err(format!(
            "first audio message is {other:?}, not a sequence header"
        )),
    }
}

/// Coded (non-header) video frames in the FLV file at `path` so far; 0 while it is missing
/// or has no complete tag. For polling a recording that a client is still writing.
pub fn coded_video_in(path: &std::path::Path) -> usize {
    let Ok(data) = std::fs::read(path) else {
        return 0;
    };
    let Ok((tags, _)) = read_tags(&data) else {
        return 0;
    };
    tags.iter()
        .filter(|t| t.kind == 9 && matches!(video_packet(&t.body), Packet::Coded { .. }))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_legacy_and_enhanced() {
        assert_eq!(video_packet(&[0x17, 0x00, 0, 0, 0]), Packet::SequenceHeader);
        assert_eq!(
            video_packet(&[0x17, 0x01, 0, 0, 0]),
            Packet::Coded { keyframe: true }
        );
        assert_eq!(
            video_packet(&[0x27, 0x01, 0, 0, 0]),
            Packet::Coded { keyframe: false }
        );
        // E-RTMP: IsExHeader | keyframe | SequenceStart, 'hvc1'.
        assert_eq!(video_packet(b"\x90hvc1"), Packet::SequenceHeader);
        assert_eq!(video_packet(b"\x91av01"), Packet::Coded { keyframe: true });
        assert_eq!(video_packet(b"\xa3vp09"), Packet::Coded { keyframe: false });
        assert_eq!(video_packet(b"\x94av01"), Packet::Other);
        assert_eq!(
            audio_packet(&[0xaf, 0x00, 0x11, 0x90]),
            Packet::SequenceHeader
        );
        assert_eq!(audio_packet(b"\x90Opus"), Packet::SequenceHeader);
        assert_eq!(audio_packet(b"\x91Opus"), Packet::Coded { keyframe: true });
    }

    #[test]
    fn builds_avc_record() {
        let body = avc_sequence_header(SPS_64X64, PPS_64X64);
        assert_eq!(
            &body[..11],
            &[0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x0a, 0xff, 0xe1]
        );
        assert_eq!(
            body.len(),
            5 + 6 + 2 + SPS_64X64.len() + 1 + 2 + PPS_64X64.len()
        );
    }

    #[test]
    fn reads_truncated_file() {
        let mut file = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let tag = [
            9u8, 0, 0, 2, 0, 0, 0x10, 0, 0, 0, 0, 0x17, 0x00, 0, 0, 0, 13,
        ];
        file.extend(tag);
        file.extend(&tag[..5]);
        let (tags, complete) = read_tags(&file).unwrap();
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].timestamp, 16);
        assert_eq!(complete, 13 + tag.len());
    }
}
