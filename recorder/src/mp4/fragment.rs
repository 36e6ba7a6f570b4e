//! One fragment: `moof` (mfhd, then per track traf with tfhd, tfdt and trun) followed by
//! the `mdat` header. The caller writes the samples' bytes after it, track by track, in
//! the order given here.

use bytes::{BufMut, BytesMut};

use super::boxes::{mdat_header, write_box, write_full_box};

/// `sample_flags` of a sync sample (depends on no other sample).
pub const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample (depends on others, is_non_sync_sample).
pub const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// tfhd: base data offset is the start of the moof.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// trun: data offset, per-sample duration, size, flags and composition offset present.
const TRUN_FLAGS: u32 = 0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800;

/// What a trun says about one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleEntry {
    /// Duration in the track timescale.
    pub duration: u32,
    /// Size in bytes.
    pub size: u32,
    /// [`FLAGS_SYNC`] or [`FLAGS_NON_SYNC`].
    pub flags: u32,
    /// Composition offset (signed, trun version 1).
    pub cts: i32,
}

/// One track's part of a fragment.
#[derive(Debug, Clone, Copy)]
pub struct Traf<'a> {
    /// Track id (1-based).
    pub track_id: u32,
    /// Decode time of the first sample (tfdt, 64-bit).
    pub base_dts: u64,
    /// Its samples, in decode order.
    pub samples: &'a [SampleEntry],
}

impl Traf<'_> {
    fn data_len(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.size)).sum()
    }
}

/// Appends `moof` and the `mdat` header for `trafs` (tracks without samples are left out).
/// Each trun's data offset points at that track's first byte in the mdat.
pub fn write_fragment_header(out: &mut BytesMut, sequence: u32, trafs: &[Traf<'_>]) {
    let start = out.len();
    let mut offset_fields = Vec::with_capacity(trafs.len());
    write_box(out, b"moof", |o| {
        write_full_box(o, b"mfhd", 0, 0, |o| o.put_u32(sequence));
        for t in trafs.iter().filter(|t| !t.samples.is_empty()) {
            write_box(o, b"traf", |o| {
                write_full_box(o, b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |o| {
                    o.put_u32(t.track_id)
                });
                write_full_box(o, b"tfdt", 1, 0, |o| o.put_u64(t.base_dts));
                write_full_box(o, b"trun", 1, TRUN_FLAGS, |o| {
                    o.put_u32(t.samples.len() as u32);
                    offset_fields.push(o.len());
                    o.put_i32(0);
                    for s in t.samples {
                        o.put_u32(s.duration);
                        o.put_u32(s.size);
                        o.put_u32(s.flags);
                        o.put_i32(s.cts);
                    }
                });
            });
        }
    });
    let moof_len = (out.len() - start) as u64;
    let total: u64 = trafs.iter().map(Traf::data_len).sum();
    let mdat_start = out.len();
    mdat_header(total, out);
    let mut data_offset = moof_len + (out.len() - mdat_start) as u64;
    for (field, t) in offset_fields
        .into_iter()
        .zip(trafs.iter().filter(|t| !t.samples.is_empty()))
    {
        // The muxer caps fragments far below 2 GiB, so this always fits.
        let v = i32::try_from(data_offset).unwrap_or(i32::MAX);
        out[field..field + 4].copy_from_slice(&v.to_be_bytes());
        data_offset += t.data_len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_single_sample() {
        let s = [SampleEntry {
            duration: 40,
            size: 5,
            flags: FLAGS_SYNC,
            cts: -2,
        }];
        let mut b = BytesMut::new();
        write_fragment_header(
            &mut b,
            7,
            &[Traf {
                track_id: 1,
                base_dts: 0x1_0000_0000,
                samples: &s,
            }],
        );
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, 0, 104, b'm', b'o', b'o', b'f',
            0, 0, 0, 16, b'm', b'f', b'h', b'd', 0, 0, 0, 0, 0, 0, 0, 7,
            0, 0, 0, 80, b't', b'r', b'a', b'f',
            0, 0, 0, 16, b't', b'f', b'h', b'd', 0, 2, 0, 0, 0, 0, 0, 1,
            0, 0, 0, 20, b't', b'f', b'd', b't', 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
            0, 0, 0, 36, b't', b'r', b'u', b'n', 1, 0, 0x0f, 0x01, 0, 0, 0, 1,
            0, 0, 0, 112, // data offset = 104 + 8
            0, 0, 0, 40, 0, 0, 0, 5, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe,
            0, 0, 0, 13, b'm', b'd', b'a', b't',
        ];
        assert_eq!(&b[..], want);
    }

    #[test]
    fn offsets_follow_tracks() {
        let v = [SampleEntry {
            duration: 1,
            size: 100,
            flags: FLAGS_SYNC,
            cts: 0,
        }];
        let a = [SampleEntry {
            duration: 1,
            size: 7,
            flags: FLAGS_SYNC,
            cts: 0,
        }; 2];
        let mut b = BytesMut::new();
        let trafs = [
            Traf {
                track_id: 1,
                base_dts: 0,
                samples: &v,
            },
            Traf {
                track_id: 2,
                base_dts: 0,
                samples: &[],
            },
            Traf {
                track_id: 3,
                base_dts: 0,
                samples: &a,
            },
        ];
        write_fragment_header(&mut b, 1, &trafs);
        let moof = u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize;
        assert_eq!(b.len(), moof + 8);
        assert_eq!(
            u32::from_be_bytes(b[moof..moof + 4].try_into().unwrap()),
            8 + 114
        );
        // second trun's data offset skips the first track's 100 bytes
        let second = b.windows(4).rposition(|w| w == b"trun").unwrap() + 12;
        let off = i32::from_be_bytes(b[second..second + 4].try_into().unwrap());
        assert_eq!(off as usize, moof + 8 + 100);
    }
}
