//! JWTs offered by clients (never accepted unsigned), JWK sets and key files.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::jwt(data));
