//! Chunk stream: golden vectors, negative vectors, split-at-every-offset, state export and
//! proptest round trips through the encoder and decoder.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::rtmp::chunk::{
    write_fmt0, write_fmt0_parts, ChunkDecoder, ChunkEncoder, ChunkError, ChunkLimits, RtmpMessage,
};

fn decode_all(dec: &mut ChunkDecoder, input: &[u8]) -> Result<Vec<RtmpMessage>, ChunkError> {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut buf)? {
        out.push(m);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(out)
}

fn decode(input: &[u8]) -> Result<Vec<RtmpMessage>, ChunkError> {
    decode_all(&mut ChunkDecoder::new(ChunkLimits::default()), input)
}

fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> RtmpMessage {
    RtmpMessage {
        csid,
        timestamp,
        type_id,
        stream_id,
        payload: Bytes::copy_from_slice(payload),
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// A 200-byte command on csid 3 at chunk size 128: FMT 0 chunk + FMT 3 chunk.
fn two_chunk_vector() -> (Vec<u8>, Vec<u8>) {
    let payload = pattern(200);
    let mut v = vec![0x03, 0, 0, 0, 0, 0, 200, 0x14, 0, 0, 0, 0];
    v.extend_from_slice(&payload[..128]);
    v.push(0xC3);
    v.extend_from_slice(&payload[128..]);
    (v, payload)
}

#[test]
fn golden_fmt0_fmt3_two_chunks() {
    let (v, payload) = two_chunk_vector();
    assert_eq!(decode(&v).unwrap(), vec![msg(3, 0, 20, 0, &payload)]);

    let mut enc = ChunkEncoder::new();
    let mut out = BytesMut::new();
    enc.write(3, 0, 20, 0, &payload, &mut out);
    assert_eq!(&out[..], &v[..]);
    let mut out = BytesMut::new();
    write_fmt0(3, 0, 20, 0, &payload, 128, &mut out);
    assert_eq!(&out[..], &v[..]);
}

#[test]
fn golden_extended_timestamp_repeated_on_fmt3() {
    let payload = pattern(200);
    let mut v = vec![
        0x04, 0xFF, 0xFF, 0xFF, 0, 0, 200, 0x09, 1, 0, 0, 0, 0x01, 0x00, 0x00, 0x00,
    ];
    v.extend_from_slice(&payload[..128]);
    v.extend_from_slice(&[0xC4, 0x01, 0x00, 0x00, 0x00]);
    v.extend_from_slice(&payload[128..]);
    assert_eq!(
        decode(&v).unwrap(),
        vec![msg(4, 0x0100_0000, 9, 1, &payload)]
    );

    let mut out = BytesMut::new();
    write_fmt0(4, 0x0100_0000, 9, 1, &payload, 128, &mut out);
    assert_eq!(&out[..], &v[..]);
    let mut out = BytesMut::new();
    ChunkEncoder::new().write(4, 0x0100_0000, 9, 1, &payload, &mut out);
    assert_eq!(&out[..], &v[..]);
}

#[test]
fn golden_timestamp_exactly_escape_value_is_extended() {
    let mut v = vec![
        0x04, 0xFF, 0xFF, 0xFF, 0, 0, 1, 0x08, 1, 0, 0, 0, 0x00, 0xFF, 0xFF, 0xFF,
    ];
    v.push(0xAF);
    assert_eq!(decode(&v).unwrap(), vec![msg(4, 0xFF_FFFF, 8, 1, &[0xAF])]);
    let mut out = BytesMut::new();
    write_fmt0(4, 0xFF_FFFF, 8, 1, &[0xAF], 128, &mut out);
    assert_eq!(&out[..], &v[..]);
}

#[test]
fn golden_two_and_three_byte_csids() {
    // (csid, basic header bytes for FMT 0)
    let cases: [(u32, &[u8]); 5] = [
        (63, &[0x3F]),
        (64, &[0x00, 0x00]),
        (319, &[0x00, 0xFF]),
        (320, &[0x01, 0x00, 0x01]),
        (65599, &[0x01, 0xFF, 0xFF]),
    ];
    for (csid, basic) in cases {
        let mut v = basic.to_vec();
        v.extend_from_slice(&[0, 0, 10, 0, 0, 2, 0x08, 1, 0, 0, 0, 0xAA, 0xBB]);
        assert_eq!(
            decode(&v).unwrap(),
            vec![msg(csid, 10, 8, 1, &[0xAA, 0xBB])],
            "csid {csid}"
        );
        let mut out = BytesMut::new();
        write_fmt0(csid, 10, 8, 1, &[0xAA, 0xBB], 128, &mut out);
        assert_eq!(&out[..], &v[..], "csid {csid}");
    }
    // A 3-byte csid on a continuation chunk.
    let payload = pattern(5);
    let mut out = BytesMut::new();
    write_fmt0(400, 0, 8, 1, &payload, 3, &mut out);
    let mut v = vec![0x01, 0x50, 0x01, 0, 0, 0, 0, 0, 5, 8, 1, 0, 0, 0];
    v.extend_from_slice(&payload[..3]);
    v.extend_from_slice(&[0xC1, 0x50, 0x01]);
    v.extend_from_slice(&payload[3..]);
    assert_eq!(&out[..], &v[..]);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    dec.set_chunk_size(3).unwrap();
    assert_eq!(
        decode_all(&mut dec, &v).unwrap(),
        vec![msg(400, 0, 8, 1, &payload)]
    );
}

#[test]
fn golden_fmt1_fmt2_fmt3_deltas() {
    let v = [
        0x05, 0x00, 0x03, 0xE8, 0, 0, 1, 0x08, 1, 0, 0, 0, 0xA1, // FMT 0 ts 1000
        0x45, 0x00, 0x00, 0x14, 0, 0, 2, 0x09, 0xB1, 0xB2, // FMT 1 delta 20
        0x85, 0x00, 0x00, 0x1E, 0xC1, 0xC2, // FMT 2 delta 30
        0xC5, 0xD1, 0xD2, // FMT 3: delta 30 again
    ];
    assert_eq!(
        decode(&v).unwrap(),
        vec![
            msg(5, 1000, 8, 1, &[0xA1]),
            msg(5, 1020, 9, 1, &[0xB1, 0xB2]),
            msg(5, 1050, 9, 1, &[0xC1, 0xC2]),
            msg(5, 1080, 9, 1, &[0xD1, 0xD2]),
        ]
    );
    // The encoder picks the same headers for the same messages.
    let mut enc = ChunkEncoder::new();
    let mut out = BytesMut::new();
    enc.write(5, 1000, 8, 1, &[0xA1], &mut out);
    enc.write(5, 1020, 9, 1, &[0xB1, 0xB2], &mut out);
    enc.write(5, 1050, 9, 1, &[0xC1, 0xC2], &mut out);
    enc.write(5, 1080, 9, 1, &[0xD1, 0xD2], &mut out);
    assert_eq!(&out[..], &v[..]);
}

#[test]
fn fmt3_new_message_after_fmt0_uses_its_timestamp_as_delta() {
    // FFmpeg writes FMT 3 when the delta equals the previous timestamp field.
    let v = [0x06, 0, 0, 40, 0, 0, 1, 8, 1, 0, 0, 0, 0x11, 0xC6, 0x22];
    assert_eq!(
        decode(&v).unwrap(),
        vec![msg(6, 40, 8, 1, &[0x11]), msg(6, 80, 8, 1, &[0x22])]
    );
}

#[test]
fn fmt3_new_message_after_extended_header_carries_the_field() {
    // FMT 2 with an extended delta, then FMT 3 starting a new message: it carries the
    // 4-byte extended field again (FFmpeg/librtmp practice).
    let v = [
        0x06, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0x11, // FMT 0 ts 0
        0x86, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00, 0x22, // FMT 2 delta 2^24
        0xC6, 0x01, 0x00, 0x00, 0x00, 0x33, // FMT 3 new message
    ];
    assert_eq!(
        decode(&v).unwrap(),
        vec![
            msg(6, 0, 8, 1, &[0x11]),
            msg(6, 0x0100_0000, 8, 1, &[0x22]),
            msg(6, 0x0200_0000, 8, 1, &[0x33]),
        ]
    );
}

#[test]
fn interleaved_chunk_streams() {
    let a = pattern(200);
    let b: Vec<u8> = pattern(150).iter().map(|x| x ^ 0xFF).collect();
    let mut v = vec![0x04, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0];
    v.extend_from_slice(&a[..128]);
    v.extend_from_slice(&[0x06, 0, 0, 0, 0, 0, 150, 8, 1, 0, 0, 0]);
    v.extend_from_slice(&b[..128]);
    v.push(0xC6);
    v.extend_from_slice(&b[128..]);
    v.push(0xC4);
    v.extend_from_slice(&a[128..]);
    assert_eq!(
        decode(&v).unwrap(),
        vec![msg(6, 0, 8, 1, &b), msg(4, 0, 9, 1, &a)]
    );
}

#[test]
fn abort_discards_partial_message() {
    let a = pattern(200);
    let mut v = vec![0x04, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0];
    v.extend_from_slice(&a[..128]);
    v.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 4]); // Abort(4)
    v.extend_from_slice(&[0x04, 0, 0, 5, 0, 0, 1, 9, 1, 0, 0, 0, 0x77]);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut buf = BytesMut::from(&v[..140]);
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    assert_eq!(dec.buffered_bytes(), 128);
    assert!(dec.has_partial());
    buf.extend_from_slice(&v[140..]);
    let abort = dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(abort.type_id, 2);
    assert_eq!(dec.buffered_bytes(), 0);
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(msg(4, 5, 9, 1, &[0x77]))
    );
    assert_eq!(dec.bytes_consumed(), v.len() as u64);
}

