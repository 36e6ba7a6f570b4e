//! Profiles: which components to run with which flags, plus the supervisor's own settings.
//!
//! ```toml
//! [supervisor]            # optional: the supervisor's own settings
//! shutdown_timeout = "5s"
//!
//! [hub]                   # an empty section runs the hub with its defaults
//!
//! [ingest-rtmp]           # exactly ingest-rtmp's flags, written as TOML
//! listen = "0.0.0.0:1935"
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::component::{self, Component};
use crate::flags::{self, FlagError};

/// The profile `supervisor` runs when given none.
pub const DEFAULT_PROFILE: &str = include_str!("../../profiles/default.toml");

/// The name of the section holding the supervisor's own settings.
pub const SUPERVISOR_SECTION: &str = "supervisor";

/// A parsed, validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The supervisor's own settings.
    pub settings: Settings,
    /// The components to run, in start order.
    pub sections: Vec<Section>,
}

/// One component section: the component and the flags its keys map to.
#[derive(Debug, Clone)]
pub struct Section {
    /// The component the section names.
    pub component: &'static Component,
    /// The flags written by the profile (without the ones the supervisor adds).
    pub flags: Vec<String>,
}

/// The `[supervisor]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Private directory for the sockets; `None` means
    /// `runtime::dir::default_dir()`.
    pub runtime_dir: Option<PathBuf>,
    /// Where the component binaries are; `None` means the supervisor executable's directory.
    pub bin_dir: Option<PathBuf>,
    /// First restart delay after a crash.
    pub restart_backoff_min: Duration,
    /// Upper bound of the doubling restart delay.
    pub restart_backoff_max: Duration,
    /// A child that ran this long before exiting starts over at the minimum delay.
    pub restart_backoff_reset: Duration,
    /// Consecutive exits without ever becoming ready after which a component is given up.
    pub max_start_failures: u32,
    /// How long a component with a ready line may take to log it before it is killed
    /// (and the attempt counts as a start failure).
    pub ready_timeout: Duration,
    /// How long each shutdown phase waits for SIGTERM to work before SIGKILL.
    pub shutdown_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            runtime_dir: None,
            bin_dir: None,
            restart_backoff_min: Duration::from_millis(100),
            restart_backoff_max: Duration::from_secs(10),
            restart_backoff_reset: Duration::from_secs(60),
            max_start_failures: 5,
            ready_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Where in a profile a problem is: a section, and the key inside it if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Section name.
    pub section: String,
    /// Key inside the section.
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "[{}] {key}", self.section),
            None => write!(f, "[{}]", self.section),
        }
    }
}

/// One reason a profile is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file is not valid TOML.
    #[error("not valid TOML: {message}")]
    Syntax {
        /// The parser's message (with line and column).
        message: String,
    },
    /// A top-level key is not a `[section]`.
    #[error("[{name}]: expected a section (a TOML table), got a plain value")]
    NotASection {
        /// The key.
        name: String,
    },
    /// A section names no known component.
    #[error("[{name}]: unknown section; known: supervisor, {known}")]
    UnknownSection {
        /// The section name.
        name: String,
        /// The known component names.
        known: String,
    },
    /// The profile runs nothing.
    #[error("the profile has no component section (e.g. [hub])")]
    NoComponents,
    /// A key of `[supervisor]` is unknown.
    #[error("[supervisor] {key}: unknown setting; known: {known}")]
    UnknownSetting {
        /// The key.
        key: String,
        /// The known settings.
        known: &'static str,
    },
    /// A key of `[supervisor]` has a bad value.
    #[error("[supervisor] {key}: {reason}")]
    InvalidSetting {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A component key cannot be mapped to a flag.
    #[error("[{section}] {key}: {error}")]
    Flag {
        /// The section.
        section: String,
        /// The key.
        key: String,
        /// Why.
        error: FlagError,
    },
    /// A component key is a flag the supervisor sets itself.
    #[error("[{section}] {key}: set by the supervisor (the hub socket in the runtime directory)")]
    Reserved {
        /// The section.
        section: String,
        /// The key.
        key: String,
    },
}

impl ProfileError {
    /// The section and key the error is about, when it is about one.
    pub fn location(&self) -> Option<Location> {
        let at = |s: &str, k: Option<&str>| {
            Some(Location {
                section: s.to_string(),
                key: k.map(str::to_string),
            })
        };
        match self {
            ProfileError::Syntax { .. } | ProfileError::NoComponents => None,
            ProfileError::NotASection { name } | ProfileError::UnknownSection { name, .. } => {
                at(name, None)
            }
            ProfileError::UnknownSetting { key, .. } | ProfileError::InvalidSetting { key, .. } => {
                at(SUPERVISOR_SECTION, Some(key))
            }
            ProfileError::Flag { section, key, .. } | ProfileError::Reserved { section, key } => {
                at(section, Some(key))
            }
        }
    }
}

const SETTING_NAMES: &str = "runtime_dir, bin_dir, restart_backoff_min, restart_backoff_max, \
                             restart_backoff_reset, max_start_failures, ready_timeout, \
                             shutdown_timeout";

