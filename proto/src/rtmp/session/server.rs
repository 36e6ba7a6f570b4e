//! The session state, input processing and output helpers.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::caps::CAPS_EX_RECONNECT;
use super::handoff::PlayerHandoff;
use super::output::{data_message, DataMessage, Output};
use super::{
    ConnectInfo, Media, MediaKind, MessageStreamId, PlayRequest, SessionConfig, SessionError,
    SessionEvent,
};
use crate::rtmp::amf0::Amf0Value;
use crate::rtmp::chunk::{ChunkDecoder, RtmpMessage};
use crate::rtmp::handshake::{HandshakeStatus, ServerHandshake, RANDOM_SIZE};
use crate::rtmp::message::{
    parse_aggregate, types, Command, ControlMessage, MessageError, UserControl,
};

/// Where the connection is.
#[derive(Debug)]
enum Phase {
    Handshake(Box<ServerHandshake>),
    Chunks,
}

/// What the connection turned out to be, decided by its first publish or play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Undecided,
    Publisher,
    Player,
}

/// State of one message stream created by `createStream`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum StreamState {
    Idle,
    PublishPending { name: String },
    Publishing { name: String },
    PlayPending(Box<PlayRequest>),
    PlayAccepted(Box<PlayRequest>),
}

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) id: u32,
    pub(super) state: StreamState,
}

/// The server side of one RTMP connection, from the first handshake byte to the point
/// where it publishes or is handed over as a player. Sans-IO: see the module docs for how
/// to drive it.
#[derive(Debug)]
pub struct ServerSession {
    pub(super) config: SessionConfig,
    phase: Phase,
    decoder: ChunkDecoder,
    pub(super) output: Output,
    pub(super) events: VecDeque<SessionEvent>,
    aggregate: Vec<RtmpMessage>,
    pub(super) connect: Option<ConnectInfo>,
    pub(super) role: Role,
    pub(super) streams: Vec<Slot>,
    pub(super) next_stream_id: u32,
    /// Input is left alone while a publish or play waits for the application.
    pub(super) paused: bool,
    bytes_received: u64,
    messages_received: u64,
    last_ack_sent: u64,
    peer_window: u32,
    pub(super) receive_audio: bool,
    pub(super) receive_video: bool,
    /// Set by [`ServerSession::refuse_connect`]: the description `connect` is refused with.
    pub(super) refuse_connect: Option<String>,
}

impl ServerSession {
    /// A session at the start of a connection. `random` fills the handshake's S1/S2 and
    /// `epoch` is its time field; both come from the caller so the core reads no clock and
    /// no RNG.
    pub fn new(config: SessionConfig, random: [u8; RANDOM_SIZE], epoch: u32) -> Self {
        ServerSession {
            decoder: ChunkDecoder::new(config.chunk_limits.clone()),
            config,
            phase: Phase::Handshake(Box::new(ServerHandshake::new(random, epoch))),
            output: Output::new(),
            events: VecDeque::new(),
            aggregate: Vec::new(),
            connect: None,
            role: Role::Undecided,
            streams: Vec::new(),
            next_stream_id: 1,
            paused: false,
            bytes_received: 0,
            messages_received: 0,
            last_ack_sent: 0,
            peer_window: 0,
            receive_audio: true,
            receive_video: true,
            refuse_connect: None,
        }
    }

    /// Makes the coming `connect` fail: it is answered with `_error`
    /// `NetConnection.Connect.Rejected` carrying `description` (for a client the application
    /// already refuses, e.g. an address with too many failed logins), and the session reports
    /// [`SessionEvent::ConnectRejected`]; the application then closes the connection.
    pub fn refuse_connect(&mut self, description: &str) {
        self.refuse_connect = Some(description.to_owned());
    }

