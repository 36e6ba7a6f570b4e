//! RTMP stream name and app queries: parameters, the token, redaction.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::query(data));
