//! Starting one child: its output merged into ours with a `[name]` prefix, its readiness
//! and its exit reported as events, and its death tied to ours.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

/// Which run of which slot an event is about; events of earlier runs are stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunId {
    pub(crate) slot: usize,
    pub(crate) run: u64,
}

/// What the helper threads report to the supervising (main) thread.
#[derive(Debug)]
pub(crate) enum Event {
    /// The child logged its ready line.
    Ready(RunId),
    /// The child exited; it is not reaped yet, so its pid stays ours until the main
    /// thread waits on it.
    Exited(RunId),
    /// The supervisor received a signal (shutdown or reload).
    Signal(Signal),
}

/// Longest line passed through; longer ones are cut, so a child writing without newlines
/// cannot make us buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// Spawns `bin args` as a child in its own process group (so a terminal's Ctrl-C reaches
/// only the supervisor, which then stops children in order), killed by the kernel if the
/// spawning thread dies.
///
/// Must be called from the main thread: PR_SET_PDEATHSIG fires when the *thread* that
/// forked exits, so a short-lived thread would kill its children with it.
pub(crate) fn spawn(
    name: &'static str,
    bin: &Path,
    args: &[String],
    ready_line: Option<&'static str>,
    id: RunId,
    events: &SyncSender<Event>,
) -> io::Result<Child> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let parent = nix::unistd::getpid();
    // SAFETY: the hook runs in the forked child before exec, where only async-signal-safe
    // calls are allowed; pthread_sigmask, prctl and getppid are plain syscalls, the empty
    // set lives on the stack, and the error path builds an io::Error from a raw errno
    // without allocating. No locks are taken.
    unsafe {
        cmd.pre_exec(move || {
            // Our shutdown signals are blocked in every thread, and a blocked mask survives
            // exec: give the child the default (empty) mask so SIGTERM reaches it.
            SigSet::empty().thread_set_mask().map_err(io::Error::from)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // If we died between fork and prctl the signal was never armed: the child has
            // been re-parented already, so give up on the exec instead of running orphaned.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from(nix::errno::Errno::ESRCH));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    if let Some(out) = child.stdout.take() {
        forward(name, out, ready_line, id, events.clone());
    }
    if let Some(err) = child.stderr.take() {
        forward(name, err, ready_line, id, events.clone());
    }
    let events = events.clone();
    std::thread::Builder::new()
        .name(format!("wait-{name}"))
        .spawn(move || {
            // WNOWAIT leaves the child unreaped: the main thread reaps it after handling
            // this event, so until then its pid cannot be reused and signals stay safe.
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            while let Err(nix::errno::Errno::EINTR) = waitid(Id::Pid(pid), flags) {}
            let _ = events.send(Event::Exited(id));
        })?;
    Ok(child)
}

/// How many log forwarders are still copying a child's output. They are detached
/// threads, so without this count the supervisor could exit before a component's last
/// lines (written just before it exited) were copied.
struct Forwarders {
    live: Mutex<usize>,
    changed: Condvar,
}

static FORWARDERS: Forwarders = Forwarders {
    live: Mutex::new(0),
    changed: Condvar::new(),
};

impl Forwarders {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, n: isize) {
        let mut live = self.lock();
        *live = live.saturating_add_signed(n);
        self.changed.notify_all();
    }
}

/// Counts one forwarder out when its thread ends, however it ends.
struct ForwarderDone;

impl Drop for ForwarderDone {
    fn drop(&mut self) {
        FORWARDERS.add(-1);
    }
}

/// Waits until every child's output has been copied to its end (a pipe ends once the
/// child and whatever it started have exited), for at most `timeout`. Returns whether
/// all of it was.
pub(crate) fn drain_output(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut live = FORWARDERS.lock();
    while *live > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        live = FORWARDERS
            .changed
            .wait_timeout(live, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    true
}

/// Copies `pipe` to our stderr line by line as `[name] line`, reporting the first line
/// containing `ready_line`.
fn forward(
    name: &'static str,
    pipe: impl Read + Send + 'static,
    ready_line: Option<&'static str>,
    id: RunId,
    events: SyncSender<Event>,
) {
    FORWARDERS.add(1);
    let spawned = std::thread::Builder::new()
        .name(format!("log-{name}"))
        .spawn(move || {
            let _done = ForwarderDone;
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            let mut ready_sent = false;
            while read_line(&mut reader, &mut line) {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                // One write per line keeps lines of different children whole.
                let _ = io::stderr().write_all(format!("[{name}] {text}\n").as_bytes());
                if !ready_sent && ready_line.is_some_and(|marker| text.contains(marker)) {
                    ready_sent = true;
                    let _ = events.send(Event::Ready(id));
                }
            }
        });
    if let Err(e) = spawned {
        FORWARDERS.add(-1);
        tracing::error!(component = name, "cannot start log forwarder: {e}");
    }
}

/// Reads one line (at most [`MAX_LINE`] bytes) into `line`; false at end of input.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> bool {
    line.clear();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return !line.is_empty(),
        };
        if buf.is_empty() {
            return !line.is_empty();
        }
        let room = MAX_LINE - line.len();
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i < room => (i + 1, true),
            _ => (buf.len().min(room), buf.len() >= room),
        };
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_output_was_copied_to_the_last_line() {
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        let id = RunId { slot: 0, run: 1 };
        // The ready marker is the child's last line: its event proves that line was read.
        let script = "i=0; while [ $i -lt 50 ]; do echo \"line $i\"; i=$((i+1)); done";
        let mut child = spawn(
            "lines",
            Path::new("/bin/sh"),
            &["-c".to_owned(), script.to_owned()],
            Some("line 49"),
            id,
            &tx,
        )
        .expect("spawn sh");
        child.wait().expect("wait");
        assert!(drain_output(Duration::from_secs(60)), "output drained");
        let events: Vec<Event> = rx.try_iter().collect();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Ready(r) if *r == id)),
            "the last line was copied before drain_output returned: {events:?}"
        );
    }
}
