//! FLV / E-RTMP tag bodies: any bytes, as video and as audio. Parsing never panics, an error
//! appends nothing, and every payload is a slice of the body (but the frames of unknown
//! FourCCs, which carry their packet type in front).
#![no_main]

use bytes::Bytes;
use proto::flv::{parse_audio, parse_video, MediaPacket};
use proto::media::Codec;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let range = body.as_ptr_range();
    for parse in [parse_video, parse_audio] {
        let mut out = Vec::new();
        if parse(&body, &mut out).is_err() {
            assert!(out.is_empty());
        }
        for p in &out {
            let payload = match p {
                MediaPacket::Config { config, .. } | MediaPacket::ChannelConfig { config, .. } => {
                    config
                }
                // An unknown FourCC's frame is a copy with its packet type in front.
                MediaPacket::Frame {
                    codec: Codec::Unknown { .. },
                    ..
                } => continue,
                MediaPacket::Frame { data, .. } | MediaPacket::VideoMetadata { data, .. } => data,
                MediaPacket::EndOfSequence { .. } | MediaPacket::TimestampOffset { .. } => continue,
            };
            assert!(payload.is_empty() || range.contains(&payload.as_ptr()));
        }
    }
});
