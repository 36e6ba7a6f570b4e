//! The framed IPC decoder: any bytes, fed whole and split at a data-chosen offset, give the
//! same messages and the same error; every decoded message encodes back to bytes that decode
//! to it again. (Not to the input's bytes in a row: messages of an unknown header variant
//! are skipped on the way.)
#![no_main]

use bytes::BytesMut;
use proto::ipc::{encode, FrameDecoder, Message};

fn run(data: &[u8], split: usize) -> (Vec<Message>, Option<String>) {
    let dec = FrameDecoder::new(4096, 1 << 16);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(split.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    (out, None)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (whole, err) = run(data, data.len());
    let split = data.first().map_or(1, |&b| usize::from(b % 13) + 1);
    let (pieces, err2) = run(data, split);
    // Debug strings, not PartialEq: a NaN in PlayerSession's f64 fields is not equal to itself.
    assert_eq!(format!("{whole:?}"), format!("{pieces:?}"));
    assert_eq!(err, err2);
    let mut again = BytesMut::new();
    for m in &whole {
        encode(&m.header, &m.payload, &mut again);
    }
    let (round, err3) = run(&again, again.len().max(1));
    assert_eq!(err3, None);
    assert_eq!(format!("{whole:?}"), format!("{round:?}"));
});
