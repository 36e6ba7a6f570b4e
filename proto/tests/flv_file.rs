//! FLV files: what `write_file_header`/`write_tag_header` write reads back; a cut file
//! yields its complete tags; wrong back-pointers and headers are errors; arbitrary bytes
//! never panic.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::flv::{
    read_file, write_file_header, write_previous_tag_size, write_tag_header, FlvFileError,
    TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO,
};

fn file(tags: &[(u8, u32, &[u8])]) -> Bytes {
    let mut out = BytesMut::new();
    write_file_header(true, true, &mut out);
    for (t, ts, body) in tags {
        write_tag_header(*t, body.len() as u32, *ts, &mut out);
        out.extend_from_slice(body);
        write_previous_tag_size(body.len() as u32, &mut out);
    }
    out.freeze()
}

#[test]
fn golden_round_trip() {
    let data = file(&[
        (TAG_SCRIPT, 0, b"\x02\x00\x0aonMetaData"),
        (TAG_VIDEO, 40, &[0x17, 0, 0, 0, 0]),
        (TAG_AUDIO, 0x0123_4567, &[0xAF, 1, 0x21]),
    ]);
    // Golden bytes of the header and the first tag header.
    assert_eq!(&data[..13], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
    assert_eq!(&data[13..24], &[18, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0]);
    let f = read_file(&data).unwrap();
    assert!(f.has_audio && f.has_video);
    assert_eq!(f.complete_len, data.len());
    let summary: Vec<(u8, u32, usize)> = f
        .tags
        .iter()
        .map(|t| (t.tag_type, t.timestamp_ms, t.body.len()))
        .collect();
    assert_eq!(
        summary,
        [(18, 0, 13), (9, 40, 5), (8, 0x0123_4567, 3)],
        "the extension byte carries timestamp bits 24-31"
    );
    assert_eq!(&f.tags[1].body[..], &[0x17, 0, 0, 0, 0]);
}

#[test]
fn a_cut_file_yields_its_complete_tags() {
    let data = file(&[(TAG_VIDEO, 0, &[1; 100]), (TAG_VIDEO, 40, &[2; 100])]);
    let whole = read_file(&data).unwrap();
    for cut in 13..data.len() {
        let f = read_file(&data.slice(..cut)).unwrap();
        assert!(whole.tags.starts_with(&f.tags));
        assert!(f.complete_len <= cut);
        let want = if cut >= data.len() {
            2
        } else if cut >= 13 + 115 {
            1
        } else {
            0
        };
        assert_eq!(f.tags.len(), want, "cut at {cut}");
    }
}

#[test]
fn bad_files_are_errors() {
    assert_eq!(
        read_file(&Bytes::from_static(b"FLX\x01\x05\0\0\0\x09")),
        Err(FlvFileError::NotFlv)
    );
    assert_eq!(
        read_file(&Bytes::from_static(b"FLV")),
        Err(FlvFileError::NotFlv)
    );
    assert_eq!(
        read_file(&Bytes::from_static(b"FLV\x01\x05\0\0\0\x05\0\0\0\0")),
        Err(FlvFileError::BadHeaderSize(5))
    );
    let mut data = BytesMut::from(&file(&[(TAG_VIDEO, 0, &[1, 2, 3])])[..]);
    let n = data.len();
    data[n - 1] ^= 1;
    assert!(matches!(
        read_file(&data.freeze()),
        Err(FlvFileError::BadPreviousTagSize {
            at: 13,
            want: 14,
            ..
        })
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut data = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        data.extend(tail);
        let _ = read_file(&Bytes::from(data));
    }

    #[test]
    fn written_tags_read_back(tags in proptest::collection::vec(
        (prop_oneof![Just(TAG_AUDIO), Just(TAG_VIDEO), Just(TAG_SCRIPT)], any::<u32>(),
         proptest::collection::vec(any::<u8>(), 0..64)), 0..8)) {
        let refs: Vec<(u8, u32, &[u8])> = tags.iter().map(|(t, ts, b)| (*t, *ts, &b[..])).collect();
        let f = read_file(&file(&refs)).unwrap();
        prop_assert_eq!(f.tags.len(), tags.len());
        for (got, (t, ts, b)) in f.tags.iter().zip(&tags) {
            prop_assert_eq!((got.tag_type, got.timestamp_ms, &got.body[..]), (*t, *ts, &b[..]));
        }
    }
}
