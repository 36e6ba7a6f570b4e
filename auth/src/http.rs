//! The small HTTP client of the callback and the JWKS download: HTTP/1.1 over hyper, with
//! TLS (system roots) for `https://` URLs, a deadline on the whole exchange and a bound on
//! the body read.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL does not parse or is not http/https.
    #[error("bad URL: {0}")]
    Url(String),
    /// Connecting, TLS or the exchange failed.
    #[error("{0}")]
    Transport(String),
    /// No complete answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The body is larger than allowed.
    #[error("reply body larger than {0} bytes")]
    TooLarge(usize),
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client; cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    inner: HyperClient<Connector, Full<Bytes>>,
}

impl Client {
    /// A client trusting the system's root certificates for `https://` (none found: plain
    /// `http://` still works and `https://` fails with a clear error).
    pub fn new() -> Client {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no system root certificates: https callbacks and JWKS URLs will fail");
                let roots = rustls::RootCertStore::empty();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends `method` to `url` with `body` (JSON when given) and returns the status and
    /// at most `max_body` bytes of body, all within `deadline`.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        deadline: Duration,
        max_body: usize,
    ) -> Result<(u16, Bytes), HttpError> {
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| HttpError::Url(e.to_string()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(HttpError::Url(
                "only http:// and https:// are supported".into(),
            ));
        }
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(USER_AGENT, HeaderValue::from_static("mediaserver-auth"));
        if body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| HttpError::Url(e.to_string()))?;
        let exchange = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| HttpError::Transport(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::TooLarge(max_body)
                    } else {
                        HttpError::Transport(e.to_string())
                    }
                })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| HttpError::Timeout(deadline))?
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
