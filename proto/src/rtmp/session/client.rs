//! The client side of an RTMP connection (relays, load tools): handshake, `connect` with
//! Enhanced RTMP capability negotiation, `createStream`, then `publish` or `play`, and
//! media in or out, as a sans-IO state machine.
//!
//! ```text
//!  new(request) --> poll_transmit: C0 C1
//!  handle_input(S0 S1 S2) --> C2, connect{app, tcUrl, fourCcList, capsEx}
//!  _result(connect)       --> Connected(ServerCaps); [SetChunkSize, releaseStream,
//!                              FCPublish] createStream
//!  _result(createStream)  --> StreamCreated; publish(name, live) | play(name) + buffer
//!  onStatus Publish.Start --> Publishing: send_metadata / send_media
//!  onStatus Play.Start    --> Playing: Metadata / Media events
//!  close()                --> FCUnpublish, deleteStream
//! ```
//!
//! The session answers pings, acknowledges the server's window and follows its chunk
//! size by itself. A refusal (`_error`, an `onStatus` of level `error`) is a
//! [`ClientError::Rejected`] from [`ClientSession::handle_input`]. It reads no clock:
//! connect and idle timeouts belong to the driver.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Bytes, BytesMut};

use super::caps::{self, AUDIO_FOURCCS, CAPS_EX_MODEX, CAPS_EX_MULTITRACK, VIDEO_FOURCCS};
use super::output::{data_message, DataMessage, Output};
use super::{Media, MediaKind, MessageStreamId};
use crate::flv::{audio_fourcc, video_fourcc};
use crate::iov::Outbox;
use crate::media::Codec;
use crate::rtmp::amf0::{self, Amf0Value, AmfLimits};
use crate::rtmp::chunk::{ChunkDecoder, ChunkLimits, RtmpMessage};
use crate::rtmp::handshake::{ClientHandshake, HandshakeStatus, RANDOM_SIZE};
use crate::rtmp::message::{
    parse_aggregate, types, Command, ControlMessage, MessageError, UserControl, RECONNECT_REQUEST,
};

use super::error::ClientError;

/// Chunk streams of media and data (the conventions of ARCHITECTURE.md).
const CSID_AUDIO: u32 = 4;
const CSID_DATA: u32 = 5;
const CSID_VIDEO: u32 = 6;

/// Whether the client publishes or plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// `publish(name, "live")`: media goes out.
    Publish,
    /// `play(name)`: media comes in.
    Play,
}

/// What a [`ClientSession`] asks the server for, usually taken from an
/// `rtmp://host[:port]/app/name` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// The `app` of `connect` (may carry `?query`, sent as is).
    pub app: String,
    /// The `tcUrl` of `connect`: `rtmp://host[:port]/app`.
    pub tc_url: String,
    /// The stream name of `publish`/`play` (may carry `?query`, sent as is).
    pub name: String,
    /// Publish or play.
    pub mode: ClientMode,
}

/// How a [`ClientSession`] bounds the server and what it announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Bounds on the server's chunk stream.
    pub chunk_limits: ChunkLimits,
    /// Bounds on AMF values in the server's commands and data messages.
    pub amf_limits: AmfLimits,
    /// Chunk size announced to and used toward the server once connected. Default 4096.
    pub chunk_size: u32,
    /// Window acknowledgement size announced to the server. Default 2 500 000.
    pub window_ack_size: u32,
    /// The digest ("complex") handshake FFmpeg and Flash use, rather than the simple one.
    /// Default true.
    pub digest_handshake: bool,
    /// The `flashVer` of `connect`.
    pub flash_ver: String,
    /// Enhanced RTMP FourCCs announced in `connect`'s `fourCcList` (with [`Self::caps_ex`]).
    /// Empty: a legacy client that announces nothing. Default: every codec proto knows.
    pub fourccs: Vec<String>,
    /// The `capsEx` bits announced with `fourccs` (`CAPS_EX_*`). Default multitrack and
    /// ModEx; add [`super::CAPS_EX_RECONNECT`] for a client that acts on
    /// [`ClientEvent::ReconnectRequest`].
    pub caps_ex: u32,
    /// Buffer length announced to the server after `play` (milliseconds). Default 1000.
    pub play_buffer_ms: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            chunk_limits: ChunkLimits::default(),
            amf_limits: AmfLimits::default(),
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            digest_handshake: true,
            flash_ver: "FMLE/3.0 (compatible; mediaserver)".to_owned(),
            fourccs: VIDEO_FOURCCS
                .iter()
                .chain(AUDIO_FOURCCS.iter())
                .map(|s| (*s).to_owned())
                .collect(),
            caps_ex: CAPS_EX_MULTITRACK | CAPS_EX_MODEX,
            play_buffer_ms: 1000,
        }
    }
}

