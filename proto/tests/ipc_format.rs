//! The framed IPC format against FORMAT.md: golden bytes (the worked examples of the
//! document are checked to appear in it verbatim), the enum indices the document lists,
//! and negative vectors.

use bytes::{Bytes, BytesMut};
use proto::ipc::{
    check_hello, encode, encode_frame, encode_header, encode_player_subscription, header_bytes,
    Event, FrameDecoder, Header, IpcError, Message, PlayerProtocol, RejectReason, Role,
    DEFAULT_MAX_HEADER, DEFAULT_MAX_PAYLOAD, FORMAT_VERSION, KNOWN_HEADERS, PREFIX_LEN,
};
use proto::media::{Codec, Frame, FrameFlags, TrackKind};
use proto::rtmp::chunk::ChunkStreamState;
use proto::rtmp::session::PlayerHandoff;

/// Hex dump as FORMAT.md prints it: 16 bytes a line, lowercase, space separated.
fn dump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn format_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md");
    std::fs::read_to_string(path).expect("proto/FORMAT.md")
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, IpcError> {
    let mut buf = BytesMut::from(bytes);
    let dec = FrameDecoder::default();
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut buf)? {
        out.push(m);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(out)
}

fn hello() -> Header {
    Header::Hello {
        version: 1,
        role: Role::Publisher,
        name: "ingest-rtmp".into(),
    }
}

const HELLO_BYTES: [u8; 37] = [
    0x1d, 0x00, 0x00, 0x00, // header_len = 29
    0x00, 0x00, 0x00, 0x00, // payload_len = 0
    0x00, 0x00, 0x00, 0x00, // variant 0 = Hello
    0x01, 0x00, // version = 1 (u16)
    0x00, 0x00, 0x00, 0x00, // role: variant 0 = Publisher
    0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // name: length 11 (u64)
    b'i', b'n', b'g', b'e', b's', b't', b'-', b'r', b't', b'm', b'p',
];

fn frame() -> Header {
    Header::Frame {
        stream: 1,
        track: 0,
        video: true,
        dts: 1000,
        cts: 40,
        flags: FrameFlags::KEYFRAME,
    }
}

const FRAME_PAYLOAD: [u8; 6] = [0x00, 0x00, 0x00, 0x02, 0x65, 0x88];

const FRAME_BYTES: [u8; 37] = [
    0x17, 0x00, 0x00, 0x00, // header_len = 23
    0x06, 0x00, 0x00, 0x00, // payload_len = 6
    0x04, 0x00, 0x00, 0x00, // variant 4 = Frame
    0x01, 0x00, 0x00, 0x00, // stream = 1 (u32)
    0x00, // track = 0 (u8)
    0x01, // video = true (bool)
    0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dts = 1000 (i64)
    0x28, 0x00, 0x00, 0x00, // cts = 40 (i32)
    0x01, // flags = KEYFRAME (u8)
    0x00, 0x00, 0x00, 0x02, 0x65, 0x88, // payload: one 2-byte NAL unit, length-prefixed
];

#[test]
fn hello_golden() {
    assert_eq!(FORMAT_VERSION, 1);
    let mut out = BytesMut::new();
    encode(&hello(), &[], &mut out);
    assert_eq!(&out[..], HELLO_BYTES);
    assert_eq!(
        decode_all(&HELLO_BYTES).unwrap(),
        vec![Message {
            header: hello(),
            payload: Bytes::new()
        }]
    );
    assert!(
        format_md().contains(&dump(&HELLO_BYTES)),
        "FORMAT.md lacks the Hello example:\n{}",
        dump(&HELLO_BYTES)
    );
}

#[test]
fn frame_golden() {
    let mut out = BytesMut::new();
    encode(&frame(), &FRAME_PAYLOAD, &mut out);
    assert_eq!(&out[..], FRAME_BYTES);
    // encode_header writes the same bytes minus the payload.
    let mut head = BytesMut::new();
    encode_header(&frame(), FRAME_PAYLOAD.len(), &mut head);
    assert_eq!(
        &head[..],
        &FRAME_BYTES[..FRAME_BYTES.len() - FRAME_PAYLOAD.len()]
    );
    assert_eq!(
        header_bytes(&frame()),
        &FRAME_BYTES[PREFIX_LEN..PREFIX_LEN + 23]
    );
    assert_eq!(
        decode_all(&FRAME_BYTES).unwrap(),
        vec![Message {
            header: frame(),
            payload: Bytes::from_static(&FRAME_PAYLOAD)
        }]
    );
    assert!(
        format_md().contains(&dump(&FRAME_BYTES)),
        "FORMAT.md lacks the Frame example:\n{}",
        dump(&FRAME_BYTES)
    );
}

