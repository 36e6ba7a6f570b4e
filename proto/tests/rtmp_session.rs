//! The server session driven with byte vectors: FFmpeg's own connect bytes, the command
//! sequences publishers and players send, control messages, errors, and input split at
//! every offset.

use bytes::{Bytes, BytesMut};
use proto::flv::PacketKind;
use proto::media::Codec;
use proto::rtmp::amf0::{self, Amf0Value, AmfLimits};
use proto::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, RtmpMessage};
use proto::rtmp::handshake::{ClientHandshake, HandshakeKind, HANDSHAKE_SIZE, RANDOM_SIZE};
use proto::rtmp::message::{types, Command};
use proto::rtmp::session::{
    Announced, FourCcSet, MediaKind, MessageStreamId, Needs, PlayerCaps, PublishType,
    ServerSession, SessionConfig, SessionError, SessionEvent, UnpublishReason,
};

/// What FFmpeg 9 sends after its handshake when publishing to
/// `rtmp://127.0.0.1:43277/live/test?tok=1`: the connect command, 139 bytes in two chunks.
const FFMPEG_CONNECT: &[u8] = include_bytes!("vectors/rtmp/ffmpeg_connect.bin");

const S0S1S2: usize = 1 + 2 * HANDSHAKE_SIZE;

fn session() -> ServerSession {
    ServerSession::new(SessionConfig::default(), [7; RANDOM_SIZE], 0)
}

/// C0C1 and C2 of a simple handshake, as one buffer.
fn client_handshake() -> Vec<u8> {
    let mut c = ClientHandshake::new([9; RANDOM_SIZE], 0, false);
    let mut out = BytesMut::new();
    c.poll_transmit(&mut out);
    // The simple C2 echoes S1; the server does not check it.
    out.extend_from_slice(&[0; HANDSHAKE_SIZE]);
    out.to_vec()
}

/// A test client: encodes commands and media with its own chunk encoder, decodes the
/// server's output.
struct Client {
    enc: ChunkEncoder,
    dec: ChunkDecoder,
    rx: BytesMut,
}

impl Client {
    fn new() -> Self {
        Client {
            enc: ChunkEncoder::new(),
            dec: ChunkDecoder::new(ChunkLimits::default()),
            rx: BytesMut::new(),
        }
    }

    fn command(&mut self, csid: u32, stream_id: u32, values: &[Amf0Value]) -> Vec<u8> {
        let mut body = BytesMut::new();
        for v in values {
            amf0::encode(v, &mut body);
        }
        self.raw(csid, types::COMMAND_AMF0, stream_id, 0, &body)
    }

    fn raw(&mut self, csid: u32, type_id: u8, stream_id: u32, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.enc.write(csid, ts, type_id, stream_id, body, &mut out);
        out.to_vec()
    }

    /// Takes the server's output (after the handshake) and returns its messages.
    fn receive(&mut self, s: &mut ServerSession) -> Vec<RtmpMessage> {
        s.poll_transmit(&mut self.rx);
        let mut msgs = Vec::new();
        while let Some(m) = self
            .dec
            .decode(&mut self.rx)
            .expect("server output decodes")
        {
            msgs.push(m);
        }
        msgs
    }
}

fn s(v: &str) -> Amf0Value {
    Amf0Value::String(v.into())
}

fn n(v: f64) -> Amf0Value {
    Amf0Value::Number(v)
}

fn feed(s: &mut ServerSession, bytes: &[u8]) -> Result<Vec<SessionEvent>, SessionError> {
    let mut buf = BytesMut::from(bytes);
    s.handle_input(&mut buf)?;
    assert!(buf.is_empty() || s.is_paused(), "unconsumed input");
    Ok(events(s))
}