/// What the server's `connect` answer says it takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerCaps {
    /// `fmsVer`, if sent.
    pub fms_ver: Option<String>,
    /// Whether the answer carried any Enhanced RTMP property (`fourCcList`, the info maps
    /// or `capsEx`). Servers that did not are sent legacy FLV only.
    pub enhanced: bool,
    /// FourCCs the server declared (`fourCcList` and the keys of both info maps); `*`
    /// means any.
    pub fourccs: Vec<String>,
    /// The `capsEx` bits the server declared.
    pub caps_ex: u32,
}

impl ServerCaps {
    /// Reads the properties of a `connect` `_result`.
    pub fn from_properties(props: &Amf0Value) -> ServerCaps {
        let mut caps = ServerCaps {
            fms_ver: props.get("fmsVer").and_then(|v| v.as_str()).map(Into::into),
            ..ServerCaps::default()
        };
        if let Some(Amf0Value::StrictArray(list)) = props.get("fourCcList") {
            caps.enhanced = true;
            caps.fourccs
                .extend(list.iter().filter_map(|v| v.as_str()).map(Into::into));
        }
        for map in ["videoFourCcInfoMap", "audioFourCcInfoMap"] {
            if let Some(Amf0Value::Object(p) | Amf0Value::EcmaArray(p)) = props.get(map) {
                caps.enhanced = true;
                for (k, _) in p {
                    if !caps.fourccs.contains(k) {
                        caps.fourccs.push(k.clone());
                    }
                }
            }
        }
        if props.get("capsEx").is_some() {
            caps.enhanced = true;
            caps.caps_ex = caps::client_caps_ex(props);
        }
        caps
    }

    /// Whether media of `codec` on `track` can be sent to this server in a form it
    /// declared it understands: the legacy FLV codecs on track 0 always; Enhanced RTMP
    /// codecs when their FourCC was declared; other tracks when multitrack was declared.
    pub fn accepts(&self, codec: Codec, track: u8) -> bool {
        let legacy = matches!(
            codec,
            Codec::H264 | Codec::Aac | Codec::Mp3 | Codec::LegacyVideo { .. }
        ) || matches!(codec, Codec::LegacyAudio { .. });
        if track == 0 && legacy {
            return true;
        }
        if !self.enhanced {
            return false;
        }
        if track != 0 && self.caps_ex & CAPS_EX_MULTITRACK == 0 {
            return false;
        }
        let Some(code) = video_fourcc(codec).or_else(|| audio_fourcc(codec)) else {
            return false;
        };
        self.fourccs
            .iter()
            .any(|f| f == "*" || f.as_bytes() == code.as_slice())
    }
}

/// An `onStatus` info object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `level`: `status`, `warning` or `error`.
    pub level: String,
    /// `code`, e.g. `NetStream.Play.Start`.
    pub code: String,
    /// `description` (empty when absent).
    pub description: String,
}

