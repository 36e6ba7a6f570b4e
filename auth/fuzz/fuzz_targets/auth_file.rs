//! Auth files in TOML and JSON, and the decisions of what parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::file(data));
