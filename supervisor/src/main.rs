//! `supervisor`: runs the media server's components from a profile.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use supervisor::{Outcome, Planned, Profile, RuntimeDir, Settings};

/// Starts, monitors, restarts and stops the media server's processes from a profile.
///
/// Without --profile it runs the built-in default profile (hub, ingest-rtmp on
/// 0.0.0.0:1935 and ingest-srt on UDP 0.0.0.0:4200). A profile section is exactly that component's flags written as TOML.
///
/// Signals: SIGINT/SIGTERM stop the components in order (a second one kills them);
/// SIGHUP reloads the profile, restarting only the components whose flags changed and
/// sending SIGHUP to the others that reload files in place; SIGUSR1 asks every RTMP
/// client that announced the E-RTMP Reconnect capability to reconnect (`supervisor
/// reconnect KEY` for one stream's clients) (docs/supervisor.md).
#[derive(Debug, Parser)]
#[command(name = "supervisor", version)]
struct Cli {
    /// Profile to run [default: the built-in profiles/default.toml].
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Private runtime directory for the sockets, created 0700 and locked [default: the
    /// profile's [supervisor] runtime_dir, else $XDG_RUNTIME_DIR/mediaserver or
    /// /run/user/UID/mediaserver or ~/.local/state/mediaserver].
    #[arg(long, global = true, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// Directory holding the component binaries [default: the profile's [supervisor]
    /// bin_dir, else the directory of the supervisor executable].
    #[arg(long, global = true, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// The supervisor's own log lines (children's lines are passed through as they are,
    /// prefixed with `[component]`).
    #[command(flatten)]
    log: runtime::log::LogArgs,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Validates a profile: exits 0 if it is valid, else prints `[section] key: why` for
    /// each problem and exits 1. Each component binary is run with its flags and --check.
    Check {
        /// The profile to check.
        file: PathBuf,
    },
    /// Asks the running supervisor (the one on --runtime-dir, else on the profile's or
    /// the default runtime directory) to send `NetConnection.Connect.ReconnectRequest`
    /// to the RTMP clients of KEYs, or to every RTMP client without a KEY: queues them
    /// in RUNTIME_DIR/reconnect.request and sends it SIGUSR1. Only clients that
    /// announced the E-RTMP Reconnect capability are asked; the hub's log and its
    /// `reconnect_request` event say how many.
    Reconnect {
        /// Stream keys (`live/cam`) whose publishers and players are asked [default:
        /// every RTMP client].
        keys: Vec<String>,
    },
}

fn main() -> ExitCode {
    // Before any thread exists, so that every thread inherits the mask and only the
    // signal thread ever sees SIGINT/SIGTERM/SIGHUP.
    if let Err(e) = supervisor::block_signals() {
        eprintln!("supervisor: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    cli.log.init();
    runtime::fds::raise_limit();
    let result = match &cli.command {
        Some(Cmd::Check { file }) => check(&cli, file),
        Some(Cmd::Reconnect { keys }) => reconnect(&cli, keys),
        None => run(&cli),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("supervisor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `text`, printing every problem prefixed with `origin`.
fn load(origin: &str, text: &str) -> Option<Profile> {
    match supervisor::parse_profile(text) {
        Ok(profile) => Some(profile),
        Err(errors) => {
            for error in errors {
                eprintln!("{origin}: {error}");
            }
            None
        }
    }
}

fn read_profile(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn bin_dir(cli: &Cli, profile: &Profile) -> anyhow::Result<PathBuf> {
    if let Some(dir) = cli.bin_dir.clone().or(profile.settings.bin_dir.clone()) {
        return Ok(dir);
    }
    let exe = std::env::current_exe().context("cannot locate the supervisor executable")?;
    Ok(exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".")))
}

fn runtime_dir(cli: &Cli, profile: &Profile) -> PathBuf {
    cli.runtime_dir
        .clone()
        .or(profile.settings.runtime_dir.clone())
        .unwrap_or_else(runtime::dir::default_dir)
}

fn check(cli: &Cli, file: &Path) -> anyhow::Result<ExitCode> {
    let origin = file.display().to_string();
    // Everything in one pass: the profile's own problems, then the components' verdict
    // on the keys that parsed.
    let (profile, errors) = supervisor::parse_profile_partial(&read_profile(file)?);
    let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if let Some(profile) = profile {
        let socket = runtime_dir(cli, &profile).join("hub.sock");
        let hub_socket = profile.runs_hub().then_some(socket.as_path());
        let bin_dir = bin_dir(cli, &profile)?;
        let found = supervisor::check_components(&profile, &bin_dir, hub_socket);
        problems.extend(found.iter().map(ToString::to_string));
    }
    if problems.is_empty() {
        println!("{origin}: ok");
        return Ok(ExitCode::SUCCESS);
    }
    for problem in problems {
        eprintln!("{origin}: {problem}");
    }
    Ok(ExitCode::FAILURE)
}

fn reconnect(cli: &Cli, keys: &[String]) -> anyhow::Result<ExitCode> {
    let dir = match &cli.runtime_dir {
        Some(dir) => dir.clone(),
        None => {
            let (origin, text) = profile_text(cli)?;
            let Some(profile) = load(&origin, &text) else {
                return Ok(ExitCode::FAILURE);
            };
            runtime_dir(cli, &profile)
        }
    };
    let pid = supervisor::reconnect::queue(&dir, keys)?;
    let what = if keys.is_empty() {
        "every RTMP client".to_owned()
    } else {
        keys.join(", ")
    };
    println!("asked supervisor pid {pid} to request reconnects of {what} (see its log)");
    Ok(ExitCode::SUCCESS)
}

/// The profile's text and where it came from (its path, or the built-in default).
fn profile_text(cli: &Cli) -> anyhow::Result<(String, String)> {
    Ok(match &cli.profile {
        Some(file) => (file.display().to_string(), read_profile(file)?),
        None => (
            "built-in default profile".to_string(),
            supervisor::DEFAULT_PROFILE.to_string(),
        ),
    })
}

/// The binaries of `profile` that are not in `bin_dir`, as an error.
fn find_binaries(profile: &Profile, bin_dir: &Path) -> anyhow::Result<()> {
    let missing: Vec<String> = profile
        .sections
        .iter()
        .map(|s| bin_dir.join(s.component.name))
        .filter(|bin| !bin.is_file())
        .map(|bin| bin.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!("component binaries not found: {}", missing.join(", "));
    }
    Ok(())
}

fn plan(
    profile: &Profile,
    bin_dir: &Path,
    hub_socket: Option<&Path>,
    runtime: &Path,
) -> Vec<Planned> {
    profile
        .sections
        .iter()
        .map(|section| {
            let (args, rules) = section.run_args(hub_socket, runtime);
            Planned {
                component: section.component,
                bin: bin_dir.join(section.component.name),
                args,
                rules,
            }
        })
        .collect()
}

/// The profile read again for SIGHUP and validated like `check` does (the profile, then
/// each component's flags), or every reason it cannot replace the running one.
fn reload(
    cli: &Cli,
    running: &Profile,
    runtime: &Path,
    hub_socket: Option<&Path>,
) -> Result<(Vec<Planned>, Settings), Vec<String>> {
    let one = |e: anyhow::Error| vec![format!("{e:#}")];
    let (origin, text) = profile_text(cli).map_err(one)?;
    let profile = supervisor::parse_profile(&text).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{origin}: {e}"))
            .collect::<Vec<_>>()
    })?;
    if profile.runs_hub() != running.runs_hub() {
        return Err(vec![format!(
            "{origin}: adding or removing [hub] takes a supervisor restart"
        )]);
    }
    if runtime_dir(cli, &profile) != runtime {
        tracing::warn!(
            "{origin}: runtime_dir changed; the components stay in {} until the supervisor \
             restarts",
            runtime.display()
        );
    }
    let bin_dir = bin_dir(cli, &profile).map_err(one)?;
    find_binaries(&profile, &bin_dir).map_err(one)?;
    let problems = supervisor::check_components(&profile, &bin_dir, hub_socket);
    if !problems.is_empty() {
        return Err(problems.iter().map(|p| format!("{origin}: {p}")).collect());
    }
    Ok((
        plan(&profile, &bin_dir, hub_socket, runtime),
        profile.settings,
    ))
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (origin, text) = profile_text(cli)?;
    let Some(profile) = load(&origin, &text) else {
        return Ok(ExitCode::FAILURE);
    };
    let bin_dir = bin_dir(cli, &profile)?;
    find_binaries(&profile, &bin_dir)?;
    let runtime = RuntimeDir::prepare(&runtime_dir(cli, &profile))?;
    let socket = runtime.hub_socket();
    let hub_socket = profile.runs_hub().then_some(socket.as_path());
    tracing::info!(
        "running {origin} with runtime directory {}",
        runtime.path().display()
    );
    let plan = plan(&profile, &bin_dir, hub_socket, runtime.path());
    let metrics = std::sync::Arc::new(telemetry::Metrics::new());
    let mut events = telemetry::Emitter::discard();
    if let Some(hub) = hub_socket {
        telemetry::report_from_thread(hub.to_path_buf(), "supervisor", metrics.clone())
            .context("starting the metrics reporter")?;
        events = telemetry::Emitter::start_on_thread(
            hub.to_path_buf(),
            "supervisor",
            telemetry::events::DEFAULT_CAPACITY,
            metrics.counter("mediaserver_events_dropped_total", &[]),
        )
        .context("starting the event sender")?;
    }
    let mut reload = || reload(cli, &profile, runtime.path(), hub_socket);
    let hub = hub_socket
        .map(Path::to_path_buf)
        .unwrap_or_else(runtime::dir::default_hub_socket);
    let mut on_user1 = || {
        let targets = supervisor::reconnect::take(runtime.path());
        supervisor::reconnect::send(hub.clone(), targets);
    };
    let outcome = supervisor::run_reloading(
        plan,
        &profile.settings,
        &metrics,
        events,
        &mut reload,
        &mut on_user1,
    )
    .context("supervising")?;
    Ok(match outcome {
        Outcome::Stopped => ExitCode::SUCCESS,
        Outcome::ComponentFailed => ExitCode::FAILURE,
    })
}
