//! RTMP players handed over by ingest-rtmp: taking the socket ([`handoff`]), the task
//! that drives one player ([`driver`]), and its state: protocol session, ring cursor and
//! the fan-out's fast path ([`output`]).

pub mod driver;
pub mod handoff;
pub mod output;
