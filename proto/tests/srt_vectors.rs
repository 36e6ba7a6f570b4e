//! SRT golden vectors: datagrams captured from libsrt 1.5 (FFmpeg 9's libsrt and Debian's
//! srt-live-transmit, see scripts/srt-capture-vectors.sh; passphrase `golden-passphrase-1`).
//! Every packet decodes and re-encodes byte for byte; the key material unwraps with the
//! passphrase (and not with another one), and the encrypted MPEG-TS payloads decrypt to
//! valid TS packets, through a key rotation too.

use bytes::{Bytes, BytesMut};
use proto::srt::crypto::{CryptoError, Passphrase, RxKeys};
use proto::srt::packet::{
    Control, EncryptionKey, HandshakeExtension, HandshakeType, KeyPresence, KmResponse, Packet,
    SrtFlags,
};
use proto::srt::{RejectReason, StreamId, StreamMode};

fn load(name: &str) -> Vec<(char, Bytes)> {
    let path = format!(
        "{}/tests/vectors/srt/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(|l| {
            let (dir, hex) = l.split_once(' ').expect("direction and hex");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>();
            (dir.chars().next().unwrap(), Bytes::from(bytes))
        })
        .collect()
}

fn decode_all(name: &str) -> Vec<(char, Packet)> {
    load(name)
        .into_iter()
        .map(|(dir, raw)| {
            let p = Packet::decode(raw.clone())
                .unwrap_or_else(|e| panic!("{name}: {e} decoding {raw:02x?}"));
            let mut again = BytesMut::new();
            p.encode(&mut again);
            assert_eq!(&again[..], &raw[..], "{name}: re-encoding {p:?}");
            (dir, p)
        })
        .collect()
}

