//! The hub's side of an RTMP player after the handoff
//! (`proto::rtmp::session::PlayerSession`): see `proto_fuzz::player_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proto_fuzz::player_session(data));
