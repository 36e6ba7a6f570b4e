//! The server side of an RTMP player connection after `play` was accepted and handed
//! over ([`PlayerHandoff`]): everything the player sends from then on (acknowledgement
//! windows, pings, receiveAudio/receiveVideo, pause, seek, the end of the session), the
//! control replies and status messages sent back, and the liveness pings. Media bytes,
//! built elsewhere once for every player, are queued into the same [`Outbox`], so the
//! session knows every byte waiting for this player's socket.
//!
//! ```text
//!  socket bytes, now --> handle_input --> chunk decoder --> control / command
//!                                                               |
//!  socket <-- outbox() (writev) <-- acks, pongs, pings, onStatus  v
//!           ^                                        poll_event: ReceiveAudio, ReceiveVideo,
//!           +-- queue_media (shared chunk bytes)                  Pause, Seek, Closed
//!  now --> handle_timeout / poll_timeout (pings, idle)
//! ```
//!
//! Like [`super::ServerSession`] it reads no clock: `now` comes in with every call.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::handoff::PlayerHandoff;
use super::output::{CSID_COMMAND, CSID_CONTROL};
use crate::iov::Outbox;
use crate::rtmp::amf0::{self, Amf0Value, AmfLimits};
use crate::rtmp::chunk::{
    rewrite_fmt0_stream_id, write_fmt0, ChunkDecoder, ChunkError, ChunkLimits, RtmpMessage,
};
use crate::rtmp::message::{types, Command, ControlMessage, MessageError, UserControl};

/// Chunk stream of data messages (`|RtmpSampleAccess`).
const CSID_DATA: u32 = 5;

/// Settings of a player session.
#[derive(Debug, Clone)]
pub struct PlayerConfig {
    /// Chunk size the server announces and writes with once the play is accepted.
    pub chunk_size: u32,
    /// Message stream id the shared media bytes given to [`PlayerSession::queue_media`]
    /// were built for; a player on another id gets their first header rewritten.
    pub media_stream_id: u32,
    /// Largest message a player may send (players send small commands only).
    pub max_message_size: u32,
    /// Bounds on AMF values in the player's commands. Default [`AmfLimits::command`].
    pub amf_limits: AmfLimits,
    /// After this long without a byte from the player, a ping is sent; `None` never pings.
    pub ping_interval: Option<Duration>,
    /// A player that sends nothing for this long after a ping is closed as idle.
    pub ping_timeout: Duration,
}

impl Default for PlayerConfig {
    fn default() -> Self {
        PlayerConfig {
            chunk_size: 4096,
            media_stream_id: 1,
            max_message_size: 64 * 1024,
            amf_limits: AmfLimits::command(),
            ping_interval: Some(Duration::from_secs(60)),
            ping_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a player session ends on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// `deleteStream` on the playing stream.
    DeleteStream,
    /// `closeStream`.
    CloseStream,
    /// `close` (NetConnection).
    Close,
    /// No byte from the player for the ping timeout after a ping.
    Idle(Duration),
}

impl CloseReason {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::DeleteStream => "deleteStream",
            CloseReason::CloseStream => "closeStream",
            CloseReason::Close => "close",
            CloseReason::Idle(_) => "idle",
        }
    }
}

/// What the player asked for; the reply it needs (if any) is already queued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlayerEvent {
    /// receiveAudio: whether to send audio.
    ReceiveAudio(bool),
    /// receiveVideo: whether to send video (resume at a keyframe).
    ReceiveVideo(bool),
    /// pause (true) or unpause (false); `NetStream.Pause.Notify` /
    /// `NetStream.Unpause.Notify` is queued.
    Pause(bool),
    /// seek to this position in milliseconds; `NetStream.Seek.Notify` is queued. On a live
    /// stream the application moves the player to the newest keyframe.
    Seek(f64),
    /// The session is over; flush the outbox and close.
    Closed(CloseReason),
}

/// Why the player's input was refused. The connection must be closed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlayerError {
    /// The chunk stream is corrupt or over a limit.
    #[error("{0}")]
    Chunk(#[from] ChunkError),
    /// A player sent media or data.
    #[error("media message type {type_id} from a player")]
    Media {
        /// The message type.
        type_id: u8,
    },
    /// A command that does not parse.
    #[error("command: {0}")]
    Command(MessageError),
}

impl PlayerError {
    /// The protocol layer that failed, for logs.
    pub fn layer(&self) -> &'static str {
        match self {
            PlayerError::Chunk(_) => "chunk",
            _ => "player",
        }
    }
}