#[test]
fn set_chunk_size_applies_to_following_chunks() {
    let mut v = vec![
        0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x00, 0x00, 0x10, 0x00,
    ];
    let payload = pattern(3000);
    v.extend_from_slice(&[0x04, 0, 0, 0, 0, 0x0B, 0xB8, 9, 1, 0, 0, 0]);
    v.extend_from_slice(&payload);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let out = decode_all(&mut dec, &v).unwrap();
    assert_eq!(dec.chunk_size(), 4096);
    assert_eq!(out[0], msg(2, 0, 1, 0, &[0, 0, 0x10, 0]));
    assert_eq!(out[1], msg(4, 0, 9, 1, &payload));
}

#[test]
fn set_chunk_size_maximum_is_accepted() {
    let v = [
        0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF,
    ];
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    decode_all(&mut dec, &v).unwrap();
    assert_eq!(dec.chunk_size(), 0x7FFF_FFFF);
}

#[test]
fn negative_set_chunk_size() {
    for (body, got) in [([0u8, 0, 0, 0], 0u32), ([0x80, 0, 0, 1], 0x8000_0001)] {
        let mut v = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
        v.extend_from_slice(&body);
        assert_eq!(decode(&v), Err(ChunkError::ChunkSizeInvalid { got }));
    }
    let v = [0x02, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 1];
    assert_eq!(
        decode(&v),
        Err(ChunkError::BadControlBody { type_id: 1, len: 2 })
    );
    let mut dec = ChunkDecoder::new(ChunkLimits {
        max_chunk_size: 65536,
        ..ChunkLimits::default()
    });
    assert_eq!(
        dec.set_chunk_size(65537),
        Err(ChunkError::ChunkSizeInvalid { got: 65537 })
    );
}

