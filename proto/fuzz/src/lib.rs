//! Bodies of the fuzz targets, as plain functions so that `proto/tests/fuzz_smoke.rs` can
//! run them on stable without libFuzzer. Each one must never panic on any input except
//! through the invariant assertions it makes.

use bytes::{Bytes, BytesMut};
use proto::rtmp::amf0::{self, AmfError, AmfLimits};
use proto::rtmp::amf3;
use proto::rtmp::chunk::{ChunkDecoder, ChunkLimits, RtmpMessage};
use proto::rtmp::handshake::{ClientHandshake, HandshakeStatus, ServerHandshake, RANDOM_SIZE};
use proto::rtmp::message::{self, types, Command, ControlMessage, UserControl};
use proto::ts::{annexb, FrameReader, MuxOptions, Muxer, ReaderOptions, TsEvent};

/// The limits ingest-rtmp runs with by default (the fuzzer runs at production limits).
fn production_chunk_limits() -> ChunkLimits {
    ChunkLimits {
        max_buffered_bytes: 32 << 20,
        ..ChunkLimits::default()
    }
}

/// Feeds `data` to a buffer-draining decoder in pieces of `split` bytes, decoding all it
/// can after each piece; returns what came out and the first error.
fn feed<T, E: ToString>(
    data: &[u8],
    split: usize,
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, E>,
) -> (Vec<T>, Option<String>) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(split.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    (out, None)
}

fn run_chunks(data: &[u8], split: usize) -> (Vec<RtmpMessage>, Option<String>) {
    let mut dec = ChunkDecoder::new(production_chunk_limits());
    feed(data, split, |buf| dec.decode(buf))
}

/// Chunk decoder: any input, whole or split, gives the same messages and error, and
/// every message body goes through the message parsers.
pub fn chunk(data: &[u8]) {
    let (whole, err) = run_chunks(data, data.len());
    let split = data.first().map_or(1, |&b| usize::from(b % 17) + 1);
    let (pieces, err2) = run_chunks(data, split);
    assert_eq!(whole, pieces);
    assert_eq!(err, err2);
    for m in &whole {
        parse_message(m);
    }
}

fn parse_message(m: &RtmpMessage) {
    match m.type_id {
        types::USER_CONTROL => {
            let _ = UserControl::parse(&m.payload);
        }
        types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
            let _ = Command::parse(m.type_id, &m.payload, &AmfLimits::command());
        }
        types::DATA_AMF0 | types::DATA_AMF3 => {
            let _ = message::parse_data(m.type_id, &m.payload, &AmfLimits::data());
        }
        types::AGGREGATE => {
            let mut subs = Vec::new();
            let _ = message::parse_aggregate(m, &mut subs);
        }
        t => {
            let _ = ControlMessage::parse(t, &m.payload);
        }
    }
}

/// Errors that re-decoding may meet where the first decode did not: resolved AMF3
/// references re-encode inline, which costs more and can nest deeper.
fn budget_error(e: &AmfError) -> bool {
    matches!(
        e,
        AmfError::TooManyItems { .. }
            | AmfError::DepthExceeded { .. }
            | AmfError::StringTooLong { .. }
            | AmfError::BudgetExceeded { .. }
            | AmfError::ExpansionExceeded { .. }
    )
}

/// AMF0: decoding never panics, and what decodes re-encodes to bytes that decode to the
/// same encoding again.
pub fn amf0(data: &[u8]) {
    let limits = AmfLimits::data();
    let Ok(values) = amf0::decode_all(data, &limits) else {
        return;
    };
    for v in values {
        let mut first = BytesMut::new();
        amf0::encode(&v, &mut first);
        match amf0::decode(&mut &first[..], &limits) {
            Ok(again) => {
                let mut second = BytesMut::new();
                amf0::encode(&again, &mut second);
                assert_eq!(first, second);
            }
            // Resolved AMF3 references re-encode inline, which can cost more.
            Err(e) => assert!(budget_error(&e), "re-decode failed: {e}"),
        }
    }
}