impl Status {
    fn from_command(cmd: &Command) -> Status {
        let info = cmd.args.first();
        let field = |k: &str| {
            info.and_then(|i| i.get(k))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        Status {
            level: field("level"),
            code: field("code"),
            description: field("description"),
        }
    }
}

/// Whether `cmd` (an `onStatus`) is an E-RTMP reconnect request.
fn reconnect_request(cmd: &Command) -> bool {
    cmd.args
        .first()
        .and_then(|i| i.get("code"))
        .and_then(|v| v.as_str())
        == Some(RECONNECT_REQUEST)
}

/// What the client session reports, from [`ClientSession::poll_event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server accepted `connect`.
    Connected(ServerCaps),
    /// `createStream` returned this message stream.
    StreamCreated(MessageStreamId),
    /// `NetStream.Publish.Start`: media may be sent.
    Publishing,
    /// `NetStream.Play.Start`: media follows.
    Playing,
    /// Any other `onStatus` that is not an error (e.g. `NetStream.Play.Reset`).
    Status(Status),
    /// `NetConnection.Connect.ReconnectRequest` (E-RTMP): the server asks the client to
    /// go on up to a media boundary, connect again (to `tc_url` when given, else to the
    /// same URL) and then leave this connection, which keeps working meanwhile.
    ReconnectRequest {
        /// Where to reconnect (absolute or relative to the current `tcUrl`); `None`: the
        /// same URL.
        tc_url: Option<String>,
        /// Why, for people (empty when absent).
        description: String,
    },
    /// `onMetaData` of the played stream: the AMF0 values `"onMetaData"` and its object.
    Metadata {
        /// RTMP timestamp of the data message.
        timestamp: u32,
        /// AMF0 values as received (sliced when the server sent AMF0).
        data: Bytes,
    },
    /// Another data message of the played stream (`onCuePoint`, `onTextData`, ...): its
    /// AMF0 values, handler name first.
    Data {
        /// RTMP timestamp of the data message.
        timestamp: u32,
        /// AMF0 values as received (sliced when the server sent AMF0).
        data: Bytes,
    },
    /// Audio or video of the played stream.
    Media(Media),
    /// The server ended the played stream (`Play.Stop`, `Play.UnpublishNotify`, or
    /// StreamEOF): the publisher left. The connection may stay up.
    StreamEnded {
        /// The status code or `StreamEOF`.
        code: String,
    },
}

#[derive(Debug)]
enum Phase {
    Handshake(Box<ClientHandshake>),
    /// `connect` sent, waiting for its answer.
    Connecting,
    /// `createStream` sent.
    CreatingStream,
    /// `publish` or `play` sent, waiting for the start status.
    Starting,
    /// Publishing or playing.
    Streaming,
    /// `close` was called.
    Closed,
}

/// Transaction ids of the commands whose answers the session waits for.
const TID_CONNECT: f64 = 1.0;
const TID_CREATE_STREAM: f64 = 4.0;

/// The client side of one RTMP connection. Drive it like
/// [`super::ServerSession`]: `poll_transmit` first (C0C1), then for every read
/// `handle_input`, drain `poll_event`, `poll_transmit`.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    request: ClientRequest,
    phase: Phase,
    decoder: ChunkDecoder,
    output: Output,
    /// Output for vectored writes: `output`'s bytes sealed in order, with media payloads
    /// queued as shared slices ([`ClientSession::send_media_shared`]).
    vectored: Outbox,
    scratch: BytesMut,
    events: VecDeque<ClientEvent>,
    aggregate: Vec<RtmpMessage>,
    caps: Option<ServerCaps>,
    stream_id: Option<u32>,
    bytes_received: u64,
    bytes_sent: u64,
    last_ack_sent: u64,
    peer_window: u32,
}

impl ClientSession {
    /// A session at the start of a connection. `random` fills C1 and `epoch` is its time
    /// field; both come from the caller so the core reads no clock and no RNG.
    pub fn new(
        config: ClientConfig,
        request: ClientRequest,
        random: [u8; RANDOM_SIZE],
        epoch: u32,
    ) -> Self {
        let hs = ClientHandshake::new(random, epoch, config.digest_handshake);
        ClientSession {
            decoder: ChunkDecoder::new(config.chunk_limits.clone()),
            config,
            request,
            phase: Phase::Handshake(Box::new(hs)),
            output: Output::new(),
            vectored: Outbox::new(),
            scratch: BytesMut::new(),
            events: VecDeque::new(),
            aggregate: Vec::new(),
            caps: None,
            stream_id: None,
            bytes_received: 0,
            bytes_sent: 0,
            last_ack_sent: 0,
            peer_window: 0,
        }
    }

