//! The few numbers the recorder reads from a stream's `onMetaData` (AMF0, decoded by
//! `proto::rtmp::amf0`): top-level scalars for the default tracks, and the E-RTMP v2
//! `videoTrackIdInfoMap` / `audioTrackIdInfoMap` entries for the others.

use std::collections::HashMap;

use proto::media::TrackKind;
use proto::rtmp::amf0::{self, Amf0Value, AmfLimits};

/// Longest track name kept (bytes); longer ones are cut at a character boundary.
const MAX_NAME: usize = 256;

/// What the source said about one track of a multitrack stream (an entry of
/// `videoTrackIdInfoMap` / `audioTrackIdInfoMap`). Every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackSource {
    /// Picture width.
    pub width: Option<f64>,
    /// Picture height.
    pub height: Option<f64>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    /// Audio sample rate in Hz (`samplerate` or `audiosamplerate`).
    pub audio_rate: Option<f64>,
    /// Audio channel count (`channels` or `audiochannels`).
    pub audio_channels: Option<f64>,
    /// ISO 639-2/T language code (`language`), lower case, exactly three letters.
    pub language: Option<[u8; 3]>,
    /// Human-readable track name (`name`, else `title`).
    pub name: Option<String>,
}

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
    /// Per-track descriptions by (kind, track id), from the E-RTMP info maps.
    pub tracks: HashMap<(TrackKind, u8), TrackSource>,
}

impl SourceInfo {
    /// What the source said about track `number` of `kind`: its info-map entry, with the
    /// top-level fields filling in for the default track (0).
    pub fn track(&self, kind: TrackKind, number: u8) -> TrackSource {
        let mut t = self
            .tracks
            .get(&(kind, number))
            .cloned()
            .unwrap_or_default();
        if number == 0 {
            t.width = t.width.or(self.width);
            t.height = t.height.or(self.height);
            t.frame_rate = t.frame_rate.or(self.frame_rate);
            t.audio_rate = t.audio_rate.or(self.audio_rate);
            t.audio_channels = t.audio_channels.or(self.audio_channels);
        }
        t
    }
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
    for (kind, map) in [
        (TrackKind::Video, "videoTrackIdInfoMap"),
        (TrackKind::Audio, "audioTrackIdInfoMap"),
    ] {
        let Some(Amf0Value::Object(entries) | Amf0Value::EcmaArray(entries)) = props.get(map)
        else {
            continue;
        };
        for (id, value) in entries {
            if let Ok(id) = id.trim().parse::<u8>() {
                info.tracks.insert((kind, id), track_source(value));
            }
        }
    }
    info
}

/// One info-map entry.
fn track_source(v: &Amf0Value) -> TrackSource {
    let num = |k: &str| {
        v.get(k)
            .and_then(Amf0Value::as_f64)
            .filter(|v| v.is_finite())
    };
    let language = v
        .get("language")
        .and_then(Amf0Value::as_str)
        .and_then(|l| <[u8; 3]>::try_from(l.as_bytes()).ok())
        .filter(|l| l.iter().all(u8::is_ascii_alphabetic))
        .map(|l| l.map(|c| c.to_ascii_lowercase()));
    let name = ["name", "title"]
        .iter()
        .find_map(|k| v.get(k).and_then(Amf0Value::as_str))
        .filter(|n| !n.is_empty())
        .map(|n| {
            let mut end = n.len().min(MAX_NAME);
            while !n.is_char_boundary(end) {
                end -= 1;
            }
            n[..end].to_owned()
        });
    TrackSource {
        width: num("width"),
        height: num("height"),
        frame_rate: num("framerate").or_else(|| num("videoframerate")),
        audio_rate: num("samplerate").or_else(|| num("audiosamplerate")),
        audio_channels: num("channels").or_else(|| num("audiochannels")),
        language,
        name,
    }
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
    fn reads_the_track_info_maps() {
        let mut p = vec![0x02, 0, 10];
        p.extend_from_slice(b"onMetaData");
        p.extend_from_slice(&[0x03]);
        num("width", 640.0, &mut p);
        p.extend_from_slice(&[0, 19]);
        p.extend_from_slice(b"audioTrackIdInfoMap");
        p.extend_from_slice(&[0x03, 0, 1, b'1', 0x03]);
        num("channels", 6.0, &mut p);
        p.extend_from_slice(&[0, 8]);
        p.extend_from_slice(b"language");
        p.extend_from_slice(&[0x02, 0, 3, b'D', b'e', b'u']);
        p.extend_from_slice(&[0, 4]);
        p.extend_from_slice(b"name");
        p.extend_from_slice(&[0x02, 0, 7]);
        p.extend_from_slice(b"Deutsch");
        p.extend_from_slice(&[0, 0, 0x09]); // end of track 1
        p.extend_from_slice(&[0, 1, b'x', 0x03, 0, 0, 0x09]); // not a track id
        p.extend_from_slice(&[0, 0, 0x09, 0, 0, 0x09]);
        let info = parse(&p);
        let a1 = info.track(TrackKind::Audio, 1);
        assert_eq!(a1.audio_channels, Some(6.0));
        assert_eq!(a1.language, Some(*b"deu"));
        assert_eq!(a1.name.as_deref(), Some("Deutsch"));
        assert_eq!(a1.width, None, "top-level fields describe track 0 only");
        assert_eq!(info.track(TrackKind::Video, 0).width, Some(640.0));
        assert_eq!(info.tracks.len(), 1);
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
