//! Property tests of the SRT packet codec: encode/decode round trips for every packet kind
//! built from arbitrary fields, and arbitrary bytes never panic the decoder.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::srt::packet::{
    Ack, AckInfo, Control, ControlPacket, DataPacket, EncryptionKey, LossList, Packet,
    PacketPosition,
};
use proto::srt::{MsgNo, SeqNo};

fn seq() -> impl Strategy<Value = SeqNo> {
    any::<u32>().prop_map(SeqNo::new)
}

fn data() -> impl Strategy<Value = Packet> {
    (
        seq(),
        0u8..4,
        any::<bool>(),
        0u8..4,
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..1400),
    )
        .prop_map(|(seq, pos, in_order, key, rexmit, msg, ts, dst, payload)| {
            Packet::Data(DataPacket {
                seq,
                position: [
                    PacketPosition::Middle,
                    PacketPosition::Last,
                    PacketPosition::First,
                    PacketPosition::Only,
                ][pos as usize],
                in_order,
                key: [
                    EncryptionKey::None,
                    EncryptionKey::Even,
                    EncryptionKey::Odd,
                    EncryptionKey::Both,
                ][key as usize],
                retransmitted: rexmit,
                msg: MsgNo::new(msg),
                timestamp: ts,
                destination: dst,
                payload: Bytes::from(payload),
            })
        })
}

fn control() -> impl Strategy<Value = Control> {
    prop_oneof![
        Just(Control::KeepAlive),
        Just(Control::Shutdown),
        any::<u32>().prop_map(Control::AckAck),
        any::<u32>().prop_map(Control::PeerError),
        (seq(), seq(), any::<u32>()).prop_map(|(a, b, m)| {
            let (first, last) = if a <= b { (a, b) } else { (b, a) };
            Control::DropRequest {
                msg: MsgNo::new(m),
                first,
                last,
            }
        }),
        (
            any::<u32>(),
            seq(),
            proptest::option::of((
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                proptest::option::of((any::<u32>(), any::<u32>(), any::<u32>()))
            ))
        )
            .prop_map(|(number, ack_seq, info)| Control::Ack(Ack {
                number,
                ack_seq,
                info: info.map(|(rtt_us, rtt_var_us, available_buffer, rates)| AckInfo {
                    rtt_us,
                    rtt_var_us,
                    available_buffer,
                    rates
                }),
            })),
        proptest::collection::vec((seq(), 0u32..1000), 1..50).prop_map(|v| Control::Nak(LossList(
            v.into_iter().map(|(s, n)| (s, s.plus(n))).collect()
        ))),
    ]
}

proptest! {
    #[test]
    fn data_packets_round_trip(p in data()) {
        let mut out = BytesMut::new();
        p.encode(&mut out);
        prop_assert_eq!(Packet::decode(out.freeze()).unwrap(), p);
    }

    #[test]
    fn control_packets_round_trip(c in control(), ts in any::<u32>(), dst in any::<u32>()) {
        let p = Packet::Control(ControlPacket { timestamp: ts, destination: dst, control: c });
        let mut out = BytesMut::new();
        p.encode(&mut out);
        prop_assert_eq!(Packet::decode(out.freeze()).unwrap(), p);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600), control_bit in any::<bool>()) {
        let mut b = b;
        if control_bit && !b.is_empty() { b[0] |= 0x80; }
        let _ = Packet::decode(Bytes::from(b));
    }
}
