#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proto_fuzz::amf3(data));
