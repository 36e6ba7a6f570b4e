//! Starting a component the same way in every binary: the flags they all have
//! ([`CommonArgs`]), parsing and checking the command line ([`parse`], which also sets up
//! logging and the open-file limit), and the tokio runtime the component runs on
//! ([`block_on`]).

use std::future::Future;
use std::time::Duration;

use crate::exit::Failure;
use crate::log::LogArgs;

/// A flag that is wrong beyond its syntax, as (flag without `--`, value, why).
pub type Problem = (&'static str, String, String);

/// The first of `flags` (name without `--`, value) whose duration is zero, as the problem
/// of a duration that must be more than 0 (a zero timeout or interval would spin or give
/// up at once).
pub fn zero_duration(flags: &[(&'static str, Duration)]) -> Option<Problem> {
    let (flag, _) = flags.iter().find(|(_, d)| d.is_zero())?;
    Some((flag, "0s".into(), "must be more than 0".into()))
}

/// The flags every component has, flattened last into its command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// `--log-format` and `--log-level`.
    #[command(flatten)]
    pub log: LogArgs,
    /// Check the flags and exit: 0 when they are valid, else 2 with an `error:` line naming
    /// the flag. Nothing is started (used by `supervisor check`).
    #[arg(long)]
    pub check: bool,
}

/// A component's command line as [`parse`] needs it.
pub trait Command: clap::Parser {
    /// Its [`CommonArgs`].
    fn common(&self) -> &CommonArgs;

    /// What is wrong with its own flags beyond their syntax (the common ones are checked
    /// before).
    fn problems(&self) -> Option<Problem>;
}

/// Parses the command line. A flag that is wrong ends the process with status 2 and one
/// `error:` line on stderr naming it; `--check` ends it with 0 once all are valid.
/// Otherwise sets up logging, raises the open-file limit ([`crate::fds::raise_limit`];
/// [`crate::fds::limit`] reads it) and returns the command line.
pub fn parse<C: Command>() -> C {
    let cli = C::parse();
    if let Some((flag, value, why)) = cli.common().log.problem().or_else(|| cli.problems()) {
        eprintln!("error: invalid value '{value}' for '--{flag}': {why}");
        std::process::exit(2);
    }
    if cli.common().check {
        std::process::exit(0);
    }
    cli.common().log.init();
    crate::fds::raise_limit();
    cli
}

/// How many threads a component's tokio runtime runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// All on the calling thread (a component whose work is one link and its timers).
    Current,
    /// This many worker threads.
    Workers(usize),
    /// One worker thread per core (tokio's default).
    PerCore,
}

/// The tokio runtime could not be built.
#[derive(Debug, thiserror::Error)]
#[error("starting the runtime")]
pub struct RuntimeError(#[source] std::io::Error);

/// Builds the tokio runtime (timers and I/O enabled) and runs `body` on it to the end.
pub fn block_on<T, E: From<RuntimeError>>(
    threads: Threads,
    body: impl Future<Output = Result<T, Failure<E>>>,
) -> Result<T, Failure<E>> {
    let mut builder = match threads {
        Threads::Current => tokio::runtime::Builder::new_current_thread(),
        Threads::Workers(_) | Threads::PerCore => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Threads::Workers(n) = threads {
        builder.worker_threads(n);
    }
    let rt = builder
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(RuntimeError(e).into()))?;
    rt.block_on(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_body_on_each_flavour() {
        for threads in [Threads::Current, Threads::Workers(1), Threads::PerCore] {
            let r: Result<u8, Failure<String>> = block_on(threads, async {
                tokio::task::yield_now().await;
                Ok(7)
            });
            assert_eq!(r.unwrap(), 7);
        }
    }

    #[test]
    fn the_first_zero_duration_is_the_problem() {
        let s = Duration::from_secs(1);
        assert_eq!(zero_duration(&[("a", s), ("b", s)]), None);
        assert_eq!(
            zero_duration(&[("a", s), ("b", Duration::ZERO), ("c", Duration::ZERO)]),
            Some(("b", "0s".into(), "must be more than 0".into()))
        );
    }

    impl From<RuntimeError> for String {
        fn from(e: RuntimeError) -> String {
            e.to_string()
        }
    }
}
