//! `recorder`: subscribes to the hub and writes every live stream (or those matching
//! `--match`) to FLV or fragmented MP4 files in `--dir`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use recorder::hub_link::{self, LinkOptions};
use recorder::naming::{Namer, DEFAULT_PATTERN};
use recorder::session::{Format, Settings};
use recorder::writer::{self, WriterOptions};
use runtime::start::Threads;
use tokio::sync::mpsc;

/// Records live streams from the hub to disk.
#[derive(Debug, Parser)]
#[command(name = "recorder", version)]
struct Cli {
    /// Hub socket to subscribe on.
    #[arg(long, default_value_os_t = runtime::dir::default_hub_socket())]
    hub: PathBuf,
    /// Directory the recordings are written to (created if missing).
    #[arg(long, default_value = "./recordings")]
    dir: PathBuf,
    /// Record only streams whose key matches this glob (`*` = any run of characters);
    /// repeatable. Default: every stream.
    #[arg(long = "match", value_name = "PATTERN")]
    patterns: Vec<String>,
    /// File name pattern relative to --dir. Placeholders: {key} {app} {stream} {YYYY} {MM}
    /// {DD} {hh} {mm} {ss} {date} {time} {seq} {ext} (times are UTC; `/` makes sub-directories).
    #[arg(long, default_value = DEFAULT_PATTERN)]
    pattern: String,
    /// Container: auto (FLV for H.264/AAC/MP3, fragmented MP4 otherwise), flv or mp4.
    #[arg(long, value_enum, default_value = "auto")]
    format: Format,
    /// Start a new file at the first keyframe after this much media (e.g. 10m). Default: off.
    #[arg(long, value_parser = humantime::parse_duration)]
    segment: Option<Duration>,
    /// Target MP4 fragment length: at most this much is lost on a crash.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    fragment: Duration,
    /// fdatasync every fragment and at close, and fsync the directory after creating a
    /// file (survives power loss; costs disk bandwidth).
    #[arg(long)]
    fsync: bool,
    /// Do not start a new file (or segment) while the disk holding it has fewer free
    /// bytes than this; K, M, G suffixes (powers of 1024); 0 disables the floor. The
    /// recorder logs the refusal and tries again after --retry-after.
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    min_free: u64,
    /// Permission bits of new recording files, in octal (the umask still applies).
    #[arg(long, default_value = "640", value_parser = parse_mode)]
    file_mode: u32,
    /// After a write error (e.g. disk full), wait this long before starting a new file.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    retry_after: Duration,
    /// Commands queued for the file writer before the recorder stops reading the hub.
    #[arg(long, default_value_t = 1024)]
    writer_queue: usize,
    #[command(flatten)]
    common: runtime::start::CommonArgs,
}

impl runtime::start::Command for Cli {
    fn common(&self) -> &runtime::start::CommonArgs {
        &self.common
    }

    fn problems(&self) -> Option<runtime::start::Problem> {
        if let Err(e) = Namer::new(&self.dir, &self.pattern) {
            return Some(("pattern", self.pattern.clone(), e.to_string()));
        }
        if self.dir.exists() && !self.dir.is_dir() {
            let why = "exists and is not a directory".to_string();
            return Some(("dir", self.dir.display().to_string(), why));
        }
        if let Some(p) = self.patterns.iter().find(|p| p.is_empty()) {
            return Some((
                "match",
                p.clone(),
                "an empty pattern matches nothing".into(),
            ));
        }
        if self.segment.is_some_and(|d| d.is_zero()) {
            return Some(("segment", "0s".into(), "must be more than 0".into()));
        }
        None
    }
}

/// A byte count with an optional K, M or G suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 512M, 2G or 1048576"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s} is too large"))
}

/// Octal permission bits, at most 0o777.
fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode like 640"))
}

fn main() -> ExitCode {
    runtime::exit_code!(run(runtime::start::parse()))
}

/// Why a run ended in error: which exit status it gets.
type Failure = runtime::exit::Failure<anyhow::Error>;

fn run(cli: Cli) -> Result<(), Failure> {
    let namer = Namer::new(&cli.dir, &cli.pattern)
        .context("--pattern")
        .map_err(Failure::CannotStart)?;
    std::fs::create_dir_all(&cli.dir)
        .with_context(|| {
            format!(
                "cannot create the recording directory {}",
                cli.dir.display()
            )
        })
        .map_err(Failure::CannotStart)?;
    let settings = Arc::new(Settings {
        namer,
        format: cli.format,
        segment: cli.segment,
        fragment: cli.fragment.max(Duration::from_millis(100)),
        retry_after: cli.retry_after,
    });
    let socket = cli.hub.clone();
    let (cmd_tx, cmd_rx) = mpsc::channel(cli.writer_queue.max(1));
    let (rep_tx, rep_rx) = mpsc::channel(256);
    let wopts = WriterOptions {
        fsync: cli.fsync,
        file_mode: cli.file_mode,
        min_free: cli.min_free,
    };
    let metrics = Arc::new(telemetry::Metrics::new());
    let wstats = writer::WriterStats::new(&metrics);
    let writer = std::thread::Builder::new()
        .name("recorder-writer".into())
        .spawn(move || writer::run(wopts, cmd_rx, rep_tx, wstats))
        .context("starting the writer thread")
        .map_err(Failure::Failed)?;
    tracing::info!(dir = %cli.dir.display(), hub = %socket.display(), "recorder starting");
    runtime::start::block_on(Threads::Current, async move {
        let stop = runtime::signal::stop_flag(|signal| tracing::info!(%signal, "shutting down"));
        let reporter = tokio::spawn(telemetry::report(socket.clone(), "recorder", metrics));
        let opts = LinkOptions {
            socket,
            patterns: cli.patterns,
            settings,
        };
        hub_link::run(opts, cmd_tx, rep_rx, stop).await;
        reporter.abort();
        Ok(())
    })?;
    writer
        .join()
        .map_err(|_| Failure::Failed(anyhow::anyhow!("writer thread panicked")))?;
    Ok(())
}
