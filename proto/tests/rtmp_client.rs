//! The client session: golden bytes of what it sends, the whole publish conversation
//! against proto's own server session (the two sides were written to the spec separately),
//! a play conversation from hand-built server bytes, refusals, URL parsing, and properties
//! (any split of the input gives the same events; media arrives unchanged; garbage never
//! panics).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::media::Codec;
use proto::rtmp::amf0::{self, Amf0Value};
use proto::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, RtmpMessage};
use proto::rtmp::handshake::{ServerHandshake, HANDSHAKE_SIZE, RANDOM_SIZE};
use proto::rtmp::message::{types, Command, ControlMessage, UserControl};
use proto::rtmp::session::{
    ClientConfig, ClientError, ClientEvent, ClientMode, ClientRequest, ClientSession, MediaKind,
    MessageStreamId, RtmpUrl, ServerCaps, ServerSession, SessionConfig, SessionEvent,
    CAPS_EX_MODEX, CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT,
};

fn request(mode: ClientMode) -> ClientRequest {
    ClientRequest {
        app: "live".into(),
        tc_url: "rtmp://h/live".into(),
        name: "s".into(),
        mode,
    }
}

fn legacy_config() -> ClientConfig {
    ClientConfig {
        fourccs: vec![],
        digest_handshake: false,
        flash_ver: "FMLE/3.0".into(),
        ..ClientConfig::default()
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Runs the client's handshake against a server handshake; returns the server's S0S1S2
/// and what the client sent after its C0C1 (C2 and the connect command).
fn handshake(c: &mut ClientSession) -> BytesMut {
    let mut c0c1 = BytesMut::new();
    c.poll_transmit(&mut c0c1);
    assert_eq!(c0c1.len(), 1 + HANDSHAKE_SIZE);
    let mut server = ServerHandshake::new([3; RANDOM_SIZE], 0);
    server.handle_input(&mut c0c1).unwrap();
    let mut s = BytesMut::new();
    server.poll_transmit(&mut s);
    c.handle_input(&mut s).unwrap();
    assert!(s.is_empty());
    let mut out = BytesMut::new();
    c.poll_transmit(&mut out);
    out
}

#[test]
fn golden_connect_after_the_handshake() {
    let mut c = ClientSession::new(
        legacy_config(),
        request(ClientMode::Publish),
        [1; RANDOM_SIZE],
        0,
    );
    let out = handshake(&mut c);
    // C2 echoes S1 in the simple handshake: the server's random was [3; ...].
    assert_eq!(&out[..4], &[0, 0, 0, 0]);
    assert!(out[8..HANDSHAKE_SIZE].iter().all(|&b| b == 3));
    let connect = hex("03 000000 000062 14 00000000
         02 0007 636f6e6e656374  00 3ff0000000000000  03
         0003 617070 02 0004 6c697665
         0004 74797065 02 000a 6e6f6e70726976617465
         0008 666c617368566572 02 0008 464d4c452f332e30
         0005 746355726c 02 000d 72746d703a2f2f682f6c697665
         000009");
    assert_eq!(&out[HANDSHAKE_SIZE..], &connect[..]);
}

#[test]
fn connect_announces_enhanced_rtmp_when_configured() {
    let mut c = ClientSession::new(
        ClientConfig::default(),
        request(ClientMode::Publish),
        [1; RANDOM_SIZE],
        0,
    );
    let mut out = handshake(&mut c).split_off(HANDSHAKE_SIZE);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let m = dec.decode(&mut out).unwrap().unwrap();
    let cmd = Command::parse(m.type_id, &m.payload, &Default::default()).unwrap();
    assert_eq!(cmd.name, "connect");
    let Some(Amf0Value::StrictArray(list)) = cmd.object.get("fourCcList") else {
        panic!("no fourCcList in {:?}", cmd.object);
    };
    let list: Vec<&str> = list.iter().filter_map(|v| v.as_str()).collect();
    for f in ["avc1", "hvc1", "av01", "vp09", "mp4a", "Opus"] {
        assert!(list.contains(&f), "{f} missing from {list:?}");
    }
    assert_eq!(cmd.object.get("capsEx").and_then(|v| v.as_f64()), Some(6.0));
}

/// Moves bytes between a client and a server session until neither has anything to say;
/// the server accepts every publish. Returns the events of both sides.
fn pump(c: &mut ClientSession, s: &mut ServerSession) -> (Vec<ClientEvent>, Vec<SessionEvent>) {
    let (mut ce, mut se) = (Vec::new(), Vec::new());
    let (mut to_s, mut to_c) = (BytesMut::new(), BytesMut::new());
    for _ in 0..32 {
        c.poll_transmit(&mut to_s);
        s.handle_input(&mut to_s)
            .expect("server accepts the client");
        while let Some(e) = s.poll_event() {
            if let SessionEvent::PublishRequest(r) = &e {
                s.accept_publish(r.stream_id);
            }
            se.push(e);
        }
        s.handle_input(&mut to_s)
            .expect("server accepts the client");
        while let Some(e) = s.poll_event() {
            se.push(e);
        }
        s.poll_transmit(&mut to_c);
        if to_c.is_empty() && !c.has_transmit() {
            break;
        }
        c.handle_input(&mut to_c)
            .expect("client accepts the server");
        while let Some(e) = c.poll_event() {
            ce.push(e);
        }
    }
    (ce, se)
}

#[test]
fn publishes_to_the_server_session() {
    let mut c = ClientSession::new(
        ClientConfig::default(),
        request(ClientMode::Publish),
        [1; RANDOM_SIZE],
        0,
    );
    let mut s = ServerSession::new(SessionConfig::default(), [2; RANDOM_SIZE], 0);
    let (ce, se) = pump(&mut c, &mut s);
    let caps = match &ce[0] {
        ClientEvent::Connected(caps) => caps.clone(),
        e => panic!("first event {e:?}"),
    };
    // Our server answers the E-RTMP list with what it forwards.
    assert!(caps.enhanced);
    assert!(caps.accepts(Codec::H265, 0) && caps.accepts(Codec::Opus, 0));
    assert!(caps.accepts(Codec::Aac, 2), "multitrack declared: {caps:?}");
    assert_eq!(ce[1], ClientEvent::StreamCreated(MessageStreamId(1)));
    assert_eq!(ce[2], ClientEvent::Publishing);
    assert!(c.is_streaming());
    let req = se
        .iter()
        .find_map(|e| match e {
            SessionEvent::PublishRequest(r) => Some(r.clone()),
            _ => None,
        })
        .expect("publish request");
    assert_eq!((req.app.as_str(), req.name.as_str()), ("live", "s"));

    // Metadata and media reach the server as published.
    let meta = {
        let mut b = BytesMut::new();
        amf0::encode(&Amf0Value::String("onMetaData".into()), &mut b);
        amf0::encode(
            &Amf0Value::object([("width", Amf0Value::Number(640.0))]),
            &mut b,
        );
        b.freeze()
    };
    c.send_metadata(0, &meta).unwrap();
    let big = vec![0x17u8; 10_000];
    c.send_media(MediaKind::Video, 40, &big).unwrap();
    c.send_media(MediaKind::Audio, 41, &[0xaf, 1, 2, 3])
        .unwrap();
    let (_, se) = pump(&mut c, &mut s);
    assert!(matches!(&se[0], SessionEvent::Metadata { data, .. } if *data == meta));
    assert!(matches!(&se[1], SessionEvent::Media(m)
        if m.kind == MediaKind::Video && m.timestamp == 40 && m.payload[..] == big[..]));
    assert!(matches!(&se[2], SessionEvent::Media(m)
        if m.kind == MediaKind::Audio && m.timestamp == 41 && m.payload[..] == [0xaf, 1, 2, 3]));

    c.close();
    let (_, se) = pump(&mut c, &mut s);
    assert!(
        se.iter()
            .any(|e| matches!(e, SessionEvent::Unpublished { .. })),
        "{se:?}"
    );
    assert_eq!(
        c.send_media(MediaKind::Audio, 50, &[0xaf, 1]),
        Err(ClientError::NotPublishing)
    );
}

#[test]
fn a_refused_publish_is_an_error_with_the_code() {
    let mut c = ClientSession::new(
        ClientConfig::default(),
        request(ClientMode::Publish),
        [1; RANDOM_SIZE],
        0,
    );
    let mut s = ServerSession::new(SessionConfig::default(), [2; RANDOM_SIZE], 0);
    let (mut to_s, mut to_c) = (BytesMut::new(), BytesMut::new());
    let mut result = Ok(());
    for _ in 0..16 {
        c.poll_transmit(&mut to_s);
        s.handle_input(&mut to_s).unwrap();
        while let Some(e) = s.poll_event() {
            if let SessionEvent::PublishRequest(r) = e {
                s.reject_publish(r.stream_id, "NetStream.Publish.BadName", "taken");
            }
        }
        s.poll_transmit(&mut to_c);
        result = c.handle_input(&mut to_c);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(ClientError::Rejected {
            command: "publish",
            code: "NetStream.Publish.BadName".into(),
            description: "taken".into(),
        })
    );
}

/// A server as bytes: what a server sends a player, built with the chunk encoder.
struct FakeServer {
    enc: ChunkEncoder,
    out: BytesMut,
}

impl FakeServer {
    fn command(&mut self, stream_id: u32, cmd: Command) {
        let mut b = BytesMut::new();
        cmd.write_body(&mut b);
        self.enc
            .write(3, 0, types::COMMAND_AMF0, stream_id, &b, &mut self.out);
    }
    fn result(&mut self, tid: f64, object: Amf0Value, args: Vec<Amf0Value>) {
        self.command(
            0,
            Command {
                name: "_result".into(),
                transaction_id: tid,
                object,
                args,
            },
        );
    }
}

/// Reads the client's commands out of `bytes` (after the handshake).
fn commands(dec: &mut ChunkDecoder, bytes: &mut BytesMut) -> Vec<RtmpMessage> {
    let mut v = Vec::new();
    while let Some(m) = dec.decode(bytes).unwrap() {
        v.push(m);
    }
    v
}

#[test]
fn plays_from_server_bytes() {
    let mut c = ClientSession::new(
        legacy_config(),
        request(ClientMode::Play),
        [1; RANDOM_SIZE],
        0,
    );
    let mut sent = handshake(&mut c).split_off(HANDSHAKE_SIZE);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let msgs = commands(&mut dec, &mut sent);
    let connect = Command::parse(msgs[0].type_id, &msgs[0].payload, &Default::default()).unwrap();
    assert_eq!(connect.name, "connect");
    assert_eq!(connect.transaction_id, 1.0);

    let mut srv = FakeServer {
        enc: ChunkEncoder::new(),
        out: BytesMut::new(),
    };
    let mut b = BytesMut::new();
    ControlMessage::WindowAckSize(100).write_body(&mut b);
    srv.enc
        .write(2, 0, types::WINDOW_ACK_SIZE, 0, &b, &mut srv.out);
    b.clear();
    ControlMessage::SetChunkSize(64).write_body(&mut b);
    srv.enc
        .write(2, 0, types::SET_CHUNK_SIZE, 0, &b, &mut srv.out);
    srv.enc.set_chunk_size(64);
    srv.result(
        1.0,
        Amf0Value::object([("fmsVer", Amf0Value::String("FMS/3,0,1,123".into()))]),
        vec![],
    );
    c.handle_input(&mut srv.out).unwrap();
    let caps = match c.poll_event() {
        Some(ClientEvent::Connected(caps)) => caps,
        e => panic!("{e:?}"),
    };
    assert!(!caps.enhanced);
    assert_eq!(caps.fms_ver.as_deref(), Some("FMS/3,0,1,123"));
    assert!(caps.accepts(Codec::H264, 0) && caps.accepts(Codec::Aac, 0));
    assert!(!caps.accepts(Codec::H265, 0) && !caps.accepts(Codec::H264, 1));

    let mut sent = BytesMut::new();
    c.poll_transmit(&mut sent);
    let names: Vec<(u8, String)> = commands(&mut dec, &mut sent)
        .iter()
        .map(|m| {
            let name = Command::parse(m.type_id, &m.payload, &Default::default())
                .map(|c| c.name)
                .unwrap_or_default();
            (m.type_id, name)
        })
        .collect();
    assert_eq!(
        names,
        [
            (types::SET_CHUNK_SIZE, String::new()),
            (types::WINDOW_ACK_SIZE, String::new()),
            (types::COMMAND_AMF0, "createStream".into()),
            // The 100-byte window was passed (the handshake counts).
            (types::ACKNOWLEDGEMENT, String::new()),
        ]
    );

    srv.result(4.0, Amf0Value::Null, vec![Amf0Value::Number(7.0)]);
    c.handle_input(&mut srv.out).unwrap();
    assert_eq!(
        c.poll_event(),
        Some(ClientEvent::StreamCreated(MessageStreamId(7)))
    );
    let mut sent = BytesMut::new();
    c.poll_transmit(&mut sent);
    let msgs = commands(&mut dec, &mut sent);
    let play = Command::parse(msgs[0].type_id, &msgs[0].payload, &Default::default()).unwrap();
    assert_eq!((play.name.as_str(), msgs[0].stream_id), ("play", 7));
    assert_eq!(play.args[0].as_str(), Some("s"));
    assert_eq!(
        UserControl::parse(&msgs[1].payload).unwrap(),
        UserControl::SetBufferLength {
            stream_id: 7,
            millis: 1000
        }
    );

    // Reset, Start, a ping, metadata and media; then the publisher leaves.
    srv.command(7, Command::on_status("status", "NetStream.Play.Reset", "r"));
    srv.command(7, Command::on_status("status", "NetStream.Play.Start", "s"));
    b.clear();
    UserControl::PingRequest(99).write_body(&mut b);
    srv.enc
        .write(2, 0, types::USER_CONTROL, 0, &b, &mut srv.out);
    b.clear();
    amf0::encode(&Amf0Value::String("onMetaData".into()), &mut b);
    amf0::encode(
        &Amf0Value::object([("fps", Amf0Value::Number(30.0))]),
        &mut b,
    );
    let meta = b.clone().freeze();
    srv.enc
        .write(5, 0, types::DATA_AMF0, 7, &meta, &mut srv.out);
    let frame: Vec<u8> = (0..200u8).collect();
    srv.enc.write(6, 33, types::VIDEO, 7, &frame, &mut srv.out);
    srv.command(
        7,
        Command::on_status("status", "NetStream.Play.UnpublishNotify", "gone"),
    );
    c.handle_input(&mut srv.out).unwrap();
    let events: Vec<ClientEvent> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(matches!(&events[0], ClientEvent::Status(s) if s.code == "NetStream.Play.Reset"));
    assert_eq!(events[1], ClientEvent::Playing);
    assert_eq!(
        events[2],
        ClientEvent::Metadata {
            timestamp: 0,
            data: meta
        }
    );
    assert!(matches!(&events[3], ClientEvent::Media(m)
        if m.kind == MediaKind::Video && m.timestamp == 33 && m.payload[..] == frame[..]));
    assert!(
        matches!(&events[4], ClientEvent::StreamEnded { code } if code == "NetStream.Play.UnpublishNotify")
    );

    // The ping is answered, and the 100-byte window is acknowledged.
    let mut sent = BytesMut::new();
    c.poll_transmit(&mut sent);
    let msgs = commands(&mut dec, &mut sent);
    assert!(msgs.iter().any(|m| m.type_id == types::USER_CONTROL
        && UserControl::parse(&m.payload).unwrap() == UserControl::PingResponse(99)));
    let ack = msgs
        .iter()
        .find(|m| m.type_id == types::ACKNOWLEDGEMENT)
        .expect("acknowledgement");
    let ControlMessage::Acknowledgement(n) =
        ControlMessage::parse(ack.type_id, &ack.payload).unwrap()
    else {
        panic!()
    };
    assert_eq!(u64::from(n), c.bytes_received());
}

#[test]
fn a_connect_error_is_a_rejection() {
    let mut c = ClientSession::new(
        legacy_config(),
        request(ClientMode::Play),
        [1; RANDOM_SIZE],
        0,
    );
    handshake(&mut c);
    let mut srv = FakeServer {
        enc: ChunkEncoder::new(),
        out: BytesMut::new(),
    };
    srv.command(
        0,
        Command {
            name: "_error".into(),
            transaction_id: 1.0,
            object: Amf0Value::Null,
            args: vec![Amf0Value::object([
                ("level", Amf0Value::String("error".into())),
                (
                    "code",
                    Amf0Value::String("NetConnection.Connect.Rejected".into()),
                ),
                ("description", Amf0Value::String("no".into())),
            ])],
        },
    );
    let e = c.handle_input(&mut srv.out).unwrap_err();
    assert!(
        matches!(&e, ClientError::Rejected { command: "connect", code, .. } if code == "NetConnection.Connect.Rejected")
    );
    assert_eq!(e.layer(), "command");
}

#[test]
fn digest_handshake_against_the_server_session() {
    let config = ClientConfig {
        digest_handshake: true,
        ..ClientConfig::default()
    };
    let mut c = ClientSession::new(config, request(ClientMode::Publish), [5; RANDOM_SIZE], 1);
    let mut s = ServerSession::new(SessionConfig::default(), [6; RANDOM_SIZE], 2);
    let (ce, se) = pump(&mut c, &mut s);
    assert!(matches!(
        se[0],
        SessionEvent::HandshakeDone {
            kind: proto::rtmp::handshake::HandshakeKind::Digest { schema: 0 }
        }
    ));
    assert_eq!(ce.last(), Some(&ClientEvent::Publishing));
}

#[test]
fn urls() {
    let u = RtmpUrl::parse("rtmp://a.example/live/cam1", ClientMode::Publish).unwrap();
    assert_eq!((u.host.as_str(), u.port, u.tls), ("a.example", 1935, false));
    assert_eq!(u.request.app, "live");
    assert_eq!(u.request.name, "cam1");
    assert_eq!(u.request.tc_url, "rtmp://a.example/live");
    let u = RtmpUrl::parse("rtmps://x:8443/app/inst/key?t=a/b", ClientMode::Play).unwrap();
    assert_eq!((u.host.as_str(), u.port, u.tls), ("x", 8443, true));
    assert_eq!(
        (u.request.app.as_str(), u.request.name.as_str()),
        ("app/inst", "key?t=a/b")
    );
    let u = RtmpUrl::parse("rtmps://[::1]/live/k", ClientMode::Play).unwrap();
    assert_eq!((u.host.as_str(), u.port), ("::1", 443));
    assert_eq!(u.request.tc_url, "rtmps://[::1]/live");
    for bad in [
        "http://a/live/k",
        "rtmp://a/live",
        "rtmp://a/live/",
        "rtmp:///live/k",
        "rtmp://a:99999/live/k",
        "rtmp://a/k?x/y",
    ] {
        assert_eq!(RtmpUrl::parse(bad, ClientMode::Play), None, "{bad}");
    }
}

#[test]
fn caps_from_info_maps_and_wildcards() {
    let props = Amf0Value::object([
        (
            "videoFourCcInfoMap",
            Amf0Value::object([("hvc1", Amf0Value::Number(4.0))]),
        ),
        (
            "audioFourCcInfoMap",
            Amf0Value::object([("*", Amf0Value::Number(4.0))]),
        ),
    ]);
    let caps = ServerCaps::from_properties(&props);
    assert!(caps.enhanced);
    assert!(caps.accepts(Codec::H265, 0));
    // The wildcard came from the audio map but reads as any FourCC.
    assert!(caps.accepts(Codec::Opus, 0) && caps.accepts(Codec::Av1, 0));
    assert!(
        !caps.accepts(Codec::Opus, 1),
        "no multitrack without capsEx"
    );
}

proptest! {
    /// However the server's bytes are split, the client reports the same events.
    #[test]
    fn split_input_gives_the_same_events(cuts in proptest::collection::vec(1usize..600, 1..40)) {
        let mut whole = ClientSession::new(ClientConfig::default(), request(ClientMode::Publish), [1; RANDOM_SIZE], 0);
        let mut s = ServerSession::new(SessionConfig::default(), [2; RANDOM_SIZE], 0);
        let (expected, _) = pump(&mut whole, &mut s);

        // Record the server's output for a fresh client, then replay it in pieces.
        let mut c = ClientSession::new(ClientConfig::default(), request(ClientMode::Publish), [1; RANDOM_SIZE], 0);
        let mut s = ServerSession::new(SessionConfig::default(), [2; RANDOM_SIZE], 0);
        let (mut to_s, mut to_c) = (BytesMut::new(), BytesMut::new());
        let mut events = Vec::new();
        let mut cut = cuts.iter().cycle();
        for _ in 0..64 {
            c.poll_transmit(&mut to_s);
            s.handle_input(&mut to_s).unwrap();
            while let Some(e) = s.poll_event() {
                if let SessionEvent::PublishRequest(r) = e {
                    s.accept_publish(r.stream_id);
                }
            }
            s.handle_input(&mut to_s).unwrap();
            s.poll_transmit(&mut to_c);
            if to_c.is_empty() && !c.has_transmit() {
                break;
            }
            // Feed what the server said in pieces; unconsumed bytes stay in front.
            let mut pending = BytesMut::new();
            while !to_c.is_empty() {
                let n = (*cut.next().unwrap()).min(to_c.len());
                pending.extend_from_slice(&to_c.split_to(n));
                c.handle_input(&mut pending).unwrap();
            }
            prop_assert!(pending.is_empty());
            while let Some(e) = c.poll_event() {
                events.push(e);
            }
        }
        prop_assert_eq!(events, expected);
    }

    /// Media bodies and timestamps arrive at the server exactly as sent.
    #[test]
    fn media_round_trips(frames in proptest::collection::vec(
        (any::<bool>(), 0u32..0x0200_0000, proptest::collection::vec(any::<u8>(), 1..9000)), 1..12)) {
        let mut c = ClientSession::new(ClientConfig::default(), request(ClientMode::Publish), [1; RANDOM_SIZE], 0);
        let mut s = ServerSession::new(SessionConfig::default(), [2; RANDOM_SIZE], 0);
        pump(&mut c, &mut s);
        for (video, ts, body) in &frames {
            let kind = if *video { MediaKind::Video } else { MediaKind::Audio };
            c.send_media(kind, *ts, body).unwrap();
        }
        let (_, se) = pump(&mut c, &mut s);
        let got: Vec<(bool, u32, Bytes)> = se.into_iter().filter_map(|e| match e {
            SessionEvent::Media(m) => Some((m.kind == MediaKind::Video, m.timestamp, m.payload)),
            _ => None,
        }).collect();
        prop_assert_eq!(got.len(), frames.len());
        for ((v, t, b), (gv, gt, gb)) in frames.iter().zip(got) {
            prop_assert_eq!((*v, *t, &b[..]), (gv, gt, &gb[..]));
        }
    }

    /// Garbage from the server after the handshake is an error or is consumed; never a
    /// panic, and the buffer only shrinks.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut c = ClientSession::new(ClientConfig::default(), request(ClientMode::Play), [1; RANDOM_SIZE], 0);
        handshake(&mut c);
        let mut buf = BytesMut::from(&bytes[..]);
        let before = buf.len();
        let _ = c.handle_input(&mut buf);
        prop_assert!(buf.len() <= before);
        while c.poll_event().is_some() {}
    }
}

#[test]
fn a_client_announcing_reconnect_gets_the_request_as_an_event() {
    let config = ClientConfig {
        caps_ex: CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK | CAPS_EX_MODEX,
        ..ClientConfig::default()
    };
    let mut c = ClientSession::new(config, request(ClientMode::Publish), [1; RANDOM_SIZE], 0);
    let mut s = ServerSession::new(server_reconnecting(), [2; RANDOM_SIZE], 0);
    let (ce, _) = pump(&mut c, &mut s);
    let ClientEvent::Connected(caps) = &ce[0] else {
        panic!("first event {:?}", ce[0]);
    };
    assert_eq!(
        caps.caps_ex,
        CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK | CAPS_EX_MODEX
    );
    assert!(s.request_reconnect(Some("rtmp://b.example/live"), Some("restarting")));
    let (ce, _) = pump(&mut c, &mut s);
    assert_eq!(
        ce,
        vec![ClientEvent::ReconnectRequest {
            tc_url: Some("rtmp://b.example/live".into()),
            description: "restarting".into(),
        }]
    );
    // The connection goes on: media still reaches the server.
    c.send_media(MediaKind::Audio, 10, &[0xaf, 1, 2]).unwrap();
    let (_, se) = pump(&mut c, &mut s);
    assert!(matches!(&se[..], [SessionEvent::Media(_)]), "{se:?}");

    // The default client does not announce it, and is never asked.
    let mut c = ClientSession::new(
        ClientConfig::default(),
        request(ClientMode::Publish),
        [1; RANDOM_SIZE],
        0,
    );
    let mut s = ServerSession::new(server_reconnecting(), [2; RANDOM_SIZE], 0);
    let (ce, _) = pump(&mut c, &mut s);
    let ClientEvent::Connected(caps) = &ce[0] else {
        panic!("first event {:?}", ce[0]);
    };
    assert_eq!(caps.caps_ex & CAPS_EX_RECONNECT, 0);
    assert!(!s.request_reconnect(None, None));
}

fn server_reconnecting() -> SessionConfig {
    SessionConfig {
        reconnect: true,
        ..SessionConfig::default()
    }
}