/// One player connection's protocol state after the handoff.
#[derive(Debug)]
pub struct PlayerSession {
    cfg: PlayerConfig,
    key: String,
    stream_id: u32,
    reset: bool,
    /// Chunk size of what the session writes: the handed-over one until the play is
    /// accepted, then `cfg.chunk_size`.
    chunk_size: u32,
    decoder: ChunkDecoder,
    /// The player's acknowledgement window (WindowAckSize it sent); 0 = none.
    window: u32,
    /// Bytes the player had sent before the handoff.
    base_received: u64,
    last_ack: u64,
    epoch: Instant,
    last_input: Instant,
    ping_sent: Option<Instant>,
    receive_audio: bool,
    receive_video: bool,
    /// The `capsEx` both sides announced (from the handoff).
    caps_ex: u32,
    paused: bool,
    closed: bool,
    events: VecDeque<PlayerEvent>,
    out: Outbox,
    scratch: BytesMut,
    /// Media message headers rewritten for this player's stream id, cut from one buffer
    /// (see [`PlayerSession::queue_media`]).
    heads: BytesMut,
}

/// Longest FMT 0 message header: a 3-byte basic header and 11 bytes.
const FMT0_HEAD_MAX: usize = 14;
/// Bytes reserved at a time for rewritten media headers: a few hundred frames' worth.
const HEADS_BUFFER: usize = 4096;

impl PlayerSession {
    /// Continues the connection `h` describes. Its `pending_input` is not consumed: the
    /// driver puts it at the front of its receive buffer.
    pub fn new(h: &PlayerHandoff, cfg: PlayerConfig, now: Instant) -> PlayerSession {
        let limits = ChunkLimits {
            max_message_size: cfg.max_message_size,
            max_chunk_streams: 16,
            max_buffered_bytes: 4 * cfg.max_message_size as usize,
            ..ChunkLimits::default()
        };
        PlayerSession {
            key: h.key.clone(),
            stream_id: h.stream_id,
            reset: h.reset,
            chunk_size: h.out_chunk_size.max(1),
            decoder: ChunkDecoder::from_state(limits, h.in_chunk_size, &h.in_chunk_streams),
            window: h.window_ack_size,
            base_received: h.bytes_received,
            last_ack: h.last_ack_sent,
            epoch: now,
            last_input: now,
            ping_sent: None,
            receive_audio: h.receive_audio,
            receive_video: h.receive_video,
            caps_ex: h.caps_ex,
            paused: false,
            closed: false,
            events: VecDeque::new(),
            out: Outbox::new(),
            scratch: BytesMut::new(),
            heads: BytesMut::new(),
            cfg,
        }
    }

    /// The stream key being played.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The message stream id of the play.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Whether the player wants audio.
    pub fn receive_audio(&self) -> bool {
        self.receive_audio
    }

    /// Whether the player wants video.
    pub fn receive_video(&self) -> bool {
        self.receive_video
    }

    /// Whether the player paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the session is over (the player closed, or was idle).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes received from the player since the connection opened.
    pub fn bytes_received(&self) -> u64 {
        self.base_received + self.decoder.bytes_consumed()
    }

    /// Accepts the play: chunk size, StreamBegin, `NetStream.Play.Reset` (when asked),
    /// `NetStream.Play.Start` and `|RtmpSampleAccess` are queued.
    pub fn accept(&mut self) {
        let cs = self.cfg.chunk_size;
        self.control(&ControlMessage::SetChunkSize(cs));
        self.chunk_size = cs;
        self.user_control(&UserControl::StreamBegin(self.stream_id));
        if self.reset {
            let d = format!("Playing and resetting {}.", self.key);
            self.status("status", "NetStream.Play.Reset", &d);
        }
        let d = format!("Started playing {}.", self.key);
        self.status("status", "NetStream.Play.Start", &d);
        self.scratch.clear();
        for v in [
            Amf0Value::String("|RtmpSampleAccess".into()),
            Amf0Value::Boolean(true),
            Amf0Value::Boolean(true),
        ] {
            amf0::encode(&v, &mut self.scratch);
        }
        let body = self.scratch.split();
        self.write(CSID_DATA, types::DATA_AMF0, self.stream_id, &body);
    }

    /// Refuses the play with an error status (`code`, `description`); the session is
    /// closed once the outbox is written.
    pub fn reject(&mut self, code: &str, description: &str) {
        self.status("error", code, description);
        self.closed = true;
    }