/// Parses and validates a profile, returning every problem found.
pub fn parse(text: &str) -> Result<Profile, Vec<ProfileError>> {
    match parse_partial(text) {
        (Some(profile), errors) if errors.is_empty() => Ok(profile),
        (_, errors) => Err(errors),
    }
}

/// Parses a profile as far as it goes: every problem found, and the profile made of what
/// is valid (bad sections and keys left out; `None` when the text is not TOML), so that
/// `check` can go on to validate the valid parts with the components themselves.
pub fn parse_partial(text: &str) -> (Option<Profile>, Vec<ProfileError>) {
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            let e: toml::de::Error = e;
            let message = e.to_string().trim().replace('\n', " ");
            return (None, vec![ProfileError::Syntax { message }]);
        }
    };
    let mut errors = Vec::new();
    let mut settings = Settings::default();
    let mut sections = Vec::new();
    let runs_hub = table.contains_key("hub");
    for (name, value) in &table {
        let Some(body) = value.as_table() else {
            errors.push(ProfileError::NotASection { name: name.clone() });
            continue;
        };
        if name == SUPERVISOR_SECTION {
            parse_settings(body, &mut settings, &mut errors);
            continue;
        }
        let Some(component) = component::find(name) else {
            let known: Vec<&str> = component::COMPONENTS.iter().map(|c| c.name).collect();
            errors.push(ProfileError::UnknownSection {
                name: name.clone(),
                known: known.join(", "),
            });
            continue;
        };
        sections.push(parse_section(component, body, runs_hub, &mut errors));
    }
    if errors.is_empty() && sections.is_empty() {
        errors.push(ProfileError::NoComponents);
    }
    sections.sort_by_key(|s| component::start_rank(s.component));
    (Some(Profile { settings, sections }), errors)
}

fn parse_section(
    component: &'static Component,
    body: &toml::Table,
    runs_hub: bool,
    errors: &mut Vec<ProfileError>,
) -> Section {
    let mut flags = Vec::new();
    for (key, value) in body {
        // Without [hub] the profile attaches to a hub run elsewhere, so `hub` is the
        // user's to set; `check` is how the supervisor validates, never a setting.
        let reserved = key == "check" || (runs_hub && key == component.socket_flag);
        if reserved {
            errors.push(ProfileError::Reserved {
                section: component.name.to_string(),
                key: key.clone(),
            });
            continue;
        }
        // A key whose value fails leaves no partial flags behind (an array's good items).
        let mut key_flags = Vec::new();
        match flags::key_flags(key, value, &mut key_flags) {
            Ok(()) => flags.append(&mut key_flags),
            Err(error) => {
                errors.push(ProfileError::Flag {
                    section: component.name.to_string(),
                    key: key.clone(),
                    error,
                });
            }
        }
    }
    Section { component, flags }
}

fn parse_settings(body: &toml::Table, settings: &mut Settings, errors: &mut Vec<ProfileError>) {
    for (key, value) in body {
        let result = match key.as_str() {
            "runtime_dir" => path(value).map(|p| settings.runtime_dir = Some(p)),
            "bin_dir" => path(value).map(|p| settings.bin_dir = Some(p)),
            "restart_backoff_min" => duration(value).map(|d| settings.restart_backoff_min = d),
            "restart_backoff_max" => duration(value).map(|d| settings.restart_backoff_max = d),
            "restart_backoff_reset" => duration(value).map(|d| settings.restart_backoff_reset = d),
            "ready_timeout" => duration(value).map(|d| settings.ready_timeout = d),
            "shutdown_timeout" => duration(value).map(|d| settings.shutdown_timeout = d),
            "max_start_failures" => match value.as_integer() {
                Some(n) if (1..=1000).contains(&n) => {
                    settings.max_start_failures = n as u32;
                    Ok(())
                }
                _ => Err("expected an integer from 1 to 1000".to_string()),
            },
            _ => {
                errors.push(ProfileError::UnknownSetting {
                    key: key.clone(),
                    known: SETTING_NAMES,
                });
                continue;
            }
        };
        if let Err(reason) = result {
            errors.push(ProfileError::InvalidSetting {
                key: key.clone(),
                reason,
            });
        }
    }
    if settings.restart_backoff_min.is_zero() {
        errors.push(ProfileError::InvalidSetting {
            key: "restart_backoff_min".into(),
            reason: "must be more than 0 (a crashing component would be restarted in a busy \
                     loop)"
                .into(),
        });
    }
    if settings.restart_backoff_min > settings.restart_backoff_max {
        errors.push(ProfileError::InvalidSetting {
            key: "restart_backoff_min".into(),
            reason: "is larger than restart_backoff_max".into(),
        });
    }
}

fn path(value: &toml::Value) -> Result<PathBuf, String> {
    match value.as_str() {
        Some(s) if !s.is_empty() => Ok(PathBuf::from(s)),
        _ => Err("expected a non-empty path string".into()),
    }
}