#[test]
fn negative_message_too_large() {
    let v = [0x04, 0, 0, 0, 0x01, 0x00, 0x01, 9, 1, 0, 0, 0];
    let mut dec = ChunkDecoder::new(ChunkLimits {
        max_message_size: 0xFFFF,
        ..ChunkLimits::default()
    });
    let mut buf = BytesMut::from(&v[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(ChunkError::MessageTooLarge {
            got: 0x1_0001,
            max: 0xFFFF
        })
    );
}

#[test]
fn negative_command_too_large() {
    // A 0x10001-byte command (type 20) is refused at its first chunk header; the same
    // length is fine for video (type 9).
    for (type_id, refused) in [(20u8, true), (17, true), (9, false)] {
        let v = [0x04, 0, 0, 0, 0x01, 0x00, 0x01, type_id, 1, 0, 0, 0];
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        let mut buf = BytesMut::from(&v[..]);
        let got = dec.decode(&mut buf);
        if refused {
            assert_eq!(
                got,
                Err(ChunkError::MessageTooLarge {
                    got: 0x1_0001,
                    max: 64 << 10
                })
            );
        } else {
            assert_eq!(got, Ok(None));
        }
    }
}

#[test]
fn negative_unknown_chunk_stream() {
    for first in [0x45u8, 0x85, 0xC5] {
        let v = [first, 0, 0, 1, 0, 0, 1, 8, 0];
        let mut buf = BytesMut::from(&v[..]);
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        assert_eq!(
            dec.decode(&mut buf),
            Err(ChunkError::UnknownChunkStream { csid: 5 })
        );
    }
}

#[test]
fn negative_too_many_chunk_streams() {
    let mut dec = ChunkDecoder::new(ChunkLimits {
        max_chunk_streams: 2,
        ..ChunkLimits::default()
    });
    let mut v = Vec::new();
    for csid in [3u8, 4, 5] {
        v.extend_from_slice(&[csid, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0]);
    }
    let mut buf = BytesMut::from(&v[..]);
    assert!(dec.decode(&mut buf).unwrap().is_some());
    assert!(dec.decode(&mut buf).unwrap().is_some());
    assert_eq!(
        dec.decode(&mut buf),
        Err(ChunkError::TooManyChunkStreams { max: 2 })
    );
}

#[test]
fn negative_buffer_budget() {
    let mut dec = ChunkDecoder::new(ChunkLimits {
        max_buffered_bytes: 200,
        ..ChunkLimits::default()
    });
    let mut v = Vec::new();
    for csid in [3u8, 4] {
        v.extend_from_slice(&[csid, 0, 0, 0, 0, 1, 0, 9, 1, 0, 0, 0]);
        v.extend_from_slice(&[0; 128]);
    }
    let mut buf = BytesMut::from(&v[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(ChunkError::BufferBudgetExceeded { max: 200 })
    );
}

#[test]
fn negative_header_changes_mid_message() {
    let mut v = vec![0x04, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0];
    v.extend_from_slice(&[0; 128]);
    let mut fmt1 = v.clone();
    fmt1.extend_from_slice(&[0x44, 0, 0, 0, 0, 0, 100, 9]);
    assert_eq!(
        decode(&fmt1),
        Err(ChunkError::LengthChangedMidMessage {
            csid: 4,
            was: 200,
            got: 100
        })
    );
    let mut fmt2 = v.clone();
    fmt2.extend_from_slice(&[0x84, 0, 0, 0]);
    assert_eq!(
        decode(&fmt2),
        Err(ChunkError::HeaderMidMessage { csid: 4, fmt: 2 })
    );
}

#[test]
fn negative_fmt3_extended_timestamp_mismatch() {
    let mut v = vec![
        0x04, 0xFF, 0xFF, 0xFF, 0, 0, 200, 0x09, 1, 0, 0, 0, 0x01, 0, 0, 0,
    ];
    v.extend_from_slice(&[0; 128]);
    v.extend_from_slice(&[0xC4, 0x02, 0, 0, 0]);
    v.extend_from_slice(&[0; 72]);
    assert_eq!(
        decode(&v),
        Err(ChunkError::BadFmt3Timestamp {
            csid: 4,
            expected: 0x0100_0000,
            got: 0x0200_0000
        })
    );
}

/// A stream mixing every header form, extended timestamps and a chunk size change.
fn mixed_stream() -> (Vec<u8>, Vec<RtmpMessage>) {
    let mut enc = ChunkEncoder::new();
    let mut out = BytesMut::new();
    let mut expect = Vec::new();
    let mut w = |enc: &mut ChunkEncoder, m: RtmpMessage| {
        enc.write(
            m.csid,
            m.timestamp,
            m.type_id,
            m.stream_id,
            &m.payload,
            &mut out,
        );
        if m.type_id == 1 {
            enc.set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap()));
        }
        expect.push(m);
    };
    w(&mut enc, msg(3, 0, 20, 0, &pattern(300)));
    w(&mut enc, msg(4, 0, 9, 1, &pattern(129)));
    w(&mut enc, msg(4, 33, 9, 1, &pattern(129)));
    w(&mut enc, msg(4, 66, 9, 1, &pattern(129)));
    w(&mut enc, msg(2, 0, 1, 0, &[0, 0, 0, 50]));
    w(&mut enc, msg(300, 0x0123_4567, 8, 1, &pattern(120)));
    w(&mut enc, msg(300, 0x0123_4567 + 20, 8, 1, &pattern(120)));
    w(&mut enc, msg(70, 5, 18, 1, &[]));
    w(&mut enc, msg(4, 10, 9, 1, &pattern(10)));
    (out.to_vec(), expect)
}

