//! SRT stream ids in the access-control syntax, and the auth parameters read from them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::srt_stream_id(data));
