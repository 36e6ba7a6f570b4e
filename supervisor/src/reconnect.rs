//! Reconnect requests through the supervisor: SIGUSR1 asks the hub (over a `Control`
//! connection) to send every RTMP client that announced the E-RTMP Reconnect capability a
//! `NetConnection.Connect.ReconnectRequest`, or only the clients of the stream keys
//! queued in the runtime directory's request file. `supervisor reconnect [KEY...]` queues
//! the keys and signals the running supervisor.
//!
//! ```text
//!  supervisor reconnect live/cam --append "live/cam"--> DIR/reconnect.request
//!                                \--SIGUSR1 (pid from DIR/supervisor.lock)--> supervisor
//!  supervisor: take the file (rename, read, remove) --Control Reconnect--> hub --> clients
//! ```

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::runtime_dir::LOCK_FILE;

/// The request file in the runtime directory: one stream key per line, `*` for every
/// client. Absent: SIGUSR1 asks every client.
pub const REQUEST_FILE: &str = "reconnect.request";

/// The line that asks every client.
const ALL: &str = "*";

/// Why a request could not be queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// No supervisor holds the runtime directory's lock.
    #[error("no supervisor runs with runtime directory {0} (start it, or pass its --runtime-dir)")]
    NotRunning(PathBuf),
    /// A key that cannot be a stream key.
    #[error("{0:?} is not a stream key (APP/NAME)")]
    BadKey(String),
    /// Reading the lock, writing the request or signalling failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: io::Error,
    },
}

/// Queues a request for the clients of `keys` (every client when empty) with the
/// supervisor running on runtime directory `dir`, and sends it SIGUSR1. Returns its pid.
pub fn queue(dir: &Path, keys: &[String]) -> Result<i32, QueueError> {
    if let Some(bad) = keys.iter().find(|k| !plausible_key(k)) {
        return Err(QueueError::BadKey(bad.clone()));
    }
    let io = |what: String| move |source| QueueError::Io { what, source };
    let lock_path = dir.join(LOCK_FILE);
    let file = fs::File::open(&lock_path).map_err(|_| QueueError::NotRunning(dir.into()))?;
    // A lock we can take is a lock nobody holds: no supervisor runs there.
    if Flock::lock(file, FlockArg::LockSharedNonblock).is_ok() {
        return Err(QueueError::NotRunning(dir.into()));
    }
    let pid: i32 = fs::read_to_string(&lock_path)
        .map_err(io(format!("reading {}", lock_path.display())))?
        .trim()
        .parse()
        .map_err(|_| QueueError::NotRunning(dir.into()))?;
    let lines: Vec<&str> = if keys.is_empty() {
        vec![ALL]
    } else {
        keys.iter().map(String::as_str).collect()
    };
    let path = dir.join(REQUEST_FILE);
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(format!("writing {}", path.display())))?;
    // One write: requests queued at once by two callers do not interleave.
    f.write_all(format!("{}\n", lines.join("\n")).as_bytes())
        .map_err(io(format!("writing {}", path.display())))?;
    kill(Pid::from_raw(pid), Signal::SIGUSR1)
        .map_err(|e| io(format!("signalling supervisor pid {pid}"))(e.into()))?;
    Ok(pid)
}

/// What SIGUSR1 asks for: the keys queued in `dir`'s request file (`None`: every
/// client), taken out of it; every client when nothing is queued.
pub fn take(dir: &Path) -> Vec<Option<String>> {
    let path = dir.join(REQUEST_FILE);
    let taking = dir.join(format!("{REQUEST_FILE}.taking"));
    // Renamed first: a request queued while this one is read lands in a new file, and
    // its own SIGUSR1 takes it.
    let text = match fs::rename(&path, &taking) {
        Ok(()) => {
            let text = fs::read_to_string(&taking).unwrap_or_default();
            let _ = fs::remove_file(&taking);
            text
        }
        Err(_) => String::new(),
    };
    let mut targets: Vec<Option<String>> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let target = (line != ALL).then(|| line.to_owned());
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    if targets.is_empty() || targets.contains(&None) {
        return vec![None];
    }
    targets
}

/// Sends each request to the hub at `hub` from a thread of its own (the supervising loop
/// never waits on the hub), logging the hub's answer.
pub fn send(hub: PathBuf, targets: Vec<Option<String>>) {
    let run = move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return tracing::error!("SIGUSR1: cannot ask the hub: {e}"),
        };
        for key in targets {
            let what = key.as_deref().unwrap_or("every RTMP client");
            let answer = rt.block_on(telemetry::control::request_reconnect(
                &hub,
                "supervisor",
                key.as_deref(),
                None,
            ));
            match answer {
                Ok(a) => tracing::info!(
                    "SIGUSR1: reconnect requested for {what}: {}",
                    telemetry::control::summary(&a)
                ),
                Err(e) => tracing::error!("SIGUSR1: reconnect request for {what} failed: {e}"),
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("reconnect".into())
        .spawn(run)
    {
        tracing::error!("SIGUSR1: cannot start the request thread: {e}");
    }
}

/// `APP/NAME` without spaces or control characters; the hub checks the rest.
fn plausible_key(k: &str) -> bool {
    k.split_once('/')
        .is_some_and(|(a, n)| !a.is_empty() && !n.is_empty())
        && !k.chars().any(|c| c.is_whitespace() || c.is_control())
        && k.len() <= 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(take(dir.path()), vec![None], "nothing queued: every client");
        fs::write(dir.path().join(REQUEST_FILE), "live/a\n\nlive/b\nlive/a\n").unwrap();
        assert_eq!(
            take(dir.path()),
            vec![Some("live/a".to_owned()), Some("live/b".to_owned())]
        );
        assert!(!dir.path().join(REQUEST_FILE).exists());
        fs::write(dir.path().join(REQUEST_FILE), "live/a\n*\n").unwrap();
        assert_eq!(take(dir.path()), vec![None], "`*` covers the keys");
    }

    #[test]
    fn queueing_needs_a_running_supervisor_and_real_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            queue(dir.path(), &[]),
            Err(QueueError::NotRunning(_))
        ));
        assert!(matches!(
            queue(dir.path(), &["nokey".into()]),
            Err(QueueError::BadKey(_))
        ));
        assert!(plausible_key("live/cam"));
        assert!(!plausible_key("live/ cam"));
    }
}
