//! RTMP media messages to framed-format messages: `proto::flv::convert` (shared with the
//! relayer's pulls).

pub(crate) use proto::flv::convert::Converter;

/// The stream handle every message of a publisher uses (one stream per hub connection).
pub(crate) const STREAM: u32 = 1;