/// AMF3: same properties as [`amf0`].
pub fn amf3(data: &[u8]) {
    let limits = AmfLimits::data();
    let mut input = data;
    let Ok(v) = amf3::decode(&mut input, &limits) else {
        return;
    };
    let mut first = BytesMut::new();
    amf3::encode(&v, &mut first);
    match amf3::decode(&mut &first[..], &limits) {
        Ok(again) => {
            let mut second = BytesMut::new();
            amf3::encode(&again, &mut second);
            assert_eq!(first, second);
        }
        Err(e) => assert!(budget_error(&e), "re-decode failed: {e}"),
    }
}

/// Handshakes: a server and a client fed arbitrary bytes, whole and split, agree.
pub fn handshake(data: &[u8]) {
    let random = [7u8; RANDOM_SIZE];
    let run_server = |split: usize| {
        let mut hs = ServerHandshake::new(random, 1);
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut status = Ok(HandshakeStatus::NeedMore);
        for piece in data.chunks(split.max(1)) {
            buf.extend_from_slice(piece);
            status = hs.handle_input(&mut buf);
            hs.poll_transmit(&mut out);
            if !matches!(status, Ok(HandshakeStatus::NeedMore)) {
                break;
            }
        }
        (status, out, buf.len(), hs.kind())
    };
    let a = run_server(data.len());
    let b = run_server(97);
    // The split run may stop earlier, so only outcomes and output are compared.
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    assert_eq!(a.3, b.3);

    let mut client = ClientHandshake::new(random, 2, data.first().is_some_and(|b| b & 1 == 1));
    let mut out = BytesMut::new();
    client.poll_transmit(&mut out);
    let mut buf = BytesMut::from(data);
    let _ = client.handle_input(&mut buf);
    client.poll_transmit(&mut out);
}

/// Command, data, control and aggregate parsers on one message body; the first byte
/// picks the type. Parsed commands re-encode to bytes that parse to the same command.
pub fn command(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let limits = AmfLimits::command();
    let type_id = match sel % 8 {
        0 => types::COMMAND_AMF0,
        1 => types::COMMAND_AMF3,
        2 => types::DATA_AMF0,
        3 => types::DATA_AMF3,
        4 => types::USER_CONTROL,
        5 => types::AGGREGATE,
        _ => sel >> 3,
    };
    let m = RtmpMessage {
        csid: 3,
        timestamp: 0,
        type_id,
        stream_id: 1,
        payload: Bytes::copy_from_slice(body),
    };
    parse_message(&m);
    if let Ok(cmd) = Command::parse(type_id, body, &limits) {
        let mut first = BytesMut::new();
        cmd.write_body(&mut first);
        match Command::parse(types::COMMAND_AMF0, &first, &limits) {
            Ok(again) => {
                let mut second = BytesMut::new();
                again.write_body(&mut second);
                assert_eq!(first, second);
            }
            Err(message::MessageError::Amf(e)) => assert!(budget_error(&e), "{e}"),
            Err(e) => panic!("re-parse failed: {e}"),
        }
    }
}

/// FLV / E-RTMP tag bodies: any bytes, as video and as audio. Parsing never panics, an
/// error appends nothing, and every payload is a slice of the body, but for the two
/// packets the parser builds: an unknown FourCC's frame (its packet type in front of the
/// body) and the AV1CodecConfigurationRecord translated from an `MPEG2TSSequenceStart`'s
/// AV1 video descriptor (four bytes, marker and version first).
pub fn flv(data: &[u8]) {
    use proto::flv::{parse_audio, parse_video, MediaPacket};
    use proto::media::Codec;
    let body = Bytes::copy_from_slice(data);
    let range = body.as_ptr_range();
    for parse in [parse_video, parse_audio] {
        let mut out = Vec::new();
        if parse(&body, &mut out).is_err() {
            assert!(out.is_empty());
        }
        for p in &out {
            let payload = match p {
                MediaPacket::Config {
                    codec: Codec::Av1,
                    config,
                    ..
                } if !config.is_empty() && !range.contains(&config.as_ptr()) => {
                    assert!(config.len() == 4 && config[0] == 0x81, "{config:?}");
                    continue;
                }
                MediaPacket::Config { config, .. } | MediaPacket::ChannelConfig { config, .. } => {
                    config
                }
                MediaPacket::Frame {
                    codec: Codec::Unknown { .. },
                    ..
                } => continue,
                MediaPacket::Frame { data, .. } | MediaPacket::VideoMetadata { data, .. } => data,
                MediaPacket::EndOfSequence { .. } | MediaPacket::TimestampOffset { .. } => continue,
            };
            assert!(payload.is_empty() || range.contains(&payload.as_ptr()));
        }
    }
}

