//! The player side after a handoff (`PlayerSession`), driven on simulated time: the play
//! responses, acknowledgement windows, ping replies, pause/resume, receive flags, seek,
//! the end of the session, liveness pings and idle close, media from a player refused,
//! and media bytes queued for another message stream id.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proto::rtmp::amf0::Amf0Value;
use proto::rtmp::chunk::{write_fmt0, ChunkDecoder, ChunkEncoder, ChunkLimits, RtmpMessage};
use proto::rtmp::message::{types, Command, ControlMessage, UserControl};
use proto::rtmp::session::{
    CloseReason, PlayerConfig, PlayerError, PlayerEvent, PlayerHandoff, PlayerSession,
};

fn handoff(window: u32, stream_id: u32) -> PlayerHandoff {
    PlayerHandoff {
        window_ack_size: window,
        bytes_received: 3000,
        last_ack_sent: 3000,
        reset: true,
        ..PlayerHandoff::for_tests(7, "live/cam", stream_id)
    }
}

fn config() -> PlayerConfig {
    PlayerConfig {
        chunk_size: 256,
        ping_interval: Some(Duration::from_secs(10)),
        ping_timeout: Duration::from_secs(5),
        ..PlayerConfig::default()
    }
}

/// The player: writes chunks as a client does (compressed headers, 128-byte chunks).
struct Client {
    enc: ChunkEncoder,
    /// Decodes what the session queued, as the player would.
    dec: ChunkDecoder,
    wire: BytesMut,
}

impl Client {
    fn new() -> Client {
        Client {
            enc: ChunkEncoder::new(),
            dec: ChunkDecoder::new(ChunkLimits::default()),
            wire: BytesMut::new(),
        }
    }

    fn command(&mut self, name: &str, args: Vec<Amf0Value>) -> BytesMut {
        let mut body = BytesMut::new();
        Command {
            name: name.into(),
            transaction_id: 0.0,
            object: Amf0Value::Null,
            args,
        }
        .write_body(&mut body);
        let mut out = BytesMut::new();
        self.enc
            .write(8, 0, types::COMMAND_AMF0, 1, &body, &mut out);
        out
    }

    fn user_control(&mut self, m: UserControl) -> BytesMut {
        let mut body = BytesMut::new();
        m.write_body(&mut body);
        let mut out = BytesMut::new();
        self.enc
            .write(2, 0, types::USER_CONTROL, 0, &body, &mut out);
        out
    }

    /// Everything the session queued, decoded (and drained from its outbox).
    fn received(&mut self, s: &mut PlayerSession) -> Vec<RtmpMessage> {
        let out = s.outbox();
        let mut iov = [std::io::IoSlice::new(&[]); 256];
        let n = out.fill(&mut iov);
        for slice in &iov[..n] {
            self.wire.extend_from_slice(slice);
        }
        let total = out.bytes();
        out.advance(total);
        assert_eq!(s.queued_bytes(), 0);
        let mut msgs = Vec::new();
        while let Some(m) = self.dec.decode(&mut self.wire).expect("valid chunks") {
            msgs.push(m);
        }
        msgs
    }
}

fn status_code(m: &RtmpMessage) -> String {
    assert_eq!(m.type_id, types::COMMAND_AMF0);
    let cmd = Command::parse(m.type_id, &m.payload, &Default::default()).unwrap();
    assert_eq!(cmd.name, "onStatus");
    cmd.args[0]
        .get("code")
        .and_then(|c| c.as_str())
        .unwrap()
        .to_owned()
}

fn user_control(m: &RtmpMessage) -> UserControl {
    assert_eq!(m.type_id, types::USER_CONTROL);
    UserControl::parse(&m.payload).unwrap()
}

fn events(s: &mut PlayerSession) -> Vec<PlayerEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn accept_queues_the_play_responses() {
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 1), config(), t0);
    let mut c = Client::new();
    s.accept();
    let msgs = c.received(&mut s);
    assert_eq!(msgs.len(), 5, "{msgs:?}");
    assert_eq!(
        ControlMessage::parse(msgs[0].type_id, &msgs[0].payload).unwrap(),
        ControlMessage::SetChunkSize(256)
    );
    assert_eq!(user_control(&msgs[1]), UserControl::StreamBegin(1));
    assert_eq!(status_code(&msgs[2]), "NetStream.Play.Reset");
    assert_eq!(status_code(&msgs[3]), "NetStream.Play.Start");
    assert_eq!(msgs[4].type_id, types::DATA_AMF0);
    assert!(msgs[2..].iter().all(|m| m.stream_id == 1));
}

