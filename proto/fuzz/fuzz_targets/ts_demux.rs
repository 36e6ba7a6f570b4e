//! MPEG-TS demuxer and conversion to frames (`proto::ts::FrameReader`): see
//! `proto_fuzz::ts_demux`. Seeds: `proto/tests/vectors/ts/*.ts`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proto_fuzz::ts_demux(data));