/// Client session: what a server sends after the handshake (first byte picks publish or
/// play and the split). Never panics; an error ends the input; the session only consumes.
pub fn client_session(data: &[u8]) {
    use proto::rtmp::session::{ClientConfig, ClientMode, ClientRequest, ClientSession};
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mode = if first & 1 == 0 {
        ClientMode::Publish
    } else {
        ClientMode::Play
    };
    let request = ClientRequest {
        app: "live".into(),
        tc_url: "rtmp://fuzz/live".into(),
        name: "s".into(),
        mode,
    };
    let config = ClientConfig {
        chunk_limits: production_chunk_limits(),
        digest_handshake: false,
        ..ClientConfig::default()
    };
    let mut c = ClientSession::new(config, request, [1; RANDOM_SIZE], 0);
    let mut out = BytesMut::new();
    c.poll_transmit(&mut out);
    // A simple S0S1S2 so that the rest reaches the chunk layer.
    let mut buf = BytesMut::from(&[3u8][..]);
    buf.extend_from_slice(&[0u8; 2 * 1536]);
    if c.handle_input(&mut buf).is_err() {
        return;
    }
    for piece in rest.chunks(usize::from(first >> 1) + 1) {
        buf.extend_from_slice(piece);
        let before = buf.len();
        let r = c.handle_input(&mut buf);
        assert!(buf.len() <= before);
        while c.poll_event().is_some() {}
        c.poll_transmit(&mut out);
        out.clear();
        if r.is_err() {
            return;
        }
    }
}

fn read_ts(data: &[u8], split: usize) -> Vec<TsEvent> {
    // Production limits, as every target here.
    let mut reader = FrameReader::new(ReaderOptions::default());
    let mut out = Vec::new();
    for piece in data.chunks(split.max(1)) {
        reader.handle_input(piece);
        while let Some(e) = reader.poll_event() {
            out.push(e);
        }
    }
    reader.finish();
    while let Some(e) = reader.poll_event() {
        out.push(e);
    }
    out
}

/// MPEG-TS reader: any bytes give the same events whole and in pieces, every video frame
/// is a whole sequence of length-prefixed NAL units, and the muxer takes every
/// configuration and frame the reader made, writing whole packets.
pub fn ts_demux(data: &[u8]) {
    let whole = read_ts(data, data.len());
    let split = data.first().map_or(1, |&b| usize::from(b) * 3 + 1);
    assert_eq!(whole, read_ts(data, split));
    let mut mux = Muxer::new(90_000, MuxOptions::default());
    let mut out = BytesMut::new();
    for e in &whole {
        match e {
            TsEvent::Frame(f) => {
                if f.is_video() {
                    let covered: usize = annexb::length_prefixed(&f.payload, 4)
                        .map(|n| n.len() + 4)
                        .sum();
                    assert_eq!(covered, f.payload.len());
                }
                mux.write_frame(f, &mut out)
                    .expect("muxer takes the reader's frames");
            }
            TsEvent::Config {
                track,
                codec,
                config,
            } => mux
                .set_config(*track, *codec, config)
                .expect("muxer takes the reader's configurations"),
            TsEvent::Unsupported { .. } | TsEvent::Error(_) => {}
        }
    }
    assert_eq!(out.len() % 188, 0);
}

/// SRT packet codec: any datagram decodes or fails cleanly; whatever decodes re-encodes to
/// something that decodes to the same packet.
pub fn srt_packet(data: &[u8]) {
    use proto::srt::packet::Packet;
    if let Ok(p) = Packet::decode(Bytes::copy_from_slice(data)) {
        let mut out = BytesMut::new();
        p.encode(&mut out);
        let again = Packet::decode(out.freeze()).expect("re-encoded packet decodes");
        assert_eq!(again, p);
    }
}

struct FuzzRandom(u64);