    // ---- getters ----

    /// What the server declared in its `connect` answer, once connected.
    pub fn server_caps(&self) -> Option<&ServerCaps> {
        self.caps.as_ref()
    }

    /// The message stream from `createStream`, once created.
    pub fn stream_id(&self) -> Option<MessageStreamId> {
        self.stream_id.map(MessageStreamId)
    }

    /// Whether the server started the publish or play (media may flow).
    pub fn is_streaming(&self) -> bool {
        matches!(self.phase, Phase::Streaming)
    }

    /// Bytes consumed from the server so far (handshake included).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Bytes handed out by [`ClientSession::poll_transmit`] so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// What this session asked for.
    pub fn request(&self) -> &ClientRequest {
        &self.request
    }

    // ---- input ----

    /// Consumes as much of `buf` as forms whole handshake blocks and RTMP messages; the
    /// rest stays in `buf`. An error is connection-scoped: write what `poll_transmit`
    /// still has if useful, then close.
    pub fn handle_input(&mut self, buf: &mut BytesMut) -> Result<(), ClientError> {
        let before = buf.len();
        let result = self.process(buf);
        self.bytes_received += (before - buf.len()) as u64;
        self.acknowledge();
        result
    }

    fn process(&mut self, buf: &mut BytesMut) -> Result<(), ClientError> {
        if let Phase::Handshake(hs) = &mut self.phase {
            let status = hs.handle_input(buf)?;
            hs.poll_transmit(&mut self.output.bytes);
            if status == HandshakeStatus::NeedMore {
                return Ok(());
            }
            self.phase = Phase::Connecting;
            self.send_connect();
        }
        while let Some(msg) = self.decoder.decode(buf)? {
            if msg.type_id == types::AGGREGATE {
                let mut parts = std::mem::take(&mut self.aggregate);
                parts.clear();
                let r = parse_aggregate(&msg, &mut parts)
                    .map_err(|source| ClientError::Message {
                        type_id: msg.type_id,
                        source,
                    })
                    .and_then(|()| parts.drain(..).try_for_each(|m| self.message(m)));
                parts.clear();
                self.aggregate = parts;
                r?;
            } else {
                self.message(msg)?;
            }
        }
        Ok(())
    }

    fn message(&mut self, msg: RtmpMessage) -> Result<(), ClientError> {
        let bad = |source: MessageError| ClientError::Message {
            type_id: msg.type_id,
            source,
        };
        match msg.type_id {
            // The decoder applied these itself.
            types::SET_CHUNK_SIZE | types::ABORT => {}
            types::WINDOW_ACK_SIZE => {
                if let ControlMessage::WindowAckSize(size) =
                    ControlMessage::parse(msg.type_id, &msg.payload).map_err(bad)?
                {
                    self.peer_window = size;
                }
            }
            types::ACKNOWLEDGEMENT | types::SET_PEER_BANDWIDTH => {
                ControlMessage::parse(msg.type_id, &msg.payload).map_err(bad)?;
            }
            types::USER_CONTROL => match UserControl::parse(&msg.payload).map_err(bad)? {
                UserControl::PingRequest(t) => {
                    self.send_user_control(&UserControl::PingResponse(t))
                }
                UserControl::StreamEof(id)
                    if self.request.mode == ClientMode::Play && Some(id) == self.stream_id =>
                {
                    self.events.push_back(ClientEvent::StreamEnded {
                        code: "StreamEOF".into(),
                    });
                }
                _ => {}
            },
            types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
                let cmd = Command::parse(msg.type_id, &msg.payload, &self.config.amf_limits)
                    .map_err(bad)?;
                self.command(cmd)?;
            }
            types::DATA_AMF0 | types::DATA_AMF3 => self.data(&msg)?,
            types::AUDIO | types::VIDEO
                if self.request.mode == ClientMode::Play
                    && Some(msg.stream_id) == self.stream_id =>
            {
                let kind = if msg.type_id == types::AUDIO {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                self.events.push_back(ClientEvent::Media(Media {
                    stream_id: MessageStreamId(msg.stream_id),
                    kind,
                    timestamp: msg.timestamp,
                    payload: msg.payload,
                }));
            }
            // Shared objects and unknown types carry nothing a client acts on.
            _ => {}
        }
        Ok(())
    }

