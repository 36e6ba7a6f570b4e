//! The whole server under the real `supervisor`: a profile written to a private directory,
//! ingest-rtmp on a fixed loopback port (so it comes back on the same address after a
//! restart), and helpers to find and kill the children.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use crate::bins::{bin, bin_dir};
use crate::proc::Proc;

/// A running supervisor and what it runs.
pub struct Supervised {
    /// The supervisor process; its stderr holds its own lines and every child's, each
    /// prefixed with `[component] `.
    pub sup: Proc,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    _serial: Option<MutexGuard<'static, ()>>,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// The hub's HTTP listener on a free loopback port (the logs say which) instead of the
/// default :8080, unless the profile sets `http` itself, so that tests can run side by side.
fn private_http(profile: String) -> String {
    if profile.contains("\nhttp = ") {
        return profile;
    }
    profile.replacen("[hub]\n", "[hub]\nhttp = \"127.0.0.1:0\"\n", 1)
}

impl Supervised {
    /// Starts `supervisor` with a profile holding `[supervisor]` settings for quick
    /// restarts, `[hub]`, `[ingest-rtmp]` on a free port, and `extra` (more sections, or
    /// more keys of the last one); waits until ingest-rtmp is ready.
    pub fn start(extra: &str) -> Supervised {
        Supervised::start_profile(|addr| {
            format!(
                "[supervisor]\nrestart_backoff_min = \"100ms\"\nrestart_backoff_max = \"1s\"\n\
                 shutdown_timeout = \"5s\"\n\n[hub]\n\n[ingest-rtmp]\nlisten = \"{addr}\"\n{extra}\n"
            )
        })
    }

    /// Starts `supervisor` with the profile `profile(addr)` returns, where `addr` is the
    /// free loopback address ingest-rtmp must listen on; waits until ingest-rtmp is ready.
    pub fn start_profile(profile: impl FnOnce(SocketAddr) -> String) -> Supervised {
        let serial = crate::serial();
        Supervised::start_at(free_port(), Some(serial), profile)
    }

    /// A second supervisor beside `first`, whose ingest-rtmp listens on the same address
    /// (both need `reuse-port`): a new instance taking over from an old one. It does not
    /// take the [`crate::serial`] lock, which `first` holds.
    pub fn start_beside(
        first: &Supervised,
        profile: impl FnOnce(SocketAddr) -> String,
    ) -> Supervised {
        Supervised::start_at(first.addr, None, profile)
    }

    fn start_at(
        addr: SocketAddr,
        serial: Option<MutexGuard<'static, ()>>,
        profile: impl FnOnce(SocketAddr) -> String,
    ) -> Supervised {
        let dir = tempfile::Builder::new()
            .prefix("mediaserver-sup-")
            .tempdir()
            .expect("temp dir");
        let profile = private_http(profile(addr));
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, profile).expect("write profile");
        let run = dir.path().join("run");
        let mut cmd = Command::new(bin("supervisor"));
        cmd.arg("--bin-dir")
            .arg(bin_dir())
            .arg("--runtime-dir")
            .arg(&run)
            .arg("--profile")
            .arg(&path)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        let sup = Proc::spawn("supervisor", &mut cmd);
        let s = Supervised {
            sup,
            addr,
            dir,
            _serial: serial,
        };
        s.wait_line(0, Duration::from_secs(30), |l| {
            l.contains("ingest-rtmp is ready")
        })
        .unwrap_or_else(|| panic!("ingest-rtmp never ready\n{}", s.sup.describe()));
        s
    }

    /// The RTMP address ingest-rtmp listens on (the same after restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `rtmp://ADDR/live/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("rtmp://{}/live/{name}", self.addr)
    }

    /// The private directory (profile, runtime dir, anything a test puts there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside [`Supervised::dir`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// How many lines the supervisor has logged so far, for [`Supervised::wait_line`].
    pub fn mark(&self) -> usize {
        self.sup.stderr.len()
    }

    /// The first line from index `from` on that satisfies `pred`, waiting up to `timeout`.
    pub fn wait_line(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.sup
            .stderr
            .wait_for(from, Instant::now() + timeout, pred)
    }

    /// The pid of run `run` (1 = first start) of `component`, from the supervisor's
    /// `started NAME (pid P, run R)` line.
    pub fn child_pid(&self, component: &str, run: u32) -> i32 {
        let marker = format!("started {component} (pid ");
        let run_tag = format!(", run {run})");
        let line = self
            .wait_line(0, Duration::from_secs(30), |l| {
                l.contains(&marker) && l.contains(&run_tag)
            })
            .unwrap_or_else(|| panic!("{component} run {run} never started\n{}", self.describe()));
        let rest = &line[line.find(&marker).expect("marker") + marker.len()..];
        rest.split(',')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {line:?}"))
    }

    /// The hub's HTTP address from its latest `listening on http://` line (a restarted hub
    /// picks a new free port).
    pub fn http_addr(&self) -> SocketAddr {
        self.wait_line(0, Duration::from_secs(30), |l| {
            l.contains("listening on http://")
        })
        .and_then(|_| {
            let lines = self.sup.stderr.lines();
            let line = lines
                .iter()
                .rev()
                .find(|l| l.contains("listening on http://"))?;
            crate::server::parse_addr(line, "listening on http://")
        })
        .unwrap_or_else(|| panic!("the hub logged no HTTP address\n{}", self.describe()))
    }

    /// Sends SIGKILL to `pid`.
    pub fn kill9(pid: i32) {
        Supervised::send(pid, libc::SIGKILL);
    }

    /// Sends `signal` to the one process `pid` (not its group).
    pub fn send(pid: i32, signal: i32) {
        // SAFETY: kill(2) has no memory effects; the pid is a process this test started.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill -{signal} {pid}: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Sends `signal` to the supervisor process alone (its children are in their own
    /// process groups anyway).
    pub fn signal_supervisor(&self, signal: i32) {
        Supervised::send(self.sup.pid() as i32, signal);
    }

    /// The supervisor's log tail, for failure messages.
    pub fn describe(&self) -> String {
        self.sup.describe()
    }
}
