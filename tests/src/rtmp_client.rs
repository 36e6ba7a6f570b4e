//! A byte-level RTMP client over a blocking `TcpStream`: the well-behaved steps (handshake,
//! connect, createStream, publish, play, media) and raw bytes for malformed input.
//!
//! Its chunk and AMF0 code is written independently of `proto`, so the server is checked
//! against a second reading of the spec rather than against itself.

pub mod amf0;
pub mod chunk;

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rand::RngCore;

pub use amf0::Amf0;
pub use chunk::Message;

/// Whether a player message is one a publisher sent (media, or a data message other than
/// the server's own `|RtmpSampleAccess`).
pub fn is_stream_message(m: &Message) -> bool {
    match m.type_id {
        msg_type::AUDIO | msg_type::VIDEO => true,
        msg_type::DATA => !m.payload.windows(17).any(|w| w == b"|RtmpSampleAccess"),
        _ => false,
    }
}

/// RTMP message type ids used by the tests.
pub mod msg_type {
    /// Set Chunk Size.
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Acknowledgement.
    pub const ACK: u8 = 3;
    /// User Control.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size.
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Audio.
    pub const AUDIO: u8 = 8;
    /// Video.
    pub const VIDEO: u8 = 9;
    /// AMF0 data.
    pub const DATA: u8 = 18;
    /// AMF0 command.
    pub const COMMAND: u8 = 20;
}

/// Why a client step failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server closed the connection (EOF or reset).
    Closed,
    /// The deadline passed.
    Timeout,
    /// Another I/O error.
    Io(std::io::Error),
    /// The server sent something the client did not expect.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Closed => write!(f, "connection closed by server"),
            ClientError::Timeout => write!(f, "timed out"),
            ClientError::Io(e) => write!(f, "i/o error: {e}"),
            ClientError::Protocol(s) => write!(f, "protocol: {s}"),
        }
    }
}

impl std::error::Error for ClientError {}

fn io_err(e: std::io::Error) -> ClientError {
    match e.kind() {
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => ClientError::Closed,
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ClientError::Timeout,
        _ => ClientError::Io(e),
    }
}

/// Result of a client step.
pub type Result<T> = std::result::Result<T, ClientError>;

/// The default time one step may take.
pub const STEP: Duration = Duration::from_secs(10);

/// An `onStatus` payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// `status`, `warning` or `error`.
    pub level: String,
    /// E.g. `NetStream.Publish.Start`.
    pub code: String,
    /// Human-readable description.
    pub description: String,
}

impl Message {
    /// `(name, arguments after the name)` of an AMF0 command message.
    pub fn command(&self) -> Option<(String, Vec<Amf0>)> {
        if self.type_id != msg_type::COMMAND {
            return None;
        }
        let mut values = amf0::decode_all(&self.payload).ok()?;
        if values.is_empty() {
            return None;
        }
        let name = values.remove(0).as_str()?.to_string();
        Some((name, values))
    }

    /// The status object of an `onStatus` command.
    pub fn status(&self) -> Option<Status> {
        let (name, args) = self.command()?;
        if name != "onStatus" {
            return None;
        }
        let info = args.iter().find(|v| matches!(v, Amf0::Object(_)))?;
        let text = |k: &str| info.get(k).and_then(Amf0::as_str).unwrap_or("").to_string();
        Some(Status {
            level: text("level"),
            code: text("code"),
            description: text("description"),
        })
    }

    /// Whether this is audio or video.
    pub fn is_media(&self) -> bool {
        matches!(self.type_id, msg_type::AUDIO | msg_type::VIDEO)
    }
}

/// A connected RTMP client.
pub struct RtmpClient {
    stream: TcpStream,
    rbuf: Vec<u8>,
    decoder: chunk::Decoder,
    out_chunk_size: usize,
    stash: VecDeque<Message>,
    next_tx: f64,
    received: u64,
    acked: u64,
    window: u64,
    app: String,
    tc_url: String,
}

impl RtmpClient {
    /// Opens a TCP connection (no RTMP bytes sent yet).
    pub fn connect_tcp(addr: SocketAddr) -> Result<RtmpClient> {
        let stream = TcpStream::connect_timeout(&addr, STEP).map_err(io_err)?;
        RtmpClient::over(stream, addr)
    }