fn handshakes(packets: &[(char, Packet)]) -> Vec<(char, proto::srt::packet::Handshake)> {
    packets
        .iter()
        .filter_map(|(d, p)| match p {
            Packet::Control(c) => match &c.control {
                Control::Handshake(h) => Some((*d, h.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn pass() -> Passphrase {
    Passphrase::new("golden-passphrase-1").unwrap()
}

#[test]
fn every_capture_round_trips() {
    for name in [
        "plain",
        "aes16",
        "aes32",
        "badsecret",
        "rotate24",
        "slt_caller",
    ] {
        let packets = decode_all(name);
        assert!(packets.len() >= 4, "{name}");
    }
}

#[test]
fn plain_handshake_fields() {
    let hs = handshakes(&decode_all("plain"));
    let (d, ind) = &hs[0];
    assert_eq!(*d, 'C');
    assert_eq!(
        (ind.version, ind.extension, ind.kind),
        (4, 2, HandshakeType::Induction)
    );
    assert_eq!(ind.cookie, 0);
    let (_, ind_rsp) = &hs[1];
    assert_eq!(
        (ind_rsp.version, ind_rsp.extension),
        (5, proto::srt::packet::HSV5_MAGIC)
    );
    assert_ne!(ind_rsp.cookie, 0);
    let (_, concl) = &hs[2];
    assert_eq!(concl.kind, HandshakeType::Conclusion);
    assert_eq!(concl.cookie, ind_rsp.cookie);
    let req = concl.hs_req().expect("HSREQ");
    assert!(req
        .flags
        .has(SrtFlags::TSBPD_SND | SrtFlags::CRYPT | SrtFlags::REXMIT));
    assert_eq!((req.recv_latency_ms, req.send_latency_ms), (120, 120));
    let sid = StreamId::parse(concl.stream_id().expect("stream id")).unwrap();
    assert_eq!(sid.resource.as_deref(), Some("live/cam1"));
    assert_eq!(sid.mode, Some(StreamMode::Publish));
    let (_, concl_rsp) = &hs[3];
    assert_eq!(concl_rsp.kind, HandshakeType::Conclusion);
    assert!(concl_rsp.hs_rsp().is_some());
    assert_eq!(concl_rsp.peer_ip[..4], [1, 0, 0, 127]);
    assert_eq!(
        concl_rsp.peer_ip,
        proto::srt::packet::Handshake::encode_peer_ip("127.0.0.1".parse().unwrap())
    );
}

/// Decrypts every data packet of a capture with the caller's key material (and refreshes),
/// checking that the payloads, in order, form a valid MPEG-TS byte stream (srt-live-transmit
/// does not cut at packet boundaries).
fn decrypt_capture(name: &str) -> (usize, usize) {
    let packets = decode_all(name);
    let hs = handshakes(&packets);
    let km = hs
        .iter()
        .find_map(|(_, h)| h.km_req().cloned())
        .expect("KMREQ");
    let mut keys = RxKeys::new(pass());
    keys.handle_key_material(&km)
        .expect("the passphrase unwraps the key");
    let (mut even, mut odd) = (0, 0);
    let mut stream = Vec::new();
    for (dir, p) in &packets {
        match p {
            Packet::Control(c) => {
                if let (Control::KmReq(km), 'C') = (&c.control, dir) {
                    keys.handle_key_material(km).expect("refresh unwraps");
                }
            }
            Packet::Data(d) => {
                assert_ne!(d.key, EncryptionKey::None, "{name}: plain data packet");
                let mut payload = d.payload.to_vec();
                assert!(keys.decrypt(d.key, d.seq.get(), &mut payload));
                stream.extend_from_slice(&payload);
                assert_eq!(
                    stream[0], 0x47,
                    "{name}: seq {} key {:?} not TS",
                    d.seq, d.key
                );
                match d.key {
                    EncryptionKey::Even => even += 1,
                    _ => odd += 1,
                }
            }
        }
    }
    assert!(stream.len() > 188 * 10, "{name}");
    for (i, ts) in stream.chunks(188).enumerate() {
        assert_eq!(
            ts[0], 0x47,
            "{name}: TS packet {i} lost sync after decryption"
        );
    }
    (even, odd)
}

#[test]
fn aes128_and_aes256_captures_decrypt() {
    for (name, len) in [("aes16", 16), ("aes32", 32), ("slt_caller", 16)] {
        let hs = handshakes(&decode_all(name));
        let concl = &hs
            .iter()
            .find(|(d, h)| *d == 'C' && h.kind == HandshakeType::Conclusion)
            .unwrap()
            .1;
        let km = concl.km_req().unwrap();
        assert_eq!(km.key_len, len);
        assert_eq!(km.keys, KeyPresence::Even);
        // FFmpeg sets pbkeylen, which advertises the cipher; srt-live-transmit leaves it 0.
        let advertised = if name == "slt_caller" {
            0
        } else {
            len as u16 / 8
        };
        assert_eq!(concl.encryption, advertised);
        let rsp = &hs
            .iter()
            .find(|(d, h)| *d == 'L' && h.kind == HandshakeType::Conclusion)
            .unwrap()
            .1;
        assert_eq!(rsp.km_rsp(), Some(&KmResponse::Echo(km.clone())));
        let (even, odd) = decrypt_capture(name);
        assert!(even > 0 && odd == 0, "{name}: {even} {odd}");
    }
}

#[test]
fn rotation_capture_follows_even_and_odd_keys() {
    let packets = decode_all("rotate24");
    let refreshes = packets
        .iter()
        .filter(|(d, p)| {
            *d == 'C' && matches!(p, Packet::Control(c) if matches!(c.control, Control::KmReq(_)))
        })
        .count();
    assert!(refreshes >= 1);
    let (even, odd) = decrypt_capture("rotate24");
    assert!(even > 0 && odd > 0, "even {even} odd {odd}");
}

#[test]
fn wrong_passphrase_is_bad_secret() {
    let hs = handshakes(&decode_all("aes16"));
    let km = hs.iter().find_map(|(_, h)| h.km_req().cloned()).unwrap();
    let mut keys = RxKeys::new(Passphrase::new("another-passphrase").unwrap());
    assert_eq!(keys.handle_key_material(&km), Err(CryptoError::BadSecret));
    // libsrt's own listener refused the same way: handshake type 1010 (BADSECRET).
    let hs = handshakes(&decode_all("badsecret"));
    let code = hs
        .iter()
        .find_map(|(d, h)| match (d, h.kind) {
            ('L', HandshakeType::Rejection(c)) => Some(c),
            _ => None,
        })
        .expect("rejection");
    assert_eq!(RejectReason::from_wire(code), RejectReason::BadSecret);
}

#[test]
fn stream_id_extension_is_word_swapped() {
    let hs = handshakes(&decode_all("aes16"));
    let concl = &hs
        .iter()
        .find(|(d, h)| *d == 'C' && h.kind == HandshakeType::Conclusion)
        .unwrap()
        .1;
    assert!(concl
        .extensions
        .iter()
        .any(|e| matches!(e, HandshakeExtension::StreamId(s) if &s[..] == b"live/cam1")));
}
