//! Pull (edge) mode: when a player asks this server's hub for a key that is not live, the
//! relayer plays it from an origin and publishes it into the hub; when the last player
//! has been gone for the grace period, the pull stops.
//!
//! ```text
//!  hub --players{count, live}--> link --> Pull task (one per key)
//!  origin --RTMP play (ClientSession)--> flv::convert --> hub.sock (role Publisher)
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proto::flv::convert::Converter;
use proto::ipc::{self, FrameDecoder, Header, Role, FORMAT_VERSION};
use proto::rtmp::session::{ClientConfig, ClientEvent, ClientMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::rtmp_conn::{ConnError, RtmpConn};
use crate::rules::{expand, redact};
use crate::state_gauge::StateGauge;

/// Settings of pull mode.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Origin URL template (`{key}`, `{app}`, `{name}`).
    pub template: String,
    /// Keys that may be pulled (globs; empty: any).
    pub patterns: Vec<proto::glob::Glob>,
    /// How long a pull outlives its last player.
    pub grace: Duration,
    /// The hub socket the pulled stream is published on.
    pub socket: PathBuf,
    /// Connect + play start at the origin.
    pub connect_timeout: Duration,
    /// First retry delay when the origin fails.
    pub backoff_min: Duration,
    /// For an `rtmps://` origin.
    pub tls: runtime::tls_client::TlsClient,
    /// The relayer's series (`mediaserver_relay_pulls{state}`).
    pub metrics: Arc<telemetry::Metrics>,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

/// Why one attempt of a pull ended.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error("origin: {0}")]
    Origin(#[from] ConnError),
    #[error("hub: {0}")]
    Hub(#[from] std::io::Error),
    #[error("hub: {0}")]
    Ipc(#[from] ipc::IpcError),
    #[error("the hub refused the key: {0}")]
    Refused(String),
    #[error("the origin stream ended ({0})")]
    Ended(String),
}

/// How an attempt ended when it did not fail.
enum Outcome {
    /// No player for the grace period: done.
    Idle,
}

/// One key being pulled; dropped by the link when the task reports it finished.
pub struct Pull {
    /// Current player count of the key on this hub.
    pub players: watch::Sender<usize>,
}

/// Starts pulling `key`; `done` gets the key when the pull ends.
pub fn start(key: String, players: usize, opts: PullOptions, done: mpsc::Sender<String>) -> Pull {
    let (tx, rx) = watch::channel(players);
    tokio::spawn(async move {
        run(&key, opts, rx).await;
        let _ = done.send(key).await;
    });
    Pull { players: tx }
}

async fn run(key: &str, opts: PullOptions, mut players: watch::Receiver<usize>) {
    let url = expand(&opts.template, key);
    let origin = redact(&url);
    let mut backoff = Backoff::new(opts.backoff_min, opts.backoff_max);
    let mut idle_since: Option<Instant> = None;
    tracing::info!(%key, %origin, "pull started");
    let mut state = StateGauge::new(&opts.metrics, "mediaserver_relay_pulls");
    loop {
        state.set("connecting");
        match attempt(key, &url, &opts, &mut players, &mut idle_since, &mut state).await {
            Ok(Outcome::Idle) => break,
            Err(e) => {
                state.set("backing_off");
                let delay = backoff.next(rand::random());
                tracing::warn!(%key, %origin, error = %e, retry_in = ?delay, "pull failed");
                // Wait out the delay, or stop if the players are gone for the grace period.
                let until = Instant::now() + delay;
                if wait_or_idle(&mut players, &mut idle_since, opts.grace, until).await {
                    break;
                }
            }
        }
    }
    tracing::info!(%key, %origin, "pull stopped");
}

/// Waits until `until`; true if meanwhile the key had no player for `grace`.
async fn wait_or_idle(
    players: &mut watch::Receiver<usize>,
    idle_since: &mut Option<Instant>,
    grace: Duration,
    until: Instant,
) -> bool {
    loop {
        note_players(*players.borrow(), idle_since);
        let idle_end = idle_since.map(|t| t + grace);
        if idle_end.is_some_and(|e| e <= Instant::now()) {
            return true;
        }
        let wake = idle_end.map_or(until, |e| e.min(until));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {
                if Instant::now() >= until && idle_end.is_none_or(|e| e > Instant::now()) {
                    return false;
                }
            }
            r = players.changed() => if r.is_err() { return true },
        }
    }
}

fn note_players(count: usize, idle_since: &mut Option<Instant>) {
    if count > 0 {
        *idle_since = None;
    } else if idle_since.is_none() {
        *idle_since = Some(Instant::now());
    }
}

async fn attempt(
    key: &str,
    url: &str,
    opts: &PullOptions,
    players: &mut watch::Receiver<usize>,
    idle_since: &mut Option<Instant>,
    state: &mut StateGauge,
) -> Result<Outcome, PullError> {
    let mut early = Vec::new();
    let config = ClientConfig::default();
    let mut origin = RtmpConn::open(
        url,
        ClientMode::Play,
        config,
        opts.connect_timeout,
        &opts.tls,
        &mut early,
    )
    .await?;
    let hub = UnixStream::connect(&opts.socket).await?;
    let (mut rd, mut wr) = hub.into_split();
    let mut out = BytesMut::new();
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Publisher,
            name: format!("relayer-pull/{}", std::process::id()),
        },
        &[],
        &mut out,
    );
    ipc::encode(
        &Header::Announce {
            stream: 1,
            key: key.to_owned(),
            timescale: 1000,
        },
        &[],
        &mut out,
    );
    wr.write_all(&out).await?;
    let decoder = FrameDecoder::default();
    let mut hub_buf = BytesMut::new();
    // The hub's Hello, then its answer to the announce.
    loop {
        match decoder.decode(&mut hub_buf)? {
            Some(m) => match m.header {
                Header::AnnounceReply { rejected: None, .. } => break,
                Header::AnnounceReply {
                    rejected: Some(r), ..
                } => return Err(PullError::Refused(format!("{r:?}"))),
                Header::Error { message } => return Err(PullError::Refused(message)),
                _ => {}
            },
            None => {
                if rd.read_buf(&mut hub_buf).await? == 0 {
                    return Err(PullError::Refused("hub closed the connection".into()));
                }
            }
        }
    }
    tracing::info!(%key, origin = %redact(url), "pulling");
    state.set("live");
    let mut convert = Converter::new(1);
    let result = loop {
        out.clear();
        for e in early
            .drain(..)
            .chain(std::iter::from_fn(|| origin.session.poll_event()))
        {
            match e {
                ClientEvent::Metadata { data, .. } => {
                    ipc::encode(&Header::Metadata { stream: 1 }, &data, &mut out)
                }
                ClientEvent::Media(m) => {
                    if let Err(err) = convert.media(&m, |h, p| ipc::encode(&h, &p, &mut out)) {
                        tracing::debug!(%key, error = %err, "origin media message dropped");
                    }
                }
                ClientEvent::StreamEnded { code } => {
                    wr.write_all(&out).await?;
                    break_end(&mut wr, "disconnect").await;
                    return Err(PullError::Ended(code));
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            wr.write_all(&out).await?;
        }
        note_players(*players.borrow(), idle_since);
        let idle_end = idle_since.map(|t| t + opts.grace);
        if idle_end.is_some_and(|e| e <= Instant::now()) {
            break Ok(Outcome::Idle);
        }
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            n = origin.rd.read_buf(&mut origin.rbuf) => {
                if n.map_err(ConnError::from)? == 0 {
                    break Err(PullError::Origin(ConnError::Closed));
                }
                origin.session.handle_input(&mut origin.rbuf).map_err(ConnError::from)?;
                origin.flush().await?;
            }
            n = rd.read_buf(&mut hub_buf) => {
                if n? == 0 {
                    break Err(PullError::Refused("hub closed the connection".into()));
                }
                while let Some(m) = decoder.decode(&mut hub_buf)? {
                    if let Header::Revoke { reason, .. } = m.header {
                        break_end(&mut wr, "revoked").await;
                        return Err(PullError::Refused(format!("revoked: {reason}")));
                    }
                }
            }
            _ = players.changed() => {}
            () = tokio::time::sleep_until(idle_end.unwrap_or(far)) => {}
        }
    };
    if matches!(result, Ok(Outcome::Idle)) {
        tracing::info!(%key, "no player for the grace period");
    }
    break_end(&mut wr, "unpublish").await;
    origin.close().await;
    result
}

/// Ends the published stream on the hub (best effort).
async fn break_end(wr: &mut tokio::net::unix::OwnedWriteHalf, reason: &str) {
    let mut out = BytesMut::new();
    ipc::encode(
        &Header::EndOfStream {
            stream: 1,
            reason: reason.to_owned(),
        },
        &[],
        &mut out,
    );
    let _ = wr.write_all(&out).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(10);

    /// With no player from the start, the wait ends as idle exactly at the grace period,
    /// even when the retry delay is longer.
    #[tokio::test(start_paused = true)]
    async fn no_player_ends_the_pull_after_the_grace_period() {
        let (_tx, mut rx) = watch::channel(0usize);
        let mut idle = None;
        let start = Instant::now();
        let until = start + Duration::from_secs(60);
        assert!(wait_or_idle(&mut rx, &mut idle, GRACE, until).await);
        assert_eq!(Instant::now() - start, GRACE);
    }

    /// While a player watches, the wait lasts the whole retry delay and is not idle.
    #[tokio::test(start_paused = true)]
    async fn a_watched_key_waits_out_the_retry_delay() {
        let (_tx, mut rx) = watch::channel(2usize);
        let mut idle = None;
        let start = Instant::now();
        let until = start + Duration::from_secs(3);
        assert!(!wait_or_idle(&mut rx, &mut idle, GRACE, until).await);
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
        assert_eq!(idle, None);
    }

    /// The grace period counts from when the last player left, and a player who comes
    /// back within it cancels it.
    #[tokio::test(start_paused = true)]
    async fn the_grace_period_starts_when_the_last_player_leaves() {
        let (tx, mut rx) = watch::channel(1usize);
        let mut idle = None;
        let start = Instant::now();
        let until = start + Duration::from_secs(600);
        let players = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            tx.send(0).unwrap();
            tokio::time::sleep(Duration::from_secs(4)).await;
            tx.send(1).unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            tx.send(0).unwrap();
            tx
        });
        assert!(wait_or_idle(&mut rx, &mut idle, GRACE, until).await);
        // Left at 5 s, back at 9 s, left again at 10 s: idle from 10 s, ended at 20 s.
        assert_eq!(Instant::now() - start, Duration::from_secs(20));
        drop(players.await.unwrap());
    }

    /// The pull's own end (the link dropped its sender) ends the wait as idle.
    #[tokio::test(start_paused = true)]
    async fn a_closed_player_count_ends_the_wait() {
        let (tx, mut rx) = watch::channel(1usize);
        let mut idle = None;
        let until = Instant::now() + Duration::from_secs(60);
        drop(tx);
        assert!(wait_or_idle(&mut rx, &mut idle, GRACE, until).await);
    }

    #[test]
    fn idle_since_is_set_once_and_cleared_by_a_player() {
        let mut idle = None;
        note_players(0, &mut idle);
        let first = idle.expect("idle");
        note_players(0, &mut idle);
        assert_eq!(idle, Some(first));
        note_players(3, &mut idle);
        assert_eq!(idle, None);
    }
}
