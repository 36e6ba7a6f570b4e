//! The optional destination callback: when a stream starts the relayer asks an HTTP
//! endpoint where to push it, like SRS's dynamic forward.
//!
//! `GET <url>?key=<app/name>&app=<app>&name=<name>` (parameters appended with `&` when
//! the URL has a query). A `200` answer's body lists destination URLs, one per line
//! (blank lines and lines starting with `#` are ignored); any other status, or no answer
//! within the timeout, means no extra destinations. Only `http://` is supported: the
//! callback is meant for a service next to the server.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer read.
const MAX_RESPONSE: usize = 64 * 1024;

/// Why a callback gave no destinations.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Not an `http://host[:port]/path` URL.
    #[error("callback URL must be http://host[:port]/path")]
    BadUrl,
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No complete answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// An answer that is not HTTP/1.x, or too large.
    #[error("malformed answer")]
    Malformed,
    /// A status other than 200.
    #[error("status {0}")]
    Status(u16),
}

/// Splits `http://host[:port]/path` into (host:port, path).
pub fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    let addr = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((addr, path.to_owned()))
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asks `url` for the destinations of `key`.
pub async fn ask(url: &str, key: &str, timeout: Duration) -> Result<Vec<String>, CallbackError> {
    tokio::time::timeout(timeout, ask_inner(url, key))
        .await
        .map_err(|_| CallbackError::Timeout(timeout))?
}

async fn ask_inner(url: &str, key: &str) -> Result<Vec<String>, CallbackError> {
    let (addr, path) = split_url(url).ok_or(CallbackError::BadUrl)?;
    let (app, name) = key.split_once('/').unwrap_or(("", key));
    let sep = if path.contains('?') { '&' } else { '?' };
    let target = format!(
        "{path}{sep}key={}&app={}&name={}",
        escape(key),
        escape(app),
        escape(name)
    );
    let host = addr.clone();
    let mut sock = TcpStream::connect(&addr).await?;
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: relayer\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(CallbackError::Malformed);
        }
    }
    parse_response(&buf)
}

/// Reads the destinations out of a whole HTTP/1.x response (`Connection: close`, so the
/// body runs to the end; chunked bodies are decoded).
pub fn parse_response(raw: &[u8]) -> Result<Vec<String>, CallbackError> {
    let text = std::str::from_utf8(raw).map_err(|_| CallbackError::Malformed)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(CallbackError::Malformed)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or(CallbackError::Malformed)?;
    let mut parts = status_line.split(' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(CallbackError::Malformed);
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(CallbackError::Malformed)?;
    if status != 200 {
        return Err(CallbackError::Status(status));
    }
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body).ok_or(CallbackError::Malformed)?
    } else {
        body.to_owned()
    };
    Ok(body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:9000/dst?x=1"),
            Some(("127.0.0.1:9000".into(), "/dst?x=1".into()))
        );
        assert_eq!(split_url("http://h"), Some(("h:80".into(), "/".into())));
        assert_eq!(split_url("https://h/"), None);
        assert_eq!(escape("live/a b"), "live%2Fa%20b");
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nrtmp://a/live/x\n\n# c\nrtmp://b/live/y\r\n";
        assert_eq!(
            parse_response(ok).unwrap(),
            ["rtmp://a/live/x", "rtmp://b/live/y"]
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nrtmp://a/live/x\n\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), ["rtmp://a/live/x"]);
        assert!(matches!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n"),
            Err(CallbackError::Status(404))
        ));
        assert!(matches!(
            parse_response(b"garbage"),
            Err(CallbackError::Malformed)
        ));
    }
}
