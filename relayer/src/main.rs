//! `relayer`: pushes live streams from the hub to other RTMP servers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use proto::glob::Glob;
use relayer::callback;
use relayer::destination::DestOptions;
use relayer::link::{self, LinkOptions};
use relayer::pull::PullOptions;
use relayer::rules::Rule;
use runtime::start::Threads;

/// Pushes live streams to other RTMP servers (YouTube, Twitch, a CDN, another server of
/// ours), each destination with its own connection, bounded queue and reconnect loop.
#[derive(Debug, Parser)]
#[command(name = "relayer", version)]
struct Cli {
    /// Hub socket to subscribe on.
    #[arg(long, default_value_os_t = runtime::dir::default_hub_socket())]
    hub: PathBuf,
    /// Push rule `PATTERN=URL[ URL...]`: streams whose key matches the glob PATTERN are
    /// pushed to every URL (`rtmp://host[:port]/app/name`, `rtmps://host[:port]/app/name` or
    /// `srt://host:port?streamid=..&passphrase=..&latency=ms`); `{key}`, `{app}` and `{name}` in a URL are replaced by the
    /// stream's. Repeatable. Example: `live/*=rtmp://a.example/live2/{name}`.
    /// Default: none.
    #[arg(long = "push", value_name = "RULE")]
    push: Vec<String>,
    /// TOML file of more push rules, `push = ["PATTERN=URL ...", ...]`, re-read on SIGHUP:
    /// destinations of rules that stayed keep their connections, those of removed rules
    /// stop, those of added rules start for streams already live. A file that does not
    /// load keeps the rules in force (the log says why). Default: none.
    #[arg(long, value_name = "FILE")]
    rules_file: Option<PathBuf>,
    /// HTTP URL asked for more destinations when a stream starts:
    /// `GET URL?key=..&app=..&name=..`, answered with one destination URL per line.
    /// Default: none.
    #[arg(long, value_name = "URL")]
    callback: Option<String>,
    /// How long the callback may take to answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    callback_timeout: Duration,
    /// Bytes of media queued per destination (units allowed: 8MiB, 512KiB); beyond it
    /// whole GOPs are skipped for that destination only.
    #[arg(long, value_name = "BYTES", default_value = "8MiB", value_parser = runtime::size::bytes::<usize>)]
    queue_bytes: usize,
    /// Pull (edge) mode: origin URL template played when a player asks this server's hub
    /// for a key that is not live (`{key}`, `{app}`, `{name}`), e.g.
    /// `rtmp://origin.example:1935/{app}/{name}`. Default: off.
    #[arg(long, value_name = "URL")]
    pull: Option<String>,
    /// Pull only keys matching this glob; repeatable. Default: every key.
    #[arg(long = "pull-match", value_name = "PATTERN")]
    pull_match: Vec<String>,
    /// A pull stops once its key has had no player for this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pull_grace: Duration,
    /// Connecting and starting the publish at a destination (or the play at a pull's
    /// origin) must take less than this.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// A write to a destination that takes longer than this counts as a failure (the
    /// destination stopped reading); it is reconnected.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    write_timeout: Duration,
    /// First reconnect delay after a destination (or a pull's origin) fails; it doubles per failure up to
    /// --reconnect-max, with random jitter (50-100% of the delay).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    reconnect_min: Duration,
    /// Longest reconnect delay.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    reconnect_max: Duration,
    /// How often a live destination reports its counters (a `relay` event).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    stats_interval: Duration,
    /// PEM file of CA certificates trusted for `rtmps://` destinations and origins,
    /// besides the system's root certificates (a private CA, or a self-signed server).
    /// Default: none.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Chunk size used toward destinations.
    #[arg(long, default_value_t = 4096)]
    chunk_size: u32,
    #[command(flatten)]
    common: runtime::start::CommonArgs,
}

impl runtime::start::Command for Cli {
    fn common(&self) -> &runtime::start::CommonArgs {
        &self.common
    }