    fn command(&mut self, cmd: Command) -> Result<(), ClientError> {
        match cmd.name.as_str() {
            "_result" if cmd.transaction_id == TID_CONNECT => {
                if !matches!(self.phase, Phase::Connecting) {
                    return Ok(());
                }
                let caps = ServerCaps::from_properties(&cmd.object);
                self.caps = Some(caps.clone());
                self.events.push_back(ClientEvent::Connected(caps));
                self.after_connect();
            }
            "_result" if cmd.transaction_id == TID_CREATE_STREAM => {
                if !matches!(self.phase, Phase::CreatingStream) {
                    return Ok(());
                }
                let id = cmd
                    .args
                    .first()
                    .and_then(|v| v.as_f64())
                    .filter(|n| *n >= 0.0 && *n <= f64::from(u32::MAX))
                    .ok_or(ClientError::BadAnswer {
                        command: "createStream",
                        what: "no stream id",
                    })? as u32;
                self.stream_id = Some(id);
                self.events
                    .push_back(ClientEvent::StreamCreated(MessageStreamId(id)));
                self.start_stream(id);
            }
            "_error" => {
                let status = Status::from_command(&cmd);
                let command = match cmd.transaction_id {
                    t if t == TID_CONNECT => "connect",
                    t if t == TID_CREATE_STREAM => "createStream",
                    // Answers to releaseStream/FCPublish: servers that do not know them
                    // say so, which is harmless.
                    _ => return Ok(()),
                };
                return Err(ClientError::Rejected {
                    command,
                    code: status.code,
                    description: status.description,
                });
            }
            "onStatus" if reconnect_request(&cmd) => {
                let tc_url = cmd
                    .args
                    .first()
                    .and_then(|i| i.get("tcUrl"))
                    .and_then(|v| v.as_str())
                    .map(Into::into);
                let description = Status::from_command(&cmd).description;
                self.events.push_back(ClientEvent::ReconnectRequest {
                    tc_url,
                    description,
                });
            }
            "onStatus" => self.on_status(Status::from_command(&cmd))?,
            "close" => {
                return Err(ClientError::Rejected {
                    command: "close",
                    code: "NetConnection.Connect.Closed".into(),
                    description: "the server closed the connection".into(),
                })
            }
            // onBWDone, onFCPublish, other _result answers: nothing to act on.
            _ => {}
        }
        Ok(())
    }

    fn on_status(&mut self, status: Status) -> Result<(), ClientError> {
        let starting = matches!(self.phase, Phase::Starting);
        match status.code.as_str() {
            "NetStream.Publish.Start" if starting && self.request.mode == ClientMode::Publish => {
                self.phase = Phase::Streaming;
                self.events.push_back(ClientEvent::Publishing);
            }
            "NetStream.Play.Start" if starting && self.request.mode == ClientMode::Play => {
                self.phase = Phase::Streaming;
                self.events.push_back(ClientEvent::Playing);
            }
            "NetStream.Play.Stop" | "NetStream.Play.UnpublishNotify"
                if self.request.mode == ClientMode::Play =>
            {
                self.events
                    .push_back(ClientEvent::StreamEnded { code: status.code });
            }
            _ if status.level == "error" => {
                return Err(ClientError::Rejected {
                    command: match self.request.mode {
                        ClientMode::Publish => "publish",
                        ClientMode::Play => "play",
                    },
                    code: status.code,
                    description: status.description,
                });
            }
            _ => self.events.push_back(ClientEvent::Status(status)),
        }
        Ok(())
    }