fn duration(value: &toml::Value) -> Result<Duration, String> {
    let text = value
        .as_str()
        .ok_or("expected a duration string such as \"500ms\" or \"10s\"")?;
    let d =
        humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    // Far beyond any sensible setting, and far enough to overflow the clock when added.
    if d > MAX_DURATION {
        return Err(format!("{text:?} is longer than the maximum of 1day"));
    }
    Ok(d)
}

/// Longest duration a setting accepts.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

impl Section {
    /// The full command line for this component: the profile's flags plus, when the
    /// profile runs the hub, the hub socket flag pointing into the runtime directory.
    pub fn args(&self, hub_socket: Option<&std::path::Path>) -> Vec<String> {
        let mut args = self.flags.clone();
        if let Some(socket) = hub_socket {
            args.push(format!(
                "--{}={}",
                self.component.socket_flag,
                socket.display()
            ));
        }
        args
    }
}

/// A rules file the supervisor writes for a component (see
/// [`Component::rules_keys`](crate::component::Component::rules_keys)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesFile {
    /// Where: `RUNTIME_DIR/COMPONENT.rules.toml`.
    pub path: std::path::PathBuf,
    /// Its TOML text.
    pub text: String,
}

impl Section {
    /// The command line the component runs with: [`Section::args`], except that the
    /// flags it reloads from a rules file are moved into one in `runtime_dir` (returned
    /// with its text, for the caller to write) and `--rules-file` points there. A section
    /// that sets `rules-file` itself keeps its flags as written.
    pub fn run_args(
        &self,
        hub_socket: Option<&std::path::Path>,
        runtime_dir: &std::path::Path,
    ) -> (Vec<String>, Option<RulesFile>) {
        let keys = self.component.rules_keys;
        if keys.is_empty() || self.flags.iter().any(|f| f.starts_with("--rules-file=")) {
            return (self.args(hub_socket), None);
        }
        let mut values: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
        let mut kept = Section {
            component: self.component,
            flags: Vec::new(),
        };
        for flag in &self.flags {
            let found = keys.iter().enumerate().find_map(|(i, k)| {
                flag.strip_prefix("--")
                    .and_then(|f| f.strip_prefix(k))
                    .and_then(|f| f.strip_prefix('='))
                    .map(|v| (i, v))
            });
            match found {
                Some((i, v)) => values[i].push(v.to_owned()),
                None => kept.flags.push(flag.clone()),
            }
        }
        let path = runtime_dir.join(format!("{}.rules.toml", self.component.name));
        kept.flags.push(format!("--rules-file={}", path.display()));
        let entries: Vec<(&str, &[String])> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| (*k, v.as_slice()))
            .collect();
        let text = runtime::rules_file::render(&entries);
        (kept.args(hub_socket), Some(RulesFile { path, text }))
    }
}

impl Profile {
    /// Whether the profile runs the hub (and so owns the hub socket).
    pub fn runs_hub(&self) -> bool {
        self.sections
            .iter()
            .any(|s| s.component.role == crate::component::Role::Hub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn reloadable_flags_move_to_a_rules_file() {
        let profile = parse(
            "[relayer]\npush = [\"live/*=rtmp://a/x/{name}\", \"b/*=rtmp://b/y/{name}\"]\n\
             queue-bytes = 100\n[hookd]\nwebhook = \"publish=http://h/x\"\nstdout = true\n\
             [recorder]\n",
        )
        .unwrap();
        let run = Path::new("/run/ms");
        let by = |name: &str| {
            profile
                .sections
                .iter()
                .find(|s| s.component.name == name)
                .unwrap()
        };
        let (args, rules) = by("relayer").run_args(Some(Path::new("/run/ms/hub.sock")), run);
        assert_eq!(
            args,
            [
                "--queue-bytes=100",
                "--rules-file=/run/ms/relayer.rules.toml",
                "--hub=/run/ms/hub.sock"
            ]
        );
        let rules = rules.unwrap();
        assert_eq!(
            runtime::rules_file::parse("f", &rules.text, &["push"]).unwrap(),
            [vec!["live/*=rtmp://a/x/{name}", "b/*=rtmp://b/y/{name}"]]
        );
        let (args, rules) = by("hookd").run_args(None, run);
        assert_eq!(args, ["--stdout", "--rules-file=/run/ms/hookd.rules.toml"]);
        assert_eq!(
            runtime::rules_file::parse("f", &rules.unwrap().text, &["webhook", "exec"]).unwrap(),
            [vec!["publish=http://h/x".to_owned()], vec![]]
        );
        // No rules to move: the recorder runs with its flags as written.
        assert_eq!(by("recorder").run_args(None, run), (Vec::new(), None));
        // A section with its own rules file keeps everything as written.
        let own = parse("[relayer]\nrules-file = \"/etc/r.toml\"\npush = [\"a/*=rtmp://h/a/b\"]\n")
            .unwrap();
        let (args, rules) = own.sections[0].run_args(None, run);
        assert_eq!(
            args,
            ["--push=a/*=rtmp://h/a/b", "--rules-file=/etc/r.toml"]
        );
        assert_eq!(rules, None);
    }
}
