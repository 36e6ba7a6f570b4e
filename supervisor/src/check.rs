//! `supervisor check`: a profile is valid when it parses and every component accepts its
//! flags. Components are the only source of truth for their flags, so each binary is run
//! with the generated flags plus `--check` (parse, then exit 0) and clap's complaints are
//! mapped back to `[section] key`. A component names one problem per run, so the key it
//! named is taken out and the component asked again, until it has no more to say: every
//! bad key of every section is reported in one pass.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::profile::{Location, Profile};

/// How long one component may take to parse its flags.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// One reason a profile does not work, located as precisely as the component told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Section and, if known, key.
    pub location: Location,
    /// Why.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Runs every component of `profile` from `bin_dir` with its flags and `--check`; returns
/// the problems found (empty when the profile is valid).
pub fn check_components(
    profile: &Profile,
    bin_dir: &Path,
    hub_socket: Option<&Path>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for section in &profile.sections {
        let name = section.component.name;
        let at = |key: Option<String>| Location {
            section: name.to_string(),
            key,
        };
        let bin = bin_dir.join(name);
        if !bin.is_file() {
            problems.push(Problem {
                location: at(None),
                message: format!("component binary not found at {}", bin.display()),
            });
            continue;
        }
        let mut trial = section.clone();
        // Each round removes at least one key, so this ends; the bound is a backstop.
        for _ in 0..=section.flags.len() {
            let mut args = trial.args(hub_socket);
            args.push("--check".into());
            match run_check(&bin, &args) {
                Ok(None) => break,
                Ok(Some(stderr)) => {
                    let (key, message) = explain(&stderr, &trial.flags);
                    problems.push(Problem {
                        location: at(key.clone()),
                        message,
                    });
                    // A problem that names no key of the section cannot be narrowed down.
                    let Some(key) = key else { break };
                    let (bare, valued) = (format!("--{key}"), format!("--{key}="));
                    trial
                        .flags
                        .retain(|f| *f != bare && !f.starts_with(&valued));
                }
                Err(message) => {
                    problems.push(Problem {
                        location: at(None),
                        message,
                    });
                    break;
                }
            }
        }
    }
    problems
}

/// Runs `bin args`: `Ok(None)` if it exits 0, `Ok(Some(stderr))` if it fails.
fn run_check(bin: &Path, args: &[String]) -> Result<Option<String>, String> {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let mut pipe = child.stderr.take().ok_or("stderr not captured")?;
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut text = String::new();
        // Bounded: a clap error is a few lines.
        let _ = (&mut pipe).take(64 * 1024).read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let stderr = match rx.recv_timeout(CHECK_TIMEOUT) {
        Ok(text) => text,
        Err(_) => {
            // Still unreaped, so the pid is still this child's.
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} --check did not finish within {}",
                bin.display(),
                humantime::format_duration(CHECK_TIMEOUT)
            ));
        }
    };
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {}: {e}", bin.display()))?;
    Ok((!status.success()).then_some(stderr))
}

/// Maps a component's error output to the key it is about (when it names one of
/// `flags`) and a one-line reason.
pub fn explain(stderr: &str, flags: &[String]) -> (Option<String>, String) {
    let error_line = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("error:"))
        .or_else(|| stderr.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("failed without a message");
    let reason = error_line.trim_start_matches("error:").trim();
    // clap puts what would have been accepted on lines of their own.
    let tip: String = stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("tip:") || l.starts_with("[possible values:"))
        .map(|t| format!(" ({})", t.trim_start_matches('[').trim_end_matches(']')))
        .collect();
    let flag = quoted_flag(reason);
    if flag.as_deref() == Some("check") {
        return (
            None,
            "the component binary does not support --check (it is older than this supervisor)"
                .into(),
        );
    }
    let key = flag.filter(|name| {
        flags
            .iter()
            .any(|f| f == &format!("--{name}") || f.starts_with(&format!("--{name}=")))
    });
    (key, format!("{reason}{tip}"))
}

/// The flag name in the first `'--name...'` quote of a clap message.
fn quoted_flag(message: &str) -> Option<String> {
    let start = message.find("'--")? + 3;
    let name: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}
