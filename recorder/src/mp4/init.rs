//! The init segment: `ftyp` and a `moov` with one `trak` per track and `mvex`, with no
//! samples in it (they all come in fragments).

use bytes::{BufMut, BytesMut};
use proto::media::{Codec, TrackKind};

use super::boxes::{put_matrix, write_box, write_full_box};
use super::entry::write_sample_entry;
use crate::mux::TrackInfo;

/// Appends `ftyp` and `moov` for `tracks` (track ids are index + 1), all tracks in
/// `timescale` ticks per second.
pub fn write_init(out: &mut BytesMut, tracks: &[TrackInfo], timescale: u32) {
    write_box(out, b"ftyp", |o| {
        o.put_slice(b"iso6");
        o.put_u32(0);
        o.put_slice(b"iso6");
        o.put_slice(b"isom");
        o.put_slice(b"mp41");
        if tracks.iter().any(|t| t.codec == Codec::Av1) {
            o.put_slice(b"av01");
        }
    });
    write_box(out, b"moov", |o| {
        write_full_box(o, b"mvhd", 0, 0, |o| {
            o.put_u32(0);
            o.put_u32(0);
            o.put_u32(timescale);
            o.put_u32(0);
            o.put_u32(0x0001_0000);
            o.put_u16(0x0100);
            o.put_bytes(0, 10);
            put_matrix(o);
            o.put_bytes(0, 24);
            o.put_u32(tracks.len() as u32 + 1);
        });
        for (i, t) in tracks.iter().enumerate() {
            write_trak(o, i as u32 + 1, t, timescale);
        }
        write_box(o, b"mvex", |o| {
            for i in 0..tracks.len() {
                write_trex(o, i as u32 + 1);
            }
        });
    });
}

/// `trex` with no defaults (every fragment states durations, sizes and flags).
pub fn write_trex(o: &mut BytesMut, track_id: u32) {
    write_full_box(o, b"trex", 0, 0, |o| {
        o.put_u32(track_id);
        o.put_u32(1);
        o.put_u32(0);
        o.put_u32(0);
        o.put_u32(0);
    })
}

fn write_trak(o: &mut BytesMut, id: u32, t: &TrackInfo, timescale: u32) {
    let video = t.kind() == TrackKind::Video;
    write_box(o, b"trak", |o| {
        write_full_box(o, b"tkhd", 0, 3, |o| {
            o.put_u32(0);
            o.put_u32(0);
            o.put_u32(id);
            o.put_u32(0);
            o.put_u32(0);
            o.put_bytes(0, 8);
            o.put_u16(0);
            o.put_u16(0);
            o.put_u16(if video { 0 } else { 0x0100 });
            o.put_u16(0);
            put_matrix(o);
            let (w, h) = if video { (t.width, t.height) } else { (0, 0) };
            o.put_u32(w.min(0xffff) << 16);
            o.put_u32(h.min(0xffff) << 16);
        });
        write_box(o, b"mdia", |o| {
            write_full_box(o, b"mdhd", 0, 0, |o| {
                o.put_u32(0);
                o.put_u32(0);
                o.put_u32(timescale);
                o.put_u32(0);
                o.put_u16(packed_language(t.language.unwrap_or(*b"und")));
                o.put_u16(0);
            });
            write_full_box(o, b"hdlr", 0, 0, |o| {
                o.put_u32(0);
                o.put_slice(if video { b"vide" } else { b"soun" });
                o.put_bytes(0, 12);
                o.put_slice(if video {
                    b"VideoHandler\0"
                } else {
                    b"SoundHandler\0"
                });
            });
            write_box(o, b"minf", |o| {
                if video {
                    write_full_box(o, b"vmhd", 0, 1, |o| o.put_bytes(0, 8));
                } else {
                    write_full_box(o, b"smhd", 0, 0, |o| o.put_u32(0));
                }
                write_box(o, b"dinf", |o| {
                    write_full_box(o, b"dref", 0, 0, |o| {
                        o.put_u32(1);
                        write_full_box(o, b"url ", 0, 1, |_| {});
                    })
                });
                write_box(o, b"stbl", |o| {
                    write_full_box(o, b"stsd", 0, 0, |o| {
                        o.put_u32(1);
                        write_sample_entry(o, t);
                    });
                    write_full_box(o, b"stts", 0, 0, |o| o.put_u32(0));
                    write_full_box(o, b"stsc", 0, 0, |o| o.put_u32(0));
                    write_full_box(o, b"stsz", 0, 0, |o| o.put_u64(0));
                    write_full_box(o, b"stco", 0, 0, |o| o.put_u32(0));
                });
            });
        });
        if let Some(name) = &t.name {
            write_title(o, name);
        }
    });
}

/// ISO 639-2/T code as `mdhd` packs it: three 5-bit letters (each minus 0x60).
fn packed_language(l: [u8; 3]) -> u16 {
    l.iter().fold(0u16, |acc, c| {
        (acc << 5) | u16::from(c.wrapping_sub(0x60) & 0x1f)
    })
}

/// `udta` with a QuickTime-style `\xa9nam` text item (length, language, UTF-8 text):
/// the track's title, as FFmpeg and other players read it.
fn write_title(o: &mut BytesMut, name: &str) {
    write_box(o, b"udta", |o| {
        write_box(o, b"\xa9nam", |o| {
            o.put_u16(name.len() as u16);
            o.put_u16(0x55c4); // "und"
            o.put_slice(name.as_bytes());
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn language_and_title_golden() {
        assert_eq!(packed_language(*b"und"), 0x55c4);
        assert_eq!(packed_language(*b"deu"), 0x10b5);
        let mut t = TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10]));
        t.language = Some(*b"deu");
        t.name = Some("Deutsch".into());
        let mut b = BytesMut::new();
        write_trak(&mut b, 2, &t, 1000);
        let mdhd = b.windows(4).position(|w| w == b"mdhd").unwrap();
        assert_eq!(&b[mdhd + 24..mdhd + 28], &[0x10, 0xb5, 0, 0]);
        #[rustfmt::skip]
        let udta: &[u8] = &[
            0, 0, 0, 27, b'u', b'd', b't', b'a',
            0, 0, 0, 19, 0xa9, b'n', b'a', b'm', 0, 7, 0x55, 0xc4,
            b'D', b'e', b'u', b't', b's', b'c', b'h',
        ];
        assert!(b.ends_with(udta), "{:02x?}", &b[b.len() - 27..]);
    }

    #[test]
    fn trex_golden() {
        let mut b = BytesMut::new();
        write_trex(&mut b, 2);
        assert_eq!(
            &b[..],
            &[
                0, 0, 0, 32, b't', b'r', b'e', b'x', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
    }
}
