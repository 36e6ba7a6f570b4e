//! Message bodies: control, user control, commands (AMF0 and AMF3 flavours), data and
//! aggregate messages; golden and negative vectors.

use bytes::{Bytes, BytesMut};
use proto::rtmp::amf0::{Amf0Value, AmfError, AmfLimits};
use proto::rtmp::amf3::Amf3Value;
use proto::rtmp::chunk::RtmpMessage;
use proto::rtmp::message::{
    parse_aggregate, parse_data, types, Command, ControlMessage, MessageError, UserControl,
};

fn body(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    f(&mut b);
    b.to_vec()
}

fn amf_str(v: &mut Vec<u8>, s: &str) {
    v.push(0x02);
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
}

fn key(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
}

#[test]
fn control_messages_golden() {
    let cases = [
        (ControlMessage::SetChunkSize(4096), 1u8, vec![0, 0, 0x10, 0]),
        (ControlMessage::Abort(5), 2, vec![0, 0, 0, 5]),
        (
            ControlMessage::Acknowledgement(0x0102_0304),
            3,
            vec![1, 2, 3, 4],
        ),
        (
            ControlMessage::WindowAckSize(2_500_000),
            5,
            vec![0x00, 0x26, 0x25, 0xA0],
        ),
        (
            ControlMessage::SetPeerBandwidth {
                size: 2_500_000,
                limit_type: 2,
            },
            6,
            vec![0x00, 0x26, 0x25, 0xA0, 2],
        ),
    ];
    for (m, t, bytes) in cases {
        assert_eq!(m.type_id(), t);
        assert_eq!(body(|b| m.write_body(b)), bytes);
        assert_eq!(ControlMessage::parse(t, &bytes), Ok(m));
    }
}

#[test]
fn control_messages_negative() {
    assert_eq!(
        ControlMessage::parse(1, &[0, 0, 0, 0]),
        Err(MessageError::InvalidChunkSize { got: 0 })
    );
    assert_eq!(
        ControlMessage::parse(1, &[0x80, 0, 0, 0x80]),
        Err(MessageError::InvalidChunkSize { got: 0x8000_0080 })
    );
    assert_eq!(
        ControlMessage::parse(3, &[0, 0, 1]),
        Err(MessageError::Truncated {
            type_id: 3,
            need: 4,
            got: 3
        })
    );
    assert_eq!(
        ControlMessage::parse(6, &[0, 0, 0, 1]),
        Err(MessageError::Truncated {
            type_id: 6,
            need: 5,
            got: 4
        })
    );
    assert_eq!(
        ControlMessage::parse(9, &[0, 0, 0, 1]),
        Err(MessageError::UnexpectedType { type_id: 9 })
    );
}

#[test]
fn user_control_golden() {
    let cases = [
        (UserControl::StreamBegin(1), vec![0, 0, 0, 0, 0, 1]),
        (UserControl::StreamEof(1), vec![0, 1, 0, 0, 0, 1]),
        (UserControl::StreamDry(1), vec![0, 2, 0, 0, 0, 1]),
        (
            UserControl::SetBufferLength {
                stream_id: 1,
                millis: 3000,
            },
            vec![0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8],
        ),
        (UserControl::StreamIsRecorded(1), vec![0, 4, 0, 0, 0, 1]),
        (
            UserControl::PingRequest(0xDEAD),
            vec![0, 6, 0, 0, 0xDE, 0xAD],
        ),
        (
            UserControl::PingResponse(0xDEAD),
            vec![0, 7, 0, 0, 0xDE, 0xAD],
        ),
        (
            UserControl::Other {
                event_type: 0x1F,
                data: Bytes::from_static(&[9, 9]),
            },
            vec![0, 0x1F, 9, 9],
        ),
    ];
    for (ev, bytes) in cases {
        assert_eq!(body(|b| ev.write_body(b)), bytes);
        assert_eq!(UserControl::parse(&Bytes::from(bytes)), Ok(ev));
    }
    assert!(matches!(
        UserControl::parse(&Bytes::from_static(&[0])),
        Err(MessageError::Truncated { .. })
    ));
    assert!(matches!(
        UserControl::parse(&Bytes::from_static(&[0, 3, 0, 0, 0, 1, 0])),
        Err(MessageError::Truncated { need: 10, .. })
    ));
}

