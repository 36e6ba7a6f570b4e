//! `loadgen`: N RTMP players (and optionally the publisher they watch, and M more
//! publishers) in one process, verifying what every player receives and reporting bytes,
//! join time, delivery latency and the CPU/RSS of the server processes named by `--pids`.
//!
//! ```text
//! loadgen --addr 127.0.0.1:1935 --source bench.flv --players 500 --duration 10s \
//!         --pids 1234,1235 --json out.json
//! ```
//!
//! Phases: publish (unless --no-publish) and let the stream run for --settle (long enough
//! for the server's per-stream buffers to reach their bounds, so that the RSS growth
//! measured next is the players'); sample the servers' RSS; connect the players at --ramp per second; wait --warmup; measure for
//! --duration (CPU, bytes, latencies); stop. Exit status 1 when any player saw a protocol
//! violation, or (with --strict) failed or missed frames.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use e2e::load::churn;
use e2e::load::flvfile::Source;
use e2e::load::player::{play, PlayerReport, Shared};
use e2e::load::procstat;
use e2e::load::publisher::{publish, SendClock};
use e2e::load::stats::{json_num, summary};
use tokio::sync::watch;

/// RTMP load generator: players that verify what they receive, and publishers.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    /// RTMP server address.
    #[arg(long, default_value = "127.0.0.1:1935")]
    addr: SocketAddr,
    /// RTMP app.
    #[arg(long, default_value = "live")]
    app: String,
    /// Stream name the players play (and the main publisher publishes).
    #[arg(long, default_value = "bench")]
    name: String,
    /// FLV file the publishers send in real time, looped [default: none; required unless
    /// --no-publish with --publishers 0].
    #[arg(long)]
    source: Option<PathBuf>,
    /// Do not publish the played stream (someone else does; latency is then not measured).
    #[arg(long)]
    no_publish: bool,
    /// Players of the stream.
    #[arg(long, default_value_t = 10)]
    players: usize,
    /// Further publishers (names NAME-pub-0, NAME-pub-1 ...): ingest load.
    #[arg(long, default_value_t = 0)]
    publishers: usize,
    /// Players connected per second.
    #[arg(long, default_value_t = 200.0)]
    ramp: f64,
    /// Time the stream runs before the servers' RSS base is sampled and players join.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Time between the last player connecting and the measurement.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Length of the measurement.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Server process ids whose CPU and RSS are reported (comma-separated) [default: none].
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Write the report as JSON to this file [default: none].
    #[arg(long)]
    json: Option<PathBuf>,
    /// Fail (exit 1) on any player error or missed frame, not only on violations.
    #[arg(long)]
    strict: bool,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Players come and go: each leaves after between half and one and a half times this
    /// and another takes its place at once, so --players stay connected throughout
    /// [default: off: players stay until the end].
    #[arg(long, value_parser = humantime::parse_duration)]
    churn: Option<Duration>,
}