impl proto::srt::Random for FuzzRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.0 >> 56) as u8;
        }
    }
}

/// SRT listener handshake: the first byte picks the cookie handling, the rest is one
/// datagram; a request is accepted with a passphrase (which must not panic whatever the
/// key material says).
pub fn srt_handshake(data: &[u8]) {
    use proto::srt::crypto::Passphrase;
    use proto::srt::packet::{Control, Packet};
    use proto::srt::{Accept, Config, Listener, ListenerOutput};
    use std::time::Instant;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let listener = Listener::new(now, Config::default(), &mut FuzzRandom(1));
    let peer = "192.0.2.1:4000".parse().unwrap();
    let mut datagram = rest.to_vec();
    if mode & 1 == 1 && datagram.len() >= 16 + 32 {
        // Patch in a valid cookie so the conclusion path is reached.
        let probe = {
            let mut p = datagram.clone();
            p[16 + 20..16 + 24].copy_from_slice(&1u32.to_be_bytes());
            p
        };
        if let ListenerOutput::Reply(r) = listener.handle(now, peer, Bytes::from(probe)) {
            if let Ok(Packet::Control(c)) = Packet::decode(r) {
                if let Control::Handshake(h) = c.control {
                    datagram[16 + 28..16 + 32].copy_from_slice(&h.cookie.to_be_bytes());
                }
            }
        }
    }
    if let ListenerOutput::Request(req) = listener.handle(now, peer, Bytes::from(datagram)) {
        let accept = Accept {
            local_id: 7,
            passphrase: (mode & 2 == 2).then(|| Passphrase::new("fuzz-passphrase").unwrap()),
            enforce_encryption: mode & 4 == 4,
            rng: Box::new(FuzzRandom(2)),
        };
        let _ = listener.accept(now, &req, accept);
    }
}

/// SRT connection: an accepted connection fed length-prefixed datagrams (and time steps)
/// never panics, and its outputs stay bounded.
pub fn srt_connection(data: &[u8]) {
    use proto::srt::{Accept, Caller, CallerOptions, Config, Listener, ListenerOutput};
    use std::time::{Duration, Instant};
    let t0 = Instant::now();
    let listener = Listener::new(t0, Config::default(), &mut FuzzRandom(3));
    let peer = "192.0.2.1:4000".parse().unwrap();
    let mut caller = Caller::new(
        t0,
        Config::default(),
        CallerOptions {
            local_id: 99,
            peer_ip: "192.0.2.2".parse().unwrap(),
            stream_id: Some("live/fuzz".into()),
            passphrase: None,
            key_length: proto::srt::crypto::KeyLength::Aes128,
        },
        Box::new(FuzzRandom(4)),
    );
    let ListenerOutput::Reply(r) = listener.handle(t0, peer, caller.poll_transmit().unwrap())
    else {
        return;
    };
    caller.handle_datagram(t0, r);
    let ListenerOutput::Request(req) = listener.handle(t0, peer, caller.poll_transmit().unwrap())
    else {
        return;
    };
    let accept = Accept {
        local_id: 5,
        passphrase: None,
        enforce_encryption: false,
        rng: Box::new(FuzzRandom(5)),
    };
    let Ok((mut conn, _)) = listener.accept(t0, &req, accept) else {
        return;
    };
    let mut now = t0;
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % 1500;
        rest = &rest[2..];
        let take = len.min(rest.len());
        let mut d = rest[..take].to_vec();
        rest = &rest[take..];
        if d.len() >= 16 {
            d[12..16].copy_from_slice(&5u32.to_be_bytes());
        }
        now += Duration::from_millis(u64::from(len as u8 % 16));
        conn.handle_datagram(now, Bytes::from(d));
        if let Some(t) = conn.poll_timeout() {
            if t <= now {
                conn.handle_timeout(now);
            }
        }
        let mut n = 0;
        while conn.poll_transmit(now).is_some() {
            n += 1;
            assert!(n < 10_000, "unbounded transmits");
        }
        while conn.poll_event().is_some() {}
    }
}