/// The same bytes from and to a `media::Frame`.
#[test]
fn frame_golden_as_media_frame() {
    let frame = Frame {
        track: 0,
        kind: TrackKind::Video,
        dts: 1000,
        cts: 40,
        flags: FrameFlags::KEYFRAME,
        payload: Bytes::from_static(&FRAME_PAYLOAD),
    };
    let mut out = BytesMut::new();
    encode_frame(1, &frame, &mut out);
    assert_eq!(&out[..], FRAME_BYTES);
    let mut msgs = decode_all(&FRAME_BYTES).unwrap();
    assert_eq!(msgs.pop().unwrap().frame(), Some((1, frame)));
    let other = Message {
        header: Header::Metadata { stream: 1 },
        payload: Bytes::new(),
    };
    assert_eq!(other.frame(), None);
}

#[test]
fn track_config_golden_codec_with_fields() {
    let h = Header::TrackConfig {
        stream: 2,
        track: 1,
        codec: Codec::LegacyAudio { header: 0x2e },
    };
    assert_eq!(
        header_bytes(&h),
        [
            3, 0, 0, 0, // TrackConfig
            2, 0, 0, 0, // stream
            1, // track
            13, 0, 0, 0,    // Codec::LegacyAudio
            0x2e, // its header field
        ]
    );
    let h = Header::AnnounceReply {
        stream: 7,
        rejected: Some(RejectReason::Denied),
    };
    assert_eq!(header_bytes(&h), [2, 0, 0, 0, 7, 0, 0, 0, 1, 2, 0, 0, 0]);
    let h = Header::AnnounceReply {
        stream: 7,
        rejected: None,
    };
    assert_eq!(header_bytes(&h), [2, 0, 0, 0, 7, 0, 0, 0, 0]);
}

fn event() -> Event {
    Event {
        kind: "publish".into(),
        key: "live/a".into(),
        conn_id: 3,
        remote: String::new(),
        fields: vec![("k".into(), "v".into())],
    }
}

fn player() -> PlayerHandoff {
    PlayerHandoff {
        bytes_received: 3500,
        in_chunk_streams: vec![ChunkStreamState {
            csid: 3,
            timestamp: 0,
            delta: 0,
            length: 30,
            type_id: 20,
            stream_id: 1,
            extended: false,
        }],
        pending_input: vec![1, 2],
        ..PlayerHandoff::for_tests(1, "live/a", 1)
    }
}

/// Every variant, in wire order, with the index FORMAT.md gives it.
fn every_variant() -> Vec<(u32, Header)> {
    vec![
        (0, hello()),
        (
            1,
            Header::Announce {
                stream: 1,
                key: "live/a".into(),
                timescale: 1000,
            },
        ),
        (
            2,
            Header::AnnounceReply {
                stream: 1,
                rejected: None,
            },
        ),
        (
            3,
            Header::TrackConfig {
                stream: 1,
                track: 0,
                codec: Codec::H264,
            },
        ),
        (4, frame()),
        (5, Header::Metadata { stream: 1 }),
        (
            6,
            Header::EndOfStream {
                stream: 1,
                reason: "unpublish".into(),
            },
        ),
        (7, Header::Event(event())),
        (
            8,
            Header::Subscribe {
                patterns: vec!["live/*".into()],
                media: true,
                events: false,
            },
        ),
        (9, Header::PlayerHandoff(Box::new(player()))),
        (
            10,
            Header::Dropped {
                stream: 1,
                frames: 10,
                bytes: 1000,
            },
        ),
        (
            11,
            Header::Revoke {
                stream: 1,
                reason: "takeover".into(),
            },
        ),
        (
            12,
            Header::Error {
                message: "bad".into(),
            },
        ),
        (
            13,
            Header::TrackMetadata {
                stream: 1,
                track: 0,
                codec: Codec::H265,
                dts: 40,
            },
        ),
        (
            14,
            Header::EndOfSequence {
                stream: 1,
                track: 0,
                codec: Codec::H264,
                dts: 40,
            },
        ),
        (
            15,
            Header::ChannelConfig {
                stream: 1,
                track: 1,
                codec: Codec::Opus,
            },
        ),
        (16, Header::Data { stream: 1, dts: 40 }),
        (
            17,
            Header::TimestampOffset {
                stream: 1,
                track: 0,
                video: false,
                nanos: 500,
            },
        ),
        (
            18,
            Header::Reconnect {
                stream: 1,
                key: Some("live/a".into()),
                tc_url: Some("rtmp://b/live".into()),
                description: None,
            },
        ),
        (
            19,
            Header::AnnounceClient {
                stream: 3,
                key: "live/a".into(),
                timescale: 1000,
                conn_id: 7,
            },
        ),
        (
            20,
            Header::Player {
                key: "live/a".into(),
                protocol: PlayerProtocol::Srt,
                conn_id: 7,
                remote: "10.0.0.2:9000".into(),
            },
        ),
    ]
}

