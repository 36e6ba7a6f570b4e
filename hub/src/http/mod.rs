//! The hub's HTTP listener (default `0.0.0.0:8080`): Prometheus metrics, expvar-style
//! JSON, and the rest of the routes in [`router`].
//!
//! ```text
//!  TCP --> serve (connection limit) --> hyper http1 (header timeout, head size limit)
//!            --> router::route --> metrics.rs (/metrics, /debug/vars)
//!                                  api.rs (/api/v1: streams, connections, kicks, config)
//!                                  flv.rs (/{app}/{name}.flv: players on a ring cursor,
//!                                          admitted by play_auth.rs)
//!                                  ws.rs (the same with Upgrade: websocket)
//!                                  hls.rs (/hls/{app}/{name}/index.m3u8 and {seq}.ts:
//!                                          segments cut on demand by crate::hls)
//!                                  status.rs (/: the status page, vendored mpegts.js)
//! ```
//!
//! Every connection counts against `--http-max-connections` (over it: closed at once);
//! every request head must arrive within `--http-header-timeout` and fit in
//! [`MAX_HEAD_BYTES`]; request bodies are never read beyond [`MAX_BODY_BYTES`]; every
//! answer that is not a stream is computed within [`HANDLER_TIMEOUT`].

mod api;
pub mod body;
mod flv;
mod hls;
mod metrics;
mod play_auth;
mod router;
mod status;
mod ws;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::registry::Registry;
use crate::stats::Protocol;

/// Largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body accepted (the API takes no large bodies).
pub const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Longest time a non-streaming answer may take.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener's settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The bound address.
    pub listen: SocketAddr,
    /// Bearer token of the API's mutating calls (none: they are refused).
    pub token: Option<String>,
    /// Reads (API, metrics) need the token too.
    pub protect_reads: bool,
    /// Most connections at once.
    pub max_connections: usize,
    /// Time allowed for a request head, and for an idle keep-alive connection.
    pub header_timeout: Duration,
    /// Who may play over HTTP (`--play-auth` and its flags); none: everyone.
    pub play_auth: Option<auth::Authenticator>,
    /// HLS (`--hls-*`).
    pub hls: HlsConfig,
}

pub use hls::HlsConfig;

/// What every request handler shares.
#[derive(Debug)]
pub struct Http {
    registry: Arc<Registry>,
    cfg: HttpConfig,
    started: Instant,
    hls: Arc<hls::Segmenters>,
}

/// Serves HTTP on `listener` until it fails.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    cfg: HttpConfig,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(cfg.max_connections));
    let http = Arc::new(Http {
        registry,
        cfg,
        started: Instant::now(),
        hls: Arc::default(),
    });
    let mut next_id: u64 = 0;
    loop {
        let (sock, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) if crate::server::is_transient(&e) => {
                tracing::warn!(error = %e, "http accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let stats = http.registry.stats().clone();
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            stats.http_refused.inc();
            tracing::warn!(%remote, max = http.cfg.max_connections, "http connection refused: limit reached");
            continue;
        };
        let _ = sock.set_nodelay(true);
        next_id += 1;
        let http = http.clone();
        let span = tracing::debug_span!("http", http_conn = next_id, %remote);
        tokio::spawn(
            async move {
                let _permit = permit;
                let _open = stats.http_connections.track();
                http.connection(sock, remote).await;
            }
            .instrument(span),
        );
    }
}

/// What the requests of one connection share with its task.
#[derive(Default)]
pub(super) struct ConnCtx {
    /// An FLV player whose socket stopped taking bytes is closed through this.
    abort: Arc<tokio::sync::Notify>,
    /// A WebSocket-FLV player waiting for the upgraded connection.
    websocket: ws::Slot,
}

impl Http {
    async fn connection(self: Arc<Self>, sock: tokio::net::TcpStream, remote: SocketAddr) {
        let http = self.clone();
        let ctx = Arc::new(ConnCtx::default());
        let conn_ctx = ctx.clone();
        let stalled = ctx.abort.clone();
        let svc = service_fn(move |req| {
            let (http, ctx) = (http.clone(), conn_ctx.clone());
            async move { Ok::<_, Infallible>(http.route(req, remote, &ctx).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.cfg.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES.max(8192))
            .serve_connection(TokioIo::new(sock), svc)
            .with_upgrades();
        tokio::select! {
            r = conn => if let Err(e) = r {
                tracing::debug!(error = %e, "http connection ended");
            },
            _ = stalled.notified() => {
                return self.stalled(remote, Protocol::HttpFlv);
            }
        }
        // A request switched to WebSocket: its player runs on the connection's slot.
        if let Some(player) = ctx.websocket.take() {
            tokio::select! {
                () = player.run() => {}
                _ = stalled.notified() => self.stalled(remote, Protocol::WsFlv),
            }
        }
    }

    fn stalled(&self, remote: SocketAddr, protocol: Protocol) {
        self.registry.stats().players(protocol).stalled.inc();
        tracing::warn!(%remote, layer = "player", protocol = protocol.as_str(), error = "stalled: the socket took no bytes for --player-write-timeout", "closing connection");
    }
}
