//! A child process in its own process group whose output is collected line by line, with a
//! bounded lifetime, killed (group included) and reaped on drop.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::log::LineLog;

/// A running child process.
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    /// Lines the child wrote to stdout.
    pub stdout: Arc<LineLog>,
    /// Lines the child wrote to stderr.
    pub stderr: Arc<LineLog>,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    /// Spawns `cmd` with stdin closed and stdout/stderr captured, as the leader of a new
    /// process group. Panics with the program name if it cannot be started.
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        Proc::spawn_with_stdin(name, cmd, Stdio::null())
    }

    /// [`Proc::spawn`] with `stdin` as the child's standard input (e.g. a pipe the test
    /// writes to).
    pub fn spawn_with_stdin(name: &str, cmd: &mut Command, stdin: Stdio) -> Proc {
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", cmd.get_program()));
        let (stdout, out_thread) = LineLog::spawn_reader(child.stdout.take().expect("piped"));
        let (stderr, err_thread) = LineLog::spawn_reader(child.stderr.take().expect("piped"));
        Proc {
            name: name.to_string(),
            child,
            status: None,
            stdout,
            stderr,
            readers: vec![out_thread, err_thread],
        }
    }

    /// The name given at spawn, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.status = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// The exit status, once the process has been reaped.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Waits for the process to exit on its own until `deadline`. Returns its status, or
    /// `None` if it is still running at the deadline (it is left running).
    pub fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        if let Some(status) = self.status {
            return Some(status);
        }
        // The pipes close when the process exits; a grandchild holding them keeps them open,
        // so the final word is try_wait either way.
        self.stdout.wait_closed(deadline);
        self.stderr.wait_closed(deadline);
        // Pipes close a moment before the exit status can be collected: poll that moment
        // out, still bounded by the deadline.
        while self.is_running() {
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.join_readers();
        self.status
    }

    /// Waits until `deadline`, then kills the process group if it is still running.
    /// Returns the exit status and whether the deadline killed it.
    pub fn wait_or_kill(&mut self, deadline: Instant) -> (ExitStatus, bool) {
        if let Some(status) = self.wait_until(deadline) {
            return (status, false);
        }
        self.kill();
        (self.status.expect("reaped by kill"), true)
    }

    /// Sends `signal` to the process group (e.g. SIGINT for a clean stop).
    pub fn signal(&mut self, signal: i32) {
        if self.is_running() {
            // SAFETY: killpg takes plain integers; the group id is our unreaped child's pid,
            // so it cannot have been reused.
            unsafe {
                libc::killpg(self.child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Kills the whole process group and reaps the child.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.status = Some(status);
            }
        }
        self.join_readers();
    }

    fn join_readers(&mut self) {
        // Readers end at EOF, which a killed group guarantees; a surviving grandchild could
        // hold a pipe open, so only join readers whose pipe is already closed.
        let (out_closed, err_closed) = (self.stdout.is_closed(), self.stderr.is_closed());
        if out_closed && err_closed {
            for handle in self.readers.drain(..) {
                let _ = handle.join();
            }
        }
    }

    /// Stdout and stderr tails, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "--- {} (pid {}, status {:?}) stderr:\n{}\n--- stdout tail:\n{}",
            self.name,
            self.child.id(),
            self.status,
            self.stderr.tail(40),
            self.stdout.tail(5)
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Reaped first, so the tail says whether it exited (and how) or still runs.
            let _ = self.is_running();
            eprintln!("{}", self.describe());
        }
        // Killing the group before reaping the leader: its pid (the group id) stays reserved
        // until it is reaped, so the signal cannot reach an unrelated process.
        self.kill();
    }
}
