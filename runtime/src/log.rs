//! Logging set-up: `--log-format` and `--log-level`, shared by every binary's command line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event; coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The logging flags, flattened into each binary's command line.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format: text (plain, coloured only when stderr is a terminal and NO_COLOR is
    /// unset) or json (one object per line).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (RUST_LOG syntax, e.g. `info,hub=debug`); RUST_LOG overrides it when set.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

impl Default for LogArgs {
    fn default() -> Self {
        LogArgs {
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

impl LogArgs {
    /// What is wrong with the flags beyond their syntax, as (flag, value, why), in the
    /// shape every binary's `--check` prints.
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        EnvFilter::try_new(&self.log_level)
            .err()
            .map(|e| ("log-level", self.log_level.clone(), e.to_string()))
    }

    /// Installs the global subscriber writing to stderr. `RUST_LOG`, when set and valid,
    /// wins over `--log-level`. Colour (ANSI escapes) only when stderr is a terminal and
    /// `NO_COLOR` is unset, so that logs captured by a supervisor, a pipe or a file are
    /// plain text.
    pub fn init(&self) {
        let filter = EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&self.log_level))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let result = match self.log_format {
            LogFormat::Text => builder.with_ansi(colour()).try_init(),
            LogFormat::Json => builder.json().with_ansi(false).try_init(),
        };
        // A subscriber set earlier (a test harness) is kept.
        drop(result);
    }
}

/// Whether text logs may use colour.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