/// FLV files (`proto::flv::read_file`): any bytes after a valid signature never panic,
/// every tag body is a slice of the input within the complete prefix, and a file cut at
/// that prefix reads the same.
pub fn flv_file(data: &[u8]) {
    let mut file = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    file.extend_from_slice(data);
    let bytes = Bytes::from(file);
    let range = bytes.as_ptr_range();
    let Ok(f) = proto::flv::read_file(&bytes) else {
        return;
    };
    assert!(f.complete_len <= bytes.len());
    for t in &f.tags {
        assert!(t.body.is_empty() || range.contains(&t.body.as_ptr()));
    }
    let again = proto::flv::read_file(&bytes.slice(..f.complete_len)).expect("same prefix");
    assert_eq!(again.tags, f.tags);
}

/// Player session after a handoff (`proto::rtmp::session::PlayerSession`): what a player
/// sends (the first byte picks the split of the input and the clock step). Never panics;
/// an error or a close ends the input; the outbox grows only by bounded replies.
pub fn player_session(data: &[u8]) {
    use proto::rtmp::session::{PlayerConfig, PlayerHandoff, PlayerSession};
    use std::time::{Duration, Instant};
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let handoff = PlayerHandoff {
        window_ack_size: 64,
        ..PlayerHandoff::for_tests(1, "live/fuzz", 1)
    };
    let t0 = Instant::now();
    let mut now = t0;
    let cfg = PlayerConfig {
        ping_interval: Some(Duration::from_millis(50)),
        ping_timeout: Duration::from_millis(20),
        ..PlayerConfig::default()
    };
    let mut s = PlayerSession::new(&handoff, cfg, t0);
    s.accept();
    let step = usize::from(first % 64) + 1;
    let mut buf = BytesMut::new();
    for piece in rest.chunks(step) {
        buf.extend_from_slice(piece);
        now += Duration::from_millis(u64::from(first % 16));
        if s.handle_input(&mut buf, now).is_err() {
            return;
        }
        if let Some(t) = s.poll_timeout() {
            if t <= now {
                s.handle_timeout(now);
            }
        }
        while s.poll_event().is_some() {}
        // Replies are a few small messages per input message; what the player sent
        // bounds them.
        assert!(s.queued_bytes() <= 4096 + 64 * (rest.len() + 1));
        if s.is_closed() {
            return;
        }
    }
}

/// Runs a server session (ingest-rtmp's configuration) over `pieces`, one `handle_input`
/// each, accepting every publish and play; returns its events and error.
pub fn run_server_session<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<proto::rtmp::session::SessionEvent>, Option<String>) {
    use proto::rtmp::session::{ServerSession, SessionConfig, SessionEvent};
    let config = SessionConfig {
        chunk_limits: production_chunk_limits(),
        ..SessionConfig::default()
    };
    let mut s = ServerSession::new(config, [5; RANDOM_SIZE], 0);
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut events = Vec::new();
    // One handle_input and everything it produced; Err ends the run.
    let mut step = |s: &mut ServerSession, buf: &mut BytesMut| -> Result<(), String> {
        let before = buf.len();
        let r = s.handle_input(buf);
        assert!(buf.len() <= before);
        while let Some(e) = s.poll_event() {
            match &e {
                SessionEvent::PublishRequest(req) => s.accept_publish(req.stream_id),
                SessionEvent::PlayRequest(req) => s.accept_play(req.stream_id),
                _ => {}
            }
            events.push(e);
        }
        // Acknowledgements depend on how input was split, so output is not compared.
        s.poll_transmit(&mut out);
        out.clear();
        r.map_err(|e| e.to_string())
    };
    let mut error = None;
    for piece in pieces {
        buf.extend_from_slice(piece);
        error = step(&mut s, &mut buf).err();
        if error.is_some() {
            break;
        }
    }
    // A decision unpauses the session: it goes on with what it left buffered.
    while error.is_none() {
        let before = buf.len();
        error = step(&mut s, &mut buf).err();
        if buf.len() == before {
            break;
        }
    }
    (events, error)
}

/// C0 and C1 of a simple handshake, and its C2 (a server does not check C2's contents).
const C0C1: [u8; 1537] = {
    let mut c = [0u8; 1537];
    c[0] = 3;
    c
};
const C2: [u8; 1536] = [0u8; 1536];

