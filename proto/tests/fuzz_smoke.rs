//! Runs every fuzz target body (proto/fuzz/src/lib.rs) on a few thousand deterministic
//! inputs: random bytes and mutations of valid seeds. Not a substitute for
//! `cargo +nightly fuzz run`, but it keeps the targets compiling and catches shallow bugs
//! on stable.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

use bytes::BytesMut;
use proto::rtmp::amf0::{self, Amf0Value};
use proto::rtmp::amf3::{self, Amf3Value};
use proto::rtmp::chunk::{write_fmt0, ChunkEncoder};
use proto::rtmp::handshake::{ClientHandshake, RANDOM_SIZE};
use proto::rtmp::message::{Command, UserControl};
use proto::rtmp::session::SessionEvent;

fn run(target: fn(&[u8]), seeds: &[Vec<u8>], iterations: usize, seed: u64) {
    testenv::fuzz::run_seeded(target, seeds, iterations, seed);
}

fn amf0_seeds() -> Vec<Vec<u8>> {
    let values = [
        Amf0Value::object([
            ("app", Amf0Value::String("live".into())),
            ("tcUrl", Amf0Value::String("rtmp://h/live".into())),
            ("audioCodecs", Amf0Value::Number(3575.0)),
            ("fpad", Amf0Value::Boolean(false)),
        ]),
        Amf0Value::EcmaArray(vec![("duration".into(), Amf0Value::Number(0.0))]),
        Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Undefined]),
        Amf0Value::Date {
            millis: 1.0e12,
            tz: 0,
        },
        Amf0Value::TypedObject {
            class: "C".into(),
            props: vec![("x".into(), Amf0Value::LongString("y".into()))],
        },
        Amf0Value::Avmplus(amf3_seed_value()),
    ];
    values
        .iter()
        .map(|v| {
            let mut b = BytesMut::new();
            amf0::encode(v, &mut b);
            b.to_vec()
        })
        .collect()
}

fn amf3_seed_value() -> Amf3Value {
    Amf3Value::Object {
        class: String::new(),
        dynamic: true,
        sealed: vec![("a".into(), Amf3Value::Integer(-5))],
        dynamic_props: vec![(
            "b".into(),
            Amf3Value::Array {
                assoc: vec![("k".into(), Amf3Value::String("v".into()))],
                dense: vec![Amf3Value::Double(1.5), Amf3Value::ByteArray(vec![1, 2])],
            },
        )],
    }
}

#[test]
fn fuzz_amf0() {
    run(targets::amf0, &amf0_seeds(), 4000, 1);
}

#[test]
fn fuzz_amf3() {
    let mut seeds = Vec::new();
    for v in [
        amf3_seed_value(),
        Amf3Value::VectorInt {
            fixed: false,
            items: vec![1, -1],
        },
        Amf3Value::Dictionary {
            weak_keys: false,
            entries: vec![(Amf3Value::String("k".into()), Amf3Value::Null)],
        },
    ] {
        let mut b = BytesMut::new();
        amf3::encode(&v, &mut b);
        seeds.push(b.to_vec());
    }
    // A string reference and an object reference, hand-written.
    seeds.push(vec![
        0x09, 0x05, 0x03, b'a', 0x06, 0x00, 0x01, 0x0A, 0x0B, 0x01, 0x01, 0x0A, 0x02,
    ]);
    run(targets::amf3, &seeds, 4000, 2);
}

