//! The async shell around proto's SRT caller and connection: a UDP socket to an SRT
//! listener, live mode, MPEG-TS payloads of seven packets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::srt::crypto::{KeyLength, Passphrase};
use proto::srt::{Caller, CallerOptions, Config, Connection, Event, Random};
use tokio::net::UdpSocket;

use crate::rtmp_conn::ConnError;

/// Bytes of MPEG-TS per SRT message (seven 188-byte packets, what every SRT tool sends).
pub const TS_PER_MESSAGE: usize = 7 * 188;

/// An `srt://host:port?streamid=..&passphrase=..&latency=..` destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtUrl {
    /// Host and port.
    pub host: String,
    /// UDP port.
    pub port: u16,
    /// `streamid`, sent in the handshake.
    pub stream_id: Option<String>,
    /// `passphrase` (10 to 79 characters): encrypt.
    pub passphrase: Option<String>,
    /// `latency` in milliseconds.
    pub latency: Option<Duration>,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SrtUrl {
    /// Parses an `srt://` URL; `None` when it is not one or a value is unusable.
    pub fn parse(url: &str) -> Option<SrtUrl> {
        let rest = url.strip_prefix("srt://")?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (host, port) = authority.rsplit_once(':')?;
        let host = host.trim_matches(['[', ']']);
        if host.is_empty() {
            return None;
        }
        let mut u = SrtUrl {
            host: host.to_owned(),
            port: port.parse().ok()?,
            stream_id: None,
            passphrase: None,
            latency: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "streamid" => u.stream_id = Some(unescape(v)),
                "passphrase" => u.passphrase = Some(unescape(v)),
                "latency" => u.latency = Some(Duration::from_millis(v.parse().ok()?)),
                // Options of other tools (mode=caller, pbkeylen ...) that change nothing here.
                _ => {}
            }
        }
        if let Some(p) = &u.passphrase {
            Passphrase::new(p.clone()).ok()?;
        }
        Some(u)
    }
}

struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = rand::random();
        }
    }
}

/// A connected SRT sender.
pub struct SrtConn {
    sock: UdpSocket,
    conn: Connection,
    buf: Vec<u8>,
}

/// What woke a waiting connection.
pub enum Wake {
    /// A datagram arrived.
    Datagram(Bytes),
    /// The connection's timer fired.
    Timer,
}

impl SrtConn {
    /// Connects as a caller within `timeout`.
    pub async fn open(url: &str, timeout: Duration) -> Result<SrtConn, ConnError> {
        let u = SrtUrl::parse(url).ok_or(ConnError::BadUrl)?;
        tokio::time::timeout(timeout, Self::open_inner(u))
            .await
            .map_err(|_| ConnError::Timeout("waiting for the SRT listener"))?
    }

    async fn open_inner(u: SrtUrl) -> Result<SrtConn, ConnError> {
        let peer: SocketAddr = tokio::net::lookup_host((u.host.as_str(), u.port))
            .await?
            .next()
            .ok_or(ConnError::BadUrl)?;
        let bind: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0".parse().expect("addr")
        } else {
            "[::]:0".parse().expect("addr")
        };
        let sock = UdpSocket::bind(bind).await?;
        sock.connect(peer).await?;
        let mut config = Config::default();
        if let Some(l) = u.latency {
            config.latency = l;
        }
        let opts = CallerOptions {
            local_id: rand::random::<u32>().max(1),
            peer_ip: peer.ip(),
            stream_id: u.stream_id,
            passphrase: u
                .passphrase
                .map(Passphrase::new)
                .transpose()
                .map_err(|_| ConnError::BadUrl)?,
            key_length: KeyLength::Aes128,
        };
        let mut caller = Caller::new(Instant::now(), config, opts, Box::new(OsRandom));
        let mut buf = vec![0u8; 2048];
        loop {
            while let Some(d) = caller.poll_transmit() {
                sock.send(&d).await?;
            }
            if let Some(r) = caller.poll_result() {
                let conn = r.map_err(|e| ConnError::Srt(e.to_string()))?;
                return Ok(SrtConn { sock, conn, buf });
            }
            let wake = caller
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_millis(250));
            tokio::select! {
                n = sock.recv(&mut buf) => {
                    let n = n?;
                    caller.handle_datagram(Instant::now(), Bytes::copy_from_slice(&buf[..n]));
                }
                () = tokio::time::sleep_until(wake) => caller.handle_timeout(Instant::now()),
            }
        }
    }

    /// Queues MPEG-TS bytes (a multiple of 188) as messages of seven packets.
    pub fn send(&mut self, ts: &[u8]) -> Result<(), ConnError> {
        let now = Instant::now();
        for piece in ts.chunks(TS_PER_MESSAGE) {
            self.conn
                .send(now, Bytes::copy_from_slice(piece))
                .map_err(|e| ConnError::Srt(e.to_string()))?;
        }
        Ok(())
    }

    /// Writes every datagram due; returns the bytes written.
    pub async fn flush(&mut self) -> Result<usize, ConnError> {
        let mut n = 0;
        while let Some(d) = self.conn.poll_transmit(Instant::now()) {
            n += d.len();
            self.sock.send(&d).await?;
        }
        if self.conn.is_closed() {
            return Err(ConnError::Closed);
        }
        Ok(n)
    }

    /// Waits for a datagram or the timer (cancel-safe).
    pub async fn wait(&mut self) -> Result<Wake, ConnError> {
        let wake = self
            .conn
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_millis(100));
        tokio::select! {
            n = self.sock.recv(&mut self.buf) => {
                let n = n?;
                Ok(Wake::Datagram(Bytes::copy_from_slice(&self.buf[..n])))
            }
            () = tokio::time::sleep_until(wake) => Ok(Wake::Timer),
        }
    }

    /// Applies what woke the connection.
    pub fn process(&mut self, wake: Wake) -> Result<(), ConnError> {
        let now = Instant::now();
        match wake {
            Wake::Datagram(d) => self.conn.handle_datagram(now, d),
            Wake::Timer => self.conn.handle_timeout(now),
        }
        while let Some(e) = self.conn.poll_event() {
            if let Event::Closed(reason) = e {
                return Err(ConnError::Srt(format!("closed: {reason:?}")));
            }
        }
        Ok(())
    }

    /// Closes (best effort).
    pub async fn close(mut self) {
        self.conn.close(Instant::now());
        let _ = self.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = SrtUrl::parse(
            "srt://127.0.0.1:4200?streamid=publish:live/a%2Fb&passphrase=0123456789a&latency=200",
        )
        .unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 4200));
        assert_eq!(u.stream_id.as_deref(), Some("publish:live/a/b"));
        assert_eq!(u.passphrase.as_deref(), Some("0123456789a"));
        assert_eq!(u.latency, Some(Duration::from_millis(200)));
        assert!(SrtUrl::parse("srt://h").is_none());
        assert!(SrtUrl::parse("srt://h:1?passphrase=short").is_none());
        assert!(SrtUrl::parse("rtmp://h:1").is_none());
    }
}
