//! Malformed and hostile input from the byte-level client. For each case: the server closes
//! that connection within a deadline, logs one warn line naming the connection, the layer
//! and the reason, stays up, and a neighbour stream (FFmpeg publisher and player started
//! before the attack) keeps flowing.

use std::time::{Duration, Instant};

use e2e::deadline_in;
use e2e::flv;
use e2e::neighbour::{Neighbourhood, NEIGHBOUR};
use e2e::rtmp_client::{amf0, chunk, msg_type, Amf0, RtmpClient};
use e2e::server::is_warn;
use e2e::{Server, ServerOpts};

/// Runs `attack` next to a live neighbour stream and checks the outcome. `reasons` are
/// alternative words (lowercase) of which the warn line must contain one.
fn attack(opts: ServerOpts, reasons: &[&str], attack: impl FnOnce(&Server) -> RtmpClient) {
    let mut hood = Neighbourhood::start(opts);
    let marks = hood.server.log_marks();
    let mut client = attack(&hood.server);
    if let Err(e) = client.expect_closed(Instant::now() + Duration::from_secs(10)) {
        panic!(
            "server did not close the connection: {e}\n{}",
            hood.server.describe()
        );
    }
    let line = hood.server.wait_log(marks, Duration::from_secs(10), |l| {
        let lower = l.to_lowercase();
        is_warn(l) && reasons.iter().any(|r| lower.contains(r))
    });
    let Some((which, line)) = line else {
        panic!(
            "no warn line naming any of {reasons:?} after the attack\n{}",
            hood.server.describe()
        );
    };
    assert!(
        line.contains("conn_id"),
        "{which:?} warn line does not name the connection: {line}"
    );
    assert!(
        line.contains("layer"),
        "{which:?} warn line does not name the layer: {line}"
    );

    hood.assert_flowing();
    hood.finish();
}

/// Handshake, then a valid `connect`.
fn connected(server: &Server) -> RtmpClient {
    let mut c = RtmpClient::connect_tcp(server.addr()).expect("tcp connect");
    c.handshake().expect("handshake");
    c.connect("live").expect("connect");
    c
}

fn partial_c0c1() -> Vec<u8> {
    let mut bytes = vec![3u8];
    bytes.extend((0..700).map(|i| (i * 7) as u8));
    bytes
}

#[test]
fn truncated_handshake() {
    attack(ServerOpts::default(), &["handshake"], |server| {
        let mut c = RtmpClient::connect_tcp(server.addr()).expect("tcp connect");
        c.send_raw(&partial_c0c1()).expect("send");
        c.shutdown_write();
        c
    });
}

#[test]
fn stalled_handshake_times_out() {
    let opts = ServerOpts::default().ingest(&["--handshake-timeout", "1s"]);
    attack(opts, &["handshake", "timeout", "timed out"], |server| {
        let mut c = RtmpClient::connect_tcp(server.addr()).expect("tcp connect");
        c.send_raw(&partial_c0c1()).expect("send");
        c
    });
}

#[test]
fn idle_connection_times_out() {
    let opts = ServerOpts::default().ingest(&["--idle-timeout", "1s"]);
    attack(opts, &["idle", "timeout", "timed out"], connected);
}

#[test]
fn chunk_size_zero() {
    attack(
        ServerOpts::default(),
        &["chunk size", "chunksize", "chunk_size"],
        |server| {
            let mut c = connected(server);
            let _ = c.send_message(2, msg_type::SET_CHUNK_SIZE, 0, 0, &0u32.to_be_bytes());
            c
        },
    );
}

#[test]
fn chunk_size_with_bit_31() {
    attack(
        ServerOpts::default(),
        &["chunk size", "chunksize", "chunk_size"],
        |server| {
            let mut c = connected(server);
            let size = 0x8000_1000u32.to_be_bytes();
            let _ = c.send_message(2, msg_type::SET_CHUNK_SIZE, 0, 0, &size);
            c
        },
    );
}

