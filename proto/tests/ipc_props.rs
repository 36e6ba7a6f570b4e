//! Properties of the framed format: any header and payload survive encode then decode, and
//! a stream of messages decodes the same whatever offsets the input is split at.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::ipc::{encode, encode_header, Event, FrameDecoder, Header, Message, RejectReason, Role};
use proto::media::{Codec, FrameFlags};
use proto::rtmp::chunk::ChunkStreamState;
use proto::rtmp::session::{Announced, FourCcSet, PlayerHandoff};

fn text() -> impl Strategy<Value = String> {
    "[a-z/_\\-\u{e9}\u{1f600}]{0,12}"
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Publisher),
        Just(Role::PlayerHandoff),
        Just(Role::Subscriber),
        Just(Role::Hub),
        Just(Role::Control),
    ]
}

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![
        Just(Codec::H264),
        Just(Codec::H265),
        Just(Codec::H266),
        Just(Codec::Av1),
        Just(Codec::Vp9),
        Just(Codec::Vp8),
        Just(Codec::Aac),
        Just(Codec::Opus),
        Just(Codec::Flac),
        Just(Codec::Mp3),
        Just(Codec::Ac3),
        Just(Codec::Eac3),
        any::<u8>().prop_map(|codec_id| Codec::LegacyVideo { codec_id }),
        any::<u8>().prop_map(|header| Codec::LegacyAudio { header }),
        (any::<bool>(), any::<[u8; 4]>())
            .prop_map(|(video, fourcc)| Codec::Unknown { video, fourcc }),
    ]
}

fn reject() -> impl Strategy<Value = Option<RejectReason>> {
    prop::option::of(prop_oneof![
        Just(RejectReason::Duplicate),
        Just(RejectReason::Capacity),
        Just(RejectReason::Denied),
    ])
}

fn event() -> impl Strategy<Value = Event> {
    (
        text(),
        text(),
        any::<u64>(),
        text(),
        prop::collection::vec((text(), text()), 0..4),
    )
        .prop_map(|(kind, key, conn_id, remote, fields)| Event {
            kind,
            key,
            conn_id,
            remote,
            fields,
        })
}

fn chunk_state() -> impl Strategy<Value = ChunkStreamState> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(csid, timestamp, delta, length, type_id, stream_id, extended)| ChunkStreamState {
                csid,
                timestamp,
                delta,
                length,
                type_id,
                stream_id,
                extended,
            },
        )
}

