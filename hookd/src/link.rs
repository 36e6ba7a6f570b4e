//! The subscription to the hub (events only) and the fan-out of each event to the sinks.
//! A lost hub is reconnected with backoff and subscribed again; the hub sends only events
//! routed after the new subscription, so nothing is delivered twice by a reconnect.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proto::ipc::{Event, FrameDecoder, Header};
use telemetry::hub_conn::{self, HubConn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::json::{field, to_json};
use crate::queue::Queue;
use crate::rule::Rule;
use crate::shell::Job;
use crate::webhook::Delivery;

/// Longest wait between attempts to reach the hub.
const MAX_HUB_BACKOFF: Duration = Duration::from_secs(5);

/// Where events go.
#[derive(Debug, Default)]
pub struct Sinks {
    /// JSON lines for stdout, when `--stdout` is on.
    pub stdout: Option<Arc<Queue<Arc<String>>>>,
    /// Webhook rules and their URL's queue.
    pub webhooks: Vec<(Rule, Arc<Queue<Arc<Delivery>>>)>,
    /// Program rules.
    pub programs: Vec<Rule>,
    /// The program runner's queue.
    pub jobs: Option<Arc<Queue<Arc<Job>>>>,
}

impl Sinks {
    /// Hands `event` to every sink that takes it; never waits.
    pub fn dispatch(&self, event: Event) {
        let json = Arc::new(to_json(&event));
        let event = Arc::new(event);
        if let Some(q) = &self.stdout {
            if q.push(json.clone()) {
                tracing::warn!(
                    dropped = q.dropped(),
                    "stdout reader too slow; oldest event line dropped"
                );
            }
        }
        let mut delivery = None;
        for (rule, q) in &self.webhooks {
            if !rule.matches(&event) {
                continue;
            }
            let d = delivery
                .get_or_insert_with(|| {
                    Arc::new(Delivery {
                        kind: event.kind.clone(),
                        id: field(&event, "id").unwrap_or_default().to_owned(),
                        body: json.as_str().to_owned(),
                    })
                })
                .clone();
            if q.push(d) {
                tracing::warn!(url = %rule.target, dropped = q.dropped(), "webhook queue full; oldest event dropped");
            }
        }
        if let Some(jobs) = &self.jobs {
            for rule in self.programs.iter().filter(|r| r.matches(&event)) {
                let job = Arc::new(Job {
                    command: rule.target.clone(),
                    event: event.clone(),
                    json: json.clone(),
                });
                if jobs.push(job) {
                    tracing::warn!(
                        dropped = jobs.dropped(),
                        "program queue full; oldest event dropped"
                    );
                }
            }
        }
    }
}

/// Subscribes to the hub at `socket` and dispatches every event until the process ends.
pub async fn run(socket: PathBuf, sinks: Sinks) {
    let mut delay = Duration::from_millis(100);
    loop {
        match session(&socket, &sinks).await {
            Ok(()) => {
                tracing::warn!(socket = %socket.display(), "hub closed the subscription; reconnecting");
                delay = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(socket = %socket.display(), error = %e, retry_in = ?delay, "hub not reachable")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_HUB_BACKOFF);
    }
}

/// One subscription: returns when the hub closes it.
async fn session(socket: &Path, sinks: &Sinks) -> anyhow::Result<()> {
    let name = format!("hookd/{}", std::process::id());
    let HubConn { mut sock, mut buf } =
        hub_conn::subscribe(socket, name, Vec::new(), false, true).await?;
    buf.reserve(64 * 1024);
    tracing::info!(socket = %socket.display(), "subscribed to the hub's events");
    let decoder = FrameDecoder::default();
    loop {
        while let Some(msg) = decoder.decode(&mut buf)? {
            match msg.header {
                Header::Event(e) => sinks.dispatch(e),
                Header::Error { message } => anyhow::bail!("hub error: {message}"),
                _ => {}
            }
        }
        if sock.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Writes queued JSON lines to stdout until the process ends.
pub async fn write_stdout(queue: Arc<Queue<Arc<String>>>) {
    let mut stdout = tokio::io::stdout();
    loop {
        let (ticket, line) = queue.front().await;
        queue.pop(ticket);
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if stdout.write_all(&bytes).await.is_err() || stdout.flush().await.is_err() {
            tracing::warn!("stdout closed; no more event lines");
            return;
        }
    }
}