#[test]
fn oversized_message() {
    let opts = ServerOpts::default().ingest(&["--max-message-size", "1048576"]);
    let reasons = ["16777215", "exceed", "too large", "too big", "limit", "max"];
    attack(opts, &reasons, |server| {
        let mut c = connected(server);
        let mut bytes = Vec::new();
        chunk::fmt0_header(6, msg_type::VIDEO, 1, 0, 0xff_ffff, &mut bytes);
        bytes.extend([0x17; 100]);
        let _ = c.send_raw(&bytes);
        c
    });
}

const UNKNOWN_CSID: [&str; 5] = ["csid", "chunk stream", "fmt", "previous", "unknown"];

#[test]
fn fmt1_chunk_on_unknown_csid() {
    attack(ServerOpts::default(), &UNKNOWN_CSID, |server| {
        let mut c = connected(server);
        let mut bytes = Vec::new();
        chunk::basic_header(1, 10, &mut bytes);
        bytes.extend([0, 0, 40, 0, 0, 10, msg_type::VIDEO]);
        bytes.extend([0x27; 10]);
        let _ = c.send_raw(&bytes);
        c
    });
}

#[test]
fn fmt3_chunk_on_unknown_csid() {
    attack(ServerOpts::default(), &UNKNOWN_CSID, |server| {
        let mut c = connected(server);
        let mut bytes = Vec::new();
        chunk::basic_header(3, 11, &mut bytes);
        bytes.extend([0x27; 10]);
        let _ = c.send_raw(&bytes);
        c
    });
}

#[test]
fn too_many_chunk_streams() {
    let opts = ServerOpts::default().ingest(&["--max-chunk-streams", "16"]);
    attack(opts, &["chunk stream", "csid", "streams"], |server| {
        let mut c = connected(server);
        // Each csid gets a message that is started and never finished, so all stay live.
        let mut bytes = Vec::new();
        for csid in 10..74 {
            // One full first chunk (the default 128-byte chunk size) of a 1000-byte message.
            chunk::fmt0_header(csid, msg_type::VIDEO, 1, 0, 1000, &mut bytes);
            bytes.extend([0x27; 128]);
        }
        let _ = c.send_raw(&bytes);
        c
    });
}

#[test]
fn deeply_nested_amf() {
    attack(
        ServerOpts::default(),
        &["depth", "nest", "deep"],
        |server| {
            let mut c = RtmpClient::connect_tcp(server.addr()).expect("tcp connect");
            c.handshake().expect("handshake");
            let body = amf0::deeply_nested_command("connect", 5_000);
            let _ = c.send_message(3, msg_type::COMMAND, 0, 0, &body);
            c
        },
    );
}

#[test]
fn publish_without_connect() {
    attack(ServerOpts::default(), &["connect"], |server| {
        let mut c = RtmpClient::connect_tcp(server.addr()).expect("tcp connect");
        c.handshake().expect("handshake");
        let _ = c.send_command(
            0,
            &[Amf0::str("createStream"), Amf0::Number(2.0), Amf0::Null],
        );
        let _ = c.send_command(
            1,
            &[
                Amf0::str("publish"),
                Amf0::Number(3.0),
                Amf0::Null,
                Amf0::str("sneaky"),
                Amf0::str("live"),
            ],
        );
        c
    });
}

#[test]
fn media_from_a_player() {
    attack(
        ServerOpts::default(),
        &["media", "video", "audio", "player"],
        |server| {
            let (mut c, sid) = RtmpClient::open(server.addr(), "live").expect("player connects");
            c.play(sid, NEIGHBOUR).expect("play");
            // Be sure the hub serves this player before it misbehaves.
            c.wait_message(deadline_in(10.0), |m| m.is_media())
                .expect("player gets media");
            let frame = flv::avc_frame(true, 0, &[&[0x65, 0x88]]);
            let _ = c.send_video(sid, 0, &frame);
            c
        },
    );
}