/// `connect` as FFmpeg sends it to play, including the E-RTMP fourCcList.
fn ffmpeg_play_connect() -> Vec<u8> {
    let mut v = Vec::new();
    amf_str(&mut v, "connect");
    v.extend_from_slice(&[0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
    v.push(0x03);
    key(&mut v, "app");
    amf_str(&mut v, "live");
    key(&mut v, "flashVer");
    amf_str(&mut v, "LNX 9,0,124,2");
    key(&mut v, "tcUrl");
    amf_str(&mut v, "rtmp://127.0.0.1:1935/live");
    key(&mut v, "fpad");
    v.extend_from_slice(&[0x01, 0x00]);
    key(&mut v, "capabilities");
    v.extend_from_slice(&[0x00, 0x40, 0x2E, 0, 0, 0, 0, 0, 0]); // 15.0
    key(&mut v, "fourCcList");
    v.extend_from_slice(&[0x0A, 0, 0, 0, 2]);
    amf_str(&mut v, "hvc1");
    amf_str(&mut v, "av01");
    v.extend_from_slice(&[0x00, 0x00, 0x09]);
    v
}

#[test]
fn command_ffmpeg_connect() {
    let bytes = ffmpeg_play_connect();
    let cmd = Command::parse(types::COMMAND_AMF0, &bytes, &AmfLimits::default()).unwrap();
    assert_eq!(cmd.name, "connect");
    assert_eq!(cmd.transaction_id, 1.0);
    assert_eq!(
        cmd.object.get("app").and_then(Amf0Value::as_str),
        Some("live")
    );
    assert_eq!(
        cmd.object.get("fpad").and_then(Amf0Value::as_bool),
        Some(false)
    );
    assert_eq!(
        cmd.object.get("capabilities").and_then(Amf0Value::as_f64),
        Some(15.0)
    );
    assert_eq!(
        cmd.object.get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![
            Amf0Value::String("hvc1".into()),
            Amf0Value::String("av01".into())
        ]))
    );
    assert!(cmd.args.is_empty());
    assert_eq!(body(|b| cmd.write_body(b)), bytes);
}

