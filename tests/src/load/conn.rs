//! One client-side RTMP connection over tokio: handshake, commands, media out, messages in,
//! with acknowledgements sent as the server's window asks.

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use proto::rtmp::amf0::Amf0Value;
use proto::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, RtmpMessage};
use proto::rtmp::handshake::{ClientHandshake, HandshakeStatus};
use proto::rtmp::message::{Command, ControlMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RTMP message type ids, as `proto` names them.
pub mod types {
    pub use proto::rtmp::message::types::{
        AUDIO, COMMAND_AMF0 as COMMAND, DATA_AMF0 as DATA, SET_CHUNK_SIZE, VIDEO, WINDOW_ACK_SIZE,
    };
}

/// The message stream every loadgen connection publishes or plays on (the first one
/// `createStream` returns on every server measured).
pub const STREAM_ID: u32 = 1;

/// A client connection.
pub struct Conn {
    sock: TcpStream,
    rbuf: BytesMut,
    out: BytesMut,
    dec: ChunkDecoder,
    enc: ChunkEncoder,
    window: u64,
    acked: u64,
    read: u64,
    next_tx: f64,
}

fn proto_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Conn {
    /// TCP connect and the simple handshake.
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let mut sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let mut hs = ClientHandshake::new([7; 1528], 0, false);
        let mut out = BytesMut::new();
        let mut rbuf = BytesMut::with_capacity(64 * 1024);
        loop {
            hs.poll_transmit(&mut out);
            if !out.is_empty() {
                sock.write_all(&out).await?;
                out.clear();
            }
            match hs.handle_input(&mut rbuf).map_err(proto_err)? {
                HandshakeStatus::Done => {
                    hs.poll_transmit(&mut out);
                    sock.write_all(&out).await?;
                    out.clear();
                    break;
                }
                _ => {
                    if sock.read_buf(&mut rbuf).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
        }
        Ok(Conn {
            sock,
            rbuf,
            out,
            dec: ChunkDecoder::new(ChunkLimits::default()),
            enc: ChunkEncoder::new(),
            window: 2_500_000,
            acked: 0,
            read: 0,
            next_tx: 1.0,
        })
    }

    /// Queues a command on chunk stream 3.
    pub fn command(&mut self, stream_id: u32, name: &str, object: Amf0Value, args: Vec<Amf0Value>) {
        let cmd = Command {
            name: name.into(),
            transaction_id: self.next_tx,
            object,
            args,
        };
        self.next_tx += 1.0;
        let mut body = BytesMut::new();
        cmd.write_body(&mut body);
        self.enc
            .write(3, 0, types::COMMAND, stream_id, &body, &mut self.out);
    }

    /// Queues `connect(app)` and `createStream`.
    pub fn connect_app(&mut self, addr: SocketAddr, app: &str) {
        let obj = Amf0Value::Object(vec![
            ("app".into(), Amf0Value::String(app.into())),
            ("type".into(), Amf0Value::String("nonprivate".into())),
            (
                "flashVer".into(),
                Amf0Value::String("FMLE/3.0 (loadgen)".into()),
            ),
            (
                "tcUrl".into(),
                Amf0Value::String(format!("rtmp://{addr}/{app}")),
            ),
        ]);
        self.command(0, "connect", obj, vec![]);
        self.command(0, "createStream", Amf0Value::Null, vec![]);
    }

    /// Queues a media or data message.
    pub fn message(&mut self, csid: u32, type_id: u8, timestamp: u32, body: &[u8]) {
        self.enc
            .write(csid, timestamp, type_id, STREAM_ID, body, &mut self.out);
    }

    /// Announces a larger outgoing chunk size (publishers: fewer chunk headers).
    pub fn set_chunk_size(&mut self, size: u32) {
        let mut body = BytesMut::new();
        ControlMessage::SetChunkSize(size).write_body(&mut body);
        self.enc
            .write(2, 0, types::SET_CHUNK_SIZE, 0, &body, &mut self.out);
        self.enc.set_chunk_size(size);
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.sock.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// The next message; applies chunk size and window changes and acknowledges.
    pub async fn next(&mut self) -> io::Result<RtmpMessage> {
        loop {
            if let Some(m) = self.dec.decode(&mut self.rbuf).map_err(proto_err)? {
                match m.type_id {
                    types::SET_CHUNK_SIZE | types::WINDOW_ACK_SIZE => self.control(&m)?,
                    _ => {}
                }
                return Ok(m);
            }
            let n = self.sock.read_buf(&mut self.rbuf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.read += n as u64;
            if self.read - self.acked >= self.window {
                self.acked = self.read;
                let mut body = BytesMut::new();
                ControlMessage::Acknowledgement(self.read as u32).write_body(&mut body);
                self.enc.write(2, 0, 3, 0, &body, &mut self.out);
                self.flush().await?;
            }
            if self.rbuf.capacity() - self.rbuf.len() < 16 * 1024 {
                self.rbuf.reserve(64 * 1024);
            }
        }
    }

    fn control(&mut self, m: &RtmpMessage) -> io::Result<()> {
        match ControlMessage::parse(m.type_id, &m.payload).map_err(proto_err)? {
            ControlMessage::SetChunkSize(s) => self.dec.set_chunk_size(s).map_err(proto_err)?,
            ControlMessage::WindowAckSize(w) => self.window = u64::from(w.max(1)),
            _ => {}
        }
        Ok(())
    }

    /// Bytes read from the socket so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// The `code` of an `onStatus` command message, if it is one.
pub fn status_code(m: &RtmpMessage) -> Option<String> {
    if m.type_id != types::COMMAND {
        return None;
    }
    let cmd = Command::parse(m.type_id, &m.payload, &Default::default()).ok()?;
    if cmd.name != "onStatus" {
        return None;
    }
    let info = cmd.args.first()?;
    match info {
        Amf0Value::Object(props) | Amf0Value::EcmaArray(props) => props
            .iter()
            .find(|(k, _)| k == "code")
            .and_then(|(_, v)| match v {
                Amf0Value::String(s) => Some(s.clone()),
                _ => None,
            }),
        _ => None,
    }
}

/// A shared, immutable message body.
pub type Body = Bytes;
