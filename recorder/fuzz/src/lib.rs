//! Bodies of the recorder's fuzz targets, as plain functions so that
//! `recorder/tests/fuzz_smoke.rs` runs them on stable without libFuzzer. The parsers read
//! codec configuration records, keyframes and `onMetaData` that come from publishers.

use bytes::Bytes;
use proto::media::Codec;
use recorder::codecs::{self, audio, video};
use recorder::metadata;
use recorder::mux::TrackInfo;

/// Every codec parser on `data`, as configuration record and as frame: never panics,
/// and a size or rate it reports is one the container can hold.
pub fn codecs(data: &[u8]) {
    let _ = audio::aac_config(data);
    let _ = audio::opus_head(data);
    let _ = audio::flac_blocks(data);
    let _ = audio::flac_streaminfo(data);
    let _ = audio::dac3(data);
    let _ = audio::dec3(data);
    let _ = audio::dac3_from_frame(data);
    let _ = audio::dec3_from_frame(data);
    let _ = audio::mp3_frame(data);
    let _ = video::h264_size_from_avcc(data);
    let _ = video::h264_sps_size(data);
    let _ = video::h265_size_from_hvcc(data);
    let _ = video::h265_sps_size(data);
    let _ = video::av1_size(data);
    let _ = video::vp8_keyframe_size(data);
    let _ = video::vp9_keyframe_size(data);
    let bytes = Bytes::copy_from_slice(data);
    for codec in [
        Codec::H264,
        Codec::H265,
        Codec::Av1,
        Codec::Vp9,
        Codec::Vp8,
        Codec::Aac,
        Codec::Opus,
        Codec::Flac,
        Codec::Mp3,
        Codec::Ac3,
        Codec::Eac3,
    ] {
        let mut track = TrackInfo::new(codec, bytes.clone());
        codecs::describe_from_config(&mut track);
        let _ = codecs::describe_from_frame(&mut track, data);
    }
}

/// The `onMetaData` reader on any payload: never panics.
pub fn metadata(data: &[u8]) {
    let _ = metadata::parse(data);
}
