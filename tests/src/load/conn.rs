//! One client-side RTMP connection over tokio: a thin driver of `proto`'s
//! [`ClientSession`] (handshake, connect, createStream, publish or play, acknowledgements,
//! pings), with media out and events in.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use proto::rtmp::session::{
    ClientConfig, ClientError, ClientEvent, ClientMode, ClientRequest, ClientSession, MediaKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RTMP message type ids, as `proto` names them.
pub mod types {
    pub use proto::rtmp::message::types::{AUDIO, DATA_AMF0 as DATA, VIDEO};
}

/// A client connection.
pub struct Conn {
    sock: TcpStream,
    rbuf: BytesMut,
    out: BytesMut,
    session: ClientSession,
    read: u64,
}

fn proto_err(e: ClientError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Conn {
    /// TCP connect, then handshake, connect and createStream. A publisher returns once
    /// the server started the publish; a player once `play` is sent (servers differ in
    /// the statuses they send before media, so the player does not wait for them).
    /// `chunk_size` is the chunk size announced to the server.
    pub async fn open(
        addr: SocketAddr,
        app: &str,
        name: &str,
        mode: ClientMode,
        chunk_size: u32,
    ) -> io::Result<Conn> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let config = ClientConfig {
            chunk_size,
            digest_handshake: false,
            fourccs: Vec::new(),
            flash_ver: "FMLE/3.0 (loadgen)".into(),
            ..ClientConfig::default()
        };
        let request = ClientRequest {
            app: app.into(),
            tc_url: format!("rtmp://{addr}/{app}"),
            name: name.into(),
            mode,
        };
        let mut c = Conn {
            sock,
            rbuf: BytesMut::with_capacity(64 * 1024),
            out: BytesMut::new(),
            session: ClientSession::new(config, request, [7; 1528], 0),
            read: 0,
        };
        loop {
            c.flush().await?;
            match c.next().await? {
                ClientEvent::Publishing if mode == ClientMode::Publish => break,
                ClientEvent::StreamCreated(_) if mode == ClientMode::Play => break,
                _ => {}
            }
        }
        c.flush().await?;
        Ok(c)
    }

    /// Queues a media message (type 8 or 9) or, for type 18, `@setDataFrame` with `body`
    /// (the AMF0 `onMetaData` values).
    pub fn message(&mut self, type_id: u8, timestamp: u32, body: &[u8]) -> io::Result<()> {
        let r = match type_id {
            types::AUDIO => self.session.send_media(MediaKind::Audio, timestamp, body),
            types::VIDEO => self.session.send_media(MediaKind::Video, timestamp, body),
            _ => self.session.send_metadata(timestamp, body),
        };
        r.map_err(proto_err)
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.session.poll_transmit(&mut self.out);
        if !self.out.is_empty() {
            self.sock.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// The next event; control answers (acknowledgements, pings) are written as due.
    pub async fn next(&mut self) -> io::Result<ClientEvent> {
        loop {
            if let Some(e) = self.session.poll_event() {
                return Ok(e);
            }
            self.session
                .handle_input(&mut self.rbuf)
                .map_err(proto_err)?;
            if self.session.has_transmit() {
                self.flush().await?;
            }
            if let Some(e) = self.session.poll_event() {
                return Ok(e);
            }
            if self.rbuf.capacity() - self.rbuf.len() < 16 * 1024 {
                self.rbuf.reserve(64 * 1024);
            }
            let n = self.sock.read_buf(&mut self.rbuf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.read += n as u64;
        }
    }

    /// Bytes read from the socket so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }
}
