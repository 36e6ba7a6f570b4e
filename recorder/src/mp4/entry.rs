//! Sample entries (the `stsd` child describing a track's codec) and their configuration
//! boxes, built from the configuration records proto carries.

use bytes::{BufMut, BytesMut};
use proto::media::Codec;

use super::boxes::{write_box, write_full_box};
use crate::codecs::audio;
use crate::codecs::color::ColorInfo;
use crate::mux::TrackInfo;

/// Whether fragmented MP4 carries `codec`.
pub fn supported(codec: Codec) -> bool {
    matches!(
        codec,
        Codec::H264
            | Codec::H265
            | Codec::Av1
            | Codec::Vp9
            | Codec::Vp8
            | Codec::Aac
            | Codec::Mp3
            | Codec::Opus
            | Codec::Flac
            | Codec::Ac3
            | Codec::Eac3
    )
}

/// Appends the sample entry of `track`.
pub fn write_sample_entry(out: &mut BytesMut, track: &TrackInfo) {
    let cfg = &track.config[..];
    match track.codec {
        Codec::H264 => visual(out, b"avc1", track, |o| {
            write_box(o, b"avcC", |o| o.put_slice(cfg))
        }),
        Codec::H265 => visual(out, b"hvc1", track, |o| {
            write_box(o, b"hvcC", |o| o.put_slice(cfg))
        }),
        Codec::Av1 => visual(out, b"av01", track, |o| {
            write_box(o, b"av1C", |o| o.put_slice(cfg))
        }),
        Codec::Vp9 => visual(out, b"vp09", track, |o| vpcc(o, cfg)),
        Codec::Vp8 => visual(out, b"vp08", track, |o| vpcc(o, cfg)),
        Codec::Aac => sound(out, b"mp4a", track, |o| esds(o, 0x40, cfg)),
        Codec::Mp3 => sound(out, b"mp4a", track, |o| esds(o, 0x6b, &[])),
        Codec::Opus => sound(out, b"Opus", track, |o| dops(o, cfg)),
        Codec::Flac => sound(out, b"fLaC", track, |o| dfla(o, cfg)),
        Codec::Ac3 => sound(out, b"ac-3", track, |o| {
            write_box(o, b"dac3", |o| o.put_slice(cfg))
        }),
        Codec::Eac3 => sound(out, b"ec-3", track, |o| {
            write_box(o, b"dec3", |o| o.put_slice(cfg))
        }),
        // Not reached: the muxer only takes supported codecs.
        _ => {}
    }
}

fn visual(out: &mut BytesMut, kind: &[u8; 4], t: &TrackInfo, cfg: impl FnOnce(&mut BytesMut)) {
    write_box(out, kind, |o| {
        o.put_bytes(0, 6);
        o.put_u16(1); // data_reference_index
        o.put_u16(0);
        o.put_u16(0);
        o.put_bytes(0, 12);
        o.put_u16(t.width.min(0xffff) as u16);
        o.put_u16(t.height.min(0xffff) as u16);
        o.put_u32(0x0048_0000);
        o.put_u32(0x0048_0000);
        o.put_u32(0);
        o.put_u16(1); // frame_count
        o.put_bytes(0, 32); // compressorname
        o.put_u16(0x0018);
        o.put_i16(-1);
        cfg(o);
        if let Some(c) = &t.color {
            color_boxes(o, c);
        }
    })
}

/// `colr` (nclx), `mdcv` and `clli` for what the publisher's `colorInfo` described.
fn color_boxes(o: &mut BytesMut, c: &ColorInfo) {
    if let Some((primaries, transfer, matrix)) = c.nclx {
        write_box(o, b"colr", |o| {
            o.put_slice(b"nclx");
            o.put_u16(primaries);
            o.put_u16(transfer);
            o.put_u16(matrix);
            o.put_u8(0); // full_range_flag: colorInfo has none; video range is the norm
        });
    }
    if let Some(m) = &c.mastering {
        write_box(o, b"mdcv", |o| {
            for (x, y) in m.primaries {
                o.put_u16(x);
                o.put_u16(y);
            }
            o.put_u16(m.white.0);
            o.put_u16(m.white.1);
            o.put_u32(m.max_luminance);
            o.put_u32(m.min_luminance);
        });
    }
    if let Some((max_cll, max_fall)) = c.light_level {
        write_box(o, b"clli", |o| {
            o.put_u16(max_cll);
            o.put_u16(max_fall);
        });
    }
}