/// An SRT player's subscription says whose it is: `Player` between its `Hello` and its
/// `Subscribe`, byte for byte as FORMAT.md lays it out.
#[test]
fn player_golden() {
    let h = Header::Player {
        key: "a/b".into(),
        protocol: PlayerProtocol::Srt,
        conn_id: 0x0102,
        remote: "h:1".into(),
    };
    let mut want = vec![20, 0, 0, 0]; // Player
    want.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
    want.extend_from_slice(b"a/b"); // key
    want.extend_from_slice(&[0, 0, 0, 0]); // PlayerProtocol::Srt
    want.extend_from_slice(&[2, 1, 0, 0, 0, 0, 0, 0]); // conn_id
    want.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
    want.extend_from_slice(b"h:1"); // remote
    assert_eq!(header_bytes(&h), want);
    assert_eq!(PlayerProtocol::Srt.as_str(), "srt");

    let mut out = BytesMut::new();
    encode_player_subscription(
        "ingest-srt/9 conn_id=258".into(),
        "a/b".into(),
        PlayerProtocol::Srt,
        0x0102,
        "h:1".into(),
        &mut out,
    );
    let got: Vec<Header> = decode_all(&out)
        .unwrap()
        .into_iter()
        .map(|m| m.header)
        .collect();
    assert_eq!(
        got,
        vec![
            Header::Hello {
                version: FORMAT_VERSION,
                role: Role::Subscriber,
                name: "ingest-srt/9 conn_id=258".into(),
            },
            h,
            Header::Subscribe {
                patterns: vec!["a/b".into()],
                media: true,
                events: false,
            },
        ]
    );
}

