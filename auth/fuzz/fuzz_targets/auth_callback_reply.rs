//! Auth callback replies: status and body to an allow or deny.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::callback_reply(data));