    fn problems(&self) -> Option<runtime::start::Problem> {
        for r in &self.push {
            if let Err(e) = Rule::parse(r) {
                return Some(("push", r.clone(), e.to_string()));
            }
        }
        if let Some(path) = &self.rules_file {
            if let Err(e) = file_rules(path) {
                return Some(("rules-file", path.display().to_string(), e));
            }
        }
        if let Some(t) = &self.pull {
            if let Err(e) = relayer::rules::check_template(t) {
                return Some(("pull", t.clone(), e.to_string()));
            }
        }
        if let Some(p) = self.pull_match.iter().find(|p| p.is_empty()) {
            return Some((
                "pull-match",
                p.clone(),
                "an empty pattern matches nothing".into(),
            ));
        }
        if let Some(cb) = &self.callback {
            if callback::split_url(cb).is_none() {
                return Some((
                    "callback",
                    cb.clone(),
                    "must be http://host[:port]/path".into(),
                ));
            }
        }
        if !(128..=0x7FFF_FFFF).contains(&self.chunk_size) {
            return Some((
                "chunk-size",
                self.chunk_size.to_string(),
                "must be 128 to 2147483647".into(),
            ));
        }
        runtime::start::zero_duration(&[
            ("reconnect-min", self.reconnect_min),
            ("connect-timeout", self.connect_timeout),
            ("write-timeout", self.write_timeout),
            ("stats-interval", self.stats_interval),
            ("callback-timeout", self.callback_timeout),
        ])
    }
}

fn main() -> ExitCode {
    runtime::exit_code!(run(runtime::start::parse()))
}

type Failure = runtime::exit::Failure<anyhow::Error>;

/// The push rules of a rules file, or why it cannot be used.
fn file_rules(path: &Path) -> Result<Vec<Rule>, String> {
    let [push] = runtime::rules_file::read(path, &["push"])
        .map_err(|e| e.to_string())?
        .try_into()
        .expect("one key asked");
    push.iter()
        .map(|r| Rule::parse(r).map_err(|e| format!("{}: push: {e}", path.display())))
        .collect()
}

/// Every rule in force: the flags', then the file's.
fn all_rules(flags: &[Rule], file: Option<&Path>) -> Result<Vec<Rule>, String> {
    let mut rules = flags.to_vec();
    if let Some(path) = file {
        rules.extend(file_rules(path)?);
    }
    Ok(rules)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let flag_rules: Vec<Rule> = cli
        .push
        .iter()
        .filter_map(|r| Rule::parse(r).ok())
        .collect();
    let rules = all_rules(&flag_rules, cli.rules_file.as_deref())
        .map_err(|e| Failure::CannotStart(anyhow::anyhow!("cannot load the rules file: {e}")))?;
    if rules.is_empty() && cli.callback.is_none() && cli.pull.is_none() && cli.rules_file.is_none()
    {
        tracing::warn!("no --push rule, --callback or --pull: nothing will be relayed");
    }
    let tls = runtime::tls_client::TlsClient::new(cli.ca_file.as_deref())
        .map_err(|e| Failure::CannotStart(e.into()))?;
    let metrics = Arc::new(telemetry::Metrics::new());
    let pull = cli.pull.clone().map(|template| PullOptions {
        tls: tls.clone(),
        metrics: metrics.clone(),
        template,
        patterns: cli.pull_match.iter().map(|p| Glob::new(p)).collect(),
        grace: cli.pull_grace,
        socket: cli.hub.clone(),
        connect_timeout: cli.connect_timeout,
        backoff_min: cli.reconnect_min,
        backoff_max: cli.reconnect_max,
    });
    let dest = Arc::new(DestOptions {
        metrics: metrics.clone(),
        queue_bytes: cli.queue_bytes,
        connect_timeout: cli.connect_timeout,
        write_timeout: cli.write_timeout,
        backoff_min: cli.reconnect_min,
        backoff_max: cli.reconnect_max,
        stats_interval: cli.stats_interval,
        chunk_size: cli.chunk_size,
        tls,
    });
    let opts = LinkOptions {
        socket: cli.hub,
        rules,
        callback: cli.callback,
        callback_timeout: cli.callback_timeout,
        dest,
        pull,
    };
    tracing::info!(hub = %opts.socket.display(), rules = opts.rules.len(), "relayer starting");
    runtime::start::block_on(Threads::Workers(2), async move {
        tokio::spawn(telemetry::report(opts.socket.clone(), "relayer", metrics));
        let stop = runtime::signal::stop_flag(|signal| tracing::info!(%signal, "shutting down"));
        let (reload_tx, reloads) = tokio::sync::mpsc::channel(4);
        let file = cli.rules_file.clone();
        runtime::signal::on_hangup(move || {
            let (file, tx) = (file.clone(), reload_tx.clone());
            let flag_rules = flag_rules.clone();
            async move {
                let Some(path) = file else {
                    tracing::info!("SIGHUP: no --rules-file; nothing to reload");
                    return;
                };
                match all_rules(&flag_rules, Some(&path)) {
                    Ok(rules) => {
                        let _ = tx.send(rules).await;
                    }
                    Err(e) => tracing::warn!(
                        "SIGHUP: the rules file was not reloaded ({e}); the rules in force stay"
                    ),
                }
            }
        });
        link::run(opts, stop, reloads).await;
        // Let destinations send their last bytes and close politely.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    })
}
