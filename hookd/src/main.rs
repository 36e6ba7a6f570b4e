//! `hookd`: delivers the hub's events to webhooks, programs and stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hookd::link::{self, Sinks};
use hookd::queue::Queue;
use hookd::rule::Rule;
use hookd::shell::{self, ShellOptions};
use hookd::webhook::{self, WebhookOptions};
use runtime::start::Threads;

/// Delivers the hub's events (publish, play, record, relay, ...; proto/FORMAT.md section
/// 3.1) to webhooks, programs and stdout. A rule is `KINDS[@KEYGLOB]=TARGET`: KINDS a
/// comma-separated list of event kinds or `*`, KEYGLOB a glob on the stream key.
#[derive(Debug, Parser)]
#[command(name = "hookd", version)]
struct Cli {
    /// Hub socket to subscribe on.
    #[arg(long, default_value_os_t = runtime::dir::default_hub_socket())]
    hub: PathBuf,
    /// Write every event as one JSON line on stdout. Default: off.
    #[arg(long)]
    stdout: bool,
    /// Webhook rule `KINDS[@KEYGLOB]=http(s)://host[:port]/path`: matching events are
    /// POSTed as JSON, in order, retried until answered 2xx. Repeatable; one queue per rule.
    /// Example: `publish,unpublish@live/*=https://hooks.example/ms`. Default: none.
    #[arg(long = "webhook", value_name = "RULE")]
    webhook: Vec<String>,
    /// Program rule `KINDS[@KEYGLOB]=COMMAND`: COMMAND runs through /bin/sh -c per matching
    /// event, fields in HOOK_* variables and the JSON on stdin. Repeatable. Default: none.
    #[arg(long = "exec", value_name = "RULE")]
    exec: Vec<String>,
    /// HMAC-SHA256 key signing webhook bodies (header `X-Hook-Signature: sha256=HEX`).
    /// Prefer the environment variable HOOKD_SECRET to keep it off the command line.
    /// Default: none (no signature header).
    #[arg(long, env = "HOOKD_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// PEM file of CA certificates trusted for `https://` webhooks, besides the system's
    /// root certificates (a private CA, or a self-signed endpoint). Default: none.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Events queued per webhook rule (and for stdout, and for programs); when full the
    /// oldest is dropped with a warning.
    #[arg(long, default_value_t = 10_000)]
    queue: usize,
    /// One webhook attempt (connect, send, answer's status line) must take less than this.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    webhook_timeout: Duration,
    /// First webhook retry delay; it doubles per failure up to --retry-max, with jitter
    /// (50-100% of the delay).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    retry_min: Duration,
    /// Longest webhook retry delay.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    retry_max: Duration,
    /// Programs running at once; further events wait in the program queue.
    #[arg(long, default_value_t = 4)]
    exec_concurrency: usize,
    /// A program still running after this is killed with its process group (SIGKILL).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    exec_timeout: Duration,
    #[command(flatten)]
    common: runtime::start::CommonArgs,
}

impl runtime::start::Command for Cli {
    fn common(&self) -> &runtime::start::CommonArgs {
        &self.common
    }

    fn problems(&self) -> Option<runtime::start::Problem> {
        for (flag, rules) in [("webhook", &self.webhook), ("exec", &self.exec)] {
            for r in rules {
                match Rule::parse(r) {
                    Err(e) => return Some((flag, r.clone(), e.to_string())),
                    Ok(rule) if flag == "webhook" && webhook::split_url(&rule.target).is_none() => {
                        return Some((
                            flag,
                            r.clone(),
                            "the target must be http(s)://host[:port]/path".into(),
                        ))
                    }
                    Ok(_) => {}
                }
            }
        }
        for (flag, n) in [
            ("queue", self.queue),
            ("exec-concurrency", self.exec_concurrency),
        ] {
            if n == 0 {
                return Some((flag, "0".into(), "must be at least 1".into()));
            }
        }
        for (flag, d) in [
            ("webhook-timeout", self.webhook_timeout),
            ("retry-min", self.retry_min),
            ("exec-timeout", self.exec_timeout),
        ] {
            if d.is_zero() {
                return Some((flag, "0s".into(), "must be more than 0".into()));
            }
        }
        None
    }
}

fn main() -> ExitCode {
    runtime::exit_code!(run(runtime::start::parse()))
}

type Failure = runtime::exit::Failure<anyhow::Error>;

fn run(cli: Cli) -> Result<(), Failure> {
    if !cli.stdout && cli.webhook.is_empty() && cli.exec.is_empty() {
        tracing::warn!("no --stdout, --webhook or --exec: events are received and dropped");
    }
    let https = cli
        .webhook
        .iter()
        .any(|r| Rule::parse(r).is_ok_and(|r| r.target.starts_with("https://")));
    let tls = if https || cli.ca_file.is_some() {
        let client = runtime::tls_client::TlsClient::new(cli.ca_file.as_deref())
            .map_err(|e| Failure::CannotStart(e.into()))?;
        tracing::debug!(roots = client.roots(), "TLS client for https webhooks");
        Some(client)
    } else {
        None
    };
    tracing::info!(hub = %cli.hub.display(), webhooks = cli.webhook.len(), programs = cli.exec.len(), stdout = cli.stdout, "hookd starting");
    runtime::start::block_on(Threads::Workers(2), async move {
        let mut sinks = Sinks::default();
        if cli.stdout {
            let q = Arc::new(Queue::new(cli.queue));
            tokio::spawn(link::write_stdout(q.clone()));
            sinks.stdout = Some(q);
        }
        let opts = Arc::new(WebhookOptions {
            tls,
            secret: cli.secret.map(String::into_bytes),
            queue: cli.queue,
            timeout: cli.webhook_timeout,
            retry_min: cli.retry_min,
            retry_max: cli.retry_max,
        });
        for r in &cli.webhook {
            let rule = Rule::parse(r).expect("checked");
            let q = Arc::new(Queue::new(opts.queue));
            tokio::spawn(webhook::run(rule.target.clone(), q.clone(), opts.clone()));
            sinks.webhooks.push((rule, q));
        }
        if !cli.exec.is_empty() {
            sinks.programs = cli
                .exec
                .iter()
                .map(|r| Rule::parse(r).expect("checked"))
                .collect();
            let q = Arc::new(Queue::new(cli.queue));
            tokio::spawn(shell::run(
                q.clone(),
                ShellOptions {
                    concurrency: cli.exec_concurrency,
                    timeout: cli.exec_timeout,
                },
            ));
            sinks.jobs = Some(q);
        }
        tokio::select! {
            _ = link::run(cli.hub, sinks) => {}
            signal = runtime::signal::shutdown() => tracing::info!(%signal, "shutting down"),
        }
        Ok(())
    })
}
