//! The supervisor: reads a profile, starts the media server's processes in order, merges
//! their logs, restarts crashes with backoff and shuts everything down in order.
//!
//! ```text
//!  profile.toml --parse--> Profile { [supervisor] settings, sections -> flags }
//!                               |
//!   runtime dir (0700, locked)  v            main thread: the only one that forks
//!   hub.sock <----------- hub --socket DIR/hub.sock   (ready: "listening on unix:")
//!                          |   recorder/relayer/hookd --hub DIR/hub.sock
//!                          |   ingest-rtmp/ingest-srt --hub DIR/hub.sock
//!                          v
//!   per child: log threads ("[name] line" -> stderr, ready line -> event),
//!              waiter thread (exit -> event); signal thread (SIGINT/SIGTERM/SIGHUP/
//!              SIGUSR1 -> event); SIGUSR1: reconnect.rs asks the hub over hub.sock
//!                          |
//!                          v  bounded channel
//!   supervise loop: start due children, restart with backoff, stop in order
//! ```

#![warn(missing_docs, unreachable_pub)]

mod check;
mod child;
mod component;
mod flags;
mod policy;
mod profile;
pub mod reconnect;
mod runtime_dir;
mod signals;
mod supervise;

pub use check::{check_components, explain, Problem};
pub use component::{find as find_component, Component, Readiness, Role, COMPONENTS};
pub use flags::{key_flags, section_flags, FlagError};
pub use policy::{Decision, RestartPolicy, RestartState};
pub use profile::{
    parse as parse_profile, parse_partial as parse_profile_partial, Location, Profile,
    ProfileError, RulesFile, Section, Settings, DEFAULT_PROFILE, SUPERVISOR_SECTION,
};
pub use runtime_dir::{RuntimeDir, RuntimeDirError, LOCK_FILE};
pub use signals::block as block_signals;
pub use supervise::{
    run, run_reloading, run_reporting, run_with_metrics, OnUser1, Outcome, Planned, Reload,
};
