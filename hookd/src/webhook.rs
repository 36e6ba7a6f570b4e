//! Webhooks: each URL has its own task and bounded [`Queue`]; events are POSTed one at a
//! time in queue order (so in order per stream), each retried with exponential backoff
//! until the endpoint answers 2xx (at-least-once). `https://` endpoints are verified
//! against the system's roots and `--ca-file` (`runtime::tls_client`).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use runtime::tls_client::TlsClient;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::queue::Queue;

/// The signature header: `sha256=` and the hex HMAC-SHA256 of the body under `--secret`.
pub const SIGNATURE_HEADER: &str = "X-Hook-Signature";
/// Longest status line and headers read from an endpoint.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// One event ready to send.
#[derive(Debug)]
pub struct Delivery {
    /// Event kind (the `X-Hook-Event` header).
    pub kind: String,
    /// Event id (the `X-Hook-Id` header; the same on every retry, for deduplication).
    pub id: String,
    /// The JSON body.
    pub body: String,
}

/// Settings shared by every webhook.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// HMAC key; no signature header without one.
    pub secret: Option<Vec<u8>>,
    /// Events queued per URL.
    pub queue: usize,
    /// One attempt (connect, send, status line) must take less than this.
    pub timeout: Duration,
    /// First retry delay; doubles per failure.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// For `https://` URLs (present whenever a rule has one).
    pub tls: Option<TlsClient>,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The URL is not `http(s)://host[:port]/path`.
    #[error("not an http(s)://host[:port]/path URL")]
    Url,
    /// The TLS handshake failed (the certificate did not verify, ...).
    #[error("tls: {0}")]
    Tls(std::io::Error),
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer was not an HTTP status line.
    #[error("malformed response")]
    Malformed,
    /// A status other than 2xx.
    #[error("status {0}")]
    Status(u16),
}

/// Where a webhook URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://`.
    pub tls: bool,
    /// `host:port` to connect to (port 80 or 443 when the URL has none).
    pub addr: String,
    /// The URL's authority, for the `Host` header.
    pub authority: String,
    /// The host alone, the name the server's certificate must carry.
    pub host: String,
    /// Path and query.
    pub path: String,
}

/// Parses `http://host[:port]/path` or `https://host[:port]/path`.
pub fn split_url(url: &str) -> Option<Target> {
    let (tls, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://")?),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, addr) = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() && !h.is_empty() => (h, authority.to_owned()),
        _ => (
            authority,
            format!("{authority}:{}", if tls { 443 } else { 80 }),
        ),
    };
    Some(Target {
        tls,
        addr,
        authority: authority.to_owned(),
        host: host.to_owned(),
        path: path.to_owned(),
    })
}

/// The signature header value of `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The request bytes for `d`.
fn request(host: &str, path: &str, d: &Delivery, secret: Option<&[u8]>) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hookd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Hook-Event: {}\r\nX-Hook-Id: {}\r\nConnection: close\r\n",
        d.body.len(),
        d.kind,
        d.id
    );
    if let Some(secret) = secret {
        head.push_str(&format!(
            "{SIGNATURE_HEADER}: {}\r\n",
            sign(secret, d.body.as_bytes())
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(d.body.as_bytes());
    out
}

/// One POST of `d` to `url`.
pub async fn post(url: &str, d: &Delivery, opts: &WebhookOptions) -> Result<(), PostError> {
    let t = split_url(url).ok_or(PostError::Url)?;
    let attempt = async {
        let sock = TcpStream::connect(&t.addr).await?;
        let req = request(&t.authority, &t.path, d, opts.secret.as_deref());
        if !t.tls {
            return exchange(sock, &req).await;
        }
        let tls = opts.tls.as_ref().ok_or(PostError::Url)?;
        let sock = tls.connect(&t.host, sock).await.map_err(PostError::Tls)?;
        exchange(sock, &req).await
    };
    tokio::time::timeout(opts.timeout, attempt)
        .await
        .unwrap_or(Err(PostError::Timeout(opts.timeout)))
}

/// Sends `req` and reads the answer's status line.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    req: &[u8],
) -> Result<(), PostError> {
    sock.write_all(req).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 || head.len() > MAX_RESPONSE_HEAD {
            return Err(PostError::Malformed);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| PostError::Malformed)?;
    let mut parts = line.split(' ');
    let (Some(v), Some(code)) = (parts.next(), parts.next()) else {
        return Err(PostError::Malformed);
    };
    let code: u16 = code.parse().map_err(|_| PostError::Malformed)?;
    if !v.starts_with("HTTP/1.") {
        return Err(PostError::Malformed);
    }
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(PostError::Status(code))
    }
}

/// Delivers `queue` to `url` until the process ends, or until the queue is closed (its
/// rule was removed by a reload) and what it held is delivered.
pub async fn run(url: String, queue: Arc<Queue<Arc<Delivery>>>, opts: Arc<WebhookOptions>) {
    loop {
        let Some((ticket, d)) = queue.front_until_closed().await else {
            tracing::info!(%url, "webhook removed by a reload; its queued events are delivered");
            return;
        };
        let mut delay = opts.retry_min;
        let mut failures = 0u32;
        loop {
            match post(&url, &d, &opts).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(%url, id = %d.id, failures, "webhook delivered after retries");
                    } else {
                        tracing::debug!(%url, id = %d.id, kind = %d.kind, "webhook delivered");
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    // Jitter (50-100% of the delay) keeps many hookds from retrying in step.
                    let wait = delay.mul_f64(rand::random::<f64>().mul_add(0.5, 0.5));
                    tracing::warn!(%url, id = %d.id, kind = %d.kind, error = %e, retry_in = ?wait, "webhook failed");
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(opts.retry_max);
                }
            }
        }
        queue.pop(ticket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = split_url("http://127.0.0.1:8080/hook?x=1").unwrap();
        assert_eq!(
            (t.tls, &*t.addr, &*t.authority, &*t.host, &*t.path),
            (
                false,
                "127.0.0.1:8080",
                "127.0.0.1:8080",
                "127.0.0.1",
                "/hook?x=1"
            )
        );
        let t = split_url("http://example.com").unwrap();
        assert_eq!(
            (&*t.addr, &*t.host, &*t.path),
            ("example.com:80", "example.com", "/")
        );
        let t = split_url("https://example.com/h").unwrap();
        assert_eq!(
            (t.tls, &*t.addr, &*t.host),
            (true, "example.com:443", "example.com")
        );
        let t = split_url("https://[::1]:8443/").unwrap();
        assert_eq!((&*t.addr, &*t.host), ("[::1]:8443", "[::1]"));
        assert_eq!(split_url("ftp://example.com/"), None);
        assert_eq!(split_url("http:///x"), None);
        assert_eq!(split_url("https://u@example.com/"), None);
    }

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
