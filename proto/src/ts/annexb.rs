//! Annex B byte streams (start-code delimited NAL units, as H.264/H.265 travel in TS) and
//! the length-prefixed form of MP4 samples, both ways.

use bytes::{BufMut, BytesMut};

/// What the conversion to samples does with a NAL unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalClass {
    /// A parameter set: kept for the configuration record, not in the sample. `id` is
    /// `None` when it does not parse (the set is then ignored).
    ParameterSet {
        /// NAL unit type.
        nal_type: u8,
        /// Parameter set id.
        id: Option<u32>,
    },
    /// Access unit delimiter, filler, end of sequence or stream: dropped.
    Dropped,
    /// Anything else goes into the sample; `keyframe` for IDR/IRAP slices.
    Coded {
        /// A random access point.
        keyframe: bool,
    },
}

/// Position of the next 00 00 01 at or after `from`.
fn find_start(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 3 <= data.len() {
        // Skip ahead by the position of the third byte when it cannot end a start code.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some(i),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// The NAL units of an Annex B buffer, without start codes or trailing zero bytes. Bytes
/// before the first start code are ignored.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut next = find_start(data, 0).map(|s| s + 3);
    std::iter::from_fn(move || loop {
        let start = next?;
        let end = match find_start(data, start) {
            Some(s) => {
                next = Some(s + 3);
                s
            }
            None => {
                next = None;
                data.len()
            }
        };
        let mut nal = &data[start..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            return Some(nal);
        }
    })
}

/// Appends `nal` with a 4-byte big-endian length prefix.
pub fn put_length_prefixed(out: &mut BytesMut, nal: &[u8]) {
    out.put_u32(nal.len() as u32);
    out.put_slice(nal);
}

/// The NAL units of a length-prefixed sample (`size` bytes of length, 1 to 4); stops at a
/// length that runs past the sample.
pub fn length_prefixed(data: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < size || size == 0 || size > 4 {
            return None;
        }
        let len = rest[..size]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        if len > rest.len() - size {
            rest = &[];
            return None;
        }
        let nal = &rest[size..size + len];
        rest = &rest[size + len..];
        Some(nal)
    })
}

/// Appends `nal` after a 4-byte start code.
pub fn put_start_code(out: &mut BytesMut, nal: &[u8]) {
    out.put_slice(&[0, 0, 0, 1]);
    out.put_slice(nal);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_3_and_4_byte_start_codes() {
        let data = [
            9, 9, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 1, 0,
        ];
        let nals: Vec<_> = nal_units(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0, 0, 3, 1][..]]
        );
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1, 0, 0, 1]).count(), 0);
    }

    #[test]
    fn length_prefixed_round_trip() {
        let mut out = BytesMut::new();
        put_length_prefixed(&mut out, &[0x65, 1]);
        put_length_prefixed(&mut out, &[0x41]);
        assert_eq!(&out[..], &[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41]);
        let nals: Vec<_> = length_prefixed(&out, 4).collect();
        assert_eq!(nals, vec![&[0x65, 1][..], &[0x41][..]]);
        assert_eq!(length_prefixed(&[0, 0, 0, 9, 1], 4).count(), 0);
    }
}
