//! Webhooks: each URL has its own task and bounded [`Queue`]; events are POSTed one at a
//! time in queue order (so in order per stream), each retried with exponential backoff
//! until the endpoint answers 2xx (at-least-once). Plain `http://` only: put a TLS proxy
//! in front for `https`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The URL is not `http://host[:port]/path`.
    #[error("not an http://host[:port]/path URL")]
    Url,
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

/// `http://host[:port]/path` as (host:port, host, path).
pub fn split_url(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((addr, authority.to_owned(), path.to_owned()))
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
    let (addr, host, path) = split_url(url).ok_or(PostError::Url)?;
    let attempt = async {
        let mut sock = TcpStream::connect(&addr).await?;
        sock.write_all(&request(&host, &path, d, opts.secret.as_deref()))
            .await?;
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
    };
    tokio::time::timeout(opts.timeout, attempt)
        .await
        .unwrap_or(Err(PostError::Timeout(opts.timeout)))
}

/// Delivers `queue` to `url` until the process ends.
pub async fn run(url: String, queue: Arc<Queue<Arc<Delivery>>>, opts: Arc<WebhookOptions>) {
    loop {
        let (ticket, d) = queue.front().await;
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
        assert_eq!(
            split_url("http://127.0.0.1:8080/hook?x=1"),
            Some((
                "127.0.0.1:8080".into(),
                "127.0.0.1:8080".into(),
                "/hook?x=1".into()
            ))
        );
        assert_eq!(
            split_url("http://example.com"),
            Some(("example.com:80".into(), "example.com".into(), "/".into()))
        );
        assert_eq!(split_url("https://example.com/"), None);
        assert_eq!(split_url("http:///x"), None);
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
