//! Enhanced RTMP v2 beyond frames and configurations: video metadata (colorInfo),
//! SequenceEnd, audio MultichannelConfig, ModEx nanosecond offsets, data messages other
//! than onMetaData and an unknown FourCC travel from a publisher to players byte for byte
//! and in order; late joiners get the colour and channel layout as stream state.

use std::time::Instant;

use e2e::deadline_in;
use e2e::rtmp_client::amf0::{encode_all, Amf0};
use e2e::rtmp_client::{msg_type, Message, RtmpClient};
use e2e::{Server, ServerOpts};

/// `colorInfo` as an E-RTMP video Metadata body (after the 5-byte header).
fn color_info() -> Vec<u8> {
    encode_all(&[
        Amf0::str("colorInfo"),
        Amf0::object(&[
            (
                "colorConfig",
                Amf0::object(&[
                    ("bitDepth", Amf0::Number(10.0)),
                    ("colorPrimaries", Amf0::Number(9.0)),
                    ("transferCharacteristics", Amf0::Number(16.0)),
                    ("matrixCoefficients", Amf0::Number(9.0)),
                ]),
            ),
            (
                "hdrCll",
                Amf0::object(&[
                    ("maxFall", Amf0::Number(400.0)),
                    ("maxCLL", Amf0::Number(1000.0)),
                ]),
            ),
        ]),
    ])
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The messages a publisher sends, as (RTMP type, timestamp, body), in order. Every one
/// reaches a player that was there from the start unchanged.
fn script() -> Vec<(u8, u32, Vec<u8>)> {
    let (v, a, d) = (msg_type::VIDEO, msg_type::AUDIO, msg_type::DATA);
    vec![
        // HEVC SequenceStart (the hub does not look inside the record).
        (v, 0, cat(&[b"\x90hvc1", b"\x01\x02\x03\x04"])),
        // Video Metadata as FFmpeg writes it (frame type 5).
        (v, 0, cat(&[b"\xd4hvc1", &color_info()])),
        // Opus SequenceStart, then a native 2-channel MultichannelConfig.
        (
            a,
            0,
            cat(&[b"\x90Opus", b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0"]),
        ),
        (a, 0, b"\x94Opus\x01\x02\x00\x00\x00\x03".to_vec()),
        // A keyframe under a ModEx TimestampOffsetNano of 123 456 ns (CodedFramesX).
        (
            v,
            0,
            b"\x97\x02\x01\xe2\x40\x03hvc1\x00\x00\x00\x02\x26\x01".to_vec(),
        ),
        (a, 3, b"\x91Opus\xfc\x01\x02".to_vec()),
        // A cue point, in order with the media.
        (
            d,
            10,
            encode_all(&[
                Amf0::str("onCuePoint"),
                Amf0::object(&[("name", Amf0::str("cue1")), ("time", Amf0::Number(0.01))]),
            ]),
        ),
        // An inter frame with a composition offset of 40 ms.
        (
            v,
            40,
            b"\xa1hvc1\x00\x00\x28\x00\x00\x00\x02\x02\x01".to_vec(),
        ),
        // A FourCC this server does not know, on audio track 1 (Multitrack OneTrack).
        (a, 40, b"\x95\x00ipcm\x01\x10\x20".to_vec()),
        (a, 43, b"\x95\x01ipcm\x01\x33\x44\x55".to_vec()),
        (
            d,
            50,
            encode_all(&[
                Amf0::str("onTextData"),
                Amf0::object(&[("text", Amf0::str("hi"))]),
            ]),
        ),
        // ModEx on Opus too.
        (a, 60, b"\x97\x02\x00\x03\xe8\x01Opus\xfc\x05".to_vec()),
        (v, 80, b"\x92hvc1".to_vec()),
    ]
}

/// Whether a player message is one a publisher sent (media or a data message other than
/// the server's own `|RtmpSampleAccess` and `onMetaData`).
fn is_stream_message(m: &Message) -> bool {
    match m.type_id {
        msg_type::AUDIO | msg_type::VIDEO => true,
        msg_type::DATA => !m.payload.windows(17).any(|w| w == b"|RtmpSampleAccess"),
        _ => false,
    }
}

fn csid(type_id: u8) -> u32 {
    match type_id {
        msg_type::AUDIO => 4,
        msg_type::DATA => 5,
        _ => 6,
    }
}

fn collect(c: &mut RtmpClient, n: usize, deadline: Instant) -> Vec<(u8, Vec<u8>)> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = c
            .next_message(deadline)
            .unwrap_or_else(|e| panic!("after {} messages {got:?}: {e}", got.len()));
        if is_stream_message(&m) {
            got.push((m.type_id, m.payload));
        }
    }
    got
}

fn player(server: &Server, name: &str) -> RtmpClient {
    let (mut c, sid) = RtmpClient::open(server.addr(), "live").expect("player connects");
    c.play(sid, name).expect("play");
    c
}

#[test]
fn everything_a_publisher_sends_reaches_players_in_order() {
    let server = Server::start(ServerOpts::default());
    // This player waits for the publisher, so it sees every message from the first.
    let mut early = player(&server, "hdr");
    let (mut publisher, sid) = RtmpClient::open(server.addr(), "live").expect("publisher");
    let status = publisher.publish(sid, "hdr").expect("publish");
    assert_eq!(status.code, "NetStream.Publish.Start");
    let script = script();
    for (type_id, ts, body) in &script {
        publisher
            .send_message(csid(*type_id), *type_id, sid, *ts, body)
            .expect("send");
    }
    let got = collect(&mut early, script.len(), deadline_in(20.0));
    let want: Vec<(u8, Vec<u8>)> = script.iter().map(|(t, _, b)| (*t, b.clone())).collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "message {i} differs");
    }

    // A late joiner starts at the keyframe with the stream's state in front of it: the
    // configurations, the colour description and the channel layout.
    let mut late = player(&server, "hdr");
    let deadline = deadline_in(20.0);
    let mut head = Vec::new();
    loop {
        let m = late.next_message(deadline).expect("late joiner message");
        if !is_stream_message(&m) {
            continue;
        }
        let keyframe = m.payload.starts_with(b"\x97\x02\x01\xe2\x40");
        head.push(m.payload);
        if keyframe {
            break;
        }
    }
    for (what, body) in [
        ("HEVC sequence start", &script[0].2),
        ("colorInfo", &script[1].2),
        ("Opus sequence start", &script[2].2),
        ("MultichannelConfig", &script[3].2),
        ("unknown FourCC sequence start", &script[8].2),
    ] {
        assert!(
            head.contains(body),
            "late joiner lacks the {what}: {head:?}"
        );
    }
}
