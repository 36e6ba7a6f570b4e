//! RTMP media messages to framed-format messages: `proto::flv::convert` (shared with the
//! relayer's pulls).

pub(crate) use proto::flv::convert::Converter;

pub(crate) use ingest_link::STREAM;