fn main() {
    let cli = Cli::parse();
    let rt = e2e::load::runtime(cli.threads);
    let code = rt.block_on(run(cli));
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    let source = match &cli.source {
        Some(p) => match Source::load(p) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                eprintln!("loadgen: {e}");
                return 2;
            }
        },
        None if cli.no_publish && cli.publishers == 0 => None,
        None => {
            eprintln!("loadgen: --source is required to publish");
            return 2;
        }
    };
    let total = cli.settle
        + cli.warmup
        + cli.duration
        + Duration::from_secs_f64(cli.players as f64 / cli.ramp)
        + Duration::from_secs(30);
    let hard_end = Instant::now() + total;
    // Before any stream exists: what the streams themselves hold is measured from here.
    let (_, rss_idle) = procstat::sample(&cli.pids);
    let clock = (!cli.no_publish).then(SendClock::new);
    let mut publishers = Vec::new();
    if let Some(src) = &source {
        let mut names: Vec<String> = (0..cli.publishers)
            .map(|i| format!("{}-pub-{i}", cli.name))
            .collect();
        if !cli.no_publish {
            names.insert(0, cli.name.clone());
        }
        for (i, name) in names.into_iter().enumerate() {
            let (addr, app, src) = (cli.addr, cli.app.clone(), src.clone());
            let clock = if i == 0 { clock.clone() } else { None };
            publishers.push(tokio::spawn(async move {
                publish(addr, &app, &name, src, clock, hard_end).await
            }));
        }
        // The stream runs (and the server has a keyframe) before anyone joins.
        tokio::time::sleep(cli.settle).await;
    }
    let (_, rss_base) = procstat::sample(&cli.pids);

    let bytes = Arc::new(AtomicU64::new(0));
    let (measure_tx, measure_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Shared {
        bytes: bytes.clone(),
        measuring: measure_rx,
        stop: stop_rx,
        clock: clock.clone(),
    };
    let joins = Arc::new(AtomicU64::new(0));
    let mut players = Vec::with_capacity(cli.players);
    let gap = Duration::from_secs_f64(1.0 / cli.ramp.max(1.0));
    let ramp_start = tokio::time::Instant::now();
    for i in 0..cli.players {
        tokio::time::sleep_until(ramp_start + gap * i as u32).await;
        let (addr, app, name, shared) =
            (cli.addr, cli.app.clone(), cli.name.clone(), shared.clone());
        let (churn, joins) = (cli.churn, joins.clone());
        players.push(tokio::spawn(async move {
            match churn {
                Some(life) => churn::churn(addr, &app, &name, shared, life, joins).await,
                None => play(addr, &app, &name, shared).await,
            }
        }));
    }
    tokio::time::sleep(cli.warmup).await;

    let (cpu0, _) = procstat::sample(&cli.pids);
    let own0 = procstat::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let bytes0 = bytes.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let _ = measure_tx.send(true);
    tokio::time::sleep(cli.duration).await;
    let _ = measure_tx.send(false);
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss1) = procstat::sample(&cli.pids);
    let own1 = procstat::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let bytes1 = bytes.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);

    let mut reports: Vec<PlayerReport> = Vec::with_capacity(players.len());
    for p in players {
        reports.push(p.await.unwrap_or_else(|e| PlayerReport {
            error: Some(format!("player task: {e}")),
            ..PlayerReport::default()
        }));
    }
    let mut publish_errors = Vec::new();
    for p in publishers {
        p.abort();
        if let Ok(Err(e)) = p.await {
            publish_errors.push(e);
        }
    }

    let gbits = (bytes1 - bytes0) as f64 * 8.0 / 1e9;
    let server_cpu = cpu1 - cpu0;
    let report = Report {
        players: cli.players,
        publishers: cli.publishers + usize::from(!cli.no_publish && source.is_some()),
        source_mbps: source.as_ref().map(|s| s.bitrate() / 1e6),
        secs,
        delivered_gbps: gbits / secs,
        server_cpu_cores: server_cpu / secs,
        server_cpu_per_gbps: (gbits > 0.0).then(|| server_cpu / secs / (gbits / secs)),
        loadgen_cpu_cores: (own1 - own0) / secs,
        rss_idle,
        rss_base,
        rss_end: rss1,
        reports,
        publish_errors,
    };
    report.print();
    if cli.churn.is_some() {
        eprintln!(
            "loadgen: {} player sessions in {} slots (churn)",
            joins.load(Ordering::Relaxed),
            cli.players
        );
    }
    let failed = report.failed(cli.strict);
    if let Some(path) = &cli.json {
        if let Err(e) = std::fs::write(path, report.json()) {
            eprintln!("loadgen: writing {}: {e}", path.display());
            return 2;
        }
    }
    i32::from(failed)
}

struct Report {
    players: usize,
    publishers: usize,
    source_mbps: Option<f64>,
    secs: f64,
    delivered_gbps: f64,
    server_cpu_cores: f64,
    server_cpu_per_gbps: Option<f64>,
    loadgen_cpu_cores: f64,
    /// Before any publisher.
    rss_idle: u64,
    /// After --settle, before the players.
    rss_base: u64,
    rss_end: u64,
    reports: Vec<PlayerReport>,
    publish_errors: Vec<String>,
}

impl Report {
    fn errors(&self) -> usize {
        self.reports.iter().filter(|r| r.error.is_some()).count()
    }

    fn violations(&self) -> usize {
        self.reports.iter().map(|r| r.violations.len()).sum()
    }

    fn missed(&self) -> u64 {
        self.reports.iter().map(|r| r.missed).sum()
    }

    fn failed(&self, strict: bool) -> bool {
        self.violations() > 0
            || (strict
                && (self.errors() > 0 || self.missed() > 0 || !self.publish_errors.is_empty()))
    }

    fn join(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        summary(self.reports.iter().filter_map(|r| r.join_ms).collect())
    }

