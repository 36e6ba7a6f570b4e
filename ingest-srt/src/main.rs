//! ingest-srt: the SRT front door. Accepts SRT callers publishing MPEG-TS (plain or
//! AES-encrypted, with key rotation) on one UDP port, runs the sans-IO `proto::srt` for
//! each connection, demuxes the TS with `proto::ts` and sends each stream to the hub (or
//! `--out`) through `ingest_link`. Callers with `m=request` play a key instead: a hub
//! subscription per player, muxed back into TS and sent on the same connection machinery.
//!
//! ```text
//!  UDP --> endpoint.rs: Listener (cookies) --> access.rs (stream id, passphrase.rs)
//!              |                                   |  --> auth (spawned; 1401/1403, events)
//!              +--> Connection per caller --> publisher.rs: FrameReader --> Link --> hub
//!              +<-- Connection per player <-- player.rs: Muxer <-- subscription <-- hub
//! ```

mod access;
mod cli;
mod endpoint;
mod metrics;
mod passphrase;
mod player;
mod publisher;
mod udp;

use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use anyhow::Context;

use cli::Cli;
use ingest_link::{pipe, Origin};

/// How this process names itself to the hub; MPEG-TS timestamps are 90 kHz.
pub(crate) const ORIGIN: Origin = Origin {
    component: "ingest-srt",
    timescale: 90_000,
};

fn main() -> ExitCode {
    runtime::exit_code!(run(runtime::start::parse()))
}

/// Why a run ended in error: which exit status it gets.
type Failure = runtime::exit::Failure<anyhow::Error>;

fn run(cli: Cli) -> Result<(), Failure> {
    let mut cfg = cli.config();
    let registry = Arc::new(telemetry::Metrics::new());
    let metrics = metrics::SrtMetrics::new(registry.clone());
    // The endpoint is a task on the runtime `block_on` drives on the main thread.
    // With one thread that thread also drives the socket and runs the publishers: with a
    // worker pool, every datagram would cross from the worker that drives the socket to
    // the main thread, and every batch of payloads back to a worker.
    let threads = match cli.threads {
        1 => runtime::start::Threads::Current,
        n => runtime::start::Threads::Workers(n.into()),
    };
    runtime::start::block_on(threads, async move {
        if let Some(target) = &cli.out {
            let pipe = pipe::Pipe::start(target, cfg.hub_queue_bytes, ORIGIN, Box::new(()))
                .await
                .with_context(|| format!("cannot open --out {target}"))
                .map_err(Failure::CannotStart)?;
            cfg.events = ingest_link::events::Events::to_pipe(&pipe);
            cfg.pipe = Some(pipe);
        } else {
            cfg.events = ingest_link::events::Events::to_hub(
                cfg.hub.clone(),
                "ingest-srt",
                registry.counter("mediaserver_events_dropped_total", &[]),
            );
            tokio::spawn(telemetry::report(cfg.hub.clone(), "ingest-srt", registry));
        }
        let book = match &cli.passphrase_file {
            Some(f) => passphrase::Book::load(f)
                .map_err(|e| anyhow::anyhow!("--passphrase-file {}: {e}", f.display()))
                .map_err(Failure::CannotStart)?,
            None => passphrase::Book::default(),
        };
        let book = Arc::new(RwLock::new(book));
        if let Some(f) = cli.passphrase_file.clone() {
            let book = book.clone();
            runtime::signal::on_hangup(move || reload_passphrases(f.clone(), book.clone()));
        }
        let auth = auth::Authenticator::load(&cli.auth)
            .await
            .map_err(|e| Failure::CannotStart(anyhow::anyhow!("auth configuration: {e}")))?;
        let cfg = Arc::new(cfg);
        let socket = tokio::net::UdpSocket::bind(cli.listen).await.map_err(|e| {
            Failure::CannotStart(anyhow::anyhow!(ingest_link::listen_error(
                "srt", cli.listen, e
            )))
        })?;
        let (recv_buffer, send_buffer) = udp_buffers(&socket, cli.udp_buffer);
        let addr = socket
            .local_addr()
            .context("local address")
            .map_err(Failure::CannotStart)?;
        let reloading = auth.clone();
        runtime::signal::on_hangup(move || {
            let auth = reloading.clone();
            async move { auth.reload().await }
        });
        let handoff = humantime::format_duration(cfg.handoff);
        match &cli.out {
            Some(out) => {
                tracing::info!(?out, recv_buffer, send_buffer, %handoff, "listening on srt://{addr}")
            }
            None => tracing::info!(
                hub = %cfg.hub.display(),
                recv_buffer,
                send_buffer,
                %handoff,
                "listening on srt://{addr}"
            ),
        }
        if recv_buffer < cli.udp_buffer {
            tracing::warn!(
                asked = cli.udp_buffer,
                granted = recv_buffer,
                "the kernel capped the UDP receive buffer (net.core.rmem_max): bursts beyond it are dropped"
            );
        }
        if send_buffer < cli.udp_buffer {
            tracing::debug!(
                asked = cli.udp_buffer,
                granted = send_buffer,
                "the kernel capped the UDP send buffer (net.core.wmem_max): datagrams that find it full are dropped and counted"
            );
        }
        auth.log_summary();
        auth.warn_if_open(addr, "srt");
        let _refresh = auth.spawn_refresh();
        let endpoint = endpoint::Endpoint::new(socket, cfg, book, auth, metrics)
            .context("UDP socket")
            .map_err(Failure::CannotStart)?;
        // A task of its own, not a branch of the `select!` below: that future (and its
        // signal listeners) is then polled when a signal comes or the endpoint ends,
        // not at each of the endpoint's hundred wake-ups a second.
        let endpoint = tokio::spawn(endpoint.run());
        tokio::select! {
            r = endpoint => r
                .context("the endpoint task")
                .and_then(|r| r.context("receiving datagrams"))
                .map_err(Failure::Failed),
            signal = runtime::signal::shutdown() => {
                tracing::info!(%signal, "shutting down");
                Ok(())
            }
        }
    })
}

/// Asks for `size`-byte receive and send buffers on the socket; returns what the kernel
/// granted (Linux reports twice what it reserves for data, as its own bookkeeping is
/// counted, so the figure is halved to compare with the request).
fn udp_buffers(socket: &tokio::net::UdpSocket, size: usize) -> (usize, usize) {
    let s = socket2::SockRef::from(socket);
    if let Err(e) = s.set_recv_buffer_size(size) {
        tracing::warn!(error = %e, size, "cannot set the UDP receive buffer");
    }
    if let Err(e) = s.set_send_buffer_size(size) {
        tracing::warn!(error = %e, size, "cannot set the UDP send buffer");
    }
    let granted = |r: std::io::Result<usize>| r.map(|n| n / 2).unwrap_or(0);
    (granted(s.recv_buffer_size()), granted(s.send_buffer_size()))
}

/// Reloads the passphrase file (on SIGHUP); a file that does not parse keeps the old one.
async fn reload_passphrases(path: std::path::PathBuf, book: Arc<RwLock<passphrase::Book>>) {
    match passphrase::Book::load(&path) {
        Ok(b) => {
            tracing::info!(entries = b.len(), file = %path.display(), "passphrase file reloaded");
            *book.write().expect("passphrase book lock") = b;
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "passphrase file not reloaded, keeping the previous one")
        }
    }
}