    /// The stream's publisher (re)started: StreamBegin and `NetStream.Play.PublishNotify`.
    pub fn publish_notify(&mut self) {
        self.user_control(&UserControl::StreamBegin(self.stream_id));
        let d = format!("{} is now published.", self.key);
        self.status("status", "NetStream.Play.PublishNotify", &d);
    }

    /// The stream's publisher left: StreamEOF and `NetStream.Play.UnpublishNotify`.
    pub fn unpublish_notify(&mut self) {
        self.user_control(&UserControl::StreamEof(self.stream_id));
        let d = format!("{} is now unpublished.", self.key);
        self.status("status", "NetStream.Play.UnpublishNotify", &d);
    }

    /// Whether the player announced the E-RTMP Reconnect capability (and ingest answered
    /// it): only then may it be sent [`Self::request_reconnect`].
    pub fn can_reconnect(&self) -> bool {
        self.caps_ex & super::CAPS_EX_RECONNECT != 0
    }

    /// Queues an E-RTMP `NetConnection.Connect.ReconnectRequest` (an `onStatus` on message
    /// stream 0) when [`Self::can_reconnect`]; returns whether it did. Media goes on as
    /// before until the player leaves.
    pub fn request_reconnect(&mut self, tc_url: Option<&str>, description: Option<&str>) -> bool {
        if !self.can_reconnect() || self.closed {
            return false;
        }
        self.command_message(0, &Command::reconnect_request(tc_url, description));
        true
    }

    /// Queues an `onStatus` on the play's message stream.
    pub fn status(&mut self, level: &str, code: &str, description: &str) {
        let cmd = Command::on_status(level, code, description);
        self.command_message(self.stream_id, &cmd);
    }

    fn command_message(&mut self, stream_id: u32, cmd: &Command) {
        self.scratch.clear();
        cmd.write_body(&mut self.scratch);
        let body = self.scratch.split();
        self.write(CSID_COMMAND, types::COMMAND_AMF0, stream_id, &body);
    }

    /// Queues media bytes built once for every player (FMT 0 + continuations, for
    /// `cfg.media_stream_id`), without copying them. For another stream id only the FMT 0
    /// header is rewritten, into a buffer shared by a few hundred frames' headers and
    /// reused in place once they were written: no allocation per frame.
    pub fn queue_media(&mut self, shared: &Bytes) {
        if self.stream_id == self.cfg.media_stream_id {
            self.out.push(shared.clone());
            return;
        }
        // With the outbox empty no header cut from the buffer is alive, so this reuses it
        // in place; a player with a backlog gets a new one every few hundred frames.
        let room = self.heads.capacity();
        if room < FMT0_HEAD_MAX || (self.out.is_empty() && room < HEADS_BUFFER / 2) {
            self.heads.reserve(HEADS_BUFFER);
        }
        if let Some(rest) = rewrite_fmt0_stream_id(shared, self.stream_id, &mut self.heads) {
            self.out.push(self.heads.split().freeze());
            self.out.push(rest);
        }
    }

    /// Queues bytes already built for this player (headers after a skip).
    pub fn queue_bytes(&mut self, b: Bytes) {
        self.out.push(b);
    }

