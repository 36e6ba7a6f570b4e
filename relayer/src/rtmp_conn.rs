//! The async shell around proto's [`ClientSession`]: a TCP connection (TLS for
//! `rtmps://`) to another RTMP server, driven through connect, createStream and publish
//! or play.

use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::BytesMut;
use proto::iov::Outbox;
use proto::rtmp::session::{
    ClientConfig, ClientError, ClientEvent, ClientMode, ClientSession, RtmpUrl, ServerCaps,
};
use runtime::tls_client::TlsClient;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The read half of a connection, plain or TLS.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection, plain or TLS.
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// Why a connection to a server failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The URL is not `rtmp://host[:port]/app/name`.
    #[error("not an rtmp://host[:port]/app/name URL")]
    BadUrl,
    /// The TLS handshake failed (the certificate did not verify, ...).
    #[error("tls: {0}")]
    Tls(io::Error),
    /// Socket error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server broke the protocol or refused.
    #[error("{0}")]
    Rtmp(#[from] ClientError),
    /// The SRT handshake or connection failed.
    #[error("srt: {0}")]
    Srt(String),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// No publish/play start within the connect timeout, or a write stalled.
    #[error("timed out {0}")]
    Timeout(&'static str),
}

/// Writes `out` to `wr` with vectored writes until it is empty.
async fn write_outbox(wr: &mut WriteHalf, out: &mut Outbox) -> io::Result<()> {
    while !out.is_empty() {
        let n = {
            let mut iov = [IoSlice::new(&[]); 64];
            let k = out.fill(&mut iov);
            wr.write_vectored(&iov[..k]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        out.advance(n);
    }
    Ok(())
}

/// A connected, started RTMP client connection.
pub struct RtmpConn {
    /// Read half of the socket.
    pub rd: ReadHalf,
    wr: WriteHalf,
    /// The session.
    pub session: ClientSession,
    /// Bytes read, not yet consumed.
    pub rbuf: BytesMut,
    /// What the server said it takes.
    pub caps: ServerCaps,
    write_timeout: Duration,
}

impl RtmpConn {
    /// Connects to `url` and runs the session until the server started the publish or
    /// play, all within `timeout`. `events` collects what arrived meanwhile (a player's
    /// first metadata may come with the start). `rtmps://` goes through `tls`.
    pub async fn open(
        url: &str,
        mode: ClientMode,
        config: ClientConfig,
        timeout: Duration,
        tls: &TlsClient,
        events: &mut Vec<ClientEvent>,
    ) -> Result<RtmpConn, ConnError> {
        let parsed = RtmpUrl::parse(url, mode).ok_or(ConnError::BadUrl)?;
        tokio::time::timeout(
            timeout,
            Self::open_inner(parsed, config, timeout, tls, events),
        )
        .await
        .map_err(|_| ConnError::Timeout("waiting for the server to start the stream"))?
    }

    async fn open_inner(
        url: RtmpUrl,
        config: ClientConfig,
        write_timeout: Duration,
        tls: &TlsClient,
        events: &mut Vec<ClientEvent>,
    ) -> Result<RtmpConn, ConnError> {
        let sock = TcpStream::connect((url.host.as_str(), url.port)).await?;
        sock.set_nodelay(true)?;
        let (rd, wr): (ReadHalf, WriteHalf) = if url.tls {
            let s = tls.connect(&url.host, sock).await.map_err(ConnError::Tls)?;
            let (rd, wr) = tokio::io::split(s);
            (Box::new(rd), Box::new(wr))
        } else {
            let (rd, wr) = sock.into_split();
            (Box::new(rd), Box::new(wr))
        };
        let random: [u8; 1528] = std::array::from_fn(|_| rand::random());
        let epoch = 0;
        let mut c = RtmpConn {
            rd,
            wr,
            session: ClientSession::new(config, url.request, random, epoch),
            rbuf: BytesMut::with_capacity(64 * 1024),
            caps: ServerCaps::default(),
            write_timeout,
        };
        loop {
            c.flush().await?;
            c.read().await?;
            while let Some(e) = c.session.poll_event() {
                match e {
                    ClientEvent::Connected(caps) => c.caps = caps,
                    ClientEvent::Publishing | ClientEvent::Playing => {
                        c.flush().await?;
                        return Ok(c);
                    }
                    other => events.push(other),
                }
            }
        }
    }

    /// Reads once and feeds the session (events stay in it); answers are written.
    pub async fn read(&mut self) -> Result<(), ConnError> {
        if self.rbuf.capacity() - self.rbuf.len() < 16 * 1024 {
            self.rbuf.reserve(64 * 1024);
        }
        if self.rd.read_buf(&mut self.rbuf).await? == 0 {
            return Err(ConnError::Closed);
        }
        self.session.handle_input(&mut self.rbuf)?;
        if self.session.has_transmit() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes everything the session has queued, within the write timeout; returns the
    /// number of bytes written. Vectored: frames go out of the buffers the hub link
    /// decoded them into, shared by every destination.
    pub async fn flush(&mut self) -> Result<usize, ConnError> {
        let out = self.session.poll_transmit_vectored();
        let n = out.bytes();
        if n > 0 {
            tokio::time::timeout(self.write_timeout, write_outbox(&mut self.wr, out))
                .await
                .map_err(|_| ConnError::Timeout("writing (the server stopped reading)"))??;
        }
        Ok(n)
    }

    /// Ends the publish or play politely and closes (best effort, bounded).
    pub async fn close(mut self) {
        self.session.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
        let _ = self.wr.shutdown().await;
    }
}