#[test]
fn split_at_every_offset() {
    let (v, expect) = mixed_stream();
    assert_eq!(decode(&v).unwrap(), expect);
    for at in 0..=v.len() {
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        let mut buf = BytesMut::from(&v[..at]);
        let mut got = Vec::new();
        while let Some(m) = dec.decode(&mut buf).unwrap() {
            got.push(m);
        }
        buf.extend_from_slice(&v[at..]);
        while let Some(m) = dec.decode(&mut buf).unwrap() {
            got.push(m);
        }
        assert_eq!(got, expect, "split at {at}");
        assert_eq!(dec.bytes_consumed(), v.len() as u64);
    }
}

#[test]
fn byte_at_a_time() {
    let (v, expect) = mixed_stream();
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in v {
        buf.extend_from_slice(&[b]);
        while let Some(m) = dec.decode(&mut buf).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, expect);
}

#[test]
fn export_and_resume_state_between_messages() {
    let (v, expect) = mixed_stream();
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut buf = BytesMut::from(&v[..]);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(dec.decode(&mut buf).unwrap().unwrap());
    }
    let state = dec.export_state();
    assert!(state.windows(2).all(|w| w[0].csid < w[1].csid));
    let mut resumed = ChunkDecoder::from_state(ChunkLimits::default(), dec.chunk_size(), &state);
    assert_eq!(resumed.export_state(), state);
    while let Some(m) = resumed.decode(&mut buf).unwrap() {
        got.push(m);
    }
    assert_eq!(got, expect);
}

