//! The few numbers the recorder reads from a stream's `onMetaData` (AMF0, decoded by
//! `proto::rtmp::amf0`): only top-level scalars are used.

use proto::rtmp::amf0::{self, Amf0Value, AmfLimits};

/// What the source said about its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceInfo {
    /// Picture width.
    pub width: Option<f64>,
    /// Picture height.
    pub height: Option<f64>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    /// Audio sample rate in Hz.
    pub audio_rate: Option<f64>,
    /// Audio channel count (from `audiochannels`, or 2/1 from `stereo`).
    pub audio_channels: Option<f64>,
    /// `encoder` string.
    pub encoder: Option<String>,
}

/// Reads the metadata payload of a `Header::Metadata`: the `onMetaData` string (optional),
/// then an object or ECMA array, decoded by `proto::rtmp::amf0` within its data-message
/// limits. Unreadable metadata says nothing; bytes after the object are ignored.
pub fn parse(payload: &[u8]) -> SourceInfo {
    let mut info = SourceInfo::default();
    // The values up to the first object or ECMA array; what follows is not read.
    let limits = AmfLimits::data();
    let mut r = payload;
    let props = loop {
        match amf0::decode(&mut r, &limits) {
            Ok(v @ (Amf0Value::Object(_) | Amf0Value::EcmaArray(_))) => break v,
            Ok(_) => {}
            Err(_) => return info,
        }
    };
    let num = |k: &str| {
        props
            .get(k)
            .and_then(Amf0Value::as_f64)
            .filter(|v| v.is_finite())
    };
    info.width = num("width");
    info.height = num("height");
    info.frame_rate = num("framerate").or_else(|| num("videoframerate"));
    info.audio_rate = num("audiosamplerate");
    info.audio_channels = num("audiochannels").or_else(|| {
        let stereo = props.get("stereo").and_then(Amf0Value::as_bool)?;
        Some(if stereo { 2.0 } else { 1.0 })
    });
    info.encoder = props
        .get("encoder")
        .and_then(Amf0Value::as_str)
        .map(str::to_owned);
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(name: &str, v: f64, out: &mut Vec<u8>) {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(&v.to_be_bytes());
    }

    #[test]
    fn reads_numbers_and_skips_the_rest() {
        let mut p = vec![0x02, 0, 10];
        p.extend_from_slice(b"onMetaData");
        p.extend_from_slice(&[0x08, 0, 0, 0, 5]);
        num("width", 640.0, &mut p);
        // nested object { a: null }
        p.extend_from_slice(&[0, 1, b'o', 0x03, 0, 1, b'a', 0x05, 0, 0, 0x09]);
        num("height", 360.0, &mut p);
        p.extend_from_slice(&[0, 6]);
        p.extend_from_slice(b"stereo");
        p.extend_from_slice(&[0x01, 1]);
        num("framerate", 25.0, &mut p);
        p.extend_from_slice(&[0, 0, 0x09]);
        let info = parse(&p);
        assert_eq!(info.width, Some(640.0));
        assert_eq!(info.height, Some(360.0));
        assert_eq!(info.frame_rate, Some(25.0));
        assert_eq!(info.audio_channels, Some(2.0));
        for n in 0..p.len() {
            let _ = parse(&p[..n]);
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut p = vec![0x03];
        for _ in 0..10_000 {
            p.extend_from_slice(&[0, 1, b'x', 0x03]);
        }
        assert_eq!(parse(&p), SourceInfo::default());
    }
}