#[test]
fn reject_sends_an_error_and_closes() {
    let mut s = PlayerSession::new(&handoff(0, 1), config(), Instant::now());
    let mut c = Client::new();
    s.reject("NetStream.Play.StreamNotFound", "Invalid stream key.");
    assert!(s.is_closed());
    let msgs = c.received(&mut s);
    assert_eq!(msgs.len(), 1);
    assert_eq!(status_code(&msgs[0]), "NetStream.Play.StreamNotFound");
}

#[test]
fn acknowledgement_window_counts_bytes_from_before_the_handoff() {
    let t0 = Instant::now();
    // Window 100: an ack is due once 100 bytes arrived since the last one (at 3000).
    let mut s = PlayerSession::new(&handoff(100, 1), config(), t0);
    let mut c = Client::new();
    let mut sent = 0;
    let mut acks = Vec::new();
    while acks.is_empty() {
        let mut b = c.user_control(UserControl::PingResponse(1));
        sent += b.len() as u64;
        s.handle_input(&mut b, t0).unwrap();
        acks.extend(
            c.received(&mut s)
                .into_iter()
                .filter(|m| m.type_id == types::ACKNOWLEDGEMENT),
        );
        assert!(sent < 200, "no acknowledgement after {sent} bytes");
    }
    assert!(sent >= 100);
    assert_eq!(
        ControlMessage::parse(acks[0].type_id, &acks[0].payload).unwrap(),
        ControlMessage::Acknowledgement((3000 + sent) as u32)
    );
    assert_eq!(s.bytes_received(), 3000 + sent);
}

#[test]
fn a_new_window_from_the_player_applies() {
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 1), config(), t0);
    let mut c = Client::new();
    let mut body = BytesMut::new();
    ControlMessage::WindowAckSize(1).write_body(&mut body);
    let mut b = BytesMut::new();
    c.enc.write(2, 0, types::WINDOW_ACK_SIZE, 0, &body, &mut b);
    s.handle_input(&mut b, t0).unwrap();
    let msgs = c.received(&mut s);
    assert_eq!(
        msgs.len(),
        1,
        "window 1: the message itself is acknowledged"
    );
    assert_eq!(msgs[0].type_id, types::ACKNOWLEDGEMENT);
}

#[test]
fn ping_requests_are_answered() {
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 1), config(), t0);
    let mut c = Client::new();
    let mut b = c.user_control(UserControl::PingRequest(0xABCD));
    s.handle_input(&mut b, t0).unwrap();
    assert!(b.is_empty());
    let msgs = c.received(&mut s);
    assert_eq!(user_control(&msgs[0]), UserControl::PingResponse(0xABCD));
}

#[test]
fn pause_resume_receive_flags_and_seek() {
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 1), config(), t0);
    let mut c = Client::new();
    let mut b = c.command(
        "pause",
        vec![Amf0Value::Boolean(true), Amf0Value::Number(0.0)],
    );
    s.handle_input(&mut b, t0).unwrap();
    assert!(s.is_paused());
    assert_eq!(events(&mut s), vec![PlayerEvent::Pause(true)]);
    assert_eq!(
        status_code(&c.received(&mut s)[0]),
        "NetStream.Pause.Notify"
    );

    let mut b = c.command(
        "pause",
        vec![Amf0Value::Boolean(false), Amf0Value::Number(0.0)],
    );
    b.extend_from_slice(&c.command("receiveVideo", vec![Amf0Value::Boolean(false)]));
    b.extend_from_slice(&c.command("receiveAudio", vec![Amf0Value::Boolean(false)]));
    b.extend_from_slice(&c.command("seek", vec![Amf0Value::Number(5000.0)]));
    s.handle_input(&mut b, t0).unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            PlayerEvent::Pause(false),
            PlayerEvent::ReceiveVideo(false),
            PlayerEvent::ReceiveAudio(false),
            PlayerEvent::Seek(5000.0),
        ]
    );
    assert!(!s.is_paused() && !s.receive_audio() && !s.receive_video());
    let codes: Vec<String> = c.received(&mut s).iter().map(status_code).collect();
    assert_eq!(codes, ["NetStream.Unpause.Notify", "NetStream.Seek.Notify"]);
}

