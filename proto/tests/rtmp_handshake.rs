//! Handshake: client against server in memory for both kinds, digests checked with an
//! independent HMAC computation, negative vectors, split input, and FFmpeg as a real
//! digest-handshake client when it is installed.

use bytes::BytesMut;
use hmac::{Hmac, Mac};
use proto::rtmp::amf0::AmfLimits;
use proto::rtmp::chunk::{ChunkDecoder, ChunkLimits};
use proto::rtmp::handshake::{
    ClientHandshake, HandshakeError, HandshakeKind, HandshakeStatus, ServerHandshake, RANDOM_SIZE,
};
use proto::rtmp::message::Command;
use sha2::Sha256;

const FP30: &[u8] = b"Genuine Adobe Flash Player 001";
const FMS36: &[u8] = b"Genuine Adobe Flash Media Server 001";
const TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];

fn hmac(key: &[u8], data: &[&[u8]]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for d in data {
        m.update(d);
    }
    m.finalize().into_bytes().into()
}

fn full(text: &[u8]) -> Vec<u8> {
    [text, &TAIL[..]].concat()
}

fn offset(block: &[u8], schema: u8) -> usize {
    let base = if schema == 0 { 8 } else { 772 };
    block[base..base + 4]
        .iter()
        .map(|&b| b as usize)
        .sum::<usize>()
        % 728
        + base
        + 4
}

/// The digest in `block` at `schema` if it verifies under `key`.
fn digest_at(block: &[u8], schema: u8, key: &[u8]) -> Option<[u8; 32]> {
    let o = offset(block, schema);
    let d = hmac(key, &[&block[..o], &block[o + 32..]]);
    (block[o..o + 32] == d).then_some(d)
}

fn random(seed: u8) -> [u8; RANDOM_SIZE] {
    let mut r = [0u8; RANDOM_SIZE];
    for (i, b) in r.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    r
}

/// Runs a client and a server against each other; returns (S0S1S2, C0C1, C2, kind).
fn pair(digest: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>, Option<HandshakeKind>) {
    let mut client = ClientHandshake::new(random(1), 1000, digest);
    let mut server = ServerHandshake::new(random(2), 2000);
    let mut c0c1 = BytesMut::new();
    client.poll_transmit(&mut c0c1);
    assert_eq!(c0c1.len(), 1537);
    let c0c1_copy = c0c1.to_vec();
    assert_eq!(
        server.handle_input(&mut c0c1).unwrap(),
        HandshakeStatus::NeedMore
    );
    let mut s = BytesMut::new();
    server.poll_transmit(&mut s);
    assert_eq!(s.len(), 1 + 2 * 1536);
    let s_copy = s.to_vec();
    assert_eq!(client.handle_input(&mut s).unwrap(), HandshakeStatus::Done);
    let mut c2 = BytesMut::new();
    client.poll_transmit(&mut c2);
    assert_eq!(c2.len(), 1536);
    let c2_copy = c2.to_vec();
    c2.extend_from_slice(&[0xAB, 0xCD]);
    assert_eq!(server.handle_input(&mut c2).unwrap(), HandshakeStatus::Done);
    assert_eq!(&c2[..], &[0xAB, 0xCD], "bytes after C2 stay in the buffer");
    let mut nothing = BytesMut::new();
    server.poll_transmit(&mut nothing);
    assert!(nothing.is_empty());
    (s_copy, c0c1_copy, c2_copy, server.kind())
}

#[test]
fn simple_handshake_in_memory() {
    let (s, c, c2, kind) = pair(false);
    assert_eq!(kind, Some(HandshakeKind::Simple));
    // C1: time, zero, random.
    assert_eq!(c[0], 3);
    assert_eq!(&c[1..9], &[0, 0, 0x03, 0xE8, 0, 0, 0, 0]);
    assert_eq!(&c[9..], &random(1)[..]);
    // S1: time, zero, random; S2 echoes C1; C2 echoes S1.
    assert_eq!(s[0], 3);
    assert_eq!(&s[1..9], &[0, 0, 0x07, 0xD0, 0, 0, 0, 0]);
    assert_eq!(&s[9..1537], &random(2)[..]);
    assert_eq!(&s[1537..], &c[1..]);
    assert_eq!(&c2[..], &s[1..1537]);
}