#[test]
fn fuzz_chunk() {
    let mut seeds = Vec::new();
    let mut enc = ChunkEncoder::new();
    let mut b = BytesMut::new();
    enc.write(
        3,
        0,
        20,
        0,
        &[2, 0, 1, b'x', 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
        &mut b,
    );
    enc.write(4, 40, 9, 1, &[0x17; 300], &mut b);
    enc.write(4, 80, 9, 1, &[0x27; 300], &mut b);
    enc.write(4, 120, 9, 1, &[0x27; 300], &mut b);
    enc.write(300, 0x0100_0000, 8, 1, &[0xAF; 200], &mut b);
    enc.write(2, 0, 1, 0, &[0, 0, 0, 64], &mut b);
    seeds.push(b.to_vec());
    let mut b = BytesMut::new();
    write_fmt0(70000, 0x0FFF_FFFF, 22, 1, &[9; 140], 64, &mut b);
    seeds.push(b.to_vec());
    run(targets::chunk, &seeds, 4000, 3);
}

#[test]
fn fuzz_handshake() {
    let mut seeds = Vec::new();
    for digest in [false, true] {
        let mut c = ClientHandshake::new([5; RANDOM_SIZE], 9, digest);
        let mut b = BytesMut::new();
        c.poll_transmit(&mut b);
        b.extend_from_slice(&[0u8; 1536]);
        b.extend_from_slice(&[0xC2, 0]);
        seeds.push(b.to_vec());
    }
    run(targets::handshake, &seeds, 2000, 4);
}

#[test]
fn fuzz_command() {
    let mut b = vec![0u8];
    let mut body = BytesMut::new();
    Command::on_status("status", "NetStream.Publish.Start", "ok").write_body(&mut body);
    b.extend_from_slice(&body);
    let mut seeds = vec![b.clone()];
    b[0] = 1;
    b.insert(1, 0);
    seeds.push(b);
    run(targets::command, &seeds, 4000, 5);
}

#[test]
fn fuzz_client_session() {
    // A server's answers to connect and createStream, then Publish.Start.
    let mut enc = ChunkEncoder::new();
    let mut b = vec![0x20u8];
    let mut out = BytesMut::new();
    for (tid, args) in [(1.0, vec![]), (4.0, vec![Amf0Value::Number(1.0)])] {
        let mut body = BytesMut::new();
        Command {
            name: "_result".into(),
            transaction_id: tid,
            object: Amf0Value::Null,
            args,
        }
        .write_body(&mut body);
        enc.write(3, 0, 20, 0, &body, &mut out);
    }
    let mut body = BytesMut::new();
    Command::on_status("status", "NetStream.Publish.Start", "ok").write_body(&mut body);
    enc.write(3, 0, 20, 1, &body, &mut out);
    b.extend_from_slice(&out);
    let mut play = b.clone();
    play[0] = 0x21;
    run(targets::client_session, &[b, play], 3000, 6);
}

#[test]
fn fuzz_ts_demux() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ts");
    let seeds: Vec<Vec<u8>> = ["h264_aac.ts", "hevc_opus.ts"]
        .iter()
        .map(|f| std::fs::read(format!("{dir}/{f}")).expect("TS vector"))
        .collect();
    for s in &seeds {
        let mut r = proto::ts::FrameReader::default();
        r.handle_input(s);
        r.finish();
        let frames = std::iter::from_fn(|| r.poll_event())
            .filter(|e| matches!(e, proto::ts::TsEvent::Frame(_)))
            .count();
        assert!(frames > 20, "a seed gives {frames} frames");
    }
    run(targets::ts_demux, &seeds, 600, 7);
}

