//! ingest-rtmp: the RTMP front door. Accepts publishers and players on one TCP port, runs
//! the sans-IO `proto::rtmp::session` for each connection, turns publishers into framed
//! IPC streams to the hub and hands accepted players (socket and session state) to it.
//!
//! ```text
//!  TCP --> listener.rs + slots.rs (limits, eviction) --> conn.rs: bytes <-> ServerSession
//!                                              | publish                | play
//!                                              v                        v
//!                           convert.rs (FLV -> frames)          handoff.rs (fd + state
//!                                   |                                   over a fresh UDS)
//!                                   v
//!                  ingest_link: bounded queue per stream -> one hub.sock connection
//!                  shared by every publisher (one writev per read tick; reconnects,
//!                  re-announces every stream's configs, metadata, GOP)
//! ```
//!
//! At SIGTERM: listeners closed, grace.rs (reconnect requests, when configured), then
//! drain.rs (every stream ended in order).

mod cli;
mod conn;
mod convert;
mod drain;
mod grace;
mod handoff;
mod listener;
mod pace;
mod slots;
mod stats;
mod tls;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use cli::Cli;
use ingest_link::{pipe, Origin};

/// How this process names itself to the hub; RTMP timestamps are milliseconds.
pub(crate) const ORIGIN: Origin = Origin {
    component: "ingest-rtmp",
    timescale: 1000,
};

fn main() -> ExitCode {
    runtime::exit_code!(run(runtime::start::parse()))
}

/// Longest wait at shutdown for connections to end their streams and for the hub links to
/// write them (within the supervisor's 10 s default per phase).
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How long queued events may take to reach the hub at shutdown.
const EVENTS_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a run ended in error: which exit status it gets.
type Failure = runtime::exit::Failure<anyhow::Error>;

fn run(cli: Cli) -> Result<(), Failure> {
    let fd_limit = runtime::fds::limit();
    let threads = runtime::start::Threads::Workers(cli.threads.into());
    runtime::start::block_on(threads, async move {
        // Before any listener exists: a SIGTERM from then on is a shutdown, never the
        // default action (which would drop every stream as a disconnect).
        let shutdown = runtime::signal::shutdown();
        let drain = drain::Drain::new();
        let auth = auth::Authenticator::load(&cli.auth)
            .await
            .context("auth configuration")
            .map_err(Failure::CannotStart)?;
        let cfg_stats = Arc::new(stats::Stats::new());
        let pipe = match &cli.out {
            Some(target) => Some(
                pipe::Pipe::start(
                    target,
                    cli.config_queue_bytes(),
                    ORIGIN,
                    Box::new(drain.token()),
                )
                .await
                .with_context(|| format!("cannot open --out {target}"))
                .map_err(Failure::CannotStart)?,
            ),
            None => None,
        };
        let events = match &pipe {
            Some(p) => ingest_link::events::Events::to_pipe(p),
            None => ingest_link::events::Events::to_hub(
                cli.hub_path(),
                "ingest-rtmp",
                cfg_stats.events_dropped.clone(),
            ),
        };
        let cfg = Arc::new(cli.config(fd_limit, pipe, auth.clone(), events, cfg_stats));
        let accepting = listener::Accepting::new(&cfg);
        let rtmps = match (cli.tls_listen(), &cli.tls_cert, &cli.tls_key) {
            (Some(addr), Some(cert), Some(key)) => {
                let tls = Arc::new(
                    tls::Tls::load(cert, key)
                        .context("RTMPS")
                        .map_err(Failure::CannotStart)?,
                );
                let l = listener::bind(addr, cfg.reuse_port).map_err(|e| {
                    Failure::CannotStart(anyhow::anyhow!(ingest_link::listen_error(
                        "rtmps", addr, e
                    )))
                })?;
                let bound = l
                    .local_addr()
                    .context("local address")
                    .map_err(Failure::CannotStart)?;
                auth.warn_if_open(bound, "rtmps");
                tracing::info!("listening on rtmps://{bound}");
                let serving = listener::serve(
                    l,
                    cfg.clone(),
                    accepting.clone(),
                    Some(tls.clone()),
                    drain.token(),
                );
                Some((tls, serving))
            }
            _ => None,
        };
        let (tls, rtmps_serving) = match rtmps {
            Some((t, s)) => (Some(t), Some(s)),
            None => (None, None),
        };
        let listener = listener::bind(cfg.listen, cfg.reuse_port).map_err(|e| {
            Failure::CannotStart(anyhow::anyhow!(ingest_link::listen_error(
                "rtmp", cfg.listen, e
            )))
        })?;
        let addr = listener
            .local_addr()
            .context("local address")
            .map_err(Failure::CannotStart)?;
        auth.log_summary();
        auth.warn_if_open(addr, "rtmp");
        let _refresh = auth.spawn_refresh();
        runtime::signal::on_hangup(move || reload(auth.clone(), tls.clone()));
        match &cli.out {
            Some(out) => tracing::info!(?out, "listening on rtmp://{addr}"),
            None => {
                tracing::info!(hub = %cfg.hub.display(), max_connections = cfg.slots.max, "listening on rtmp://{addr}");
                tokio::spawn(telemetry::report(
                    cfg.hub.clone(),
                    "ingest-rtmp",
                    cfg.stats.metrics.clone(),
                ));
            }
        }
        let rtmps_serving = async {
            match rtmps_serving {
                Some(s) => s.await,
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = listener::serve(listener, cfg.clone(), accepting, None, drain.token()) => {
                r.context("accepting connections").map_err(Failure::Failed)
            }
            r = rtmps_serving => {
                r.context("accepting RTMPS connections").map_err(Failure::Failed)
            }
            signal = shutdown => {
                tracing::info!(%signal, "shutting down: ending every stream");
                Ok(())
            }
        };
        // The listeners are closed (another instance on the address gets the clients
        // from now on); clients that can reconnect are asked to first.
        if !cli.reconnect_grace.is_zero() && result.is_ok() {
            match &cli.out {
                None => grace::run(&cfg.hub, &cfg.capable, cli.reconnect_grace).await,
                Some(_) => tracing::info!("--reconnect-grace: no hub (--out), nobody to ask"),
            }
        }
        // The pipe writer (if any) ends once the last connection let go of the config.
        // (Only the hub's emitter is kept: a pipe's sender would hold the pipe open.)
        let events = cfg.events.emitter();
        drop(cfg);
        if !drain.finish(DRAIN_GRACE).await {
            tracing::warn!(grace = ?DRAIN_GRACE, "connections still open at shutdown; closing them");
        }
        // The connections' last events (connection_closed) on their way to the hub.
        if let Some(events) = events {
            events.flush(EVENTS_GRACE).await;
        }
        result
    })
}

/// SIGHUP reloads what can change without a restart: the auth file, JWT keys and the
/// RTMPS certificate.
async fn reload(auth: auth::Authenticator, tls: Option<Arc<tls::Tls>>) {
    tracing::info!("SIGHUP: reloading");
    auth.reload().await;
    if let Some(tls) = &tls {
        match tls.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the previous one")
            }
        }
    }
}
