//! RTMP players handed over by ingest-rtmp: taking the socket ([`handoff`]), the
//! player's input and the session setup ([`session`]), and the output from the shared
//! ring ([`writer`]).

pub mod handoff;
pub mod session;
pub mod writer;