    fn data(&mut self, msg: &RtmpMessage) -> Result<(), ClientError> {
        if self.request.mode != ClientMode::Play || Some(msg.stream_id) != self.stream_id {
            return Ok(());
        }
        let data =
            data_message(msg, &self.config.amf_limits).map_err(|source| ClientError::Message {
                type_id: msg.type_id,
                source,
            })?;
        let timestamp = msg.timestamp;
        match data {
            Some(DataMessage::Metadata(data)) => self
                .events
                .push_back(ClientEvent::Metadata { timestamp, data }),
            Some(DataMessage::Other(data)) => {
                self.events.push_back(ClientEvent::Data { timestamp, data })
            }
            None => {}
        }
        Ok(())
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

    // ---- the command sequence ----

    fn send_connect(&mut self) {
        let s = |v: &str| Amf0Value::String(v.to_owned());
        let mut props = vec![
            ("app".to_owned(), s(&self.request.app)),
            ("type".to_owned(), s("nonprivate")),
            ("flashVer".to_owned(), s(&self.config.flash_ver)),
            ("tcUrl".to_owned(), s(&self.request.tc_url)),
        ];
        if self.request.mode == ClientMode::Play {
            props.extend([
                ("fpad".to_owned(), Amf0Value::Boolean(false)),
                ("capabilities".to_owned(), Amf0Value::Number(15.0)),
                ("audioCodecs".to_owned(), Amf0Value::Number(4071.0)),
                ("videoCodecs".to_owned(), Amf0Value::Number(252.0)),
                ("videoFunction".to_owned(), Amf0Value::Number(1.0)),
            ]);
        }
        if !self.config.fourccs.is_empty() {
            let list = self.config.fourccs.iter().map(|c| s(c)).collect();
            props.push(("fourCcList".to_owned(), Amf0Value::StrictArray(list)));
            props.push((
                "capsEx".to_owned(),
                Amf0Value::Number(f64::from(self.config.caps_ex)),
            ));
        }
        self.send_command(
            0,
            &Command {
                name: "connect".into(),
                transaction_id: TID_CONNECT,
                object: Amf0Value::Object(props),
                args: vec![],
            },
        );
    }

    fn after_connect(&mut self) {
        let size = self.config.chunk_size;
        self.send_control(&ControlMessage::SetChunkSize(size));
        self.output.encoder.set_chunk_size(size);
        self.send_control(&ControlMessage::WindowAckSize(self.config.window_ack_size));
        if self.request.mode == ClientMode::Publish {
            // What FFmpeg and OBS send; FMS-style servers expect FCPublish before publish.
            let name = Amf0Value::String(self.request.name.clone());
            self.call("releaseStream", 2.0, vec![name.clone()]);
            self.call("FCPublish", 3.0, vec![name]);
        }
        self.call("createStream", TID_CREATE_STREAM, vec![]);
        self.phase = Phase::CreatingStream;
    }

    fn start_stream(&mut self, id: u32) {
        let name = Amf0Value::String(self.request.name.clone());
        let cmd = match self.request.mode {
            ClientMode::Publish => Command {
                name: "publish".into(),
                transaction_id: 5.0,
                object: Amf0Value::Null,
                args: vec![name, Amf0Value::String("live".into())],
            },
            ClientMode::Play => Command {
                name: "play".into(),
                transaction_id: 5.0,
                object: Amf0Value::Null,
                args: vec![name, Amf0Value::Number(-2000.0)],
            },
        };
        self.send_command(id, &cmd);
        if self.request.mode == ClientMode::Play {
            self.send_user_control(&UserControl::SetBufferLength {
                stream_id: id,
                millis: self.config.play_buffer_ms,
            });
        }
        self.phase = Phase::Starting;
    }

    // ---- output ----

    /// Sends stream metadata: `data` holds the AMF0 values `"onMetaData"` and its object
    /// (what the hub carries), sent as `@setDataFrame` so the server keeps it for its
    /// players.
    pub fn send_metadata(&mut self, timestamp: u32, data: &[u8]) -> Result<(), ClientError> {
        let id = self.publishing()?;
        self.scratch.clear();
        amf0::encode(
            &Amf0Value::String("@setDataFrame".into()),
            &mut self.scratch,
        );
        self.scratch.extend_from_slice(data);
        self.output
            .message(CSID_DATA, timestamp, types::DATA_AMF0, id, &self.scratch);
        Ok(())
    }

    /// Sends one audio or video message whose body is an FLV tag body.
    pub fn send_media(
        &mut self,
        kind: MediaKind,
        timestamp: u32,
        body: &[u8],
    ) -> Result<(), ClientError> {
        let id = self.publishing()?;
        let (csid, type_id) = match kind {
            MediaKind::Audio => (CSID_AUDIO, types::AUDIO),
            MediaKind::Video => (CSID_VIDEO, types::VIDEO),
        };
        self.output.message(csid, timestamp, type_id, id, body);
        Ok(())
    }

    /// Sends one data message (RTMP type 18) as it came: `data` holds its AMF0 values,
    /// the handler name (`onCuePoint`, `onTextData`, ...) first.
    pub fn send_data(&mut self, timestamp: u32, data: &[u8]) -> Result<(), ClientError> {
        let id = self.publishing()?;
        self.output
            .message(CSID_DATA, timestamp, types::DATA_AMF0, id, data);
        Ok(())
    }

    /// Sends one audio or video message whose body is `head` (an FLV tag header built
    /// for this message) followed by `payload`, without copying `payload`: it is queued
    /// as slices of itself for [`ClientSession::poll_transmit_vectored`], so one frame
    /// serves any number of sessions.
    pub fn send_media_shared(
        &mut self,
        kind: MediaKind,
        timestamp: u32,
        head: &[u8],
        payload: &Bytes,
    ) -> Result<(), ClientError> {
        let id = self.publishing()?;
        let (csid, type_id) = match kind {
            MediaKind::Audio => (CSID_AUDIO, types::AUDIO),
            MediaKind::Video => (CSID_VIDEO, types::VIDEO),
        };
        self.seal();
        let before = self.vectored.bytes();
        self.output.encoder.write_shared(
            csid,
            timestamp,
            type_id,
            id,
            (head, payload),
            &mut self.vectored,
        );
        self.bytes_sent += (self.vectored.bytes() - before) as u64;
        Ok(())
    }

    /// Moves the pending bytes behind what is queued for vectored writes.
    fn seal(&mut self) {
        if let Phase::Handshake(hs) = &mut self.phase {
            hs.poll_transmit(&mut self.output.bytes);
        }
        if !self.output.bytes.is_empty() {
            self.bytes_sent += self.output.bytes.len() as u64;
            self.vectored.push(self.output.bytes.split().freeze());
        }
    }

    fn publishing(&self) -> Result<u32, ClientError> {
        match (self.request.mode, &self.phase, self.stream_id) {
            (ClientMode::Publish, Phase::Streaming, Some(id)) => Ok(id),
            _ => Err(ClientError::NotPublishing),
        }
    }

    /// Ends the publish or play politely (`FCUnpublish`, `deleteStream`); write what
    /// `poll_transmit` yields, then close the socket. Nothing is sent after this.
    pub fn close(&mut self) {
        if matches!(self.phase, Phase::Closed | Phase::Handshake(_)) {
            return;
        }
        if let Some(id) = self.stream_id {
            if self.request.mode == ClientMode::Publish {
                let name = Amf0Value::String(self.request.name.clone());
                self.call("FCUnpublish", 6.0, vec![name]);
            }
            self.call("deleteStream", 7.0, vec![Amf0Value::Number(f64::from(id))]);
        }
        self.phase = Phase::Closed;
    }

    /// Appends every byte due to the server to `out` (copying what
    /// [`ClientSession::send_media_shared`] queued; writers that can, use
    /// [`ClientSession::poll_transmit_vectored`] instead).
    pub fn poll_transmit(&mut self, out: &mut BytesMut) {
        if !self.vectored.is_empty() {
            self.seal();
            while !self.vectored.is_empty() {
                let mut iov = [IoSlice::new(&[]); 16];
                let n = self.vectored.fill(&mut iov);
                let before = out.len();
                for s in &iov[..n] {
                    out.extend_from_slice(s);
                }
                let took = out.len() - before;
                self.vectored.advance(took);
            }
            return;
        }
        if let Phase::Handshake(hs) = &mut self.phase {
            hs.poll_transmit(&mut self.output.bytes);
        }
        self.bytes_sent += self.output.bytes.len() as u64;
        self.output.take(out);
    }

    /// Everything due to the server, in order, as shared buffers: write from it with
    /// vectored writes ([`Outbox::fill`]) and [`Outbox::advance`] it by what the socket
    /// took. Media sent with [`ClientSession::send_media_shared`] is in it uncopied.
    pub fn poll_transmit_vectored(&mut self) -> &mut Outbox {
        self.seal();
        &mut self.vectored
    }

    /// Whether output waits for [`ClientSession::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.output.bytes.is_empty() || !self.vectored.is_empty()
    }