/// One data message of 1000 strict arrays of 4000 nulls (4 MB on the wire, four million
/// values): each array is small, the message is over its one budget of 65536 values.
#[test]
fn amf_bomb_in_one_message() {
    attack(ServerOpts::default(), &["items"], |server| {
        let mut c = connected(server);
        let mut array = vec![0x0A];
        array.extend(4000u32.to_be_bytes());
        array.extend([0x05; 4000]);
        let body = array.repeat(1000);
        let _ = c.set_chunk_size(1 << 20);
        let _ = c.send_message(4, msg_type::DATA, 0, 0, &body);
        c
    });
}

/// A `connect` in AMF3 (type 17) whose command object is an array of 60 references to
/// an array of one 15000-byte string and 59 references to that string: 16 KB that would
/// decode to 54 MB. The command budget (64 KiB, with the reference tables and every copy
/// charged) ends it.
#[test]
fn amf3_reference_bomb() {
    attack(ServerOpts::default(), &["budget"], |server| {
        let mut c = RtmpClient::connect_tcp(server.addr()).expect("tcp connect");
        c.handshake().expect("handshake");
        let mut body = vec![0x00];
        body.extend(amf0::encode_all(&[Amf0::str("connect"), Amf0::Number(1.0)]));
        // avmplus marker; the outer array (object 0): 60 dense elements (U29 121), no assoc.
        body.extend([0x11, 0x09, 0x79, 0x01]);
        // Its first element, object 1: an array of 60 dense elements...
        body.extend([0x09, 0x79, 0x01]);
        // ...the string, inline, 15000 bytes (U29 30001), then 59 references to it.
        body.extend([0x06, 0x81, 0xEA, 0x31]);
        body.extend([b'z'; 15000]);
        for _ in 0..59 {
            body.extend([0x06, 0x00]);
        }
        // The other 59 elements of the outer array: references to object 1.
        for _ in 0..59 {
            body.extend([0x09, 0x02]);
        }
        let _ = c.send_message(3, 17, 0, 0, &body);
        c
    });
}

/// createStream over and over: the ninth is refused and the connection closed.
#[test]
fn create_stream_flood() {
    attack(ServerOpts::default(), &["createstream"], |server| {
        let mut c = connected(server);
        let mut bytes = Vec::new();
        for tid in 0..10_000 {
            let body = amf0::encode_all(&[
                Amf0::str("createStream"),
                Amf0::Number(f64::from(tid) + 2.0),
                Amf0::Null,
            ]);
            chunk::encode_message((3, msg_type::COMMAND, 0, 0), &body, 128, &mut bytes);
        }
        let _ = c.send_raw(&bytes);
        c
    });
}

/// A connected client that trickles one byte of a message that never completes, every
/// 200 ms: bytes keep coming, whole messages do not, so it is idle.
#[test]
fn trickled_bytes_are_idle() {
    let opts = ServerOpts::default().ingest(&["--idle-timeout", "2s"]);
    attack(opts, &["idle timeout"], |server| {
        let mut c = connected(server);
        // A 1000-byte data message, sent one byte per step: never complete in time.
        let mut bytes = Vec::new();
        chunk::fmt0_header(4, msg_type::DATA, 0, 0, 1000, &mut bytes);
        bytes.extend([0x05; 100]);
        for b in bytes {
            if c.send_raw(&[b]).is_err() {
                break;
            }
            if c.next_message(Instant::now() + Duration::from_millis(200))
                .is_err_and(|e| !matches!(e, e2e::rtmp_client::ClientError::Timeout))
            {
                break;
            }
        }
        c
    });
}

/// A connected client that keeps sending whole messages (acknowledgements) but never
/// publishes or plays is closed at the setup deadline.
#[test]
fn no_publish_or_play_within_the_setup_deadline() {
    let opts = ServerOpts::default().ingest(&["--setup-timeout", "3s"]);
    attack(opts, &["setup timeout"], |server| {
        let mut c = connected(server);
        for _ in 0..100 {
            if c.send_message(2, msg_type::ACK, 0, 0, &1u32.to_be_bytes())
                .is_err()
            {
                break;
            }
            if c.next_message(Instant::now() + Duration::from_millis(100))
                .is_err_and(|e| !matches!(e, e2e::rtmp_client::ClientError::Timeout))
            {
                break;
            }
        }
        c
    });
}