/// The whole server session (handshake, chunks, commands, publish and play decisions):
/// a valid C0C1/C2 followed by the fuzz input, fed whole and in pieces whose sizes the
/// input's first bytes choose. Never panics, and the split does not change the events,
/// the output or the error.
///
/// The handshake's bytes are always the same, so the split run does not cut them into
/// small pieces (which cost most of an execution and found nothing: the `handshake`
/// target fuzzes split handshakes): the selector byte picks whether C0C1 and C2 arrive
/// on their own or in one read with the start of the chunk stream, which is where the
/// handshake hands over to the chunk decoder.
pub fn server_session(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let whole: Vec<u8> = [&C0C1[..], &C2[..], body].concat();
    let first = run_server_session([&whole[..]]);
    let sizes: Vec<usize> = body
        .iter()
        .take(4)
        .map(|&b| usize::from(b % 64) + usize::from(sel % 7) + 1)
        .collect();
    let sizes = if sizes.is_empty() { vec![1] } else { sizes };
    let mut body_pieces = Vec::new();
    let mut rest = body;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        body_pieces.push(piece);
        rest = tail;
    }
    let handshake = C0C1.len() + C2.len();
    // What arrives on its own before the first read that carries chunks, and what of the
    // handshake arrives in that read.
    let (lead, glued): (&[&[u8]], &[u8]) = match (sel / 7) % 3 {
        // C0C1, then C2, then the chunk stream: a client that waits for S2.
        0 => (&[&C0C1, &C2], &[]),
        // C0C1, then C2 with the first chunks: what most clients send.
        1 => (&[&C0C1], &whole[C0C1.len()..handshake]),
        // Everything up to the first chunks in one read.
        _ => (&[], &whole[..handshake]),
    };
    let first_read = [glued, body_pieces.first().copied().unwrap_or_default()].concat();
    let pieces = lead
        .iter()
        .copied()
        .chain([&first_read[..]])
        .chain(body_pieces.iter().skip(1).copied());
    let split = run_server_session(pieces);
    // Debug strings only when they differ: a NaN in a command's numbers is not equal to
    // itself.
    if first != split {
        assert_eq!(format!("{first:?}"), format!("{split:?}"));
    }
}

/// The framed IPC decoder: any bytes, fed whole and split at a data-chosen offset, give
/// the same messages and the same error; every decoded message encodes back to bytes that
/// decode to it again. (Not to the input's bytes in a row: messages of an unknown header
/// variant are skipped on the way.)
pub fn ipc(data: &[u8]) {
    use proto::ipc::{encode, FrameDecoder};
    let run = |data: &[u8], split: usize| {
        let dec = FrameDecoder::new(4096, 1 << 16);
        feed(data, split, |buf| dec.decode(buf))
    };
    let (whole, err) = run(data, data.len());
    let split = data.first().map_or(1, |&b| usize::from(b % 13) + 1);
    let (pieces, err2) = run(data, split);
    // Debug strings, not PartialEq: a NaN in PlayerSession's f64 fields is not equal to itself.
    assert_eq!(format!("{whole:?}"), format!("{pieces:?}"));
    assert_eq!(err, err2);
    let mut again = BytesMut::new();
    for m in &whole {
        encode(&m.header, &m.payload, &mut again);
    }
    let (round, err3) = run(&again, again.len().max(1));
    assert_eq!(err3, None);
    assert_eq!(format!("{whole:?}"), format!("{round:?}"));
}

/// WebSocket client frames (`proto::websocket::Decoder`): the first byte picks the split;
/// whole or split, the input gives the same frames and error, and between calls the
/// buffer never holds more than one frame header and one control payload.
pub fn websocket(data: &[u8]) {
    use proto::websocket::{Decoder, MAX_CONTROL_PAYLOAD, MAX_HEADER};
    let run = |split: usize| {
        let mut dec = Decoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in data.chunks(split.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(f)) => out.push(f),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
            assert!(
                buf.len() < MAX_HEADER + 4 + MAX_CONTROL_PAYLOAD,
                "buffered {}",
                buf.len()
            );
        }
        (out, None)
    };
    let split = data.first().map_or(1, |b| usize::from(*b % 32) + 1);
    assert_eq!(run(split), run(data.len()));
}