fn sound(out: &mut BytesMut, kind: &[u8; 4], t: &TrackInfo, cfg: impl FnOnce(&mut BytesMut)) {
    write_box(out, kind, |o| {
        o.put_bytes(0, 6);
        o.put_u16(1);
        o.put_bytes(0, 8);
        o.put_u16(if t.channels == 0 { 2 } else { t.channels });
        o.put_u16(16);
        o.put_u16(0);
        o.put_u16(0);
        // 16.16 fixed point; rates above 65535 Hz do not fit and are written as 0.
        let rate = if t.sample_rate > 0xffff {
            0
        } else {
            t.sample_rate
        };
        o.put_u32(rate << 16);
        cfg(o);
    })
}

/// Descriptor length in the 1-to-4-byte expandable form.
fn put_descr_len(o: &mut BytesMut, len: usize) {
    let len = len.min(0x0fff_ffff);
    let mut shift = 21;
    while shift > 0 && (len >> shift) == 0 {
        shift -= 7;
    }
    while shift > 0 {
        o.put_u8(0x80 | ((len >> shift) & 0x7f) as u8);
        shift -= 7;
    }
    o.put_u8((len & 0x7f) as u8);
}

/// `esds` with an MPEG-4 ES descriptor: object type `oti`, decoder specific info `dsi`.
pub fn esds(o: &mut BytesMut, oti: u8, dsi: &[u8]) {
    write_full_box(o, b"esds", 0, 0, |o| {
        // Built inside out, so lengths above 127 (longer encodings) come out right.
        let mut dcd = BytesMut::new();
        dcd.put_u8(oti);
        dcd.put_u8(0x15); // audio stream, upstream 0, reserved 1
        dcd.put_slice(&[0, 0, 0]); // bufferSizeDB
        dcd.put_u32(0); // maxBitrate
        dcd.put_u32(0); // avgBitrate
        if !dsi.is_empty() {
            dcd.put_u8(0x05);
            put_descr_len(&mut dcd, dsi.len());
            dcd.put_slice(dsi);
        }
        let mut es = BytesMut::new();
        es.put_u16(1); // ES_ID
        es.put_u8(0);
        es.put_u8(0x04);
        put_descr_len(&mut es, dcd.len());
        es.put_slice(&dcd);
        es.put_slice(&[0x06, 0x01, 0x02]); // SLConfigDescriptor, predefined = MP4
        o.put_u8(0x03);
        put_descr_len(o, es.len());
        o.put_slice(&es);
    })
}

/// `dOps` (Opus in ISOBMFF) from an OpusHead; a stereo default when there is none.
pub fn dops(o: &mut BytesMut, opus_head: &[u8]) {
    let h = audio::opus_head(opus_head).unwrap_or_default();
    write_box(o, b"dOps", |o| {
        o.put_u8(0);
        o.put_u8(h.channels);
        o.put_u16(h.pre_skip);
        o.put_u32(h.input_rate);
        o.put_i16(h.gain);
        o.put_u8(h.family);
        o.put_slice(&h.mapping);
    })
}

/// `dfLa` from FLAC metadata blocks, the last one flagged as last.
fn dfla(o: &mut BytesMut, cfg: &[u8]) {
    let blocks = audio::flac_blocks(cfg);
    let blocks = &blocks[..];
    write_full_box(o, b"dfLa", 0, 0, |o| {
        let mut pos = 0;
        // Bounded by the buffer: every block advances at least four bytes.
        while pos + 4 <= blocks.len() {
            let len = (usize::from(blocks[pos + 1]) << 16)
                | (usize::from(blocks[pos + 2]) << 8)
                | usize::from(blocks[pos + 3]);
            let end = (pos + 4 + len).min(blocks.len());
            let last = end >= blocks.len();
            let start = o.len();
            o.put_slice(&blocks[pos..end]);
            o[start] = if last {
                o[start] | 0x80
            } else {
                o[start] & 0x7f
            };
            pos = end;
        }
    })
}

