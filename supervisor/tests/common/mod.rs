//! Helpers for the supervisor's process tests: a fake component binary, profiles in a
//! temporary directory, and a supervisor process whose output is collected line by line
//! with bounded waits.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The fake component script, installed under each component name.
pub const FAKE: &str = include_str!("fake-component.sh");

/// A temporary directory with `bin/` (fake components) and `run/` (the runtime dir).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A sandbox whose `bin/` holds the fake script as `hub`, `ingest-rtmp`, `ingest-srt`
    /// and `recorder`.
    pub fn with_fakes() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir bin");
        for name in ["hub", "ingest-rtmp", "ingest-srt", "recorder"] {
            let path = bin.join(name);
            std::fs::write(&path, FAKE).expect("write fake");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("chmod fake");
        }
        Sandbox { dir }
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Writes a profile: a `[supervisor]` section pointing at this sandbox with quick test
    /// timings, followed by `body`.
    pub fn profile(&self, name: &str, body: &str) -> PathBuf {
        self.profile_with(name, "ready_timeout = \"5s\"\n", body)
    }

    /// Like [`Sandbox::profile`], with extra `[supervisor]` lines (which must include
    /// `ready_timeout`).
    pub fn profile_with(&self, name: &str, settings: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let text = format!(
            "[supervisor]\nruntime_dir = {:?}\nbin_dir = {:?}\nrestart_backoff_min = \"50ms\"\n\
             restart_backoff_max = \"400ms\"\nshutdown_timeout = \"2s\"\n{settings}\n{body}",
            self.runtime_dir(),
            self.bin_dir()
        );
        std::fs::write(&path, text).expect("write profile");
        path
    }
}

/// The supervisor binary under test.
pub fn supervisor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_supervisor"))
}

/// Runs `supervisor args` to completion with a bound; returns status, stdout and stderr.
pub fn run_to_end(args: &[&str]) -> (ExitStatus, String, String) {
    let mut sup = Sup::spawn(args);
    let status = sup
        .wait(Duration::from_secs(30))
        .expect("supervisor did not finish");
    let out = sup.stdout.lines().join("\n");
    let err = sup.stderr.lines().join("\n");
    (status, out, err)
}

/// Lines of one pipe, filled by a reader thread.
#[derive(Default)]
pub struct Lines {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    fn spawn(pipe: impl std::io::Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let writer = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                writer.state.lock().unwrap().0.push(line);
                writer.changed.notify_all();
            }
            writer.state.lock().unwrap().1 = true;
            writer.changed.notify_all();
        });
        lines
    }

    pub fn lines(&self) -> Vec<String> {
        self.state.lock().unwrap().0.clone()
    }

    /// Waits until a line at index >= `from` satisfies `pred`; returns its index and text.
    pub fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(i) = (from..state.0.len()).find(|&i| pred(&state.0[i])) {
                return Some((i, state.0[i].clone()));
            }
            let now = Instant::now();
            if state.1 || now >= deadline {
                return None;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Waits until the pipe closes.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        while !state.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
        true
    }
}

/// A running supervisor, SIGKILLed on drop (its children then die by PR_SET_PDEATHSIG).
pub struct Sup {
    pub child: Child,
    pub stdout: Arc<Lines>,
    pub stderr: Arc<Lines>,
}

impl Sup {
    pub fn spawn(args: &[&str]) -> Sup {
        Sup::spawn_env(args, &[])
    }

    /// Like [`Sup::spawn`], with extra environment variables.
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Sup {
        let mut child = Command::new(supervisor_bin())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start supervisor");
        let stdout = Lines::spawn(child.stdout.take().unwrap());
        let stderr = Lines::spawn(child.stderr.take().unwrap());
        Sup {
            child,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a stderr line containing `text`, panicking with the log if none comes.
    pub fn expect_line(&self, from: usize, text: &str) -> (usize, String) {
        self.stderr
            .wait_for(from, Duration::from_secs(20), |l| l.contains(text))
            .unwrap_or_else(|| panic!("no line containing {text:?}; log:\n{}", self.log()))
    }

    /// The pid in the supervisor's `started NAME (pid N, run R)` line for run `run`.
    pub fn child_pid(&self, name: &str, run: u32) -> i32 {
        let marker = format!("started {name} (pid ");
        let (_, line) = self
            .stderr
            .wait_for(0, Duration::from_secs(20), |l| {
                l.contains(&marker) && l.contains(&format!(", run {run})"))
            })
            .unwrap_or_else(|| panic!("{name} run {run} never started; log:\n{}", self.log()));
        let rest = &line[line.find(&marker).unwrap() + marker.len()..];
        rest.split(',').next().unwrap().parse().expect("pid")
    }

    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the supervisor to exit within `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        // Our copy of its stderr closes when it and every child holding it are gone.
        self.stderr.wait_closed(timeout);
        self.stdout.wait_closed(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log(&self) -> String {
        self.stderr.lines().join("\n")
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Polls until `pid` is gone or `timeout` passes; true if it is gone.
pub fn gone_within(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// The directory of the workspace's built binaries, as the `tests` crate finds it.
pub fn workspace_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEDIASERVER_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join(if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    })
}

/// Panics unless the real component binaries are built in `dir` with `--check` support
/// (`cargo build --workspace --bins`, which `scripts/test.sh` runs first).
pub fn require_real_components(dir: &Path) {
    for name in ["hub", "ingest-rtmp", "ingest-srt", "recorder"] {
        assert!(
            real_component(dir, name),
            "{name} is not built with --check in {}: run `cargo build --workspace --bins`",
            dir.display()
        );
    }
}

/// Whether the real `name` binary in `dir` is built and documents `--check`.
pub fn real_component(dir: &Path, name: &str) -> bool {
    let bin = dir.join(name);
    bin.is_file()
        && Command::new(&bin)
            .arg("--help")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("--check"))
}