#[test]
fn digest_handshake_in_memory() {
    let (s, c, c2, kind) = pair(true);
    assert_eq!(kind, Some(HandshakeKind::Digest { schema: 0 }));
    let c1 = &c[1..];
    let s1 = &s[1..1537];
    let s2 = &s[1537..];
    assert_ne!(&c1[4..8], &[0, 0, 0, 0], "digest C1 carries a version");
    let c1_digest = digest_at(c1, 0, FP30).expect("C1 digest at schema 0");
    assert_ne!(&s1[4..8], &[0, 0, 0, 0], "digest S1 carries a version");
    let s1_digest = digest_at(s1, 0, FMS36).expect("S1 digest at the client's schema");
    let k = hmac(&full(FMS36), &[&c1_digest]);
    assert_eq!(&s2[1504..], &hmac(&k, &[&s2[..1504]]));
    let k = hmac(&full(FP30), &[&s1_digest]);
    assert_eq!(&c2[1504..], &hmac(&k, &[&c2[..1504]]));
}

#[test]
fn digest_schema_1_is_recognized() {
    let mut c1 = vec![0u8; 1536];
    c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
    c1[8..].copy_from_slice(&random(9));
    let o = offset(&c1, 1);
    let d = hmac(FP30, &[&c1[..o], &c1[o + 32..]]);
    c1[o..o + 32].copy_from_slice(&d);
    let mut buf = BytesMut::from(&[&[3u8][..], &c1].concat()[..]);
    let mut server = ServerHandshake::new(random(2), 7);
    server.handle_input(&mut buf).unwrap();
    assert_eq!(server.kind(), Some(HandshakeKind::Digest { schema: 1 }));
    let mut s = BytesMut::new();
    server.poll_transmit(&mut s);
    let s1 = &s[1..1537];
    assert!(digest_at(s1, 1, FMS36).is_some());
    let k = hmac(&full(FMS36), &[&d]);
    assert_eq!(&s[1537 + 1504..], &hmac(&k, &[&s[1537..1537 + 1504]]));
}

#[test]
fn bad_digest_falls_back_to_simple() {
    let mut c1 = vec![0u8; 1536];
    c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
    c1[8..].copy_from_slice(&random(9));
    let mut buf = BytesMut::from(&[&[3u8][..], &c1].concat()[..]);
    let mut server = ServerHandshake::new(random(2), 7);
    server.handle_input(&mut buf).unwrap();
    assert_eq!(server.kind(), Some(HandshakeKind::Simple));
    let mut s = BytesMut::new();
    server.poll_transmit(&mut s);
    assert_eq!(&s[1537..], &c1[..]);
}

#[test]
fn version_other_than_3_is_rejected() {
    for v in [0u8, 6, 8, 0x16, 0x47] {
        let mut server = ServerHandshake::new(random(2), 7);
        let mut buf = BytesMut::from(&[v][..]);
        assert_eq!(
            server.handle_input(&mut buf),
            Err(HandshakeError::UnsupportedVersion { got: v })
        );
        let mut client = ClientHandshake::new(random(1), 1, true);
        let mut buf = BytesMut::from(&[v][..]);
        assert_eq!(
            client.handle_input(&mut buf),
            Err(HandshakeError::UnsupportedVersion { got: v })
        );
    }
}

#[test]
fn truncated_input_needs_more() {
    let mut server = ServerHandshake::new(random(2), 7);
    let mut buf = BytesMut::from(&[3u8; 1536][..]);
    assert_eq!(
        server.handle_input(&mut buf).unwrap(),
        HandshakeStatus::NeedMore
    );
    assert_eq!(buf.len(), 1536, "nothing consumed before C0C1 is complete");
    assert_eq!(server.kind(), None);
    let mut out = BytesMut::new();
    server.poll_transmit(&mut out);
    assert!(out.is_empty());
}

#[test]
fn server_split_at_every_offset() {
    let mut client = ClientHandshake::new(random(1), 1000, true);
    let mut input = BytesMut::new();
    client.poll_transmit(&mut input);
    input.extend_from_slice(&[0x55; 1536]); // C2 (not verified)
    input.extend_from_slice(&[0x02, 0x00]); // start of the chunk stream
    let mut reference = None;
    for at in (0..=input.len())
        .step_by(7)
        .chain([1, 1537, 3073, input.len()])
    {
        let mut server = ServerHandshake::new(random(2), 5);
        let mut buf = BytesMut::from(&input[..at]);
        let mut out = BytesMut::new();
        let first = server.handle_input(&mut buf).unwrap();
        server.poll_transmit(&mut out);
        buf.extend_from_slice(&input[at..]);
        let second = server.handle_input(&mut buf).unwrap();
        server.poll_transmit(&mut out);
        assert_eq!(second, HandshakeStatus::Done, "split at {at}");
        assert!(at >= 3073 || first == HandshakeStatus::NeedMore);
        assert_eq!(&buf[..], &[0x02, 0x00], "split at {at}");
        let r = reference.get_or_insert_with(|| out.to_vec());
        assert_eq!(&out[..], &r[..], "split at {at}");
    }
}

