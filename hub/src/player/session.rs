//! A handed-over RTMP player: the play responses, attaching to the stream, and the
//! player's input (acknowledgements, pings, receiveAudio/receiveVideo, pause, the end of
//! the session), run next to its [`Writer`].

use std::sync::Arc;

use bytes::BytesMut;
use proto::ipc::PlayerSession;
use proto::media::StreamKey;
use proto::rtmp::amf0::AmfLimits;
use proto::rtmp::chunk::{ChunkDecoder, ChunkError, ChunkLimits, RtmpMessage};
use proto::rtmp::message::{types, Command, ControlMessage, UserControl};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::writer::{write_queue, Control, Output, Start, Writer, WriterEnd};
use crate::registry::Registry;
use crate::rtmp_out;

/// Largest message a player may send (commands are small).
const MAX_PLAYER_MESSAGE: u32 = 64 * 1024;

/// Why the input side ended.
#[derive(Debug, thiserror::Error)]
enum InputEnd {
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Chunk(#[from] ChunkError),
    #[error("media message type {type_id} from a player")]
    Media { type_id: u8 },
    #[error("closed by the player ({0})")]
    Closed(&'static str),
    #[error("{0}")]
    Command(&'static str),
}

impl InputEnd {
    fn layer(&self) -> &'static str {
        match self {
            InputEnd::Chunk(_) => "chunk",
            InputEnd::Io(_) => "io",
            _ => "player",
        }
    }
}

/// Serves one player until it leaves or must be closed.
pub async fn run(sock: TcpStream, s: PlayerSession, registry: Arc<Registry>) {
    let cfg = registry.config().clone();
    let conn_id = s.conn_id;
    let (mut rd, mut wr) = sock.into_split();
    let key = match StreamKey::parse(&s.key) {
        Ok(k) => k,
        Err(e) => {
            let mut out = BytesMut::new();
            rtmp_out::on_status(
                "error",
                "NetStream.Play.StreamNotFound",
                "Invalid stream key.",
                s.stream_id,
                s.out_chunk_size.max(1),
                &mut out,
            );
            let mut q = vec![out.freeze()].into();
            let _ = write_queue(&mut wr, &mut q).await;
            tracing::warn!(conn_id, layer = "player", error = %e, "closing connection");
            return;
        }
    };
    let sid = s.stream_id;
    let cs = cfg.chunk_size;
    let mut out = BytesMut::with_capacity(512);
    rtmp_out::control(
        ControlMessage::SetChunkSize(cs),
        s.out_chunk_size.max(1),
        &mut out,
    );
    rtmp_out::user_control(UserControl::StreamBegin(sid), cs, &mut out);
    if s.reset {
        let d = format!("Playing and resetting {key}.");
        rtmp_out::on_status("status", "NetStream.Play.Reset", &d, sid, cs, &mut out);
    }
    let d = format!("Started playing {key}.");
    rtmp_out::on_status("status", "NetStream.Play.Start", &d, sid, cs, &mut out);
    rtmp_out::sample_access(sid, cs, &mut out);

    let stream = match registry.attach_player(&key) {
        Ok(st) => st,
        Err(e) => {
            out.clear();
            rtmp_out::on_status(
                "error",
                "NetStream.Play.Failed",
                &e.to_string(),
                sid,
                s.out_chunk_size.max(1),
                &mut out,
            );
            let mut q = vec![out.freeze()].into();
            let _ = write_queue(&mut wr, &mut q).await;
            tracing::warn!(conn_id, layer = "player", error = %e, "closing connection");
            return;
        }
    };
    let reader_id = registry.reader_id();
    let mut initial = vec![out.freeze()];
    let output = {
        let mut st = stream.lock();
        let start = {
            if st.is_live() {
                let join = st.ring.join_point();
                let ms = join
                    .and_then(|j| st.ring.get(j))
                    .map_or_else(|| st.timeline.to_ms(st.timeline.last_out()), |e| e.out_ms);
                st.headers_for(ms, sid, &mut initial);
                Start {
                    cursor: join.unwrap_or(st.ring.head()),
                    live: true,
                    waiting_key: join.is_none(),
                    recv_audio: s.receive_audio,
                    recv_video: s.receive_video,
                }
            } else {
                Start {
                    cursor: st.ring.head(),
                    live: false,
                    waiting_key: true,
                    recv_audio: s.receive_audio,
                    recv_video: s.receive_video,
                }
            }
        };
        if start.live {
            tracing::info!(conn_id, remote = %s.remote, "player started");
        } else {
            // Not a success yet: say what the player waits for, and for how long.
            tracing::info!(
                conn_id,
                remote = %s.remote,
                "player waiting for a publisher of {key} (up to {})",
                humantime::format_duration(cfg.publisher_wait)
            );
        }
        let writer = Writer::new(stream.clone(), conn_id, &cfg, sid, start, initial);
        // Registered under the same lock that fixed the cursor: no entry falls between.
        let output = Output::new(wr, writer);
        st.add_reader(reader_id, output.clone());
        output
    };
    let (ctl_tx, mut ctl_rx) = mpsc::channel(32);
    let mut input = Input {
        decoder: ChunkDecoder::from_state(
            ChunkLimits {
                max_message_size: MAX_PLAYER_MESSAGE,
                max_chunk_streams: 16,
                max_buffered_bytes: 4 * MAX_PLAYER_MESSAGE as usize,
                ..ChunkLimits::default()
            },
            s.in_chunk_size,
            &s.in_chunk_streams,
        ),
        buf: BytesMut::from(&s.pending_input[..]),
        ctl: ctl_tx,
        window: s.window_ack_size,
        base_received: s.bytes_received,
        last_ack: s.last_ack_sent,
        chunk_size: cs,
    };
    tokio::select! {
        end = input.run(&mut rd) => match end {
            InputEnd::Closed(why) => tracing::info!(conn_id, why, "player left"),
            InputEnd::Io(e) if is_hang_up(&e) => {
                tracing::info!(conn_id, why = "connection closed", "player left")
            }
            InputEnd::Io(e) => tracing::info!(conn_id, error = %e, "player left"),
            e => tracing::warn!(conn_id, layer = e.layer(), error = %e, "closing connection"),
        },
        end = output.run(&mut ctl_rx) => match end {
            WriterEnd::Io(e) if is_hang_up(&e) => {
                tracing::info!(conn_id, why = "connection closed", "player left")
            }
            WriterEnd::Io(e) => tracing::info!(conn_id, error = %e, "player left"),
            e @ WriterEnd::NotFound(_) => tracing::info!(conn_id, "closing player: {e}"),
            e @ (WriterEnd::TooSlow { .. } | WriterEnd::Stalled(_)) => {
                tracing::warn!(conn_id, layer = "player", error = %e, "closing connection")
            }
            e => tracing::info!(conn_id, reason = %e, "player closed"),
        },
    }
    stream.lock().remove_reader(reader_id);
    registry.detach_player(&stream);
}

/// Whether a socket error is just the player going away (a reset or a closed pipe is how
/// most players end a session), not a failure worth an error field.
fn is_hang_up(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::UnexpectedEof
    )
}

struct Input {
    decoder: ChunkDecoder,
    buf: BytesMut,
    ctl: mpsc::Sender<Control>,
    window: u32,
    base_received: u64,
    last_ack: u64,
    chunk_size: u32,
}

impl Input {
    async fn run(&mut self, rd: &mut OwnedReadHalf) -> InputEnd {
        loop {
            loop {
                match self.decoder.decode(&mut self.buf) {
                    Ok(Some(msg)) => {
                        if let Err(e) = self.on_message(msg).await {
                            return e;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return e.into(),
                }
            }
            if let Err(e) = self.acknowledge().await {
                return e;
            }
            self.buf.reserve(4096);
            match rd.read_buf(&mut self.buf).await {
                Ok(0) => return InputEnd::Closed("eof"),
                Ok(_) => {}
                Err(e) => return e.into(),
            }
        }
    }

    async fn send(&self, c: Control) -> Result<(), InputEnd> {
        self.ctl
            .send(c)
            .await
            .map_err(|_| InputEnd::Closed("writer ended"))
    }

    async fn send_bytes(&self, f: impl FnOnce(&mut BytesMut)) -> Result<(), InputEnd> {
        let mut out = BytesMut::with_capacity(32);
        f(&mut out);
        self.send(Control::Send(out.freeze())).await
    }

    async fn acknowledge(&mut self) -> Result<(), InputEnd> {
        if self.window == 0 {
            return Ok(());
        }
        let received = self.base_received + self.decoder.bytes_consumed();
        if received - self.last_ack >= u64::from(self.window) {
            self.last_ack = received;
            let cs = self.chunk_size;
            self.send_bytes(|out| {
                rtmp_out::control(ControlMessage::Acknowledgement(received as u32), cs, out)
            })
            .await?;
        }
        Ok(())
    }

    async fn on_message(&mut self, msg: RtmpMessage) -> Result<(), InputEnd> {
        let cs = self.chunk_size;
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
                    self.send_bytes(|out| {
                        rtmp_out::user_control(UserControl::PingResponse(t), cs, out)
                    })
                    .await?;
                }
            }
            types::AUDIO
            | types::VIDEO
            | types::DATA_AMF0
            | types::DATA_AMF3
            | types::AGGREGATE => {
                return Err(InputEnd::Media {
                    type_id: msg.type_id,
                })
            }
            types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
                let cmd = Command::parse(msg.type_id, &msg.payload, &AmfLimits::command())
                    .map_err(|_| InputEnd::Command("malformed command"))?;
                self.command(cmd).await?;
            }
            // Acknowledgements, SetChunkSize/Abort (applied by the decoder), bandwidth.
            _ => {}
        }
        Ok(())
    }

    async fn command(&mut self, cmd: Command) -> Result<(), InputEnd> {
        let flag = |i: usize| cmd.args.get(i).and_then(|v| v.as_bool());
        match cmd.name.as_str() {
            "receiveAudio" => {
                if let Some(v) = flag(0) {
                    self.send(Control::ReceiveAudio(v)).await?;
                }
            }
            "receiveVideo" => {
                if let Some(v) = flag(0) {
                    self.send(Control::ReceiveVideo(v)).await?;
                }
            }
            "pause" => {
                if let Some(v) = flag(0) {
                    self.send(Control::Pause(v)).await?;
                }
            }
            "deleteStream" => return Err(InputEnd::Closed("deleteStream")),
            "closeStream" => return Err(InputEnd::Closed("closeStream")),
            "close" => return Err(InputEnd::Closed("close")),
            other => tracing::debug!(command = other, "player command ignored"),
        }
        Ok(())
    }
}
