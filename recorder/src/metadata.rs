//! The few numbers the recorder reads from a stream's `onMetaData` (AMF0). Only scalar
//! values at the top level are read; nested values are skipped with a depth bound, and
//! anything unreadable ends the scan with what was read so far.

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

const MAX_DEPTH: usize = 16;
const MAX_ENTRIES: usize = 4096;

/// Reads the metadata payload of a `Header::Metadata`: the `onMetaData` string, then an
/// object or ECMA array.
pub fn parse(payload: &[u8]) -> SourceInfo {
    let mut info = SourceInfo::default();
    let mut r = payload;
    // The name string (`onMetaData`), if present.
    if r.first() == Some(&0x02) {
        r = &r[1..];
        if read_str(&mut r).is_none() {
            return info;
        }
    }
    match r.first() {
        Some(0x03) => r = &r[1..],
        Some(0x08) if r.len() >= 5 => r = &r[5..],
        _ => return info,
    }
    for _ in 0..MAX_ENTRIES {
        let Some(name) = read_str(&mut r) else {
            break;
        };
        if name.is_empty() && r.first() == Some(&0x09) {
            break;
        }
        let Some(&marker) = r.first() else { break };
        match marker {
            0x00 => {
                let Some(v) = r.get(1..9) else { break };
                let v = f64::from_be_bytes(v.try_into().unwrap_or([0; 8]));
                r = &r[9..];
                let v = v.is_finite().then_some(v);
                match name {
                    "width" => info.width = v,
                    "height" => info.height = v,
                    "framerate" | "videoframerate" => info.frame_rate = v,
                    "audiosamplerate" => info.audio_rate = v,
                    "audiochannels" => info.audio_channels = v,
                    _ => {}
                }
            }
            0x01 => {
                let Some(&b) = r.get(1) else { break };
                r = &r[2..];
                if name == "stereo" && info.audio_channels.is_none() {
                    info.audio_channels = Some(if b != 0 { 2.0 } else { 1.0 });
                }
            }
            0x02 => {
                r = &r[1..];
                let Some(s) = read_str(&mut r) else { break };
                if name == "encoder" {
                    info.encoder = Some(s.to_owned());
                }
            }
            _ => {
                if skip_value(&mut r, 0).is_none() {
                    break;
                }
            }
        }
    }
    info
}

fn read_str<'a>(r: &mut &'a [u8]) -> Option<&'a str> {
    let len = usize::from(u16::from_be_bytes([*r.first()?, *r.get(1)?]));
    let s = r.get(2..2 + len)?;
    *r = &r[2 + len..];
    std::str::from_utf8(s).ok()
}

fn skip_value(r: &mut &[u8], depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let marker = *r.first()?;
    *r = &r[1..];
    match marker {
        0x00 => *r = r.get(8..)?,
        0x01 => *r = r.get(1..)?,
        0x02 => {
            read_str(r)?;
        }
        0x05 | 0x06 => {}
        0x07 => *r = r.get(2..)?,
        0x0b => *r = r.get(10..)?,
        0x0c => {
            let len = u32::from_be_bytes(r.get(..4)?.try_into().ok()?) as usize;
            *r = r.get(4usize.checked_add(len)?..)?;
        }
        0x03 | 0x08 | 0x10 => {
            if marker == 0x08 {
                *r = r.get(4..)?;
            }
            if marker == 0x10 {
                read_str(r)?;
            }
            for _ in 0..MAX_ENTRIES {
                let name = read_str(r)?;
                if name.is_empty() && r.first() == Some(&0x09) {
                    *r = &r[1..];
                    return Some(());
                }
                skip_value(r, depth + 1)?;
            }
            return None;
        }
        0x0a => {
            let n = u32::from_be_bytes(r.get(..4)?.try_into().ok()?);
            *r = &r[4..];
            for _ in 0..n.min(MAX_ENTRIES as u32) {
                skip_value(r, depth + 1)?;
            }
        }
        _ => return None,
    }
    Some(())
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
