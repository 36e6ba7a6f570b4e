//! Property tests of `proto::websocket`: frames a client masks and sends, cut into any
//! pieces, decode to what was sent; any bytes never panic and never make the decoder
//! hold more than one header and one control payload.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::websocket::{
    frame_header, opcode, ClientFrame, Decoder, MAX_CONTROL_PAYLOAD, MAX_HEADER,
};

/// A frame as a client sends it: final, masked with `mask`.
fn client_frame(op: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut h = [0; MAX_HEADER];
    let n = frame_header(op, payload.len() as u64, &mut h);
    let mut out = h[..n].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[derive(Debug, Clone)]
enum Sent {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Data(u8, Vec<u8>),
    Close(Option<u16>),
}

fn sent() -> impl Strategy<Value = Sent> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=MAX_CONTROL_PAYLOAD).prop_map(Sent::Ping),
        prop::collection::vec(any::<u8>(), 0..=MAX_CONTROL_PAYLOAD).prop_map(Sent::Pong),
        (
            prop::sample::select(vec![opcode::TEXT, opcode::BINARY, opcode::CONTINUATION]),
            prop::collection::vec(any::<u8>(), 0..70_000)
        )
            .prop_map(|(o, p)| Sent::Data(o, p)),
        proptest::option::of(any::<u16>()).prop_map(Sent::Close),
    ]
}

fn encode(s: &Sent, mask: [u8; 4]) -> (Vec<u8>, ClientFrame) {
    match s {
        Sent::Ping(p) => (
            client_frame(opcode::PING, p, mask),
            ClientFrame::Ping(Bytes::copy_from_slice(p)),
        ),
        Sent::Pong(p) => (client_frame(opcode::PONG, p, mask), ClientFrame::Pong),
        Sent::Data(o, p) => (
            client_frame(*o, p, mask),
            ClientFrame::Data {
                opcode: *o,
                len: p.len() as u64,
            },
        ),
        Sent::Close(c) => {
            let p = c.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
            (
                client_frame(opcode::CLOSE, &p, mask),
                ClientFrame::Close(*c),
            )
        }
    }
}

/// Feeds `wire` in pieces of `split` bytes; returns the frames or the first error.
fn decode_all(wire: &[u8], split: usize) -> Result<Vec<ClientFrame>, proto::websocket::WsError> {
    let mut d = Decoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in wire.chunks(split.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(f) = d.decode(&mut buf)? {
            out.push(f);
        }
        assert!(buf.len() < MAX_HEADER + 4 + MAX_CONTROL_PAYLOAD);
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn frames_decode_as_sent_whatever_the_split(
        frames in prop::collection::vec((sent(), any::<[u8; 4]>()), 0..6),
        split in 1usize..200_000,
    ) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (s, mask) in &frames {
            let (bytes, f) = encode(s, *mask);
            wire.extend_from_slice(&bytes);
            want.push(f);
        }
        prop_assert_eq!(decode_all(&wire, split), Ok(want));
    }

    #[test]
    fn any_bytes_decode_the_same_whole_or_split(
        wire in prop::collection::vec(any::<u8>(), 0..600),
        split in 1usize..64,
    ) {
        prop_assert_eq!(decode_all(&wire, split), decode_all(&wire, wire.len()));
    }
}