#[test]
fn side_messages_golden() {
    let h = Header::TrackMetadata {
        stream: 1,
        track: 2,
        codec: Codec::H265,
        dts: 1000,
    };
    assert_eq!(
        header_bytes(&h),
        [
            13, 0, 0, 0, // TrackMetadata
            1, 0, 0, 0, // stream
            2, // track
            1, 0, 0, 0, // Codec::H265
            0xe8, 3, 0, 0, 0, 0, 0, 0, // dts
        ]
    );
    let h = Header::ChannelConfig {
        stream: 1,
        track: 0,
        codec: Codec::Opus,
    };
    assert_eq!(header_bytes(&h), [15, 0, 0, 0, 1, 0, 0, 0, 0, 7, 0, 0, 0]);
    let h = Header::Data { stream: 3, dts: -1 };
    assert_eq!(
        header_bytes(&h),
        [16, 0, 0, 0, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    let h = Header::TimestampOffset {
        stream: 1,
        track: 0,
        video: true,
        nanos: 999_999,
    };
    assert_eq!(
        header_bytes(&h),
        [17, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0x3f, 0x42, 0x0f, 0]
    );
    // A control peer's request for every client, then the hub's to one publisher.
    let h = Header::Reconnect {
        stream: 0,
        key: None,
        tc_url: None,
        description: Some("go".into()),
    };
    assert_eq!(
        header_bytes(&h),
        [18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, b'g', b'o']
    );
    let h = Header::Reconnect {
        stream: 3,
        key: Some("a/b".into()),
        tc_url: Some("rtmp://h/a".into()),
        description: None,
    };
    let mut want = vec![18, 0, 0, 0, 3, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0];
    want.extend_from_slice(b"a/b");
    want.extend_from_slice(&[1, 10, 0, 0, 0, 0, 0, 0, 0]);
    want.extend_from_slice(b"rtmp://h/a");
    want.push(0);
    assert_eq!(header_bytes(&h), want);
    let h = Header::TrackConfig {
        stream: 1,
        track: 0,
        codec: Codec::Unknown {
            video: true,
            fourcc: *b"xyz1",
        },
    };
    assert_eq!(
        header_bytes(&h),
        [3, 0, 0, 0, 1, 0, 0, 0, 0, 14, 0, 0, 0, 1, b'x', b'y', b'z', b'1']
    );
}

#[test]
fn variant_indices_match_the_document() {
    for (index, h) in every_variant() {
        let bytes = header_bytes(&h);
        assert_eq!(bytes[..4], index.to_le_bytes(), "{h:?}");
        let mut out = BytesMut::new();
        encode(&h, b"xy", &mut out);
        assert_eq!(
            decode_all(&out).unwrap(),
            vec![Message {
                header: h,
                payload: Bytes::from_static(b"xy")
            }]
        );
    }
    let roles = [
        Role::Publisher,
        Role::PlayerHandoff,
        Role::Subscriber,
        Role::Hub,
        Role::Control,
    ];
    for (i, role) in roles.into_iter().enumerate() {
        let h = Header::Hello {
            version: 1,
            role,
            name: String::new(),
        };
        assert_eq!(header_bytes(&h)[6..10], (i as u32).to_le_bytes());
    }
    let reasons = [
        RejectReason::Duplicate,
        RejectReason::Capacity,
        RejectReason::Denied,
    ];
    for (i, r) in reasons.into_iter().enumerate() {
        let h = Header::AnnounceReply {
            stream: 0,
            rejected: Some(r),
        };
        assert_eq!(header_bytes(&h)[9..13], (i as u32).to_le_bytes());
    }
    let codecs = [
        Codec::H264,
        Codec::H265,
        Codec::H266,
        Codec::Av1,
        Codec::Vp9,
        Codec::Vp8,
        Codec::Aac,
        Codec::Opus,
        Codec::Flac,
        Codec::Mp3,
        Codec::Ac3,
        Codec::Eac3,
        Codec::LegacyVideo { codec_id: 2 },
        Codec::LegacyAudio { header: 0x2e },
        Codec::Unknown {
            video: false,
            fourcc: *b"ipcm",
        },
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        let h = Header::TrackConfig {
            stream: 0,
            track: 0,
            codec,
        };
        assert_eq!(header_bytes(&h)[9..13], (i as u32).to_le_bytes());
    }
}

#[test]
fn known_headers_is_one_past_the_last_variant() {
    let all = every_variant();
    assert_eq!(all.len() as u32, KNOWN_HEADERS);
    assert_eq!(all.last().unwrap().0, KNOWN_HEADERS - 1);
}

#[test]
fn unknown_message_types_are_skipped() {
    // A newer sender's variant 21 and 4 000 000 000 (header bytes this version cannot
    // read, and a payload), between two known messages.
    let unknown_21: [u8; 19] = [
        0x07, 0x00, 0x00, 0x00, // header_len = 7
        0x04, 0x00, 0x00, 0x00, // payload_len = 4
        0x15, 0x00, 0x00, 0x00, // variant 21
        0xff, 0xfe, 0xfd, // its fields
        0xde, 0xad, 0xbe, 0xef, // its payload
    ];
    let unknown_big: [u8; 12] = [
        0x04, 0x00, 0x00, 0x00, // header_len = 4
        0x00, 0x00, 0x00, 0x00, // payload_len = 0
        0x00, 0x28, 0x6b, 0xee, // variant 4 000 000 000
    ];
    let mut wire = HELLO_BYTES.to_vec();
    wire.extend_from_slice(&unknown_21);
    wire.extend_from_slice(&unknown_big);
    wire.extend_from_slice(&FRAME_BYTES);
    let got = decode_all(&wire).unwrap();
    assert_eq!(
        got.iter().map(|m| m.header.clone()).collect::<Vec<_>>(),
        vec![hello(), frame()]
    );
    assert_eq!(got[1].payload, &FRAME_PAYLOAD[..]);

    // Byte by byte: an unknown message is only dropped once it is whole, and then the
    // next one comes out as soon as it is whole.
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for b in &wire[HELLO_BYTES.len()..] {
        buf.extend_from_slice(&[*b]);
        if let Some(m) = dec.decode(&mut buf).unwrap() {
            out.push(m.header);
        }
    }
    assert_eq!(out, vec![frame()]);
    assert!(buf.is_empty());

    // An unknown message alone leaves nothing behind.
    let mut buf = BytesMut::from(&unknown_21[..]);
    assert!(dec.decode(&mut buf).unwrap().is_none());
    assert!(buf.is_empty());
}

#[test]
fn limits() {
    assert_eq!(DEFAULT_MAX_HEADER, 64 * 1024);
    assert_eq!(DEFAULT_MAX_PAYLOAD, 32 * 1024 * 1024);
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::from(&[0x01, 0x00, 0x01, 0x00, 0, 0, 0, 0][..]);
    assert!(matches!(
        dec.decode(&mut buf),
        Err(IpcError::TooLarge {
            what: "header",
            len: 0x1_0001,
            max: 0x1_0000
        })
    ));
    let mut buf = BytesMut::from(&[0x04, 0, 0, 0, 0x01, 0, 0, 0x02][..]);
    assert!(matches!(
        dec.decode(&mut buf),
        Err(IpcError::TooLarge {
            what: "payload",
            len: 0x0200_0001,
            ..
        })
    ));
    // Below the limits, an incomplete message is just incomplete.
    let mut buf = BytesMut::from(&FRAME_BYTES[..FRAME_BYTES.len() - 1]);
    assert!(dec.decode(&mut buf).unwrap().is_none());
    assert_eq!(buf.len(), FRAME_BYTES.len() - 1);
}

fn bad_header(header: &[u8]) -> IpcError {
    let mut msg = (header.len() as u32).to_le_bytes().to_vec();
    msg.extend_from_slice(&[0, 0, 0, 0]);
    msg.extend_from_slice(header);
    decode_all(&msg).unwrap_err()
}

#[test]
fn malformed_headers_are_refused() {
    // Variant 13 (TrackMetadata) without its fields.
    assert!(matches!(bad_header(&[13, 0, 0, 0]), IpcError::BadHeader(_)));
    // Fewer than 4 bytes: not even a variant index.
    assert!(matches!(bad_header(&[99, 0]), IpcError::BadHeader(_)));
    // Header cut short (Metadata needs its u32 stream).
    assert!(matches!(
        bad_header(&[5, 0, 0, 0, 1]),
        IpcError::BadHeader(_)
    ));
    // Trailing bytes after a whole header.
    assert!(matches!(
        bad_header(&[5, 0, 0, 0, 1, 0, 0, 0, 9, 9]),
        IpcError::TrailingHeaderBytes(2)
    ));
    // A bool that is neither 0 nor 1 (Frame.video).
    let mut h = header_bytes(&frame());
    h[9] = 2;
    assert!(matches!(bad_header(&h), IpcError::BadHeader(_)));
    // An Option tag that is neither 0 nor 1.
    assert!(matches!(
        bad_header(&[2, 0, 0, 0, 7, 0, 0, 0, 2]),
        IpcError::BadHeader(_)
    ));
    // A string that is not UTF-8.
    assert!(matches!(
        bad_header(&[12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff]),
        IpcError::BadHeader(_)
    ));
    // A string declaring 1 TiB inside a 20-byte header: refused, nothing allocated.
    let mut h = vec![12, 0, 0, 0];
    h.extend_from_slice(&(1u64 << 40).to_le_bytes());
    h.extend_from_slice(b"12345678");
    assert!(matches!(bad_header(&h), IpcError::BadHeader(_)));
    // Same for a vector of strings (Subscribe.patterns).
    let mut h = vec![8, 0, 0, 0];
    h.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(bad_header(&h), IpcError::BadHeader(_)));
}

#[test]
fn hello_checks() {
    assert_eq!(check_hello(&hello()).unwrap(), Role::Publisher);
    let old = Header::Hello {
        version: 0,
        role: Role::Hub,
        name: "hub".into(),
    };
    assert!(matches!(
        check_hello(&old),
        Err(IpcError::Version { got: 0, want: 1 })
    ));
    assert!(matches!(check_hello(&frame()), Err(IpcError::BadHeader(_))));
}