/// Every datagram of the libsrt captures in tests/vectors/srt.
fn srt_captured() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/srt");
    let mut out = Vec::new();
    for name in ["plain", "aes16", "rotate24"] {
        let text = std::fs::read_to_string(format!("{dir}/{name}.txt")).unwrap();
        for line in text.lines().take(40) {
            let hex = &line[2..];
            out.push(
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn fuzz_srt_packet() {
    run(targets::srt_packet, &srt_captured(), 6000, 16);
}

#[test]
fn fuzz_srt_handshake() {
    let seeds: Vec<Vec<u8>> = srt_captured()
        .into_iter()
        .filter(|d| d[0] == 0x80 && d[1] == 0)
        .flat_map(|d| (0u8..8).map(move |m| [&[m][..], &d].concat()))
        .collect();
    run(targets::srt_handshake, &seeds, 3000, 17);
}

#[test]
fn fuzz_srt_connection() {
    let mut stream = Vec::new();
    for d in srt_captured().into_iter().skip(4) {
        stream.extend_from_slice(&(d.len() as u16).to_be_bytes());
        stream.extend_from_slice(&d);
    }
    run(targets::srt_connection, &[stream], 300, 18);
}

#[test]
fn fuzz_flv() {
    let seeds = vec![
        // AVC sequence header, AAC sequence header (legacy tags).
        vec![0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1e],
        vec![0xaf, 0, 0x12, 0x10],
        // E-RTMP: AV1 SequenceStart (av1C), AV1 MPEG2TSSequenceStart (descriptor).
        b"\x90av01\x81\x00\x0c\x00".to_vec(),
        b"\x95av01\x80\x04\x81\x00\x0c\xe0".to_vec(),
    ];
    run(targets::flv, &seeds, 4000, 22);
}

#[test]
fn fuzz_flv_file() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/flv");
    let seeds: Vec<Vec<u8>> = ["av1_opus.flv", "h263.flv"]
        .iter()
        .map(|f| std::fs::read(format!("{dir}/{f}")).expect("FLV vector")[13..].to_vec())
        .collect();
    run(targets::flv_file, &seeds, 2000, 8);
}

#[test]
fn fuzz_player_session() {
    // What players send after play: a ping request, receiveVideo, pause, deleteStream.
    let mut enc = ChunkEncoder::new();
    let mut out = BytesMut::new();
    let mut body = BytesMut::new();
    UserControl::PingRequest(7).write_body(&mut body);
    enc.write(2, 0, 4, 0, &body, &mut out);
    for (name, arg) in [
        ("receiveVideo", Amf0Value::Boolean(false)),
        ("pause", Amf0Value::Boolean(true)),
        ("seek", Amf0Value::Number(0.0)),
        ("deleteStream", Amf0Value::Number(1.0)),
    ] {
        let mut body = BytesMut::new();
        Command {
            name: name.into(),
            transaction_id: 0.0,
            object: Amf0Value::Null,
            args: vec![arg],
        }
        .write_body(&mut body);
        enc.write(8, 0, 20, 1, &body, &mut out);
    }
    let mut whole = vec![0u8];
    whole.extend_from_slice(&out);
    let mut split = vec![0x45u8];
    split.extend_from_slice(&out);
    run(targets::player_session, &[whole, split], 3000, 9);
}

/// Every input a fuzzer ever crashed on, kept in `tests/fuzz_regressions/` as
/// `TARGET-what.bin`, runs through its target again.
#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression dir") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).expect("regression input");
        let target = name.split('-').next().unwrap_or_default();
        let run: fn(&[u8]) = match target {
            "chunk" => targets::chunk,
            "amf0" => targets::amf0,
            "amf3" => targets::amf3,
            "command" => targets::command,
            "handshake" => targets::handshake,
            "client_session" => targets::client_session,
            "ts_demux" => targets::ts_demux,
            "srt_packet" => targets::srt_packet,
            "srt_handshake" => targets::srt_handshake,
            "srt_connection" => targets::srt_connection,
            "flv" => targets::flv,
            "flv_file" => targets::flv_file,
            "player_session" => targets::player_session,
            "server_session" => targets::server_session,
            other => panic!("{name}: no fuzz target {other:?}"),
        };
        run(&data);
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

/// connect, createStream, publish, metadata, video; then createStream and play: what a
/// publisher and a player send after the handshake, as one chunk stream.
fn session_seed() -> Vec<u8> {
    let command = |name: &str, tid: f64, object: Amf0Value, args: Vec<Amf0Value>| {
        let mut b = BytesMut::new();
        Command {
            name: name.into(),
            transaction_id: tid,
            object,
            args,
        }
        .write_body(&mut b);
        b
    };
    let s = |v: &str| Amf0Value::String(v.into());
    let mut enc = ChunkEncoder::new();
    let mut b = BytesMut::new();
    let app = Amf0Value::object([("app", s("live")), ("tcUrl", s("rtmp://h/live"))]);
    enc.write(3, 0, 20, 0, &command("connect", 1.0, app, vec![]), &mut b);
    enc.write(
        3,
        0,
        20,
        0,
        &command("createStream", 2.0, Amf0Value::Null, vec![]),
        &mut b,
    );
    let publish = command("publish", 3.0, Amf0Value::Null, vec![s("key"), s("live")]);
    enc.write(8, 0, 20, 1, &publish, &mut b);
    let mut meta = BytesMut::new();
    amf0::encode(&s("@setDataFrame"), &mut meta);
    amf0::encode(&s("onMetaData"), &mut meta);
    amf0::encode(
        &Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(64.0))]),
        &mut meta,
    );
    enc.write(4, 0, 18, 1, &meta, &mut b);
    enc.write(6, 0, 9, 1, &[0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1e], &mut b);
    enc.write(
        6,
        40,
        9,
        1,
        &[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88],
        &mut b,
    );
    enc.write(2, 0, 4, 0, &[0, 6, 0, 0, 0, 9], &mut b);
    let mut seeds = vec![[&[0u8][..], &b[..]].concat()];
    let mut b = BytesMut::new();
    let app = Amf0Value::object([("app", s("live"))]);
    enc.write(3, 0, 20, 0, &command("connect", 1.0, app, vec![]), &mut b);
    enc.write(
        3,
        0,
        20,
        0,
        &command("createStream", 2.0, Amf0Value::Null, vec![]),
        &mut b,
    );
    let play = command("play", 3.0, Amf0Value::Null, vec![s("key")]);
    enc.write(8, 0, 20, 1, &play, &mut b);
    seeds.push([&[3u8][..], &b[..]].concat());
    seeds.concat()
}

#[test]
fn fuzz_server_session() {
    let seed = session_seed();
    let mut input = vec![3u8];
    input.extend_from_slice(&[0u8; 2 * 1536]);
    input.extend_from_slice(&seed[1..]);
    let (events, error) = targets::run_server_session([&input[..]]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::PublishRequest(_)))
            && events.iter().any(|e| matches!(e, SessionEvent::Media(_))),
        "the seed publishes: {events:?} {error:?}"
    );
    run(
        targets::server_session,
        &[seed.clone(), seed[..seed.len() / 2].to_vec()],
        1500,
        8,
    );
}

#[test]
fn fuzz_websocket() {
    // A masked ping, a binary frame with a 16-bit length, a close: the first byte of each
    // seed is also the split chooser.
    let mut binary = vec![0x82, 0xfe, 0x00, 0x80, 1, 2, 3, 4];
    binary.extend_from_slice(&[7; 128]);
    let seeds = vec![
        vec![
            0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
        binary,
        vec![0x88, 0x82, 9, 9, 9, 9, 0x0a, 0xe1],
    ];
    run(targets::websocket, &seeds, 4000, 21);
}

#[test]
fn fuzz_ipc() {
    use proto::ipc::{encode, Header, Role, FORMAT_VERSION};
    let mut hello = BytesMut::new();
    encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Subscriber,
            name: "fuzz".into(),
        },
        &[],
        &mut hello,
    );
    run(targets::ipc, &[hello.to_vec()], 3000, 22);
}