#[test]
fn delete_stream_closes_and_later_input_is_left_alone() {
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 1), config(), t0);
    let mut c = Client::new();
    let mut b = c.command("deleteStream", vec![Amf0Value::Number(1.0)]);
    let rest = c.command("pause", vec![Amf0Value::Boolean(true)]);
    b.extend_from_slice(&rest);
    s.handle_input(&mut b, t0).unwrap();
    assert_eq!(
        events(&mut s),
        vec![PlayerEvent::Closed(CloseReason::DeleteStream)]
    );
    assert!(s.is_closed());
    assert_eq!(b.len(), rest.len(), "nothing after the close is taken");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn quiet_player_is_pinged_then_closed_as_idle() {
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 1), config(), t0);
    let mut c = Client::new();
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    s.handle_timeout(t0 + Duration::from_secs(9));
    assert!(c.received(&mut s).is_empty(), "no ping before the interval");

    let t1 = t0 + Duration::from_secs(10);
    s.handle_timeout(t1);
    let msgs = c.received(&mut s);
    assert_eq!(user_control(&msgs[0]), UserControl::PingRequest(10_000));
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(5)));

    // The answer resets the clock.
    let t2 = t1 + Duration::from_secs(1);
    let mut b = c.user_control(UserControl::PingResponse(10_000));
    s.handle_input(&mut b, t2).unwrap();
    assert_eq!(s.poll_timeout(), Some(t2 + Duration::from_secs(10)));

    // No answer this time.
    let t3 = t2 + Duration::from_secs(10);
    s.handle_timeout(t3);
    assert_eq!(c.received(&mut s).len(), 1);
    s.handle_timeout(t3 + Duration::from_secs(4));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t3 + Duration::from_secs(5));
    assert_eq!(
        events(&mut s),
        vec![PlayerEvent::Closed(CloseReason::Idle(Duration::from_secs(
            15
        )))]
    );
    assert!(s.is_closed());
}

#[test]
fn pings_off_means_no_timeout() {
    let cfg = PlayerConfig {
        ping_interval: None,
        ..config()
    };
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 1), cfg, t0);
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + Duration::from_secs(3600));
    assert!(s.poll_event().is_none());
    assert_eq!(s.queued_bytes(), 0);
}

#[test]
fn media_from_a_player_is_refused() {
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 1), config(), t0);
    let mut b = BytesMut::new();
    write_fmt0(6, 0, types::VIDEO, 1, &[0x17, 0], 128, &mut b);
    assert_eq!(
        s.handle_input(&mut b, t0),
        Err(PlayerError::Media {
            type_id: types::VIDEO
        })
    );
}

#[test]
fn media_is_counted_and_rewritten_for_another_stream_id() {
    let t0 = Instant::now();
    let mut s = PlayerSession::new(&handoff(0, 3), config(), t0);
    let mut c = Client::new();
    let payload = vec![0x27u8; 600];
    let mut shared = BytesMut::new();
    // Built once for message stream 1, chunked at the session's chunk size.
    write_fmt0(6, 40, types::VIDEO, 1, &payload, 128, &mut shared);
    let shared: Bytes = shared.freeze();
    s.queue_media(&shared);
    assert_eq!(s.queued_bytes(), shared.len());
    let msgs = c.received(&mut s);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].stream_id, 3);
    assert_eq!(msgs[0].timestamp, 40);
    assert_eq!(&msgs[0].payload[..], &payload[..]);

    // Control replies and media share one count.
    s.status("status", "NetStream.Play.PublishNotify", "x");
    let status = s.queued_bytes();
    s.queue_media(&shared);
    assert_eq!(s.queued_bytes(), status + shared.len());
}

#[test]
fn reconnect_request_only_to_a_player_that_announced_it() {
    let t0 = Instant::now();
    let mut legacy = PlayerSession::new(&handoff(0, 1), config(), t0);
    assert!(!legacy.can_reconnect());
    assert!(!legacy.request_reconnect(None, Some("maintenance")));
    assert!(Client::new().received(&mut legacy).is_empty());

    let mut h = handoff(0, 3);
    h.caps_ex = proto::rtmp::session::CAPS_EX_RECONNECT | 0x04;
    let mut s = PlayerSession::new(&h, config(), t0);
    let mut c = Client::new();
    s.accept();
    c.received(&mut s);
    assert!(s.request_reconnect(Some("rtmp://b.example/live"), Some("maintenance")));
    let msgs = c.received(&mut s);
    assert_eq!(msgs.len(), 1);
    // On the NetConnection (stream 0), not the play's stream 3.
    assert_eq!(msgs[0].stream_id, 0);
    assert_eq!(
        status_code(&msgs[0]),
        "NetConnection.Connect.ReconnectRequest"
    );
    let cmd = Command::parse(msgs[0].type_id, &msgs[0].payload, &Default::default()).unwrap();
    assert_eq!(
        cmd.args[0].get("tcUrl").and_then(|v| v.as_str()),
        Some("rtmp://b.example/live")
    );
    // A closed session sends nothing more.
    s.reject("NetStream.Play.Failed", "gone");
    c.received(&mut s);
    assert!(!s.request_reconnect(None, None));
}