    /// The next event, if any. Drain after every [`ClientSession::handle_input`].
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn call(&mut self, name: &str, tid: f64, args: Vec<Amf0Value>) {
        let cmd = Command {
            name: name.to_owned(),
            transaction_id: tid,
            object: Amf0Value::Null,
            args,
        };
        self.send_command(0, &cmd);
    }

    fn send_command(&mut self, stream_id: u32, cmd: &Command) {
        self.output.command(stream_id, cmd);
    }

    fn send_control(&mut self, m: &ControlMessage) {
        self.output.control(m);
    }

    fn send_user_control(&mut self, m: &UserControl) {
        self.output.user_control(m);
    }
}

/// An `rtmp://` or `rtmps://` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port: as given, else 1935 (`rtmp`) or 443 (`rtmps`).
    pub port: u16,
    /// `rtmps`: RTMP over TLS.
    pub tls: bool,
    /// What to ask the server for.
    pub request: ClientRequest,
}

impl RtmpUrl {
    /// Splits `rtmp[s]://host[:port]/app[/more]/name[?query]`: the app is everything
    /// between the host and the last `/` of the path, the name the last segment with any
    /// `?query`. `None` for another scheme, a bad port, or no host, app or name.
    pub fn parse(url: &str, mode: ClientMode) -> Option<RtmpUrl> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("rtmp://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("rtmps://") {
            (true, r)
        } else {
            return None;
        };
        let (authority, path) = rest.split_once('/')?;
        let default_port = if tls { 443 } else { 1935 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, tail) = v6.split_once(']')?;
            match tail.strip_prefix(':') {
                Some(p) => (h, p.parse().ok()?),
                None if tail.is_empty() => (h, default_port),
                None => return None,
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, p.parse().ok()?),
                None => (authority, default_port),
            }
        };
        // The name is the last segment before any query (a query may hold '/').
        let path_only = path.split_once('?').map_or(path, |(p, _)| p);
        let cut = path_only.rfind('/')?;
        let (app, name) = (&path[..cut], &path[cut + 1..]);
        if host.is_empty() || app.is_empty() || name.is_empty() || name.starts_with('?') {
            return None;
        }
        let scheme = if tls { "rtmps" } else { "rtmp" };
        Some(RtmpUrl {
            host: host.to_owned(),
            port,
            tls,
            request: ClientRequest {
                app: app.to_owned(),
                tc_url: format!("{scheme}://{authority}/{app}"),
                name: name.to_owned(),
                mode,
            },
        })
    }
}