fn player() -> impl Strategy<Value = PlayerHandoff> {
    // Finite floats: NaN would not compare equal to itself after the round trip.
    let f = -1e12f64..1e12;
    (
        (any::<u64>(), text(), text(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>()),
        prop::collection::vec(chunk_state(), 0..4),
        prop::collection::vec(any::<u8>(), 0..16),
        (f.clone(), f.clone(), f, any::<[bool; 3]>(), any::<u32>()),
        (
            prop::option::of(fourcc_set()),
            prop::option::of(fourcc_set()),
        ),
    )
        .prop_map(
            |(
                (conn_id, remote, key, stream_id, in_chunk_size),
                (out_chunk_size, window_ack_size, bytes_received, last_ack_sent),
                in_chunk_streams,
                pending_input,
                (start, duration, transaction_id, [reset, receive_audio, receive_video], caps_ex),
                (video, audio),
            )| PlayerHandoff {
                conn_id,
                remote,
                key,
                stream_id,
                in_chunk_size,
                out_chunk_size,
                window_ack_size,
                bytes_received,
                last_ack_sent,
                in_chunk_streams,
                pending_input,
                start,
                duration,
                reset,
                receive_audio,
                receive_video,
                transaction_id,
                caps_ex,
                announced: Announced { video, audio },
            },
        )
}

fn fourcc_set() -> impl Strategy<Value = FourCcSet> {
    (any::<bool>(), prop::collection::vec(any::<[u8; 4]>(), 0..4))
        .prop_map(|(any, codes)| FourCcSet { any, codes })
}

fn header() -> impl Strategy<Value = Header> {
    prop_oneof![
        (any::<u16>(), role(), text()).prop_map(|(version, role, name)| Header::Hello {
            version,
            role,
            name
        }),
        (any::<u32>(), text(), any::<u32>()).prop_map(|(stream, key, timescale)| {
            Header::Announce {
                stream,
                key,
                timescale,
            }
        }),
        (any::<u32>(), reject())
            .prop_map(|(stream, rejected)| Header::AnnounceReply { stream, rejected }),
        (any::<u32>(), any::<u8>(), codec()).prop_map(|(stream, track, codec)| {
            Header::TrackConfig {
                stream,
                track,
                codec,
            }
        }),
        (
            any::<u32>(),
            any::<u8>(),
            any::<bool>(),
            any::<i64>(),
            any::<i32>(),
            any::<u8>()
        )
            .prop_map(|(stream, track, video, dts, cts, flags)| Header::Frame {
                stream,
                track,
                video,
                dts,
                cts,
                flags: FrameFlags::from_bits(flags)
            }),
        any::<u32>().prop_map(|stream| Header::Metadata { stream }),
        (any::<u32>(), text()).prop_map(|(stream, reason)| Header::EndOfStream { stream, reason }),
        event().prop_map(Header::Event),
        (
            prop::collection::vec(text(), 0..4),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(patterns, media, events)| Header::Subscribe {
                patterns,
                media,
                events
            }),
        player().prop_map(|p| Header::PlayerHandoff(Box::new(p))),
        (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(stream, frames, bytes)| {
            Header::Dropped {
                stream,
                frames,
                bytes,
            }
        }),
        (any::<u32>(), text()).prop_map(|(stream, reason)| Header::Revoke { stream, reason }),
        text().prop_map(|message| Header::Error { message }),
        (any::<u32>(), any::<u8>(), codec(), any::<i64>()).prop_map(
            |(stream, track, codec, dts)| Header::TrackMetadata {
                stream,
                track,
                codec,
                dts
            }
        ),
        (any::<u32>(), any::<u8>(), codec(), any::<i64>()).prop_map(
            |(stream, track, codec, dts)| Header::EndOfSequence {
                stream,
                track,
                codec,
                dts
            }
        ),
        (any::<u32>(), any::<u8>(), codec()).prop_map(|(stream, track, codec)| {
            Header::ChannelConfig {
                stream,
                track,
                codec,
            }
        }),
        (any::<u32>(), any::<i64>()).prop_map(|(stream, dts)| Header::Data { stream, dts }),
        (any::<u32>(), any::<u8>(), any::<bool>(), any::<u32>()).prop_map(
            |(stream, track, video, nanos)| Header::TimestampOffset {
                stream,
                track,
                video,
                nanos
            }
        ),
        (
            any::<u32>(),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text())
        )
            .prop_map(|(stream, key, tc_url, description)| Header::Reconnect {
                stream,
                key,
                tc_url,
                description
            }),
        (any::<u32>(), text(), any::<u32>(), any::<u64>()).prop_map(
            |(stream, key, timescale, conn_id)| Header::AnnounceClient {
                stream,
                key,
                timescale,
                conn_id
            }
        ),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (header(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(header, payload)| Message {
        header,
        payload: Bytes::from(payload),
    })
}

proptest! {
    #[test]
    fn round_trip(m in message()) {
        let mut buf = BytesMut::new();
        encode(&m.header, &m.payload, &mut buf);
        // The header-only writer produces the same bytes up to the payload.
        let mut head = BytesMut::new();
        encode_header(&m.header, m.payload.len(), &mut head);
        prop_assert_eq!(&head[..], &buf[..buf.len() - m.payload.len()]);
        let got = FrameDecoder::default().decode(&mut buf).unwrap();
        prop_assert_eq!(got, Some(m));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn split_at_every_offset(msgs in prop::collection::vec(message(), 1..4)) {
        let mut wire = BytesMut::new();
        for m in &msgs {
            encode(&m.header, &m.payload, &mut wire);
        }
        let dec = FrameDecoder::default();
        for cut in 0..=wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                got.push(m);
            }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                got.push(m);
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(&got, &msgs);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..96)) {
        let dec = FrameDecoder::new(64, 64);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = dec.decode(&mut buf) {}
    }
}

proptest! {
    /// The `Hello.name` convention: a name built with a client id gives that id back;
    /// any other text never panics and never yields an id it does not spell out.
    #[test]
    fn hello_names_carry_the_client_id(
        component in "[a-z\\-]{1,12}",
        pid in any::<u32>(),
        id in proptest::option::of(any::<u64>()),
        junk in ".{0,40}",
    ) {
        let name = proto::ipc::hello_name(&component, pid, id);
        prop_assert_eq!(proto::ipc::hello_conn_id(&name), id);
        if let Some(found) = proto::ipc::hello_conn_id(&junk) {
            let suffix = format!(" conn_id={found}");
            prop_assert!(junk.ends_with(&suffix) || junk.contains(" conn_id=0"));
        }
    }
}