#[test]
fn command_amf3_flavour() {
    // Type 17: format byte 0, AMF0 name and id, then the command object behind the
    // avmplus marker, which is converted to its AMF0 shape.
    let mut v = vec![0x00];
    amf_str(&mut v, "connect");
    v.extend_from_slice(&[0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&[0x11, 0x0A, 0x0B, 0x01, 0x07, b'a', b'p', b'p', 0x06, 0x09]);
    v.extend_from_slice(b"live");
    v.push(0x1D);
    v.extend_from_slice(b"objectEncoding");
    v.extend_from_slice(&[0x04, 0x03, 0x01]);
    v.extend_from_slice(&[0x11, 0x0C, 0x03, 0xFF]); // a ByteArray arg stays AMF3
    let cmd = Command::parse(types::COMMAND_AMF3, &v, &AmfLimits::default()).unwrap();
    assert_eq!(cmd.name, "connect");
    assert_eq!(
        cmd.object,
        Amf0Value::object([
            ("app", Amf0Value::String("live".into())),
            ("objectEncoding", Amf0Value::Number(3.0)),
        ])
    );
    assert_eq!(
        cmd.args,
        vec![Amf0Value::Avmplus(Amf3Value::ByteArray(vec![0xFF]))]
    );
    // Without the format byte, too.
    let cmd2 = Command::parse(types::COMMAND_AMF3, &v[1..], &AmfLimits::default()).unwrap();
    assert_eq!(cmd, cmd2);
}

#[test]
fn command_defaults_and_negatives() {
    let mut v = Vec::new();
    amf_str(&mut v, "FCPublish");
    let cmd = Command::parse(20, &v, &AmfLimits::default()).unwrap();
    assert_eq!((cmd.transaction_id, &cmd.object), (0.0, &Amf0Value::Null));

    assert_eq!(
        Command::parse(20, &[0x05], &AmfLimits::default()),
        Err(MessageError::MissingCommandName)
    );
    assert_eq!(
        Command::parse(20, &[], &AmfLimits::default()),
        Err(MessageError::MissingCommandName)
    );
    assert_eq!(
        Command::parse(20, &[0x02, 0x00], &AmfLimits::default()),
        Err(MessageError::Amf(AmfError::Truncated))
    );
    assert_eq!(
        Command::parse(18, &v, &AmfLimits::default()),
        Err(MessageError::UnexpectedType { type_id: 18 })
    );
    // Deeply nested command object: bounded.
    let mut deep = v.clone();
    deep.extend_from_slice(&[0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    for _ in 0..100 {
        deep.extend_from_slice(&[0x03, 0x00, 0x01, b'x']);
    }
    assert_eq!(
        Command::parse(20, &deep, &AmfLimits::default()),
        Err(MessageError::Amf(AmfError::DepthExceeded { max: 32 }))
    );
}

#[test]
fn on_status_golden() {
    let cmd = Command::on_status("status", "NetStream.Play.Start", "Started");
    let mut v = Vec::new();
    amf_str(&mut v, "onStatus");
    v.extend_from_slice(&[0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x03]);
    key(&mut v, "level");
    amf_str(&mut v, "status");
    key(&mut v, "code");
    amf_str(&mut v, "NetStream.Play.Start");
    key(&mut v, "description");
    amf_str(&mut v, "Started");
    v.extend_from_slice(&[0x00, 0x00, 0x09]);
    assert_eq!(body(|b| cmd.write_body(b)), v);
    assert_eq!(Command::parse(20, &v, &AmfLimits::default()).unwrap(), cmd);
}

#[test]
fn data_messages() {
    let mut v = Vec::new();
    amf_str(&mut v, "@setDataFrame");
    amf_str(&mut v, "onMetaData");
    v.extend_from_slice(&[0x08, 0, 0, 0, 1]);
    key(&mut v, "width");
    v.extend_from_slice(&[0x00, 0x40, 0x94, 0, 0, 0, 0, 0, 0]); // 1280
    v.extend_from_slice(&[0x00, 0x00, 0x09]);
    let vals = parse_data(types::DATA_AMF0, &v, &AmfLimits::default()).unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!(vals[0].as_str(), Some("@setDataFrame"));
    assert_eq!(
        vals[2].get("width").and_then(Amf0Value::as_f64),
        Some(1280.0)
    );
    let mut v15 = vec![0x00];
    v15.extend_from_slice(&v);
    assert_eq!(
        parse_data(types::DATA_AMF3, &v15, &AmfLimits::default()).unwrap(),
        vals
    );
    assert_eq!(
        parse_data(20, &v, &AmfLimits::default()),
        Err(MessageError::UnexpectedType { type_id: 20 })
    );
}

fn sub(type_id: u8, ts: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![type_id];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(&ts.to_be_bytes()[1..]);
    v.push((ts >> 24) as u8);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(body);
    v.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    v
}

#[test]
fn aggregate_golden() {
    let mut p = sub(9, 0x0100_0000, &[0x17, 1]);
    p.extend(sub(8, 0x0100_0015, &[0xAF, 1, 2]));
    let agg = RtmpMessage {
        csid: 6,
        timestamp: 500,
        type_id: types::AGGREGATE,
        stream_id: 1,
        payload: Bytes::from(p),
    };
    let mut out = Vec::new();
    parse_aggregate(&agg, &mut out).unwrap();
    assert_eq!(
        out,
        vec![
            RtmpMessage {
                csid: 6,
                timestamp: 500,
                type_id: 9,
                stream_id: 1,
                payload: Bytes::from_static(&[0x17, 1]),
            },
            RtmpMessage {
                csid: 6,
                timestamp: 521,
                type_id: 8,
                stream_id: 1,
                payload: Bytes::from_static(&[0xAF, 1, 2]),
            },
        ]
    );
    // Sub-message bodies are slices of the aggregate, not copies.
    let base = agg.payload.as_ptr() as usize;
    assert_eq!(out[0].payload.as_ptr() as usize, base + 11);
}

#[test]
fn aggregate_negative() {
    let m = |p: Vec<u8>| RtmpMessage {
        csid: 6,
        timestamp: 0,
        type_id: types::AGGREGATE,
        stream_id: 1,
        payload: Bytes::from(p),
    };
    let mut out = Vec::new();
    let whole = sub(9, 0, &[1, 2, 3]);
    for cut in [1, 10, 11, 13, whole.len() - 1] {
        assert!(
            matches!(
                parse_aggregate(&m(whole[..cut].to_vec()), &mut out),
                Err(MessageError::AggregateTruncated { offset: 0 })
            ),
            "cut {cut}"
        );
    }
    assert_eq!(
        parse_aggregate(&m(sub(22, 0, &[])), &mut out),
        Err(MessageError::NestedAggregate)
    );
    let mut not_agg = m(whole);
    not_agg.type_id = 9;
    assert_eq!(
        parse_aggregate(&not_agg, &mut out),
        Err(MessageError::UnexpectedType { type_id: 9 })
    );
}
