//! WebSocket client frames (`proto::websocket::Decoder`): see `proto_fuzz::websocket`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proto_fuzz::websocket(data));