#[test]
fn single_chunk_message_is_not_copied() {
    let v = [0x04, 0, 0, 0, 0, 0, 3, 9, 1, 0, 0, 0, 1, 2, 3];
    let mut buf = BytesMut::from(&v[..]);
    let base = buf.as_ptr() as usize;
    let m = ChunkDecoder::new(ChunkLimits::default())
        .decode(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(m.payload.as_ptr() as usize, base + 12);
}

/// Splits `write_fmt0` output into its chunks (no extended timestamps).
fn fmt0_chunks(csid: u32, ts: u32, type_id: u8, payload: &[u8], cs: u32) -> Vec<Vec<u8>> {
    let mut out = BytesMut::new();
    write_fmt0(csid, ts, type_id, 1, payload, cs, &mut out);
    let basic = match csid {
        2..=63 => 1,
        64..=319 => 2,
        _ => 3,
    };
    let mut chunks = Vec::new();
    let mut rest = &out[..];
    let mut left = payload.len();
    let mut header = basic + 11;
    loop {
        let n = header + left.min(cs as usize);
        chunks.push(rest[..n].to_vec());
        rest = &rest[n..];
        left -= left.min(cs as usize);
        header = basic;
        if left == 0 {
            break;
        }
    }
    assert!(rest.is_empty());
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A payload given as a header part and a body part is chunked exactly as the joined
    /// payload, wherever the parts meet relative to the chunk boundaries.
    #[test]
    fn parts_chunk_as_the_joined_payload(
        chunk_size in 1u32..300,
        csid in prop::sample::select(vec![3u32, 64, 400]),
        ts in prop_oneof![0u32..1000, 0xFF_FFF0u32..0x0100_0010],
        head_len in 0usize..40,
        body_len in 0usize..900,
    ) {
        let payload: Vec<u8> = (0..head_len + body_len).map(|i| (i * 7) as u8).collect();
        let (head, body) = payload.split_at(head_len);
        let mut joined = BytesMut::new();
        write_fmt0(csid, ts, 9, 1, &payload, chunk_size, &mut joined);
        let mut parts = BytesMut::new();
        write_fmt0_parts(csid, ts, 9, 1, head, body, chunk_size, &mut parts);
        prop_assert_eq!(joined, parts);
    }

    #[test]
    fn encoder_decoder_round_trip(
        chunk_size in 1u32..400,
        msgs in prop::collection::vec(
            (prop::sample::select(vec![2u32, 3, 4, 63, 64, 319, 320, 65599]),
             prop_oneof![0u32..100_000, 0xFF_FF00u32..0x0100_0100, any::<u32>()],
             prop::sample::select(vec![8u8, 9, 18, 20]),
             0u32..3,
             0usize..700),
            1..25),
        splits in prop::collection::vec(1usize..300, 1..10),
    ) {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        let mut expect = Vec::new();
        enc.write(2, 0, 1, 0, &chunk_size.to_be_bytes(), &mut out);
        enc.set_chunk_size(chunk_size);
        expect.push(msg(2, 0, 1, 0, &chunk_size.to_be_bytes()));
        for (i, (csid, ts, t, sid, len)) in msgs.into_iter().enumerate() {
            let p: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            enc.write(csid, ts, t, sid, &p, &mut out);
            expect.push(msg(csid, ts, t, sid, &p));
        }
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut rest = &out[..];
        let mut k = 0;
        while !rest.is_empty() {
            let n = splits[k % splits.len()].min(rest.len());
            k += 1;
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, expect);
        prop_assert_eq!(dec.bytes_consumed(), out.len() as u64);
    }

    #[test]
    fn interleaved_round_trip(
        chunk_size in 1u32..200,
        lens in prop::collection::vec(0usize..600, 1..6),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..2000),
    ) {
        // One message per chunk stream; chunks of different streams interleaved at random.
        let mut queues: Vec<std::collections::VecDeque<Vec<u8>>> = Vec::new();
        let mut expect = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let csid = [3u32, 100, 1000, 7, 65599, 64][i];
            let p: Vec<u8> = (0..*len).map(|j| (i * 31 + j) as u8).collect();
            queues.push(fmt0_chunks(csid, i as u32 * 10, 9, &p, chunk_size).into());
            expect.push(msg(csid, i as u32 * 10, 9, 1, &p));
        }
        let mut set = BytesMut::new();
        write_fmt0(2, 0, 1, 0, &chunk_size.to_be_bytes(), 128, &mut set);
        let mut stream = set.to_vec();
        let mut picks = order.into_iter();
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
            let i = match picks.next() { Some(ix) => live[ix.index(live.len())], None => live[0] };
            stream.extend(queues[i].pop_front().unwrap());
        }
        let mut got = decode(&stream).unwrap();
        got.remove(0);
        got.sort_by_key(|m| m.timestamp);
        prop_assert_eq!(got, expect);
    }
}
