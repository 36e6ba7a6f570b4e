//! The `onMetaData` script tag body the recorder writes, with the byte positions of the
//! numbers filled in when the file closes (AMF0 numbers are 8 bytes, so patching never
//! moves anything).

use bytes::{BufMut, BytesMut};

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

fn key(out: &mut BytesMut, k: &str) {
    out.put_u16(k.len() as u16);
    out.put_slice(k.as_bytes());
}

fn num(out: &mut BytesMut, k: &str, v: f64) -> usize {
    key(out, k);
    out.put_u8(0x00);
    let at = out.len();
    out.put_f64(v);
    at
}

/// Appends the script body (`onMetaData` string, ECMA array) and returns where to patch.
pub fn write_body(f: &MetaFields, out: &mut BytesMut) -> MetaPatches {
    let start = out.len();
    out.put_u8(0x02);
    key(out, "onMetaData");
    out.put_u8(0x08);
    let count =
        2 + if f.video.is_some() { 4 } else { 0 } + if f.audio.is_some() { 5 } else { 0 } + 1;
    out.put_u32(count);
    let mut p = MetaPatches {
        duration: num(out, "duration", 0.0) - start,
        filesize: num(out, "filesize", 0.0) - start,
        framerate: None,
    };
    if let Some((w, h, fps, id)) = f.video {
        num(out, "width", w);
        num(out, "height", h);
        let at = num(out, "framerate", fps) - start;
        if fps == 0.0 {
            p.framerate = Some(at);
        }
        num(out, "videocodecid", id);
    }
    if let Some((id, rate, ch)) = f.audio {
        num(out, "audiocodecid", id);
        num(out, "audiosamplerate", rate);
        num(out, "audiosamplesize", 16.0);
        key(out, "stereo");
        out.put_u8(0x01);
        out.put_u8(u8::from(ch >= 2.0));
        num(out, "audiochannels", ch);
    }
    key(out, "encoder");
    out.put_u8(0x02);
    key(out, "mediaserver recorder");
    out.put_slice(&[0, 0, 0x09]);
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
        let info = crate::metadata::parse(&b);
        assert_eq!(info.width, Some(320.0));
        assert_eq!(info.audio_channels, Some(2.0));
    }
}
