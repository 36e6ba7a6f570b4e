//! FLV files (`proto::flv::read_file`): see `proto_fuzz::flv_file`. Seeds:
//! `proto/tests/vectors/flv/*.flv` without their first 13 bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proto_fuzz::flv_file(data));