    // ---- getters ----

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshake(_))
    }

    /// Whether input waits for an application decision on a publish or play request.
    /// A driver should stop reading from the socket meanwhile, so the input stays bounded.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The `connect` command's parameters, once connected.
    pub fn connect_info(&self) -> Option<&ConnectInfo> {
        self.connect.as_ref()
    }

    /// Bytes consumed from the client so far (handshake included).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Whole messages received so far (an aggregate counts once). A driver measures
    /// idleness by this, not by bytes: a client trickling bytes is still idle.
    pub fn messages_received(&self) -> u64 {
        self.messages_received
    }

    /// Bytes held in partially received messages (bounded by
    /// [`crate::rtmp::chunk::ChunkLimits::max_buffered_bytes`]).
    pub fn buffered_bytes(&self) -> usize {
        self.decoder.buffered_bytes()
    }

    // ---- input ----

    /// Consumes as much of `buf` as forms whole handshake blocks and RTMP messages; the rest
    /// stays in `buf` for the next call. Stops early while [`ServerSession::is_paused`].
    ///
    /// An error is connection-scoped: send what [`ServerSession::poll_transmit`] still
    /// yields (it may explain the error to the client), then close.
    pub fn handle_input(&mut self, buf: &mut BytesMut) -> Result<(), SessionError> {
        let before = buf.len();
        let result = self.process(buf);
        self.bytes_received += (before - buf.len()) as u64;
        self.acknowledge();
        result
    }

    fn process(&mut self, buf: &mut BytesMut) -> Result<(), SessionError> {
        if let Phase::Handshake(hs) = &mut self.phase {
            let status = hs.handle_input(buf)?;
            hs.poll_transmit(&mut self.output.bytes);
            if status == HandshakeStatus::NeedMore {
                return Ok(());
            }
            if let Some(kind) = hs.kind() {
                self.events.push_back(SessionEvent::HandshakeDone { kind });
            }
            self.phase = Phase::Chunks;
        }
        while !self.paused {
            let Some(msg) = self.decoder.decode(buf)? else {
                break;
            };
            self.messages_received += 1;
            if msg.type_id == types::AGGREGATE {
                self.aggregate_message(&msg)?;
            } else {
                self.message(msg)?;
            }
        }
        Ok(())
    }

    fn aggregate_message(&mut self, msg: &RtmpMessage) -> Result<(), SessionError> {
        let mut parts = std::mem::take(&mut self.aggregate);
        parts.clear();
        let result = parse_aggregate(msg, &mut parts)
            .map_err(|source| SessionError::Message {
                type_id: msg.type_id,
                source,
            })
            .and_then(|()| parts.drain(..).try_for_each(|m| self.message(m)));
        parts.clear();
        self.aggregate = parts;
        result
    }

    fn message(&mut self, msg: RtmpMessage) -> Result<(), SessionError> {
        let bad = |source: MessageError| SessionError::Message {
            type_id: msg.type_id,
            source,
        };
        match msg.type_id {
            // The decoder applied these itself.
            types::SET_CHUNK_SIZE | types::ABORT => {}
            types::ACKNOWLEDGEMENT | types::SET_PEER_BANDWIDTH => {
                ControlMessage::parse(msg.type_id, &msg.payload).map_err(bad)?;
            }
            types::WINDOW_ACK_SIZE => {
                if let ControlMessage::WindowAckSize(size) =
                    ControlMessage::parse(msg.type_id, &msg.payload).map_err(bad)?
                {
                    self.peer_window = size;
                }
            }
            types::USER_CONTROL => {
                if let UserControl::PingRequest(t) =
                    UserControl::parse(&msg.payload).map_err(bad)?
                {
                    self.send_user_control(&UserControl::PingResponse(t));
                }
            }
            types::AUDIO | types::VIDEO => self.media(msg)?,
            types::DATA_AMF0 | types::DATA_AMF3 => self.data(&msg)?,
            types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
                let cmd = Command::parse(msg.type_id, &msg.payload, &self.config.command_limits)
                    .map_err(bad)?;
                self.command(cmd, msg.stream_id)?;
            }
            // Shared objects and unknown types carry nothing a live server acts on.
            _ => {}
        }
        Ok(())
    }

    fn media(&mut self, msg: RtmpMessage) -> Result<(), SessionError> {
        if self.role == Role::Player {
            return Err(SessionError::MediaFromPlayer {
                type_id: msg.type_id,
            });
        }
        if !self.is_publishing(msg.stream_id) {
            return Err(SessionError::MediaBeforePublish {
                type_id: msg.type_id,
                stream_id: msg.stream_id,
            });
        }
        let kind = if msg.type_id == types::AUDIO {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        self.events.push_back(SessionEvent::Media(Media {
            stream_id: MessageStreamId(msg.stream_id),
            kind,
            timestamp: msg.timestamp,
            payload: msg.payload,
        }));
        Ok(())
    }

    fn data(&mut self, msg: &RtmpMessage) -> Result<(), SessionError> {
        let data = data_message(msg, &self.config.data_limits).map_err(|source| {
            SessionError::Message {
                type_id: msg.type_id,
                source,
            }
        })?;
        // Data outside a publishing stream has no consumer here.
        let Some(data) = data.filter(|_| self.is_publishing(msg.stream_id)) else {
            return Ok(());
        };
        let (stream_id, timestamp) = (MessageStreamId(msg.stream_id), msg.timestamp);
        self.events.push_back(match data {
            DataMessage::Metadata(data) => SessionEvent::Metadata {
                stream_id,
                timestamp,
                data,
            },
            DataMessage::Other(data) => SessionEvent::Data {
                stream_id,
                timestamp,
                data,
            },
        });
        Ok(())
    }

    pub(super) fn is_publishing(&self, stream_id: u32) -> bool {
        self.streams
            .iter()
            .any(|s| s.id == stream_id && matches!(s.state, StreamState::Publishing { .. }))
    }

    fn acknowledge(&mut self) {
        if self.peer_window == 0
            || self.bytes_received - self.last_ack_sent < u64::from(self.peer_window)
        {
            return;
        }
        self.last_ack_sent = self.bytes_received;
        // The sequence number wraps at 2^32 like every RTMP byte counter.
        self.send_control(&ControlMessage::Acknowledgement(self.bytes_received as u32));
    }

    // ---- output ----

    /// Appends every byte due to the client to `out` (handshake, control, replies).
    pub fn poll_transmit(&mut self, out: &mut BytesMut) {
        self.output.take(out);
    }

    /// The next event, if any. Drain after every [`ServerSession::handle_input`].
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Whether output is waiting for [`ServerSession::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.output.bytes.is_empty()
    }

    pub(super) fn send_control(&mut self, m: &ControlMessage) {
        self.output.control(m);
    }

    pub(super) fn send_user_control(&mut self, m: &UserControl) {
        self.output.user_control(m);
    }

    pub(super) fn send_command(&mut self, stream_id: u32, cmd: &Command) {
        self.output.command(stream_id, cmd);
    }

    /// Sends a command with a Null command object and `args`.
    pub(super) fn reply(&mut self, stream_id: u32, name: &str, tid: f64, args: Vec<Amf0Value>) {
        let cmd = Command {
            name: name.to_owned(),
            transaction_id: tid,
            object: Amf0Value::Null,
            args,
        };
        self.send_command(stream_id, &cmd);
    }

    /// Sends an `onStatus` on message stream `stream_id`.
    pub fn send_status(
        &mut self,
        stream_id: MessageStreamId,
        level: &str,
        code: &str,
        description: &str,
    ) {
        self.send_command(stream_id.0, &Command::on_status(level, code, description));
    }

    /// Whether the client may be sent a reconnect request: it announced the E-RTMP
    /// Reconnect capability in `connect`, and [`SessionConfig::reconnect`] is on (so the
    /// answer announced it back).
    pub fn can_reconnect(&self) -> bool {
        self.config.reconnect
            && self
                .connect
                .as_ref()
                .is_some_and(|c| c.caps_ex & CAPS_EX_RECONNECT != 0)
    }

    /// Queues an E-RTMP `NetConnection.Connect.ReconnectRequest` (an `onStatus` on message
    /// stream 0) when [`Self::can_reconnect`]; returns whether it did. `tc_url` sends the
    /// client elsewhere (else it reconnects to the URL it used). The session goes on as
    /// before: the client streams on up to a media boundary, connects again, then leaves.
    pub fn request_reconnect(&mut self, tc_url: Option<&str>, description: Option<&str>) -> bool {
        if !self.can_reconnect() {
            return false;
        }
        self.send_command(0, &Command::reconnect_request(tc_url, description));
        true
    }

    // ---- handoff ----

    /// Exports what the hub needs to continue serving an accepted player. `pending_input`
    /// is what the driver read past the `play` command (the rest of its input buffer).
    ///
    /// Fails unless a play was accepted, all output was taken with
    /// [`ServerSession::poll_transmit`], and no message is half received.
    pub fn into_player_state(
        self,
        conn_id: u64,
        remote: String,
        key: String,
        pending_input: &[u8],
    ) -> Result<PlayerHandoff, SessionError> {
        let Some(play) = self.streams.iter().find_map(|s| match &s.state {
            StreamState::PlayAccepted(p) => Some(p),
            _ => None,
        }) else {
            return Err(SessionError::NotHandoffReady {
                reason: "no accepted play",
            });
        };
        if !self.output.bytes.is_empty() {
            return Err(SessionError::NotHandoffReady {
                reason: "output not flushed",
            });
        }
        if self.decoder.has_partial() {
            return Err(SessionError::NotHandoffReady {
                reason: "a message is half received",
            });
        }
        let caps_ex = self.connect.as_ref().map_or(0, |c| c.caps_ex);
        Ok(PlayerHandoff {
            conn_id,
            remote,
            key,
            stream_id: play.stream_id.0,
            in_chunk_size: self.decoder.chunk_size(),
            out_chunk_size: self.output.encoder.chunk_size(),
            window_ack_size: self.peer_window,
            bytes_received: self.bytes_received,
            last_ack_sent: self.last_ack_sent,
            in_chunk_streams: self.decoder.export_state(),
            pending_input: pending_input.to_vec(),
            start: play.start,
            duration: play.duration,
            reset: play.reset,
            receive_audio: self.receive_audio,
            receive_video: self.receive_video,
            transaction_id: play.transaction_id,
            caps_ex: if self.config.reconnect {
                caps_ex
            } else {
                caps_ex & !CAPS_EX_RECONNECT
            },
            announced: self
                .connect
                .as_ref()
                .map(|c| c.announced.clone())
                .unwrap_or_default(),
        })
    }
}
