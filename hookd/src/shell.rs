//! Programs run per event: the event's fields as environment variables (`HOOK_KIND`,
//! `HOOK_KEY`, `HOOK_CONN_ID`, `HOOK_REMOTE`, and `HOOK_<FIELD>` for every field, names
//! upper-cased with non-alphanumerics as `_`), its JSON on stdin. At most `concurrency`
//! programs run at once; events waiting for a slot queue up to a bound. A program that
//! outlives the timeout is killed with its whole process group. Its stdout is discarded
//! (read and thrown away, so a flood costs no memory); its stderr goes to hookd's.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use proto::ipc::Event;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::queue::Queue;

/// Settings of the program runner.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// Programs running at once.
    pub concurrency: usize,
    /// A program still running after this is killed (its process group, SIGKILL).
    pub timeout: Duration,
}

/// One program run: the command line and the event.
#[derive(Debug)]
pub struct Job {
    /// Program, run through `sh -c` (so arguments and redirections work).
    pub command: String,
    /// The event.
    pub event: Arc<Event>,
    /// Its JSON.
    pub json: Arc<String>,
}

/// The environment variable name of field `name`.
pub fn env_name(name: &str) -> String {
    let mut out = String::from("HOOK_");
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out
}

/// Runs the queued jobs until the process ends.
pub async fn run(queue: Arc<Queue<Arc<Job>>>, opts: ShellOptions) {
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (ticket, job) = queue.front().await;
        queue.pop(ticket);
        let timeout = opts.timeout;
        tokio::spawn(async move {
            run_one(&job, timeout).await;
            drop(permit);
        });
    }
}

/// Runs one job to its end or its timeout and logs how it ended.
pub async fn run_one(job: &Job, timeout: Duration) {
    let e = &job.event;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&job.command)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (name, value) in &e.fields {
        cmd.env(env_name(name), value);
    }
    cmd.env("HOOK_KIND", &e.kind)
        .env("HOOK_KEY", &e.key)
        .env("HOOK_CONN_ID", e.conn_id.to_string())
        .env("HOOK_REMOTE", &e.remote);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(command = %job.command, kind = %e.kind, error = %err, "hook program did not start");
            return;
        }
    };
    let pid = child.id();
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let json = job.json.clone();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A program that does not read its stdin is fine.
            let _ = stdin.write_all(json.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        }
    };
    let drain = async move {
        if let Some(mut out) = stdout {
            let _ = tokio::io::copy(&mut out, &mut tokio::io::sink()).await;
        }
    };
    let started = std::time::Instant::now();
    let waited = tokio::time::timeout(timeout, async {
        let (_, _, status) = tokio::join!(feed, drain, child.wait());
        status
    })
    .await;
    match waited {
        Ok(Ok(status)) => {
            let ms = started.elapsed().as_millis() as u64;
            if status.success() {
                tracing::info!(command = %job.command, kind = %e.kind, key = %e.key, ms, "hook program exited 0");
            } else if let Some(sig) = status.signal() {
                tracing::warn!(command = %job.command, kind = %e.kind, key = %e.key, signal = sig, ms, "hook program killed by a signal");
            } else {
                tracing::warn!(command = %job.command, kind = %e.kind, key = %e.key, status = status.code().unwrap_or(-1), ms, "hook program failed");
            }
        }
        Ok(Err(err)) => {
            tracing::error!(command = %job.command, kind = %e.kind, error = %err, "waiting for the hook program")
        }
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // The whole group: a shell's children (sleep, curl) die with it.
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.wait().await;
            tracing::warn!(command = %job.command, kind = %e.kind, key = %e.key, timeout = ?timeout, "hook program timed out; process group killed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert_eq!(env_name("duration_ms"), "HOOK_DURATION_MS");
        assert_eq!(env_name("a-b.c"), "HOOK_A_B_C");
    }
}