#[test]
fn client_rejects_forged_s2() {
    let mut client = ClientHandshake::new(random(1), 1000, true);
    let mut server = ServerHandshake::new(random(2), 2000);
    let mut buf = BytesMut::new();
    client.poll_transmit(&mut buf);
    server.handle_input(&mut buf).unwrap();
    let mut s = BytesMut::new();
    server.poll_transmit(&mut s);
    let last = s.len() - 1;
    s[last] ^= 1;
    assert_eq!(
        client.handle_input(&mut s),
        Err(HandshakeError::BadS2Digest)
    );
}

#[test]
fn digest_client_accepts_simple_server() {
    // A server that answers with a zero version (simple) gets an echo C2.
    let mut client = ClientHandshake::new(random(1), 1000, true);
    let mut c = BytesMut::new();
    client.poll_transmit(&mut c);
    let mut s = vec![3u8];
    s.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    s.extend_from_slice(&random(4));
    s.extend_from_slice(&c[1..]);
    let mut buf = BytesMut::from(&s[..]);
    assert_eq!(
        client.handle_input(&mut buf).unwrap(),
        HandshakeStatus::Done
    );
    let mut c2 = BytesMut::new();
    client.poll_transmit(&mut c2);
    assert_eq!(&c2[..], &s[1..1537]);
}

/// Accepts one connection, runs the server handshake and reads chunks until the client's
/// `connect` command arrives; clients that verify S1/S2 would close before sending it.
fn serve_until_connect(listener: std::net::TcpListener) -> (HandshakeKind, Command) {
    use std::io::{Read, Write};
    use std::time::Duration;

    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut server = ServerHandshake::new(random(3), 0);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut buf = BytesMut::new();
    let mut done = false;
    let mut tmp = [0u8; 4096];
    loop {
        let n = sock.read(&mut tmp).unwrap();
        assert!(n > 0, "client closed the connection (handshake rejected?)");
        buf.extend_from_slice(&tmp[..n]);
        if !done {
            done = server.handle_input(&mut buf).unwrap() == HandshakeStatus::Done;
            let mut out = BytesMut::new();
            server.poll_transmit(&mut out);
            sock.write_all(&out).unwrap();
        }
        if done {
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                if m.type_id == 20 {
                    let cmd = Command::parse(20, &m.payload, &AmfLimits::default()).unwrap();
                    return (server.kind().unwrap(), cmd);
                }
            }
        }
    }
}

fn run_client(mut cmd: std::process::Command) -> (HandshakeKind, Command) {
    use std::process::Stdio;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    cmd.arg(format!("rtmp://127.0.0.1:{port}/live/test"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let got = serve_until_connect(listener);
    let _ = child.kill();
    let _ = child.wait();
    got
}

/// FFmpeg's RTMP client sends a digest C1 and verifies the server's S1 digest and S2
/// signature before it sends `connect`.
#[test]
fn ffmpeg_accepts_digest_handshake() {
    let Some(ffmpeg) = testenv::require_ffmpeg() else {
        return;
    };
    let mut cmd = std::process::Command::new(ffmpeg);
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
    ])
    .arg("anullsrc=r=44100:cl=mono")
    .args(["-t", "5", "-c:a", "aac", "-f", "flv"]);
    let (kind, connect) = run_client(cmd);
    assert!(matches!(kind, HandshakeKind::Digest { .. }), "{kind:?}");
    assert_eq!(connect.name, "connect");
    assert_eq!(
        connect.object.get("app").and_then(|v| v.as_str()),
        Some("live")
    );
}

/// librtmp (rtmpdump) as a second independent client.
#[test]
fn rtmpdump_accepts_handshake() {
    let present = std::process::Command::new("rtmpdump")
        .arg("--help")
        .output()
        .is_ok();
    if testenv::skip_without("rtmpdump", present) {
        return;
    }
    let mut cmd = std::process::Command::new("rtmpdump");
    cmd.args(["-q", "-o", "/dev/null", "-r"]);
    let (kind, connect) = run_client(cmd);
    eprintln!("rtmpdump handshake: {kind:?}");
    assert_eq!(connect.name, "connect");
    assert_eq!(
        connect.object.get("app").and_then(|v| v.as_str()),
        Some("live")
    );
}
