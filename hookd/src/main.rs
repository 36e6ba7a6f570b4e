//! `hookd`: delivers the hub's events to webhooks, programs and stdout.

use std::path::{Path, PathBuf};
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
    /// TOML file of more rules, `webhook = [RULE, ...]` and `exec = [RULE, ...]`, re-read
    /// on SIGHUP: the next events go by the new rules; webhooks that stayed keep their
    /// queues, removed ones deliver what they had queued. A file that does not load keeps
    /// the rules in force (the log says why). Default: none.
    #[arg(long, value_name = "FILE")]
    rules_file: Option<PathBuf>,
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
                if let Err(e) = parse_rule(flag, r) {
                    return Some((flag, r.clone(), e));
                }
            }
        }
        if let Some(path) = &self.rules_file {
            if let Err(e) = file_rules(path) {
                return Some(("rules-file", path.display().to_string(), e));
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
        runtime::start::zero_duration(&[
            ("webhook-timeout", self.webhook_timeout),
            ("retry-min", self.retry_min),
            ("exec-timeout", self.exec_timeout),
        ])
    }
}

fn main() -> ExitCode {
    runtime::exit_code!(run(runtime::start::parse()))
}

type Failure = runtime::exit::Failure<anyhow::Error>;

/// A webhook (`flag` = `webhook`) or program rule, or why it is unusable.
fn parse_rule(flag: &str, text: &str) -> Result<Rule, String> {
    let rule = Rule::parse(text).map_err(|e| e.to_string())?;
    if flag == "webhook" && webhook::split_url(&rule.target).is_none() {
        return Err("the target must be http(s)://host[:port]/path".into());
    }
    Ok(rule)
}

/// The webhook and program rules of a rules file, or why it cannot be used.
fn file_rules(path: &Path) -> Result<(Vec<Rule>, Vec<Rule>), String> {
    let [webhooks, programs] = runtime::rules_file::read(path, &["webhook", "exec"])
        .map_err(|e| e.to_string())?
        .try_into()
        .expect("two keys asked");
    let parse = |flag: &str, rules: Vec<String>| {
        rules
            .iter()
            .map(|r| {
                parse_rule(flag, r).map_err(|e| format!("{}: {flag} {r:?}: {e}", path.display()))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok((parse("webhook", webhooks)?, parse("exec", programs)?))
}

/// Every rule in force: the flags', then the file's.
fn all_rules(cli: &Cli) -> Result<(Vec<Rule>, Vec<Rule>), String> {
    let flags = |flag: &str, rules: &[String]| {
        rules
            .iter()
            .filter_map(|r| parse_rule(flag, r).ok())
            .collect::<Vec<_>>()
    };
    let (mut webhooks, mut programs) = (flags("webhook", &cli.webhook), flags("exec", &cli.exec));
    if let Some(path) = &cli.rules_file {
        let (w, p) = file_rules(path)?;
        webhooks.extend(w);
        programs.extend(p);
    }
    Ok((webhooks, programs))
}

fn run(cli: Cli) -> Result<(), Failure> {
    let (webhooks, programs) = all_rules(&cli)
        .map_err(|e| Failure::CannotStart(anyhow::anyhow!("cannot load the rules file: {e}")))?;
    if !cli.stdout && webhooks.is_empty() && programs.is_empty() && cli.rules_file.is_none() {
        tracing::warn!("no --stdout, --webhook or --exec: events are received and dropped");
    }
    let https = webhooks.iter().any(|r| r.target.starts_with("https://"));
    // A reloaded rules file may bring https webhooks later.
    let tls = if https || cli.ca_file.is_some() || cli.rules_file.is_some() {
        let client = runtime::tls_client::TlsClient::new(cli.ca_file.as_deref())
            .map_err(|e| Failure::CannotStart(e.into()))?;
        tracing::debug!(roots = client.roots(), "TLS client for https webhooks");
        Some(client)
    } else {
        None
    };
    tracing::info!(hub = %cli.hub.display(), webhooks = webhooks.len(), programs = programs.len(), stdout = cli.stdout, "hookd starting");
    runtime::start::block_on(Threads::Workers(2), async move {
        let stdout = cli.stdout.then(|| {
            let q = Arc::new(Queue::new(cli.queue));
            tokio::spawn(link::write_stdout(q.clone()));
            q
        });
        let webhook_opts = Arc::new(WebhookOptions {
            tls,
            secret: cli.secret.clone().map(String::into_bytes),
            queue: cli.queue,
            timeout: cli.webhook_timeout,
            retry_min: cli.retry_min,
            retry_max: cli.retry_max,
        });
        // The runner idles without program rules; a reload may add some.
        let jobs = Arc::new(Queue::new(cli.queue));
        tokio::spawn(shell::run(
            jobs.clone(),
            ShellOptions {
                concurrency: cli.exec_concurrency,
                timeout: cli.exec_timeout,
            },
        ));
        let mut sinks = Sinks {
            stdout,
            webhooks: Vec::new(),
            programs,
            jobs,
            webhook_opts,
        };
        for rule in webhooks {
            sinks.add_webhook(rule);
        }
        let (reload_tx, reloads) = tokio::sync::mpsc::channel(4);
        let cli = Arc::new(cli);
        let hup = cli.clone();
        runtime::signal::on_hangup(move || {
            let (cli, tx) = (hup.clone(), reload_tx.clone());
            async move {
                if cli.rules_file.is_none() {
                    tracing::info!("SIGHUP: no --rules-file; nothing to reload");
                    return;
                }
                match all_rules(&cli) {
                    Ok(rules) => {
                        let _ = tx.send(rules).await;
                    }
                    Err(e) => tracing::warn!(
                        "SIGHUP: the rules file was not reloaded ({e}); the rules in force stay"
                    ),
                }
            }
        });
        let stop = runtime::signal::stop_flag(|signal| tracing::info!(%signal, "shutting down"));
        link::run(cli.hub.clone(), sinks, reloads, stop).await;
        Ok(())
    })
}
