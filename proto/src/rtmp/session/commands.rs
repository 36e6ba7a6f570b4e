//! Command messages (RTMP 1.0 section 7.2) and the application's answers to them.

use super::server::{Role, Slot, StreamState};
use super::{
    caps, split_query, ConnectInfo, MessageStreamId, PlayRequest, PublishRequest, PublishType,
    ServerSession, SessionError, SessionEvent, UnpublishReason,
};
use crate::rtmp::amf0::Amf0Value;
use crate::rtmp::message::{Command, ControlMessage, UserControl};

/// What `connect` advertises as the server version (clients log it; some check for "FMS").
const FMS_VER: &str = "FMS/3,5,7,7009";

fn str_prop(obj: &Amf0Value, key: &str) -> Option<String> {
    obj.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

fn arg_str(cmd: &Command, i: usize) -> Option<&str> {
    cmd.args.get(i).and_then(|v| v.as_str())
}

impl ServerSession {
    /// Answers a command the session refuses itself with an error `onStatus`, and tells
    /// the application, which logs it: these are client mistakes its user must hear of.
    fn refuse(
        &mut self,
        stream_id: MessageStreamId,
        command: &'static str,
        code: &'static str,
        description: &str,
    ) {
        self.send_status(stream_id, "error", code, description);
        self.events.push_back(SessionEvent::Refused {
            stream_id,
            command,
            code,
            description: description.to_owned(),
        });
    }

    pub(super) fn command(&mut self, cmd: Command, stream_id: u32) -> Result<(), SessionError> {
        let tid = cmd.transaction_id;
        if self.connect.is_none() && cmd.name != "connect" {
            return Err(SessionError::NotConnected { command: cmd.name });
        }
        match cmd.name.as_str() {
            "connect" => self.connect(&cmd),
            "createStream" => self.create_stream(tid)?,
            "releaseStream" | "_checkbw" => self.result(tid, Amf0Value::Undefined),
            "FCPublish" => {
                let name = arg_str(&cmd, 0).unwrap_or("").to_owned();
                self.reply(
                    0,
                    "onFCPublish",
                    0.0,
                    vec![Amf0Value::object([
                        ("code", Amf0Value::String("NetStream.Publish.Start".into())),
                        ("description", Amf0Value::String(name)),
                    ])],
                );
                self.result(tid, Amf0Value::Undefined);
            }
            "FCUnpublish" => self.fc_unpublish(&cmd),
            "publish" => self.publish(&cmd, stream_id)?,
            "play" => self.play(&cmd, stream_id)?,
            "closeStream" => self.end_stream(stream_id, UnpublishReason::CloseStream, false),
            "deleteStream" => {
                let id = cmd.args.first().and_then(|v| v.as_f64()).unwrap_or(-1.0);
                if id >= 0.0 && id <= f64::from(u32::MAX) {
                    self.end_stream(id as u32, UnpublishReason::DeleteStream, true);
                }
            }
            "getStreamLength" => self.result(tid, Amf0Value::Number(0.0)),
            "receiveAudio" | "receiveVideo" => {
                let on = cmd.args.first().and_then(|v| v.as_bool()).unwrap_or(true);
                if cmd.name == "receiveAudio" {
                    self.receive_audio = on;
                } else {
                    self.receive_video = on;
                }
            }
            // Answers to calls the server never made, and notifications, need no reply.
            "_result" | "_error" | "onStatus" | "onBWDone" => {}
            name => {
                if tid != 0.0 {
                    let description = format!("unknown command {name:?}");
                    self.error(tid, "NetConnection.Call.Failed", &description);
                }
            }
        }
        Ok(())
    }

    fn result(&mut self, tid: f64, value: Amf0Value) {
        if tid != 0.0 {
            self.reply(0, "_result", tid, vec![value]);
        }
    }

    fn error(&mut self, tid: f64, code: &str, description: &str) {
        let info = Amf0Value::object([
            ("level", Amf0Value::String("error".into())),
            ("code", Amf0Value::String(code.into())),
            ("description", Amf0Value::String(description.into())),
        ]);
        self.reply(0, "_error", tid, vec![info]);
    }

    fn connect(&mut self, cmd: &Command) {
        if self.connect.is_some() {
            self.error(
                cmd.transaction_id,
                "NetConnection.Connect.Rejected",
                "already connected",
            );
            return;
        }
        if let Some(description) = self.refuse_connect.take() {
            self.error(
                cmd.transaction_id,
                "NetConnection.Connect.Rejected",
                &description,
            );
            self.events
                .push_back(SessionEvent::ConnectRejected { description });
            return;
        }
        let obj = &cmd.object;
        let object_encoding = obj
            .get("objectEncoding")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let (app, app_query) = split_query(&str_prop(obj, "app").unwrap_or_default());
        let info = ConnectInfo {
            app,
            app_query,
            tc_url: str_prop(obj, "tcUrl"),
            flash_ver: str_prop(obj, "flashVer"),
            object_encoding,
            caps_ex: caps::client_caps_ex(obj),
            announced: caps::Announced::from_connect(obj),
        };

        // The order nginx-rtmp and SRS use, which FFmpeg, OBS and librtmp all accept.
        let window = self.config.window_ack_size;
        self.send_control(&ControlMessage::WindowAckSize(window));
        self.send_control(&ControlMessage::SetPeerBandwidth {
            size: window,
            limit_type: 2,
        });
        let size = self.config.chunk_size;
        self.send_control(&ControlMessage::SetChunkSize(size));
        self.output.encoder.set_chunk_size(size);
        self.send_user_control(&UserControl::StreamBegin(0));

        let mut props = vec![
            ("fmsVer".to_owned(), Amf0Value::String(FMS_VER.into())),
            ("capabilities".to_owned(), Amf0Value::Number(31.0)),
            ("mode".to_owned(), Amf0Value::Number(1.0)),
        ];
        caps::negotiate(obj, self.config.reconnect, &mut props);
        let status = Amf0Value::object([
            ("level", Amf0Value::String("status".into())),
            (
                "code",
                Amf0Value::String("NetConnection.Connect.Success".into()),
            ),
            (
                "description",
                Amf0Value::String("Connection succeeded.".into()),
            ),
            ("objectEncoding", Amf0Value::Number(object_encoding)),
        ]);
        let reply = Command {
            name: "_result".into(),
            transaction_id: cmd.transaction_id,
            object: Amf0Value::Object(props),
            args: vec![status],
        };
        self.send_command(0, &reply);
        self.connect = Some(info.clone());
        self.events.push_back(SessionEvent::Connected(info));
    }

    /// A createStream beyond the limit is answered with `_error` and ends the connection:
    /// a client that wants more streams than that is flooding, not streaming.
    fn create_stream(&mut self, tid: f64) -> Result<(), SessionError> {
        let max = self.config.max_streams;
        if self.streams.len() >= max {
            let description = format!("too many streams on one connection (at most {max})");
            self.error(tid, "NetConnection.Call.Failed", &description);
            return Err(SessionError::TooManyStreams { max });
        }
        let id = self.next_stream_id;
        self.next_stream_id = self.next_stream_id.wrapping_add(1).max(1);
        self.streams.push(Slot {
            id,
            state: StreamState::Idle,
        });
        self.reply(0, "_result", tid, vec![Amf0Value::Number(f64::from(id))]);
        Ok(())
    }

    fn slot(&mut self, command: &str, stream_id: u32) -> Result<&mut Slot, SessionError> {
        self.streams
            .iter_mut()
            .find(|s| s.id == stream_id)
            .ok_or_else(|| SessionError::UnknownMessageStream {
                command: command.to_owned(),
                stream_id,
            })
    }

    fn app(&self) -> String {
        self.connect
            .as_ref()
            .map(|c| c.app.clone())
            .unwrap_or_default()
    }

    fn publish(&mut self, cmd: &Command, stream_id: u32) -> Result<(), SessionError> {
        if self.role == Role::Player {
            return Err(SessionError::PublishOnPlayer);
        }
        let sid = MessageStreamId(stream_id);
        let busy = self.streams.iter().any(|s| {
            matches!(
                s.state,
                StreamState::Publishing { .. } | StreamState::PublishPending { .. }
            )
        });
        let raw = arg_str(cmd, 0).unwrap_or("").to_owned();
        let kind = PublishType::from_arg(arg_str(cmd, 1));
        let slot = self.slot("publish", stream_id)?;
        if busy || slot.state != StreamState::Idle {
            let d = "this connection already publishes a stream";
            self.refuse(sid, "publish", "NetStream.Publish.BadConnection", d);
            return Ok(());
        }
        let (name, query) = split_query(&raw);
        if name.is_empty() {
            // The classic OBS mistake (a server URL and an empty Stream Key): say what the
            // URL must look like, since this is all the publisher's user gets to see.
            let app = self.app();
            let d = format!(
                "publish without a stream key: publish to rtmp://HOST/{app}/KEY \
                 (in OBS: Server rtmp://HOST/{app}, Stream Key KEY)"
            );
            self.refuse(sid, "publish", "NetStream.Publish.BadName", &d);
            return Ok(());
        }
        slot.state = StreamState::PublishPending { name: name.clone() };
        self.role = Role::Publisher;
        self.paused = true;
        let app = self.app();
        self.events
            .push_back(SessionEvent::PublishRequest(PublishRequest {
                stream_id: sid,
                app,
                name,
                query,
                kind,
            }));
        Ok(())
    }

    fn play(&mut self, cmd: &Command, stream_id: u32) -> Result<(), SessionError> {
        if self.role == Role::Publisher {
            return Err(SessionError::PlayOnPublisher);
        }
        let sid = MessageStreamId(stream_id);
        let raw = arg_str(cmd, 0).unwrap_or("").to_owned();
        let app = self.app();
        let slot = self.slot("play", stream_id)?;
        if slot.state != StreamState::Idle {
            let d = "this message stream is already playing";
            self.refuse(sid, "play", "NetStream.Play.Failed", d);
            return Ok(());
        }
        let (name, query) = split_query(&raw);
        if name.is_empty() {
            let d = format!("play without a stream key: play rtmp://HOST/{app}/KEY");
            self.refuse(sid, "play", "NetStream.Play.StreamNotFound", &d);
            return Ok(());
        }
        let num = |i: usize, default: f64| {
            cmd.args
                .get(i)
                .and_then(|v| v.as_f64())
                .filter(|n| n.is_finite())
                .unwrap_or(default)
        };
        // `reset` is a boolean in the spec; some clients send a number.
        let reset = match cmd.args.get(3) {
            Some(v) => v.as_bool().or(v.as_f64().map(|n| n != 0.0)).unwrap_or(true),
            None => true,
        };
        let request = PlayRequest {
            stream_id: sid,
            app,
            name,
            query,
            start: num(1, -2.0),
            duration: num(2, -1.0),
            reset,
            transaction_id: cmd.transaction_id,
        };
        slot.state = StreamState::PlayPending(Box::new(request.clone()));
        self.role = Role::Player;
        self.paused = true;
        self.events.push_back(SessionEvent::PlayRequest(request));
        Ok(())
    }

    fn fc_unpublish(&mut self, cmd: &Command) {
        let (name, _) = split_query(arg_str(cmd, 0).unwrap_or(""));
        let id = self.streams.iter().find_map(|s| match &s.state {
            StreamState::Publishing { name: n } if *n == name => Some(s.id),
            _ => None,
        });
        if let Some(id) = id {
            self.end_stream(id, UnpublishReason::FcUnpublish, false);
            self.reply(
                0,
                "onFCUnpublish",
                0.0,
                vec![Amf0Value::object([
                    (
                        "code",
                        Amf0Value::String("NetStream.Unpublish.Success".into()),
                    ),
                    ("description", Amf0Value::String(name)),
                ])],
            );
        }
        self.result(cmd.transaction_id, Amf0Value::Undefined);
    }

    /// Ends whatever `stream_id` does; `delete` also forgets the stream.
    fn end_stream(&mut self, stream_id: u32, reason: UnpublishReason, delete: bool) {
        let Some(i) = self.streams.iter().position(|s| s.id == stream_id) else {
            return;
        };
        if let StreamState::Publishing { name } = &self.streams[i].state {
            let description = format!("{name} is now unpublished.");
            let sid = MessageStreamId(stream_id);
            self.streams[i].state = StreamState::Idle;
            self.send_status(sid, "status", "NetStream.Unpublish.Success", &description);
            self.events.push_back(SessionEvent::Unpublished {
                stream_id: sid,
                reason,
            });
        }
        if delete {
            self.streams.remove(i);
        }
        if self.role == Role::Publisher
            && !self.streams.iter().any(|s| s.state != StreamState::Idle)
        {
            self.role = Role::Undecided;
        }
    }

    // ---- application decisions ----

    /// Accepts a pending publish: answers `NetStream.Publish.Start` and resumes input.
    /// Does nothing if `stream_id` has no pending publish.
    pub fn accept_publish(&mut self, stream_id: MessageStreamId) {
        let Some(slot) = self.streams.iter_mut().find(|s| s.id == stream_id.0) else {
            return;
        };
        let StreamState::PublishPending { name } = &slot.state else {
            return;
        };
        let name = name.clone();
        slot.state = StreamState::Publishing { name: name.clone() };
        self.paused = false;
        self.send_user_control(&UserControl::StreamBegin(stream_id.0));
        let description = format!("{name} is now published.");
        self.send_status(stream_id, "status", "NetStream.Publish.Start", &description);
    }

    /// Refuses a pending publish with an `onStatus` of level `error` (e.g. code
    /// `NetStream.Publish.BadName`) and resumes input.
    pub fn reject_publish(&mut self, stream_id: MessageStreamId, code: &str, description: &str) {
        if self.settle(stream_id, |s| {
            matches!(s, StreamState::PublishPending { .. })
        }) {
            self.send_status(stream_id, "error", code, description);
        }
    }

    /// Accepts a pending play. The session sends nothing more: the player is handed over
    /// with [`ServerSession::into_player_state`], and input stays paused so the bytes after
    /// `play` remain in the driver's buffer.
    pub fn accept_play(&mut self, stream_id: MessageStreamId) {
        if let Some(slot) = self.streams.iter_mut().find(|s| s.id == stream_id.0) {
            if let StreamState::PlayPending(request) = &slot.state {
                slot.state = StreamState::PlayAccepted(request.clone());
            }
        }
    }

    /// Refuses a pending play with an `onStatus` of level `error` (e.g.
    /// `NetStream.Play.Failed`) and resumes input.
    pub fn reject_play(&mut self, stream_id: MessageStreamId, code: &str, description: &str) {
        if self.settle(stream_id, |s| matches!(s, StreamState::PlayPending(_))) {
            self.send_status(stream_id, "error", code, description);
        }
    }

    /// Returns a pending stream to idle; true if it was pending.
    fn settle(
        &mut self,
        stream_id: MessageStreamId,
        pending: impl Fn(&StreamState) -> bool,
    ) -> bool {
        let Some(slot) = self.streams.iter_mut().find(|s| s.id == stream_id.0) else {
            return false;
        };
        if !pending(&slot.state) {
            return false;
        }
        slot.state = StreamState::Idle;
        self.paused = false;
        // A refused player stays a player, so media it sends afterwards is refused too.
        if self.role == Role::Publisher
            && !self.streams.iter().any(|s| s.state != StreamState::Idle)
        {
            self.role = Role::Undecided;
        }
        true
    }
}
