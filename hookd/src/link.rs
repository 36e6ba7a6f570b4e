//! The subscription to the hub (events only) and the fan-out of each event to the sinks.
//! A lost hub is reconnected with backoff and subscribed again
//! ([`subscription::keep_subscribed`]). The new subscription gets the events routed from
//! then on and, within 10 s of the hub's start, the ones it routed before; those this
//! process was handed already are skipped by their `id` ([`Session::message`]), so a
//! reconnect delivers nothing twice. Events routed while hookd was away are not replayed
//! (but for that startup window), and a new hookd process gets the window's events again.

use std::path::PathBuf;
use std::sync::Arc;

use proto::ipc::{Event, Header};
use telemetry::hub_conn::OpenError;
use telemetry::subscription::{self, Session, Subscriber, Subscription};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use crate::json::{field, to_json};
use crate::queue::Queue;
use crate::rule::Rule;
use crate::shell::Job;
use crate::webhook::{self, Delivery, WebhookOptions};

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

/// Subscribes to the hub at `socket` and dispatches every event until `shutdown` turns
/// true; rules arriving on `reloads` replace the ones in force between two events.
pub async fn run(
    socket: PathBuf,
    sinks: Sinks,
    reloads: mpsc::Receiver<Reload>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut link = Link { sinks, reloads };
    subscription::keep_subscribed(&socket, "hookd", &mut link, &mut shutdown).await;
}

/// The sinks and where their new rules come from, across subscriptions.
struct Link {
    sinks: Sinks,
    reloads: mpsc::Receiver<Reload>,
}

impl Subscriber for Link {
    type Error = OpenError;

    fn subscription(&self) -> Subscription {
        Subscription {
            patterns: Vec::new(),
            media: false,
            events: true,
        }
    }

    async fn session(
        &mut self,
        session: &mut Session,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), OpenError> {
        loop {
            while let Some(msg) = session.message()? {
                if let Header::Event(e) = msg.header {
                    self.sinks.dispatch(e);
                }
            }
            tokio::select! {
                more = session.receive() => {
                    if !more? {
                        return Ok(());
                    }
                }
                Some((webhooks, programs)) = self.reloads.recv() => {
                    self.sinks.reload(webhooks, programs);
                }
                _ = shutdown.changed() => return Ok(()),
            }
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