    /// [`RtmpClient::connect_tcp`] with the socket's receive buffer set to `rcvbuf` bytes
    /// before connecting, so that the window it advertises stays that small (a player
    /// that reads slowly, or not at all, fills it at once).
    pub fn connect_tcp_with_rcvbuf(addr: SocketAddr, rcvbuf: u32) -> Result<RtmpClient> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(io_err)?;
        let stream = rt
            .block_on(async {
                let sock = match addr {
                    SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                    SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
                };
                sock.set_recv_buffer_size(rcvbuf)?;
                tokio::time::timeout(STEP, sock.connect(addr))
                    .await
                    .map_err(|_| std::io::Error::from(ErrorKind::TimedOut))?
            })
            .and_then(|s| s.into_std())
            .map_err(io_err)?;
        stream.set_nonblocking(false).map_err(io_err)?;
        RtmpClient::over(stream, addr)
    }

    fn over(stream: TcpStream, addr: SocketAddr) -> Result<RtmpClient> {
        stream.set_nodelay(true).map_err(io_err)?;
        stream.set_write_timeout(Some(STEP)).map_err(io_err)?;
        Ok(RtmpClient {
            stream,
            rbuf: Vec::new(),
            decoder: chunk::Decoder::default(),
            out_chunk_size: 128,
            stash: VecDeque::new(),
            next_tx: 2.0,
            received: 0,
            acked: 0,
            window: 2_500_000,
            app: String::new(),
            tc_url: format!("rtmp://{addr}"),
        })
    }

    /// TCP connect, handshake, `connect(app)`, `createStream`: ready to publish or play on
    /// the returned message stream id.
    pub fn open(addr: SocketAddr, app: &str) -> Result<(RtmpClient, u32)> {
        let mut c = RtmpClient::connect_tcp(addr)?;
        c.handshake()?;
        c.connect(app)?;
        let sid = c.create_stream()?;
        Ok((c, sid))
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).map_err(io_err)
    }

    /// Half-closes the connection (no more bytes from the client).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Another handle on the connection, for a thread other than the reader's: its
    /// `shutdown(Shutdown::Both)` ends a `next_message` waiting in a read at once.
    pub fn closer(&self) -> std::io::Result<TcpStream> {
        self.stream.try_clone()
    }

    fn fill(&mut self, deadline: Instant) -> Result<()> {
        let now = Instant::now();
        if now >= deadline {
            return Err(ClientError::Timeout);
        }
        self.stream
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
            .map_err(io_err)?;
        let mut tmp = [0u8; 64 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => Err(ClientError::Closed),
            Ok(n) => {
                self.rbuf.extend_from_slice(&tmp[..n]);
                self.received += n as u64;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    fn read_exact_by(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>> {
        while self.rbuf.len() < n {
            self.fill(deadline)?;
        }
        Ok(self.rbuf.drain(..n).collect())
    }

    /// The simple handshake: C0+C1, read S0+S1+S2, send C2 (an echo of S1).
    pub fn handshake(&mut self) -> Result<()> {
        let deadline = Instant::now() + STEP;
        let mut c0c1 = vec![3u8];
        c0c1.extend([0u8; 8]);
        let mut random = vec![0u8; 1528];
        rand::thread_rng().fill_bytes(&mut random);
        c0c1.extend(&random);
        self.send_raw(&c0c1)?;
        let s0 = self.read_exact_by(1, deadline)?;
        if s0[0] != 3 {
            return Err(ClientError::Protocol(format!("S0 version {}", s0[0])));
        }
        let s1 = self.read_exact_by(1536, deadline)?;
        let s2 = self.read_exact_by(1536, deadline)?;
        if s2[8..] != c0c1[9..] {
            return Err(ClientError::Protocol(
                "S2 does not echo C1's random bytes".into(),
            ));
        }
        self.send_raw(&s1)
    }

    /// Sends one message on `csid` with the current outbound chunk size.
    pub fn send_message(
        &mut self,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 32);
        chunk::encode_message(
            (csid, type_id, stream_id, timestamp),
            payload,
            self.out_chunk_size,
            &mut out,
        );
        self.send_raw(&out)
    }

    /// Sends SetChunkSize and uses that size from now on (the value is sent as given, so
    /// malformed sizes can be sent too; the client keeps at least 1).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<()> {
        self.send_message(2, msg_type::SET_CHUNK_SIZE, 0, 0, &size.to_be_bytes())?;
        self.out_chunk_size = (size & 0x7fff_ffff).clamp(1, 1 << 24) as usize;
        Ok(())
    }

    /// Sends an AMF0 command on csid 3 (stream id 0) or 8 (a media stream).
    pub fn send_command(&mut self, stream_id: u32, values: &[Amf0]) -> Result<()> {
        let csid = if stream_id == 0 { 3 } else { 8 };
        self.send_message(
            csid,
            msg_type::COMMAND,
            stream_id,
            0,
            &amf0::encode_all(values),
        )
    }

    fn take_tx(&mut self) -> f64 {
        let tx = self.next_tx;
        self.next_tx += 1.0;
        tx
    }

    /// The next message from the server (stashed ones first). Answers pings, applies the
    /// server's chunk size and window size and sends acknowledgements as RTMP requires.
    pub fn next_message(&mut self, deadline: Instant) -> Result<Message> {
        if let Some(m) = self.stash.pop_front() {
            return Ok(m);
        }
        loop {
            if let Some(m) = self
                .decoder
                .decode(&mut self.rbuf)
                .map_err(ClientError::Protocol)?
            {
                self.after_message(&m)?;
                return Ok(m);
            }
            self.fill(deadline)?;
            if self.received - self.acked >= self.window {
                self.acked = self.received;
                let seq = (self.received as u32).to_be_bytes();
                self.send_message(2, msg_type::ACK, 0, 0, &seq)?;
            }
        }
    }

    fn after_message(&mut self, m: &Message) -> Result<()> {
        match m.type_id {
            msg_type::WINDOW_ACK_SIZE if m.payload.len() >= 4 => {
                let w = u32::from_be_bytes(m.payload[..4].try_into().expect("4"));
                self.window = u64::from(w.max(1));
            }
            msg_type::USER_CONTROL if m.payload.len() >= 6 && m.payload[1] == 6 => {
                // PingRequest -> PingResponse with the same timestamp.
                let mut pong = vec![0, 7];
                pong.extend(&m.payload[2..6]);
                self.send_message(2, msg_type::USER_CONTROL, 0, 0, &pong)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads until `pred` accepts a message; other messages are kept for `next_message`.
    pub fn wait_message(
        &mut self,
        deadline: Instant,
        pred: impl Fn(&Message) -> bool,
    ) -> Result<Message> {
        if let Some(i) = self.stash.iter().position(&pred) {
            return Ok(self.stash.remove(i).expect("index"));
        }
        let mut skipped = VecDeque::new();
        let found = loop {
            let m = match self
                .decoder
                .decode(&mut self.rbuf)
                .map_err(ClientError::Protocol)?
            {
                Some(m) => {
                    self.after_message(&m)?;
                    m
                }
                None => match self.fill(deadline) {
                    Ok(()) => continue,
                    Err(e) => break Err(e),
                },
            };
            if pred(&m) {
                break Ok(m);
            }
            skipped.push_back(m);
        };
        self.stash.extend(skipped);
        found
    }

    fn wait_reply(&mut self, tx: f64) -> Result<Vec<Amf0>> {
        let m = self.wait_message(Instant::now() + STEP, |m| {
            m.command().is_some_and(|(name, args)| {
                (name == "_result" || name == "_error") && args.first() == Some(&Amf0::Number(tx))
            })
        })?;
        let (name, args) = m.command().expect("matched a command");
        if name == "_error" {
            return Err(ClientError::Protocol(format!("_error reply: {args:?}")));
        }
        Ok(args)
    }

    /// `connect` to `app` (transaction 1) and its `_result`.
    pub fn connect(&mut self, app: &str) -> Result<Vec<Amf0>> {
        self.connect_with(app, &[])
    }

    /// `connect` with `extra` properties in the command object (an Enhanced RTMP client
    /// adds `fourCcList`, `capsEx` ...), and its `_result`.
    pub fn connect_with(&mut self, app: &str, extra: &[(&str, Amf0)]) -> Result<Vec<Amf0>> {
        self.app = app.to_string();
        let tc_url = format!("{}/{app}", self.tc_url);
        let mut props = vec![
            ("app", Amf0::str(app)),
            ("type", Amf0::str("nonprivate")),
            ("flashVer", Amf0::str("FMLE/3.0 (compatible; e2e)")),
            ("tcUrl", Amf0::str(&tc_url)),
            ("objectEncoding", Amf0::Number(0.0)),
        ];
        props.extend(extra.iter().cloned());
        self.send_command(
            0,
            &[
                Amf0::str("connect"),
                Amf0::Number(1.0),
                Amf0::object(&props),
            ],
        )?;
        self.wait_reply(1.0)
    }

    /// `createStream` and the message stream id from its `_result`.
    pub fn create_stream(&mut self) -> Result<u32> {
        let tx = self.take_tx();
        self.send_command(
            0,
            &[Amf0::str("createStream"), Amf0::Number(tx), Amf0::Null],
        )?;
        let args = self.wait_reply(tx)?;
        args.iter()
            .skip(1)
            .find_map(Amf0::as_f64)
            .map(|id| id as u32)
            .ok_or_else(|| ClientError::Protocol(format!("createStream result {args:?}")))
    }

    /// `publish(name, "live")` and the `onStatus` it gets.
    pub fn publish(&mut self, stream_id: u32, name: &str) -> Result<Status> {
        let tx = self.take_tx();
        self.send_command(
            stream_id,
            &[
                Amf0::str("publish"),
                Amf0::Number(tx),
                Amf0::Null,
                Amf0::str(name),
                Amf0::str("live"),
            ],
        )?;
        self.wait_status(Instant::now() + STEP, |s| {
            s.code.starts_with("NetStream.Publish")
        })
    }

    /// Sends `play(name, -2)` and a buffer-length user control, as players do.
    pub fn play(&mut self, stream_id: u32, name: &str) -> Result<()> {
        let tx = self.take_tx();
        self.send_command(
            stream_id,
            &[
                Amf0::str("play"),
                Amf0::Number(tx),
                Amf0::Null,
                Amf0::str(name),
                Amf0::Number(-2.0),
            ],
        )?;
        let mut set_buffer = vec![0, 3];
        set_buffer.extend(stream_id.to_be_bytes());
        set_buffer.extend(1000u32.to_be_bytes());
        self.send_message(2, msg_type::USER_CONTROL, 0, 0, &set_buffer)
    }

    /// [`Self::play`], then waits for `NetStream.Play.Start` (other messages stay queued
    /// for the caller). The server sends it once the player is attached to the stream,
    /// waiting for a publisher if there is none yet, so everything a publisher sends
    /// after this returns reaches the player. An error status is a
    /// [`ClientError::Protocol`] naming it.
    pub fn play_started(&mut self, stream_id: u32, name: &str) -> Result<()> {
        self.play(stream_id, name)?;
        let status = self.wait_status(Instant::now() + STEP, |s| {
            s.code == "NetStream.Play.Start" || s.level == "error"
        })?;
        if status.level == "error" {
            return Err(ClientError::Protocol(format!(
                "play refused: {} ({})",
                status.code, status.description
            )));
        }
        Ok(())
    }

    /// Reads until an `onStatus` whose status satisfies `pred`.
    pub fn wait_status(
        &mut self,
        deadline: Instant,
        pred: impl Fn(&Status) -> bool,
    ) -> Result<Status> {
        let m = self.wait_message(deadline, |m| m.status().is_some_and(|s| pred(&s)))?;
        Ok(m.status().expect("matched a status"))
    }

    /// Sends `@setDataFrame("onMetaData", {...})` on csid 5.
    pub fn send_metadata(&mut self, stream_id: u32, props: &[(&str, Amf0)]) -> Result<()> {
        let body = amf0::encode_all(&[
            Amf0::str("@setDataFrame"),
            Amf0::str("onMetaData"),
            Amf0::EcmaArray(
                props
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
        ]);
        self.send_message(5, msg_type::DATA, stream_id, 0, &body)
    }

    /// Sends an AMF0 data message (its values, handler name first) on csid 5.
    pub fn send_data(&mut self, stream_id: u32, timestamp: u32, body: &[u8]) -> Result<()> {
        self.send_message(5, msg_type::DATA, stream_id, timestamp, body)
    }

    /// Reads until `n` messages a publisher sent ([`is_stream_message`]) arrived; returns
    /// them as (type, body). Panics with what came so far when one does not arrive in time.
    pub fn collect_stream(&mut self, n: usize, deadline: Instant) -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        while got.len() < n {
            let m = self
                .next_message(deadline)
                .unwrap_or_else(|e| panic!("after {} messages {got:?}: {e}", got.len()));
            if is_stream_message(&m) {
                got.push((m.type_id, m.payload));
            }
        }
        got
    }

    /// Sends a video tag body on csid 6.
    pub fn send_video(&mut self, stream_id: u32, timestamp: u32, body: &[u8]) -> Result<()> {
        self.send_message(6, msg_type::VIDEO, stream_id, timestamp, body)
    }

    /// Sends an audio tag body on csid 4.
    pub fn send_audio(&mut self, stream_id: u32, timestamp: u32, body: &[u8]) -> Result<()> {
        self.send_message(4, msg_type::AUDIO, stream_id, timestamp, body)
    }

    /// Reads and discards until the server closes the connection. `Ok` if it closed (EOF
    /// or reset) before the deadline, `Err(Timeout)` if it was still open.
    pub fn expect_closed(&mut self, deadline: Instant) -> Result<()> {
        loop {
            self.rbuf.clear();
            match self.fill(deadline) {
                Ok(()) => {}
                Err(ClientError::Closed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}