    fn latency_ms(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        summary(
            self.reports
                .iter()
                .flat_map(|r| r.latencies_us.iter().map(|&us| f64::from(us) / 1000.0))
                .collect(),
        )
    }

    fn rss_per_player(&self) -> Option<f64> {
        (self.players > 0 && self.rss_end > 0)
            .then(|| (self.rss_end as f64 - self.rss_base as f64) / self.players as f64)
    }

    /// What one stream holds: with players, the growth from idle to just before they
    /// join (after --settle, when its buffers are full); without, to the end.
    fn rss_per_stream(&self) -> Option<f64> {
        let with_streams = if self.players > 0 {
            self.rss_base
        } else {
            self.rss_end
        };
        (self.publishers > 0 && self.rss_idle > 0 && with_streams > 0)
            .then(|| (with_streams as f64 - self.rss_idle as f64) / self.publishers as f64)
    }

    fn print(&self) {
        let (j50, j99, jmax) = self.join();
        let (l50, l99, lmax) = self.latency_ms();
        let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |x| format!("{x:.2}"));
        eprintln!(
            "loadgen: {} players, {} publishers, {:.1} s measured\n\
             delivered {:.3} Gbit/s; server CPU {:.3} cores ({} per Gbit/s); loadgen CPU {:.3} cores\n\
             server RSS {:.1} MiB idle, {:.1} MiB -> {:.1} MiB ({} bytes per player, {} per stream)\n\
             join to first keyframe ms: p50 {} p99 {} max {}\n\
             delivery latency ms: p50 {} p99 {} max {}\n\
             errors {} violations {} missed frames {} publish errors {}",
            self.players,
            self.publishers,
            self.secs,
            self.delivered_gbps,
            self.server_cpu_cores,
            f(self.server_cpu_per_gbps),
            self.loadgen_cpu_cores,
            self.rss_idle as f64 / 1048576.0,
            self.rss_base as f64 / 1048576.0,
            self.rss_end as f64 / 1048576.0,
            f(self.rss_per_player()),
            f(self.rss_per_stream()),
            f(j50),
            f(j99),
            f(jmax),
            f(l50),
            f(l99),
            f(lmax),
            self.errors(),
            self.violations(),
            self.missed(),
            self.publish_errors.len(),
        );
        let mut shown = 0;
        for (i, r) in self.reports.iter().enumerate() {
            if (r.error.is_some() || !r.violations.is_empty()) && shown < 5 {
                shown += 1;
                eprintln!(
                    "  player {i}: error {:?} violations {:?}",
                    r.error, r.violations
                );
            }
        }
        for e in &self.publish_errors {
            eprintln!("  {e}");
        }
    }

    fn json(&self) -> String {
        let (j50, j99, jmax) = self.join();
        let (l50, l99, lmax) = self.latency_ms();
        let bytes: u64 = self.reports.iter().map(|r| r.bytes).sum();
        format!(
            "{{\"players\":{},\"publishers\":{},\"source_mbps\":{},\"seconds\":{:.3},\
             \"delivered_gbps\":{:.6},\"server_cpu_cores\":{:.4},\"server_cpu_per_gbps\":{},\
             \"loadgen_cpu_cores\":{:.4},\"server_rss_base\":{},\"server_rss_end\":{},\
             \"rss_per_player\":{},\"server_rss_idle\":{},\"rss_per_stream\":{},\"join_ms\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\
             \"latency_ms\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\"player_bytes\":{},\
             \"video_frames\":{},\"errors\":{},\"violations\":{},\"missed_frames\":{},\
             \"publish_errors\":{}}}\n",
            self.players,
            self.publishers,
            json_num(self.source_mbps),
            self.secs,
            self.delivered_gbps,
            self.server_cpu_cores,
            json_num(self.server_cpu_per_gbps),
            self.loadgen_cpu_cores,
            self.rss_base,
            self.rss_end,
            json_num(self.rss_per_player()),
            self.rss_idle,
            json_num(self.rss_per_stream()),
            json_num(j50),
            json_num(j99),
            json_num(jmax),
            json_num(l50),
            json_num(l99),
            json_num(lmax),
            bytes,
            self.reports.iter().map(|r| r.video_frames).sum::<u64>(),
            self.errors(),
            self.violations(),
            self.missed(),
            self.publish_errors.len(),
        )
    }
}
