//! The status page at `/`: live streams with codec, resolution, bitrate and viewers,
//! refreshed from the API every two seconds, and a player per stream (mpegts.js playing
//! the stream's HTTP-FLV). The page and the vendored player are compiled into the hub.

use bytes::Bytes;
use hyper::{Response, StatusCode};

use super::body::Body;
use super::router::response;

const INDEX: &str = include_str!("../../static/index.html");
const MPEGTS_JS: &str = include_str!("../../static/vendor/mpegts.js/mpegts.js");
const MPEGTS_LICENSE: &str = include_str!("../../static/vendor/mpegts.js/LICENSE");
const MPEGTS_NOTICES: &str = include_str!("../../static/vendor/mpegts.js/mpegts.js.LICENSE.txt");

/// The page or file at `path`, if it is one of them.
pub fn asset(path: &str) -> Option<Response<Body>> {
    let (body, content_type) = match path {
        "/" | "/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/static/mpegts.js" => (MPEGTS_JS, "application/javascript; charset=utf-8"),
        "/static/mpegts.js.LICENSE" => (MPEGTS_LICENSE, "text/plain; charset=utf-8"),
        "/static/mpegts.js.LICENSE.txt" => (MPEGTS_NOTICES, "text/plain; charset=utf-8"),
        _ => return None,
    };
    Some(response(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    ))
}
