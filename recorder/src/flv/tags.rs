//! FLV byte layouts (FLV 10.1 annex E): file header, tag header and the legacy audio/video
//! tag body headers. (proto::flv will own these once it lands; they are small and fixed.)

use bytes::{BufMut, BytesMut};
use proto::media::Codec;

/// Tag type of audio tags.
pub const TAG_AUDIO: u8 = 8;
/// Tag type of video tags.
pub const TAG_VIDEO: u8 = 9;
/// Tag type of script data tags.
pub const TAG_SCRIPT: u8 = 18;

/// The 9-byte FLV header followed by PreviousTagSize0.
pub fn file_header(audio: bool, video: bool, out: &mut BytesMut) {
    out.put_slice(b"FLV");
    out.put_u8(1);
    out.put_u8((u8::from(audio) << 2) | u8::from(video));
    out.put_u32(9);
    out.put_u32(0);
}

/// An 11-byte tag header; `timestamp_ms` wraps at 32 bits as FLV's does.
pub fn tag_header(kind: u8, body_len: u32, timestamp_ms: u64, out: &mut BytesMut) {
    let ts = timestamp_ms as u32;
    out.put_u8(kind);
    out.put_uint(u64::from(body_len & 0xff_ffff), 3);
    out.put_uint(u64::from(ts & 0xff_ffff), 3);
    out.put_u8((ts >> 24) as u8);
    out.put_uint(0, 3);
}

/// The video tag body header: H.264 gets FrameType/CodecID, AVCPacketType and the
/// composition time; legacy codecs get their one byte.
/// `config` selects a sequence header (AVCPacketType 0).
pub fn video_body_header(
    codec: Codec,
    keyframe: bool,
    config: bool,
    cts_ms: i32,
    out: &mut BytesMut,
) {
    let frame_type: u8 = if keyframe { 1 } else { 2 };
    match codec {
        Codec::H264 => {
            out.put_u8((frame_type << 4) | 7);
            out.put_u8(if config { 0 } else { 1 });
            let cts = cts_ms.clamp(-(1 << 23), (1 << 23) - 1);
            out.put_uint(u64::from(cts as u32 & 0xff_ffff), 3);
        }
        Codec::LegacyVideo { codec_id } => out.put_u8((frame_type << 4) | (codec_id & 0x0f)),
        _ => {}
    }
}

/// The audio tag body header. `rate`/`channels` pick the MP3 header's rate and
/// stereo bits; AAC always uses 0xAF as the spec requires.
pub fn audio_body_header(codec: Codec, config: bool, rate: u32, channels: u16, out: &mut BytesMut) {
    match codec {
        Codec::Aac => {
            out.put_u8(0xaf);
            out.put_u8(if config { 0 } else { 1 });
        }
        Codec::Mp3 => {
            let rate_bits = match rate {
                0 => 3,
                r if r <= 5512 => 0,
                r if r <= 11025 => 1,
                r if r <= 22050 => 2,
                _ => 3,
            };
            out.put_u8(0x20 | (rate_bits << 2) | 0x02 | u8::from(channels != 1));
        }
        Codec::LegacyAudio { header } => out.put_u8(header),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let mut b = BytesMut::new();
        file_header(true, true, &mut b);
        assert_eq!(&b[..], &[b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);
        let mut b = BytesMut::new();
        tag_header(TAG_VIDEO, 0x123, 0x1234_5678, &mut b);
        assert_eq!(&b[..], &[9, 0, 1, 0x23, 0x34, 0x56, 0x78, 0x12, 0, 0, 0]);
        let mut b = BytesMut::new();
        video_body_header(Codec::H264, true, false, -1, &mut b);
        assert_eq!(&b[..], &[0x17, 1, 0xff, 0xff, 0xff]);
        let mut b = BytesMut::new();
        audio_body_header(Codec::Aac, true, 0, 0, &mut b);
        audio_body_header(Codec::Mp3, false, 44100, 2, &mut b);
        assert_eq!(&b[..], &[0xaf, 0, 0x2f]);
    }
}