    /// Everything waiting for the socket; the driver writes from it (vectored) and
    /// advances it by what the socket took.
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.out
    }

    /// Bytes waiting for the socket: media, control replies and status alike.
    pub fn queued_bytes(&self) -> usize {
        self.out.bytes()
    }

    /// Takes the whole messages at the front of `buf` (what the socket gave, `now`).
    /// Replies go to the outbox, requests to [`PlayerSession::poll_event`].
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) -> Result<(), PlayerError> {
        if !buf.is_empty() {
            self.last_input = now;
            self.ping_sent = None;
        }
        while !self.closed {
            let Some(msg) = self.decoder.decode(buf)? else {
                break;
            };
            self.message(msg)?;
        }
        self.acknowledge();
        Ok(())
    }

    /// The next request of the player.
    pub fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.events.pop_front()
    }

    /// When [`PlayerSession::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let interval = self.cfg.ping_interval?;
        Some(match self.ping_sent {
            Some(sent) => sent + self.cfg.ping_timeout,
            None => self.last_input + interval,
        })
    }

    /// Sends a ping when the player has been quiet for the ping interval, and closes the
    /// session when it stays quiet for the ping timeout after it.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (Some(interval), false) = (self.cfg.ping_interval, self.closed) else {
            return;
        };
        match self.ping_sent {
            Some(sent) if now >= sent + self.cfg.ping_timeout => {
                self.closed = true;
                let quiet = now.saturating_duration_since(self.last_input);
                self.events
                    .push_back(PlayerEvent::Closed(CloseReason::Idle(quiet)));
            }
            Some(_) => {}
            None if now >= self.last_input + interval => {
                // The timestamp is the server's clock in ms; the player echoes it.
                let t = now.saturating_duration_since(self.epoch).as_millis() as u32;
                self.user_control(&UserControl::PingRequest(t));
                self.ping_sent = Some(now);
            }
            None => {}
        }
    }

    fn acknowledge(&mut self) {
        if self.window == 0 {
            return;
        }
        let received = self.bytes_received();
        if received - self.last_ack >= u64::from(self.window) {
            self.last_ack = received;
            // The field wraps at 2^32 (RTMP 1.0 section 5.4.3).
            self.control(&ControlMessage::Acknowledgement(received as u32));
        }
    }

    fn message(&mut self, msg: RtmpMessage) -> Result<(), PlayerError> {
        match msg.type_id {
            types::WINDOW_ACK_SIZE => {
                if let Ok(ControlMessage::WindowAckSize(w)) =
                    ControlMessage::parse(msg.type_id, &msg.payload)
                {
                    self.window = w;
                }
            }
            types::USER_CONTROL => {
                if let Ok(UserControl::PingRequest(t)) = UserControl::parse(&msg.payload) {
                    self.user_control(&UserControl::PingResponse(t));
                }
            }
            types::AUDIO
            | types::VIDEO
            | types::DATA_AMF0
            | types::DATA_AMF3
            | types::AGGREGATE => {
                return Err(PlayerError::Media {
                    type_id: msg.type_id,
                })
            }
            types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
                let cmd = Command::parse(msg.type_id, &msg.payload, &self.cfg.amf_limits)
                    .map_err(PlayerError::Command)?;
                self.command(&cmd);
            }
            // Acknowledgements, PingResponse, SetChunkSize/Abort (the decoder applied
            // them), SetPeerBandwidth.
            _ => {}
        }
        Ok(())
    }

    fn command(&mut self, cmd: &Command) {
        let flag = |i: usize| cmd.args.get(i).and_then(|v| v.as_bool());
        match cmd.name.as_str() {
            "receiveAudio" => {
                if let Some(v) = flag(0) {
                    self.receive_audio = v;
                    self.events.push_back(PlayerEvent::ReceiveAudio(v));
                }
            }
            "receiveVideo" => {
                if let Some(v) = flag(0) {
                    self.receive_video = v;
                    self.events.push_back(PlayerEvent::ReceiveVideo(v));
                }
            }
            "pause" => {
                if let Some(p) = flag(0) {
                    if p {
                        self.status("status", "NetStream.Pause.Notify", "Paused live stream.");
                    } else {
                        let d = "Unpaused live stream.";
                        self.status("status", "NetStream.Unpause.Notify", d);
                    }
                    self.paused = p;
                    self.events.push_back(PlayerEvent::Pause(p));
                }
            }
            "seek" => {
                let ms = cmd.args.first().and_then(|v| v.as_f64()).unwrap_or(0.0);
                let d = "Seeking to the live position.";
                self.status("status", "NetStream.Seek.Notify", d);
                self.events.push_back(PlayerEvent::Seek(ms));
            }
            "deleteStream" => self.close(CloseReason::DeleteStream),
            "closeStream" => self.close(CloseReason::CloseStream),
            "close" => self.close(CloseReason::Close),
            // FCUnpublish, getStreamLength, _checkbw ...: nothing to answer for a live play.
            _ => {}
        }
    }

    fn close(&mut self, why: CloseReason) {
        self.closed = true;
        self.events.push_back(PlayerEvent::Closed(why));
    }

    fn control(&mut self, m: &ControlMessage) {
        self.scratch.clear();
        m.write_body(&mut self.scratch);
        let body = self.scratch.split();
        self.write(CSID_CONTROL, m.type_id(), 0, &body);
    }

    fn user_control(&mut self, m: &UserControl) {
        self.scratch.clear();
        m.write_body(&mut self.scratch);
        let body = self.scratch.split();
        self.write(CSID_CONTROL, types::USER_CONTROL, 0, &body);
    }

    /// Serializes a message of this session's own (a reply, a status) into the outbox's
    /// tail, so that many small replies cost their bytes and no buffer each.
    fn write(&mut self, csid: u32, type_id: u8, stream_id: u32, body: &[u8]) {
        let chunk_size = self.chunk_size;
        self.out
            .append(|out| write_fmt0(csid, 0, type_id, stream_id, body, chunk_size, out));
    }
}
