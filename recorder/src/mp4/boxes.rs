//! Box writing primitives: a box is written by appending a placeholder size, letting a
//! closure append the body, then patching the size in place.

use bytes::{BufMut, BytesMut};

/// Appends a box of type `kind` whose body `body` writes.
pub fn write_box(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    // Boxes other than mdat are small (headers, a few thousand sample entries at most).
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a full box (version and flags after the type).
pub fn write_full_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    write_box(out, kind, |out| {
        out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(out);
    })
}

/// The header of an `mdat` holding `payload` bytes: 8 bytes, or 16 with a 64-bit
/// `largesize` when the box would not fit a 32-bit size.
pub fn mdat_header(payload: u64, out: &mut BytesMut) {
    if payload + 8 <= u64::from(u32::MAX) {
        out.put_u32((payload + 8) as u32);
        out.put_slice(b"mdat");
    } else {
        out.put_u32(1);
        out.put_slice(b"mdat");
        out.put_u64(payload + 16);
    }
}

/// The unity transformation matrix of mvhd/tkhd.
pub fn put_matrix(out: &mut BytesMut) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        out.put_u32(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_patched() {
        let mut b = BytesMut::new();
        write_box(&mut b, b"abcd", |b| {
            write_full_box(b, b"efgh", 1, 0x020000, |b| b.put_u8(7));
        });
        assert_eq!(
            &b[..],
            &[
                0, 0, 0, 21, b'a', b'b', b'c', b'd', 0, 0, 0, 13, b'e', b'f', b'g', b'h', 1, 2, 0,
                0, 7
            ]
        );
    }

    #[test]
    fn mdat_sizes() {
        let mut b = BytesMut::new();
        mdat_header(10, &mut b);
        assert_eq!(&b[..], &[0, 0, 0, 18, b'm', b'd', b'a', b't']);
        let mut b = BytesMut::new();
        mdat_header(u64::from(u32::MAX), &mut b);
        assert_eq!(
            &b[..],
            &[0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 1, 0, 0, 0, 0x0f]
        );
    }
}