/// `vpcC` (version 1) from the record E-RTMP carries (with or without its full-box
/// header), or a default 8-bit 4:2:0 one when there is none.
fn vpcc(o: &mut BytesMut, cfg: &[u8]) {
    write_full_box(o, b"vpcC", 1, 0, |o| {
        let body = if cfg.len() >= 12 && cfg[0] == 1 && cfg[1..4] == [0, 0, 0] {
            &cfg[4..]
        } else {
            cfg
        };
        if body.len() >= 8 {
            o.put_slice(body);
        } else {
            // profile 0, level 3.1, 8-bit, 4:2:0 colocated, BT.709, no init data.
            o.put_slice(&[0, 31, 0x82, 1, 1, 1, 0, 0]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn esds_golden() {
        let mut b = BytesMut::new();
        esds(&mut b, 0x40, &[0x12, 0x10]);
        let want: &[u8] = &[
            0, 0, 0, 39, b'e', b's', b'd', b's', 0, 0, 0, 0, // full box
            0x03, 25, 0, 1, 0, // ES_Descriptor
            0x04, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // DecoderConfigDescriptor
            0x05, 2, 0x12, 0x10, // DecoderSpecificInfo
            0x06, 1, 2, // SLConfigDescriptor
        ];
        assert_eq!(&b[..], want);
    }

    #[test]
    fn dops_from_opus_head() {
        let head = [
            b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0,
            0, 0,
        ];
        let mut b = BytesMut::new();
        dops(&mut b, &head);
        assert_eq!(
            &b[..],
            &[0, 0, 0, 19, b'd', b'O', b'p', b's', 0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]
        );
    }

    #[test]
    fn dfla_sets_last_block() {
        let mut cfg = b"fLaC".to_vec();
        cfg.extend_from_slice(&[0, 0, 0, 2, 9, 9]);
        let mut b = BytesMut::new();
        dfla(&mut b, &cfg);
        assert_eq!(&b[12..], &[0x80, 0, 0, 2, 9, 9]);
    }

    #[test]
    fn descriptor_lengths() {
        let mut b = BytesMut::new();
        put_descr_len(&mut b, 200);
        assert_eq!(&b[..], &[0x81, 0x48]);
    }

    #[test]
    fn color_boxes_golden() {
        use crate::codecs::color::Mastering;
        let mut t = TrackInfo::new(Codec::H265, Bytes::from_static(&[1]));
        t.color = Some(ColorInfo {
            nclx: Some((9, 16, 9)),
            mastering: Some(Mastering {
                primaries: [(1, 2), (3, 4), (5, 6)],
                white: (7, 8),
                max_luminance: 10_000_000,
                min_luminance: 1,
            }),
            light_level: Some((1000, 400)),
        });
        let mut b = BytesMut::new();
        write_sample_entry(&mut b, &t);
        let tail: &[u8] = &[
            0, 0, 0, 9, b'h', b'v', b'c', b'C', 1, // the record
            0, 0, 0, 19, b'c', b'o', b'l', b'r', b'n', b'c', b'l', b'x', 0, 9, 0, 16, 0, 9, 0, 0,
            0, 0, 32, b'm', b'd', b'c', b'v', 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0,
            0x98, 0x96, 0x80, 0, 0, 0, 1, // luminance
            0, 0, 0, 12, b'c', b'l', b'l', b'i', 0x03, 0xe8, 0x01, 0x90,
        ];
        assert_eq!(&b[b.len() - tail.len()..], tail);
    }

    #[test]
    fn opus_entry() {
        let mut t = TrackInfo::new(Codec::Opus, Bytes::new());
        t.sample_rate = 48000;
        t.channels = 2;
        let mut b = BytesMut::new();
        write_sample_entry(&mut b, &t);
        assert_eq!(&b[4..8], b"Opus");
        assert_eq!(&b[24..26], &[0, 2]);
        assert_eq!(&b[32..36], &[0xbb, 0x80, 0, 0]);
        assert_eq!(b.len(), 36 + 19);
    }
}
