//! FLV / E-RTMP tag bodies (`proto::flv::parse_video`, `parse_audio`): see
//! `proto_fuzz::flv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proto_fuzz::flv(data));