fn events(s: &mut ServerSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn command(m: &RtmpMessage) -> Command {
    assert_eq!(m.type_id, types::COMMAND_AMF0, "{m:?}");
    Command::parse(m.type_id, &m.payload, &AmfLimits::default()).expect("command parses")
}

fn status_code(m: &RtmpMessage) -> (String, String, String) {
    let c = command(m);
    assert_eq!(c.name, "onStatus");
    let info = &c.args[0];
    let get = |k| {
        info.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    (get("level"), get("code"), get("description"))
}

/// A session past the handshake and FFmpeg's connect, with the server's output drained.
fn connected() -> (ServerSession, Client) {
    let mut srv = session();
    feed(&mut srv, &client_handshake()).unwrap();
    let mut out = BytesMut::new();
    srv.poll_transmit(&mut out);
    assert_eq!(out.len(), S0S1S2);
    feed(&mut srv, FFMPEG_CONNECT).unwrap();
    let mut c = Client::new();
    let msgs = c.receive(&mut srv);
    assert_eq!(msgs.len(), 5);
    (srv, c)
}

/// createStream (transaction 4) and publish `test?tok=1` on the stream it returns.
fn publish_bytes(c: &mut Client) -> Vec<u8> {
    let mut b = c.command(
        3,
        0,
        &[s("releaseStream"), n(2.0), Amf0Value::Null, s("test")],
    );
    b.extend(c.command(3, 0, &[s("FCPublish"), n(3.0), Amf0Value::Null, s("test")]));
    b.extend(c.command(3, 0, &[s("createStream"), n(4.0), Amf0Value::Null]));
    b.extend(c.command(
        8,
        1,
        &[
            s("publish"),
            n(5.0),
            Amf0Value::Null,
            s("test?tok=1"),
            s("live"),
        ],
    ));
    b
}

fn publishing() -> (ServerSession, Client) {
    let (mut srv, mut c) = connected();
    let ev = feed(&mut srv, &publish_bytes(&mut c)).unwrap();
    assert!(matches!(ev.last(), Some(SessionEvent::PublishRequest(_))));
    srv.accept_publish(MessageStreamId(1));
    c.receive(&mut srv);
    (srv, c)
}

#[test]
fn ffmpeg_connect_gets_the_control_burst_then_result() {
    let mut srv = session();
    let hs = client_handshake();
    // C0C1 alone: S0S1S2 comes out, no event yet.
    assert!(feed(&mut srv, &hs[..1 + HANDSHAKE_SIZE])
        .unwrap()
        .is_empty());
    assert!(srv.is_handshaking());
    let ev = feed(&mut srv, &hs[1 + HANDSHAKE_SIZE..]).unwrap();
    assert_eq!(
        ev,
        vec![SessionEvent::HandshakeDone {
            kind: HandshakeKind::Simple
        }]
    );
    let mut out = BytesMut::new();
    srv.poll_transmit(&mut out);
    assert_eq!(out.len(), S0S1S2);

    let ev = feed(&mut srv, FFMPEG_CONNECT).unwrap();
    let [SessionEvent::Connected(info)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(info.app, "live");
    assert_eq!(info.tc_url.as_deref(), Some("rtmp://127.0.0.1:43277/live"));
    assert_eq!(
        info.flash_ver.as_deref(),
        Some("FMLE/3.0 (compatible; Lavf63.1.102)")
    );

    let mut out = BytesMut::new();
    srv.poll_transmit(&mut out);
    #[rustfmt::skip]
    let burst: &[u8] = &[
        // WindowAckSize 2500000: FMT 0 on csid 2.
        0x02, 0, 0, 0, 0, 0, 4, 5, 0, 0, 0, 0, 0x00, 0x26, 0x25, 0xA0,
        // SetPeerBandwidth 2500000 dynamic: FMT 1.
        0x42, 0, 0, 0, 0, 0, 5, 6, 0x00, 0x26, 0x25, 0xA0, 2,
        // SetChunkSize 4096: FMT 1.
        0x42, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0x10, 0,
        // StreamBegin 0: FMT 1.
        0x42, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(&out[..burst.len()], burst);
    // The _result follows on csid 3, FMT 0, message stream 0.
    assert_eq!(out[burst.len()], 0x03);

    let mut c = Client::new();
    c.rx = out;
    let msgs = c.receive(&mut srv);
    assert_eq!(msgs.len(), 5);
    let r = command(&msgs[4]);
    assert_eq!(r.name, "_result");
    assert_eq!(r.transaction_id, 1.0);
    assert!(r.object.get("fmsVer").is_some());
    // A legacy client gets no E-RTMP properties.
    assert!(r.object.get("videoFourCcInfoMap").is_none());
    let info = &r.args[0];
    assert_eq!(
        info.get("code").and_then(|v| v.as_str()),
        Some("NetConnection.Connect.Success")
    );
    assert_eq!(
        info.get("objectEncoding").and_then(|v| v.as_f64()),
        Some(0.0)
    );
    assert_eq!(srv.bytes_received(), (1 + 2 * HANDSHAKE_SIZE + 152) as u64);
}

#[test]
fn publish_sequence_and_media() {
    let (mut srv, mut c) = connected();
    let mut bytes = publish_bytes(&mut c);
    // Media sent right behind publish (before the answer) waits in the input buffer.
    let video = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3]);
    bytes.extend(c.raw(6, types::VIDEO, 1, 40, &video));
    let mut buf = BytesMut::from(&bytes[..]);
    srv.handle_input(&mut buf).unwrap();
    assert!(srv.is_paused());
    assert_eq!(buf.len(), 12 + video.len());
    let ev = events(&mut srv);
    let [SessionEvent::PublishRequest(req)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(req.stream_id, MessageStreamId(1));
    assert_eq!((req.app.as_str(), req.name.as_str()), ("live", "test"));
    assert_eq!(req.query.as_deref(), Some("tok=1"));
    assert_eq!(req.kind, PublishType::Live);

    let msgs = c.receive(&mut srv);
    let names: Vec<String> = msgs.iter().map(|m| command(m).name).collect();
    assert_eq!(names, ["_result", "onFCPublish", "_result", "_result"]);
    assert_eq!(command(&msgs[3]).args, vec![n(1.0)]);
    assert_eq!(command(&msgs[3]).transaction_id, 4.0);

    srv.accept_publish(MessageStreamId(1));
    let msgs = c.receive(&mut srv);
    assert_eq!(msgs[0].type_id, types::USER_CONTROL);
    assert_eq!(&msgs[0].payload[..], &[0, 0, 0, 0, 0, 1]);
    assert_eq!(msgs[1].stream_id, 1);
    let (level, code, _) = status_code(&msgs[1]);
    assert_eq!(
        (level.as_str(), code.as_str()),
        ("status", "NetStream.Publish.Start")
    );

    srv.handle_input(&mut buf).unwrap();
    assert!(buf.is_empty());
    let ev = events(&mut srv);
    let [SessionEvent::Media(m)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(m.kind, MediaKind::Video);
    assert_eq!(m.timestamp, 40);
    assert_eq!(m.payload, video);
}

#[test]
fn publish_types() {
    for (arg, kind) in [
        (Some("record"), PublishType::Record),
        (Some("append"), PublishType::Append),
        (Some("live"), PublishType::Live),
        (None, PublishType::Live),
    ] {
        let (mut srv, mut c) = connected();
        let mut b = c.command(3, 0, &[s("createStream"), n(2.0), Amf0Value::Null]);
        let mut args = vec![s("publish"), n(3.0), Amf0Value::Null, s("k")];
        args.extend(arg.map(s));
        b.extend(c.command(8, 1, &args));
        let ev = feed(&mut srv, &b).unwrap();
        let Some(SessionEvent::PublishRequest(r)) = ev.last() else {
            panic!("{ev:?}")
        };
        assert_eq!(r.kind, kind);
    }
}

#[test]
fn rejected_publish_gets_an_error_status() {
    let (mut srv, mut c) = connected();
    feed(&mut srv, &publish_bytes(&mut c)).unwrap();
    c.receive(&mut srv);
    srv.reject_publish(
        MessageStreamId(1),
        "NetStream.Publish.BadName",
        "live/test is already being published",
    );
    assert!(!srv.is_paused());
    let msgs = c.receive(&mut srv);
    let (level, code, description) = status_code(&msgs[0]);
    assert_eq!(level, "error");
    assert_eq!(code, "NetStream.Publish.BadName");
    assert_eq!(description, "live/test is already being published");
    // Media on the rejected stream is an error.
    let b = c.raw(6, types::VIDEO, 1, 0, &[0x17, 1]);
    assert!(matches!(
        feed(&mut srv, &b),
        Err(SessionError::MediaBeforePublish { stream_id: 1, .. })
    ));
}

/// The OBS mistake (an empty stream key) is refused by the session itself: the client is
/// told what the URL must look like, and the application gets `Refused` to log it.
#[test]
fn publish_without_a_stream_key_is_refused_and_reported() {
    let (mut srv, mut c) = connected();
    let mut b = c.command(3, 0, &[s("createStream"), n(4.0), Amf0Value::Null]);
    b.extend(c.command(
        8,
        1,
        &[s("publish"), n(5.0), Amf0Value::Null, s(""), s("live")],
    ));
    let ev = feed(&mut srv, &b).unwrap();
    let expected = "publish without a stream key: publish to rtmp://HOST/live/KEY \
                    (in OBS: Server rtmp://HOST/live, Stream Key KEY)";
    assert_eq!(
        ev,
        [SessionEvent::Refused {
            stream_id: MessageStreamId(1),
            command: "publish",
            code: "NetStream.Publish.BadName",
            description: expected.into(),
        }]
    );
    let msgs = c.receive(&mut srv);
    let (level, code, description) = status_code(msgs.last().expect("onStatus"));
    assert_eq!(level, "error");
    assert_eq!(code, "NetStream.Publish.BadName");
    assert_eq!(description, expected);
}

#[test]
fn metadata_is_sliced_after_set_data_frame() {
    let (mut srv, mut c) = publishing();
    let mut after = BytesMut::new();
    amf0::encode(&s("onMetaData"), &mut after);
    amf0::encode(
        &Amf0Value::EcmaArray(vec![
            ("width".into(), n(320.0)),
            ("height".into(), n(240.0)),
        ]),
        &mut after,
    );
    let mut body = BytesMut::new();
    amf0::encode(&s("@setDataFrame"), &mut body);
    body.extend_from_slice(&after);
    let b = c.raw(5, types::DATA_AMF0, 1, 0, &body);
    let ev = feed(&mut srv, &b).unwrap();
    assert_eq!(
        ev,
        vec![SessionEvent::Metadata {
            stream_id: MessageStreamId(1),
            timestamp: 0,
            data: after.clone().freeze(),
        }]
    );
    // A bare onMetaData is taken whole; other data messages are carried as such.
    let b = c.raw(5, types::DATA_AMF0, 1, 0, &after);
    let ev = feed(&mut srv, &b).unwrap();
    assert!(matches!(&ev[..], [SessionEvent::Metadata { data, .. }] if *data == after));
    let mut other = BytesMut::new();
    amf0::encode(&s("onTextData"), &mut other);
    let b = c.raw(5, types::DATA_AMF0, 1, 7, &other);
    assert_eq!(
        feed(&mut srv, &b).unwrap(),
        vec![SessionEvent::Data {
            stream_id: MessageStreamId(1),
            timestamp: 7,
            data: other.clone().freeze(),
        }]
    );
    // Wrapped in @setDataFrame, the wrapper is taken off.
    let mut wrapped = BytesMut::new();
    amf0::encode(&s("@setDataFrame"), &mut wrapped);
    wrapped.extend_from_slice(&other);
    let b = c.raw(5, types::DATA_AMF0, 1, 8, &wrapped);
    assert!(
        matches!(&feed(&mut srv, &b).unwrap()[..], [SessionEvent::Data { data, .. }] if *data == other)
    );
    // AMF3 flavour (type 15): format byte, then AMF0 values; re-encoded as AMF0.
    let mut amf3 = vec![0u8];
    amf3.extend_from_slice(&body);
    let b = c.raw(5, types::DATA_AMF3, 1, 0, &amf3);
    let ev = feed(&mut srv, &b).unwrap();
    assert!(matches!(&ev[..], [SessionEvent::Metadata { data, .. }] if *data == after));
}

#[test]
fn aggregate_messages_are_split() {
    let (mut srv, mut c) = publishing();
    let mut agg = Vec::new();
    for (t, ts, body) in [
        (9u8, 1000u32, &[0x17u8, 1, 0, 0, 0][..]),
        (8, 1020, &[0xAF, 1, 9]),
    ] {
        agg.push(t);
        agg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        agg.extend_from_slice(&ts.to_be_bytes()[1..]);
        agg.push((ts >> 24) as u8);
        agg.extend_from_slice(&[0, 0, 0]);
        agg.extend_from_slice(body);
        agg.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    let b = c.raw(6, types::AGGREGATE, 1, 5000, &agg);
    let ev = feed(&mut srv, &b).unwrap();
    let got: Vec<(MediaKind, u32, Vec<u8>)> = ev
        .iter()
        .map(|e| match e {
            SessionEvent::Media(m) => (m.kind, m.timestamp, m.payload.to_vec()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (MediaKind::Video, 5000, vec![0x17, 1, 0, 0, 0]),
            (MediaKind::Audio, 5020, vec![0xAF, 1, 9]),
        ]
    );
}

#[test]
fn unpublish_commands() {
    // FFmpeg ends with FCUnpublish then deleteStream.
    let (mut srv, mut c) = publishing();
    let mut b = c.command(
        3,
        0,
        &[s("FCUnpublish"), n(6.0), Amf0Value::Null, s("test")],
    );
    b.extend(c.command(3, 0, &[s("deleteStream"), n(7.0), Amf0Value::Null, n(1.0)]));
    let ev = feed(&mut srv, &b).unwrap();
    assert_eq!(
        ev,
        vec![SessionEvent::Unpublished {
            stream_id: MessageStreamId(1),
            reason: UnpublishReason::FcUnpublish
        }]
    );
    let msgs = c.receive(&mut srv);
    assert_eq!(status_code(&msgs[0]).1, "NetStream.Unpublish.Success");
    assert_eq!(command(&msgs[1]).name, "onFCUnpublish");
    assert_eq!(command(&msgs[2]).name, "_result");

    for (cmd, reason) in [
        ("deleteStream", UnpublishReason::DeleteStream),
        ("closeStream", UnpublishReason::CloseStream),
    ] {
        let (mut srv, mut c) = publishing();
        let b = if cmd == "deleteStream" {
            c.command(3, 0, &[s(cmd), n(6.0), Amf0Value::Null, n(1.0)])
        } else {
            c.command(8, 1, &[s(cmd), n(0.0), Amf0Value::Null])
        };
        let ev = feed(&mut srv, &b).unwrap();
        assert_eq!(
            ev,
            vec![SessionEvent::Unpublished {
                stream_id: MessageStreamId(1),
                reason
            }]
        );
    }
}

#[test]
fn play_pauses_and_exports_the_player_state() {
    let (mut srv, mut c) = connected();
    let mut b = c.command(3, 0, &[s("createStream"), n(2.0), Amf0Value::Null]);
    b.extend(c.command(
        3,
        0,
        &[
            s("receiveVideo"),
            n(0.0),
            Amf0Value::Null,
            Amf0Value::Boolean(false),
        ],
    ));
    b.extend(c.command(
        8,
        1,
        &[
            s("play"),
            n(0.0),
            Amf0Value::Null,
            s("cam?x=1"),
            n(-1.0),
            n(-1.0),
            Amf0Value::Boolean(false),
        ],
    ));
    // What FFmpeg sends after play: SetBufferLength. It must stay for the hub.
    let after = c.raw(
        2,
        types::USER_CONTROL,
        0,
        0,
        &[0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8],
    );
    b.extend_from_slice(&after);
    let mut buf = BytesMut::from(&b[..]);
    srv.handle_input(&mut buf).unwrap();
    assert_eq!(&buf[..], &after[..]);
    let ev = events(&mut srv);
    let [SessionEvent::PlayRequest(p)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!((p.name.as_str(), p.query.as_deref()), ("cam", Some("x=1")));
    assert_eq!((p.start, p.duration, p.reset), (-1.0, -1.0, false));

    // Not handed over before acceptance, nor with unsent output.
    let mut out = BytesMut::new();
    srv.poll_transmit(&mut out);
    srv.accept_play(MessageStreamId(1));
    srv.handle_input(&mut buf).unwrap();
    assert_eq!(&buf[..], &after[..], "input stays paused after accept_play");
    let state = srv
        .into_player_state(7, "127.0.0.1:5000".into(), "live/cam".into(), &buf)
        .unwrap();
    assert_eq!(state.stream_id, 1);
    assert_eq!(state.key, "live/cam");
    assert_eq!(state.in_chunk_size, 128);
    assert_eq!(state.out_chunk_size, 4096);
    assert_eq!(state.pending_input, after);
    assert!(!state.receive_video);
    assert!(state.receive_audio);
    assert_eq!(state.start, -1.0);
    assert!(!state.reset);
    assert!(state
        .in_chunk_streams
        .iter()
        .any(|cs| cs.csid == 8 && cs.stream_id == 1));

    // The hub continues decoding from the exported state.
    let mut dec = ChunkDecoder::from_state(
        ChunkLimits::default(),
        state.in_chunk_size,
        &state.in_chunk_streams,
    );
    let mut rest = BytesMut::from(&state.pending_input[..]);
    let m = dec.decode(&mut rest).unwrap().unwrap();
    assert_eq!(m.type_id, types::USER_CONTROL);
}

#[test]
fn handoff_needs_an_accepted_play_and_flushed_output() {
    let (mut srv, mut c) = connected();
    let mut b = c.command(3, 0, &[s("createStream"), n(2.0), Amf0Value::Null]);
    b.extend(c.command(8, 1, &[s("play"), n(0.0), Amf0Value::Null, s("cam")]));
    feed(&mut srv, &b).unwrap();
    srv.accept_play(MessageStreamId(1));
    // The createStream _result is still unsent.
    assert!(matches!(
        srv.into_player_state(1, String::new(), String::new(), &[]),
        Err(SessionError::NotHandoffReady { .. })
    ));
    let (srv, _) = connected();
    assert!(matches!(
        srv.into_player_state(1, String::new(), String::new(), &[]),
        Err(SessionError::NotHandoffReady { .. })
    ));
}

#[test]
fn rejected_play_gets_an_error_status() {
    let (mut srv, mut c) = connected();
    let mut b = c.command(3, 0, &[s("createStream"), n(2.0), Amf0Value::Null]);
    b.extend(c.command(8, 1, &[s("play"), n(0.0), Amf0Value::Null, s("cam")]));
    feed(&mut srv, &b).unwrap();
    c.receive(&mut srv);
    srv.reject_play(
        MessageStreamId(1),
        "NetStream.Play.Failed",
        "hub unreachable",
    );
    let msgs = c.receive(&mut srv);
    assert_eq!(status_code(&msgs[0]).1, "NetStream.Play.Failed");
    assert!(!srv.is_paused());
}

#[test]
fn protocol_violations_are_typed_errors() {
    // Commands before connect.
    let mut srv = session();
    feed(&mut srv, &client_handshake()).unwrap();
    let mut c = Client::new();
    let b = c.command(3, 0, &[s("createStream"), n(2.0), Amf0Value::Null]);
    let e = feed(&mut srv, &b).unwrap_err();
    assert_eq!(
        e,
        SessionError::NotConnected {
            command: "createStream".into()
        }
    );
    assert_eq!(e.layer(), "command");
    assert!(e.to_string().contains("before connect"));

    // Media before publish.
    let (mut srv, mut c) = connected();
    let b = c.raw(6, types::VIDEO, 1, 0, &[0x17, 0]);
    let e = feed(&mut srv, &b).unwrap_err();
    assert!(matches!(
        e,
        SessionError::MediaBeforePublish {
            type_id: 9,
            stream_id: 1
        }
    ));

    // Publish on a stream never created.
    let (mut srv, mut c) = connected();
    let b = c.command(8, 5, &[s("publish"), n(3.0), Amf0Value::Null, s("x")]);
    assert!(matches!(
        feed(&mut srv, &b),
        Err(SessionError::UnknownMessageStream { stream_id: 5, .. })
    ));

    // Play on a connection that publishes.
    let (mut srv, mut c) = publishing();
    let mut b = c.command(3, 0, &[s("createStream"), n(9.0), Amf0Value::Null]);
    b.extend(c.command(8, 2, &[s("play"), n(0.0), Amf0Value::Null, s("x")]));
    assert_eq!(feed(&mut srv, &b), Err(SessionError::PlayOnPublisher));

    // A createStream flood: the ninth call gets an _error and ends the connection.
    let (mut srv, mut c) = connected();
    let mut b = Vec::new();
    for tid in 0..1000 {
        b.extend(c.command(
            3,
            0,
            &[s("createStream"), n(2.0 + f64::from(tid)), Amf0Value::Null],
        ));
    }
    let e = feed(&mut srv, &b).unwrap_err();
    assert_eq!(e, SessionError::TooManyStreams { max: 8 });
    assert_eq!(e.layer(), "command");
    let replies = c.receive(&mut srv);
    assert_eq!(replies.len(), 9);
    assert_eq!(command(&replies[8]).name, "_error");
}

#[test]
fn a_connection_that_asked_to_play_stays_a_player() {
    let refused = || {
        let (mut srv, mut c) = connected();
        let mut b = c.command(3, 0, &[s("createStream"), n(2.0), Amf0Value::Null]);
        b.extend(c.command(8, 1, &[s("play"), n(0.0), Amf0Value::Null, s("cam")]));
        feed(&mut srv, &b).unwrap();
        srv.reject_play(MessageStreamId(1), "NetStream.Play.Failed", "no");
        (srv, c)
    };
    let (mut srv, mut c) = refused();
    let b = c.raw(4, types::AUDIO, 1, 0, &[0xAF, 1]);
    let e = feed(&mut srv, &b).unwrap_err();
    assert_eq!(e, SessionError::MediaFromPlayer { type_id: 8 });
    assert!(e.to_string().contains("from a player"));
    let (mut srv, mut c) = refused();
    let b = c.command(8, 1, &[s("publish"), n(3.0), Amf0Value::Null, s("x")]);
    assert_eq!(feed(&mut srv, &b), Err(SessionError::PublishOnPlayer));
}

#[test]
fn errors_reach_the_client() {
    let (mut srv, mut c) = connected();
    let b = c.command(3, 0, &[s("someCall"), n(5.0), Amf0Value::Null]);
    assert!(feed(&mut srv, &b).unwrap().is_empty());
    let msgs = c.receive(&mut srv);
    let e = command(&msgs[0]);
    assert_eq!(e.name, "_error");
    assert_eq!(e.transaction_id, 5.0);
    assert_eq!(
        e.args[0].get("description").and_then(|v| v.as_str()),
        Some("unknown command \"someCall\"")
    );
    // Without a transaction id nothing is answered.
    let b = c.command(3, 0, &[s("someNotice"), n(0.0), Amf0Value::Null]);
    feed(&mut srv, &b).unwrap();
    assert!(c.receive(&mut srv).is_empty());
    // getStreamLength answers 0.
    let b = c.command(
        3,
        0,
        &[s("getStreamLength"), n(6.0), Amf0Value::Null, s("x")],
    );
    feed(&mut srv, &b).unwrap();
    let r = command(&c.receive(&mut srv)[0]);
    assert_eq!((r.name.as_str(), r.args.clone()), ("_result", vec![n(0.0)]));
    // A second connect is refused without closing.
    let b = c.command(
        3,
        0,
        &[s("connect"), n(7.0), Amf0Value::object([("app", s("x"))])],
    );
    feed(&mut srv, &b).unwrap();
    assert_eq!(command(&c.receive(&mut srv)[0]).name, "_error");
}

#[test]
fn ping_and_acknowledgements() {
    let (mut srv, mut c) = connected();
    let b = c.raw(
        2,
        types::USER_CONTROL,
        0,
        0,
        &[0, 6, 0x12, 0x34, 0x56, 0x78],
    );
    feed(&mut srv, &b).unwrap();
    let mut out = BytesMut::new();
    srv.poll_transmit(&mut out);
    // PingResponse echoes the timestamp (FMT 3: same length and type as StreamBegin).
    assert_eq!(&out[..], &[0xC2, 0, 7, 0x12, 0x34, 0x56, 0x78]);

    // A 1000-byte window: more than that was received already, so an acknowledgement
    // goes out at once, then one each time 1000 more bytes are in.
    let b = c.raw(2, types::WINDOW_ACK_SIZE, 0, 0, &1000u32.to_be_bytes());
    feed(&mut srv, &b).unwrap();
    let ack = |m: &RtmpMessage| {
        (m.type_id == types::ACKNOWLEDGEMENT)
            .then(|| u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
    };
    let first: Vec<u32> = c.receive(&mut srv).iter().filter_map(ack).collect();
    assert_eq!(first, vec![srv.bytes_received() as u32]);
    let mut acks = first;
    for _ in 0..30 {
        let b = c.command(
            3,
            0,
            &[s("noop"), n(0.0), Amf0Value::Null, s(&"x".repeat(90))],
        );
        feed(&mut srv, &b).unwrap();
        let got: Vec<u32> = c.receive(&mut srv).iter().filter_map(ack).collect();
        for seq in &got {
            assert_eq!(u64::from(*seq), srv.bytes_received());
        }
        acks.extend(got);
    }
    assert!(acks.len() >= 3, "{acks:?}");
    for w in acks.windows(2) {
        // Each message is under 200 bytes, so the window is crossed by less than that.
        assert!((1000..1200).contains(&(w[1] - w[0])), "{acks:?}");
    }
}

#[test]
fn erpmt_connect_negotiation() {
    let obj = Amf0Value::object([
        ("app", s("live")),
        ("objectEncoding", n(3.0)),
        (
            "fourCcList",
            Amf0Value::StrictArray(vec![s("hvc1"), s("av01"), s("Opus"), s("xxxx")]),
        ),
        ("videoFourCcInfoMap", Amf0Value::object([("*", n(4.0))])),
        ("capsEx", n(15.0)),
    ]);
    let (_, _, answer) = connect_with(SessionConfig::default(), obj);
    let r = Command::parse(types::COMMAND_AMF0, &answer, &AmfLimits::default()).unwrap();
    assert_eq!(
        r.object.get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![
            s("hvc1"),
            s("av01"),
            s("Opus")
        ]))
    );
    let video = r.object.get("videoFourCcInfoMap").unwrap();
    for cc in ["avc1", "hvc1", "av01", "vp09", "vp08", "vvc1"] {
        assert_eq!(video.get(cc), Some(&n(4.0)), "{cc}");
    }
    let audio = r.object.get("audioFourCcInfoMap").unwrap();
    assert_eq!(audio, &Amf0Value::object([("Opus", n(4.0))]));
    // Multitrack, ModEx and nano offsets; not Reconnect: this session does not send it.
    assert_eq!(r.object.get("capsEx"), Some(&n(14.0)));
    assert_eq!(r.args[0].get("objectEncoding"), Some(&n(3.0)));
}

/// Connects a client whose `connect` command object is `obj` to a session made with
/// `config`; returns the session, the client and the `connect` answer's payload.
fn connect_with(config: SessionConfig, obj: Amf0Value) -> (ServerSession, Client, Bytes) {
    let mut srv = ServerSession::new(config, [7; RANDOM_SIZE], 0);
    feed(&mut srv, &client_handshake()).unwrap();
    let mut c = Client::new();
    let b = c.command(3, 0, &[s("connect"), n(1.0), obj]);
    feed(&mut srv, &b).unwrap();
    let mut tx = BytesMut::new();
    srv.poll_transmit(&mut tx);
    c.rx = tx.split_off(S0S1S2);
    let msgs = c.receive(&mut srv);
    let result = msgs.last().unwrap().payload.clone();
    (srv, c, result)
}

fn reconnecting() -> SessionConfig {
    SessionConfig {
        reconnect: true,
        ..SessionConfig::default()
    }
}

/// The AMF0 bytes of the `capsEx` property with value `v`: name length, name, number
/// marker, big-endian double.
fn caps_ex_property(double: [u8; 8]) -> Vec<u8> {
    let mut b = vec![0x00, 0x06];
    b.extend_from_slice(b"capsEx");
    b.push(0x00);
    b.extend_from_slice(&double);
    b
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn caps_ex_answer_is_what_both_sides_announced() {
    // 15.0, 14.0, 1.0 and 2.0 as IEEE 754 doubles.
    const FIFTEEN: [u8; 8] = [0x40, 0x2E, 0, 0, 0, 0, 0, 0];
    const FOURTEEN: [u8; 8] = [0x40, 0x2C, 0, 0, 0, 0, 0, 0];
    const ONE: [u8; 8] = [0x3F, 0xF0, 0, 0, 0, 0, 0, 0];
    const TWO: [u8; 8] = [0x40, 0x00, 0, 0, 0, 0, 0, 0];
    let obj = |caps: f64| Amf0Value::object([("app", s("live")), ("capsEx", n(caps))]);

    // Everything announced, to a server that sends reconnect requests: all four bits.
    let (srv, _, answer) = connect_with(reconnecting(), obj(15.0));
    assert!(
        contains(&answer, &caps_ex_property(FIFTEEN)),
        "{answer:02x?}"
    );
    assert!(srv.can_reconnect());
    assert_eq!(srv.connect_info().unwrap().caps_ex, 15);

    // The same client, to a server that does not send them: no Reconnect.
    let (srv, _, answer) = connect_with(SessionConfig::default(), obj(15.0));
    assert!(
        contains(&answer, &caps_ex_property(FOURTEEN)),
        "{answer:02x?}"
    );
    assert!(!srv.can_reconnect());

    // Only Reconnect announced: only Reconnect answered (no ModEx claimed toward it).
    let (srv, _, answer) = connect_with(reconnecting(), obj(1.0));
    assert!(contains(&answer, &caps_ex_property(ONE)), "{answer:02x?}");
    assert!(srv.can_reconnect());

    // Multitrack only (and an unknown bit): multitrack only, Reconnect not claimed.
    let (mut srv, mut c, answer) = connect_with(reconnecting(), obj(f64::from(0x22)));
    assert!(contains(&answer, &caps_ex_property(TWO)), "{answer:02x?}");
    assert!(!srv.can_reconnect());
    assert!(!srv.request_reconnect(None, Some("maintenance")));
    assert!(c.receive(&mut srv).is_empty());

    // A legacy client: no capsEx at all in the answer, and no request ever.
    let (mut srv, mut c, answer) =
        connect_with(reconnecting(), Amf0Value::object([("app", s("live"))]));
    assert!(!contains(&answer, b"capsEx"), "{answer:02x?}");
    assert!(!srv.request_reconnect(Some("rtmp://elsewhere/live"), None));
    assert!(c.receive(&mut srv).is_empty());
}

/// What a player announced in `connect` decides what the hub sends it: unknown FourCCs
/// only when named, multitrack packets only with the Multitrack bit, ModEx only with the
/// ModEx bit (the plain form otherwise); a legacy player gets known codecs only.
#[test]
fn announced_codecs_decide_what_a_player_takes() {
    let frame = PacketKind::Frame {
        keyframe: true,
        disposable: false,
        cts: 0,
    };
    let ipcm = Codec::Unknown {
        video: false,
        fourcc: *b"ipcm",
    };
    let other = Codec::Unknown {
        video: true,
        fourcc: *b"xyz1",
    };
    let caps_of = |obj: Amf0Value| {
        let (srv, _, _) = connect_with(SessionConfig::default(), obj);
        let info = srv.connect_info().unwrap().clone();
        (
            info.announced.clone(),
            PlayerCaps::new(info.caps_ex, info.announced),
        )
    };

    // fourCcList names both kinds; capsEx Multitrack without ModEx.
    let (announced, caps) = caps_of(Amf0Value::object([
        ("app", s("live")),
        (
            "fourCcList",
            Amf0Value::StrictArray(vec![s("hvc1"), s("ipcm"), s("toolong")]),
        ),
        ("capsEx", n(2.0)),
    ]));
    let set = FourCcSet {
        any: false,
        codes: vec![*b"hvc1", *b"ipcm"],
    };
    assert_eq!(announced.video.as_ref(), Some(&set));
    assert_eq!(announced.audio.as_ref(), Some(&set));
    assert!(caps.takes(&Needs::media(ipcm, 1, frame, 0)));
    assert!(caps.takes(&Needs::media(Codec::H265, 0, frame, 0)));
    assert!(!caps.takes(&Needs::media(other, 0, frame, 0)));
    assert!(!caps.takes(&Needs::media(Codec::Av1, 0, frame, 0)));
    // Legacy codec tags need no announcement.
    assert!(caps.takes(&Needs::media(Codec::H264, 0, frame, 0)));
    assert!(caps.takes(&Needs::media(Codec::Aac, 0, PacketKind::Config, 0)));
    // A nanosecond offset: the plain form, as the player did not announce ModEx.
    let needs = Needs::media(Codec::H265, 0, frame, 500);
    assert!(needs.modex);
    assert_eq!(caps.pick(&needs, &"modex", &"plain"), Some(&"plain"));

    // The info maps win over the list; a codec it can only encode is not taken.
    let (announced, caps) = caps_of(Amf0Value::object([
        ("app", s("live")),
        ("fourCcList", Amf0Value::StrictArray(vec![s("hvc1")])),
        ("videoFourCcInfoMap", Amf0Value::object([("*", n(4.0))])),
        (
            "audioFourCcInfoMap",
            Amf0Value::object([("Opus", n(1.0)), ("mp4a", n(2.0))]),
        ),
        ("capsEx", n(6.0)),
    ]));
    assert!(announced.video.as_ref().is_some_and(|v| v.any));
    assert!(caps.takes(&Needs::media(other, 1, frame, 0)));
    assert!(caps.takes(&Needs::media(Codec::Opus, 1, frame, 0)));
    assert!(!caps.takes(&Needs::media(ipcm, 0, frame, 0)));
    assert!(!caps.takes(&Needs::media(Codec::Aac, 1, frame, 0)));
    let needs = Needs::media(Codec::Opus, 0, frame, 500);
    assert_eq!(caps.pick(&needs, &"modex", &"plain"), Some(&"modex"));

    // A legacy player: known codecs on the default track, never an unknown FourCC nor
    // another track, and no ModEx.
    let (announced, caps) = caps_of(Amf0Value::object([("app", s("live"))]));
    assert_eq!(announced, Announced::default());
    assert!(caps.takes(&Needs::media(Codec::H265, 0, frame, 0)));
    assert!(caps.takes(&Needs::media(Codec::Opus, 0, PacketKind::ChannelConfig, 0)));
    assert!(!caps.takes(&Needs::media(ipcm, 0, frame, 0)));
    assert!(!caps.takes(&Needs::media(Codec::H264, 1, frame, 0)));
    let needs = Needs::media(Codec::H264, 0, frame, 7);
    assert_eq!(caps.pick(&needs, &"modex", &"plain"), Some(&"plain"));
    // Legacy FLV codecs carry no track and no ModEx.
    let needs = Needs::media(Codec::LegacyAudio { header: 0x2e }, 1, frame, 7);
    assert_eq!(needs, Needs::default());
}

/// `onStatus`, transaction 0, null, then the info object: level, code, and the optional
/// description and tcUrl, written out byte by byte.
fn reconnect_request_golden(description: Option<&str>, tc_url: Option<&str>) -> Vec<u8> {
    let mut b = vec![0x02, 0x00, 0x08];
    b.extend_from_slice(b"onStatus");
    b.extend_from_slice(&[0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x03]);
    let mut prop = |name: &str, value: &str| {
        b.extend_from_slice(&(name.len() as u16).to_be_bytes());
        b.extend_from_slice(name.as_bytes());
        b.push(0x02);
        b.extend_from_slice(&(value.len() as u16).to_be_bytes());
        b.extend_from_slice(value.as_bytes());
    };
    prop("level", "status");
    prop("code", "NetConnection.Connect.ReconnectRequest");
    if let Some(d) = description {
        prop("description", d);
    }
    if let Some(u) = tc_url {
        prop("tcUrl", u);
    }
    b.extend_from_slice(&[0x00, 0x00, 0x09]);
    b
}

#[test]
fn reconnect_request_bytes() {
    let obj = Amf0Value::object([("app", s("live")), ("capsEx", n(1.0))]);
    let (mut srv, mut c, _) = connect_with(reconnecting(), obj);
    let url = "rtmp://127.0.0.1:1935/live";
    assert!(srv.request_reconnect(Some(url), Some("The server is restarting.")));
    assert!(srv.request_reconnect(None, None));
    let msgs = c.receive(&mut srv);
    assert_eq!(msgs.len(), 2);
    for m in &msgs {
        assert_eq!((m.type_id, m.stream_id), (types::COMMAND_AMF0, 0));
    }
    let golden = reconnect_request_golden(Some("The server is restarting."), Some(url));
    assert_eq!(&msgs[0].payload[..], &golden[..]);
    assert_eq!(
        &msgs[1].payload[..],
        &reconnect_request_golden(None, None)[..]
    );
}

#[test]
fn deep_amf_is_an_amf_error() {
    let mut srv = session();
    feed(&mut srv, &client_handshake()).unwrap();
    let mut body = vec![0x02, 0, 7];
    body.extend_from_slice(b"connect");
    body.extend_from_slice(&[0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
    for _ in 0..100 {
        body.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
    }
    body.push(0x05);
    let mut c = Client::new();
    let b = c.raw(3, types::COMMAND_AMF0, 0, 0, &body);
    let e = feed(&mut srv, &b).unwrap_err();
    assert_eq!(e.layer(), "amf");
    assert!(e.to_string().contains("deeper"), "{e}");
}

#[test]
fn chunk_errors_name_their_layer() {
    let (mut srv, mut c) = connected();
    let b = c.raw(2, types::SET_CHUNK_SIZE, 0, 0, &0u32.to_be_bytes());
    let e = feed(&mut srv, &b).unwrap_err();
    assert_eq!(e.layer(), "chunk");
    assert!(e.to_string().contains("chunk size"), "{e}");
    let mut srv = session();
    let e = feed(&mut srv, &[6]).unwrap_err();
    assert_eq!(e.layer(), "handshake");
}

/// The whole publisher conversation, fed at every split point, gives the same events and
/// the same output as fed at once.
#[test]
fn split_at_every_offset() {
    let mut c = Client::new();
    let mut all = client_handshake();
    all.extend_from_slice(FFMPEG_CONNECT);
    // The connect used csid 3 with 128-byte chunks; continue with the same encoder state
    // as FFmpeg would: a fresh FMT 0 on csid 3 is always valid.
    c.enc
        .write(3, 0, types::COMMAND_AMF0, 0, &[], &mut BytesMut::new());
    let mut rest = publish_bytes(&mut c);
    rest.extend(c.raw(6, types::VIDEO, 1, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3, 4]));
    rest.extend(c.raw(4, types::AUDIO, 1, 0, &[0xAF, 1, 0x21]));
    rest.extend(c.command(3, 0, &[s("deleteStream"), n(9.0), Amf0Value::Null, n(1.0)]));
    all.extend_from_slice(&rest);

    let run = |split: usize| {
        let mut srv = session();
        let mut buf = BytesMut::new();
        let mut evs = Vec::new();
        let mut out = BytesMut::new();
        for part in [&all[..split], &all[split..]] {
            buf.extend_from_slice(part);
            loop {
                srv.handle_input(&mut buf).unwrap();
                let new = events(&mut srv);
                let mut decided = false;
                for e in &new {
                    if let SessionEvent::PublishRequest(r) = e {
                        srv.accept_publish(r.stream_id);
                        decided = true;
                    }
                }
                evs.extend(new);
                if !decided {
                    break;
                }
            }
        }
        srv.poll_transmit(&mut out);
        assert!(buf.is_empty());
        (evs, out)
    };
    let whole = run(all.len());
    assert_eq!(whole.0.len(), 6, "{:?}", whole.0);
    for split in 0..all.len() {
        assert_eq!(run(split), whole, "split at {split}");
    }
}

#[test]
fn refused_connect_gets_error_with_description_and_event() {
    let mut srv = session();
    srv.refuse_connect("too many failed attempts");
    feed(&mut srv, &client_handshake()).unwrap();
    let mut out = BytesMut::new();
    srv.poll_transmit(&mut out);
    let ev = feed(&mut srv, FFMPEG_CONNECT).unwrap();
    assert_eq!(
        ev,
        vec![SessionEvent::ConnectRejected {
            description: "too many failed attempts".into()
        }]
    );
    let mut c = Client::new();
    let msgs = c.receive(&mut srv);
    // Only the `_error`: no window, bandwidth or chunk size burst for a refused client.
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let cmd = command(&msgs[0]);
    assert_eq!(cmd.name, "_error");
    let info = &cmd.args[0];
    assert_eq!(
        info.get("code").and_then(|v| v.as_str()),
        Some("NetConnection.Connect.Rejected")
    );
    assert_eq!(
        info.get("description").and_then(|v| v.as_str()),
        Some("too many failed attempts")
    );
}

#[test]
fn connect_app_query_is_kept_apart() {
    // OBS sends the server URL's query in `app`: `rtmp://host/live?token=X`.
    let mut srv = session();
    feed(&mut srv, &client_handshake()).unwrap();
    let mut c = Client::new();
    let obj = Amf0Value::Object(vec![
        ("app".into(), s("live?token=X%2F1")),
        ("tcUrl".into(), s("rtmp://127.0.0.1/live?token=X%2F1")),
    ]);
    let bytes = c.command(3, 0, &[s("connect"), n(1.0), obj]);
    let ev = feed(&mut srv, &bytes).unwrap();
    let [SessionEvent::Connected(info)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(info.app, "live");
    assert_eq!(info.app_query.as_deref(), Some("token=X%2F1"));
}
