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
use crate::webhook::{self, Delivery, WebhookOptions};
use tokio::sync::mpsc;

/// Longest wait between attempts to reach the hub.
const MAX_HUB_BACKOFF: Duration = Duration::from_secs(5);

/// Where events go.
#[derive(Debug)]
pub struct Sinks {
    /// JSON lines for stdout, when `--stdout` is on.
    pub stdout: Option<Arc<Queue<Arc<String>>>>,
    /// Webhook rules and their URL's queue.
    pub webhooks: Vec<(Rule, Arc<Queue<Arc<Delivery>>>)>,
    /// Program rules.
    pub programs: Vec<Rule>,
    /// The program runner's queue.
    pub jobs: Arc<Queue<Arc<Job>>>,
    /// Settings of the webhook tasks a reload starts.
    pub webhook_opts: Arc<WebhookOptions>,
}

impl Sinks {
    /// Adds a webhook rule with its own queue and delivery task.
    pub fn add_webhook(&mut self, rule: Rule) {
        let q = Arc::new(Queue::new(self.webhook_opts.queue));
        tokio::spawn(webhook::run(
            rule.target.clone(),
            q.clone(),
            self.webhook_opts.clone(),
        ));
        self.webhooks.push((rule, q));
    }

    /// Replaces the rules in force (a SIGHUP reload) and logs what changed. A webhook
    /// rule that stayed keeps its queue and task, so nothing queued or in flight is lost;
    /// one whose kinds or key pattern changed but whose URL did not keeps them too (its
    /// events stay in order); a new URL gets a new task; a removed one delivers what it
    /// had queued, then its task ends. Program rules apply from the next event on.
    pub fn reload(&mut self, webhooks: Vec<Rule>, programs: Vec<Rule>) {
        let mut old = std::mem::take(&mut self.webhooks);
        let (mut added, mut changed, mut unchanged) = (Vec::new(), Vec::new(), 0usize);
        for rule in webhooks {
            let same = old.iter().position(|(r, _)| r.text == rule.text);
            let same_url = || old.iter().position(|(r, _)| r.target == rule.target);
            match same.or_else(same_url) {
                Some(i) => {
                    let (was, q) = old.remove(i);
                    if was.text == rule.text {
                        unchanged += 1;
                    } else {
                        changed.push(format!("{} -> {}", was.text, rule.text));
                    }
                    self.webhooks.push((rule, q));
                }
                None => {
                    added.push(rule.text.clone());
                    self.add_webhook(rule);
                }
            }
        }
        let removed: Vec<String> = old
            .into_iter()
            .map(|(r, q)| {
                q.close();
                r.text
            })
            .collect();
        let texts = |v: &[Rule]| v.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
        let (was, now) = (texts(&self.programs), texts(&programs));
        let programs_added: Vec<&String> = now.iter().filter(|t| !was.contains(t)).collect();
        let programs_removed: Vec<&String> = was.iter().filter(|t| !now.contains(t)).collect();
        self.programs = programs;
        tracing::info!(
            webhooks_added = ?added,
            webhooks_removed = ?removed,
            webhooks_changed = ?changed,
            webhooks_unchanged = unchanged,
            programs_added = ?programs_added,
            programs_removed = ?programs_removed,
            "SIGHUP: hook rules reloaded"
        );
    }

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
        for rule in self.programs.iter().filter(|r| r.matches(&event)) {
            let job = Arc::new(Job {
                command: rule.target.clone(),
                event: event.clone(),
                json: json.clone(),
            });
            if self.jobs.push(job) {
                tracing::warn!(
                    dropped = self.jobs.dropped(),
                    "program queue full; oldest event dropped"
                );
            }
        }
    }
}

/// New webhook and program rules (SIGHUP), applied with [`Sinks::reload`].
pub type Reload = (Vec<Rule>, Vec<Rule>);

/// Subscribes to the hub at `socket` and dispatches every event until the process ends;
/// rules arriving on `reloads` replace the ones in force between two events.
pub async fn run(socket: PathBuf, mut sinks: Sinks, mut reloads: mpsc::Receiver<Reload>) {
    let mut delay = Duration::from_millis(100);
    loop {
        match session(&socket, &mut sinks, &mut reloads).await {
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
async fn session(
    socket: &Path,
    sinks: &mut Sinks,
    reloads: &mut mpsc::Receiver<Reload>,
) -> anyhow::Result<()> {
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
        tokio::select! {
            n = sock.read_buf(&mut buf) => {
                if n? == 0 {
                    return Ok(());
                }
            }
            Some((webhooks, programs)) = reloads.recv() => sinks.reload(webhooks, programs),
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
