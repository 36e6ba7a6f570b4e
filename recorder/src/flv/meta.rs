//! The `onMetaData` script tag body the recorder writes, with the byte positions of the
//! numbers filled in when the file closes (AMF0 numbers are 8 bytes, so patching never
//! moves anything).

use bytes::BytesMut;
use proto::rtmp::amf0::{self, Amf0Value};

/// What the tag states when the file opens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaFields {
    /// Video track: width, height, frame rate (0.0 = unknown, patched at close), codec id.
    pub video: Option<(f64, f64, f64, f64)>,
    /// Audio track: codec id, sample rate, channels.
    pub audio: Option<(f64, f64, f64)>,
}

/// Offsets, inside the body, of the 8-byte numbers patched at close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaPatches {
    /// `duration` (seconds).
    pub duration: usize,
    /// `filesize` (bytes).
    pub filesize: usize,
    /// `framerate`, when it was unknown at open.
    pub framerate: Option<usize>,
}

/// Appends the script body (`onMetaData` string, ECMA array) and returns where to patch.
pub fn write_body(f: &MetaFields, out: &mut BytesMut) -> MetaPatches {
    let mut props: Vec<(&str, Amf0Value)> = vec![
        ("duration", Amf0Value::Number(0.0)),
        ("filesize", Amf0Value::Number(0.0)),
    ];
    let mut framerate_unknown = false;
    if let Some((w, h, fps, id)) = f.video {
        props.push(("width", Amf0Value::Number(w)));
        props.push(("height", Amf0Value::Number(h)));
        props.push(("framerate", Amf0Value::Number(fps)));
        framerate_unknown = fps == 0.0;
        props.push(("videocodecid", Amf0Value::Number(id)));
    }
    if let Some((id, rate, ch)) = f.audio {
        props.push(("audiocodecid", Amf0Value::Number(id)));
        props.push(("audiosamplerate", Amf0Value::Number(rate)));
        props.push(("audiosamplesize", Amf0Value::Number(16.0)));
        props.push(("stereo", Amf0Value::Boolean(ch >= 2.0)));
        props.push(("audiochannels", Amf0Value::Number(ch)));
    }
    props.push(("encoder", Amf0Value::String("mediaserver recorder".into())));
    let start = out.len();
    amf0::encode(&Amf0Value::String("onMetaData".into()), out);
    // The ECMA array: marker, u32 count, then per property a u16-prefixed name and the
    // value. Walking the same layout finds where each patched number's 8 bytes are.
    let mut at = out.len() - start + 5;
    let mut p = MetaPatches::default();
    let mut scratch = BytesMut::new();
    for (name, value) in &props {
        let number_at = at + 2 + name.len() + 1;
        match *name {
            "duration" => p.duration = number_at,
            "filesize" => p.filesize = number_at,
            "framerate" if framerate_unknown => p.framerate = Some(number_at),
            _ => {}
        }
        scratch.clear();
        amf0::encode(value, &mut scratch);
        at += 2 + name.len() + scratch.len();
    }
    let props = props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    amf0::encode(&Amf0Value::EcmaArray(props), out);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_offsets_point_at_numbers() {
        let mut b = BytesMut::new();
        let p = write_body(
            &MetaFields {
                video: Some((320.0, 240.0, 0.0, 7.0)),
                audio: Some((10.0, 44100.0, 2.0)),
            },
            &mut b,
        );
        assert_eq!(&b[p.duration - 9..p.duration - 1], b"duration");
        assert_eq!(&b[p.filesize - 9..p.filesize - 1], b"filesize");
        let fr = p.framerate.unwrap();
        assert_eq!(&b[fr - 10..fr - 1], b"framerate");
        assert_eq!(
            &b[..13],
            &[2, 0, 10, b'o', b'n', b'M', b'e', b't', b'a', b'D', b'a', b't', b'a']
        );
        assert_eq!(&b[b.len() - 3..], &[0, 0, 9]);
        assert_eq!(f64::from_be_bytes(b[fr..fr + 8].try_into().unwrap()), 0.0);
        let info = crate::metadata::parse(&b);
        assert_eq!(info.width, Some(320.0));
        assert_eq!(info.audio_channels, Some(2.0));
    }
}
