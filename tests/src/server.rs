//! The server under test: `hub` plus `ingest-rtmp`, on an ephemeral port and a private
//! socket directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use crate::bins::bin;
use crate::log::LineLog;
use crate::proc::Proc;

/// How long both processes together may take to report that they listen.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Extra flags for the two processes.
#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    /// Flags appended to `hub --socket <tmp>/hub.sock`.
    pub hub_args: Vec<String>,
    /// Flags appended to `ingest-rtmp --listen 127.0.0.1:0 --hub <tmp>/hub.sock`.
    pub ingest_args: Vec<String>,
}

impl ServerOpts {
    /// Adds hub flags.
    pub fn hub(mut self, args: &[&str]) -> Self {
        self.hub_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Adds ingest-rtmp flags.
    pub fn ingest(mut self, args: &[&str]) -> Self {
        self.ingest_args.extend(args.iter().map(|a| a.to_string()));
        self
    }
}

/// Which process a log assertion is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The `hub` process.
    Hub,
    /// The `ingest-rtmp` process.
    Ingest,
}

/// A running hub + ingest-rtmp pair. Dropping it kills both (ingest first) and removes the
/// private directory.
pub struct Server {
    ingest: Proc,
    hub: Proc,
    rtmp_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    socket: PathBuf,
    dir: tempfile::TempDir,
    /// None for a second server of a test that holds the lock through its first.
    _serial: Option<MutexGuard<'static, ()>>,
}

impl Server {
    /// Starts the hub, waits for `listening on unix:`, starts ingest-rtmp against it and
    /// waits for `listening on rtmp://IP:PORT`. Holds the [`crate::serial`] lock until dropped.
    pub fn start(opts: ServerOpts) -> Server {
        Server::start_with(opts, Some(crate::serial()))
    }

    /// [`Server::start`], then subscribes to the hub's events ([`crate::hub_events`]), so
    /// that every event of the test is in the returned log.
    pub fn start_with_events(opts: ServerOpts) -> (Server, std::sync::Arc<LineLog>) {
        let server = Server::start(opts);
        let events = crate::hub_events::subscribe(server.socket());
        (server, events)
    }

    /// Another server in a test that already runs one (a relay destination, an edge):
    /// does not take the [`crate::serial`] lock, which the first server holds.
    pub fn start_second(opts: ServerOpts) -> Server {
        Server::start_with(opts, None)
    }

    fn start_with(opts: ServerOpts, serial: Option<MutexGuard<'static, ()>>) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("mediaserver-e2e-")
            .tempdir()
            .expect("create temp dir");
        let socket = dir.path().join("run").join("hub.sock");
        let deadline = Instant::now() + READY_TIMEOUT;

        let mut hub_cmd = Command::new(bin("hub"));
        hub_cmd.arg("--socket").arg(&socket);
        // `--http` itself, not `--http-max-connections` and the like.
        let sets_http = (opts.hub_args.iter()).any(|a| a == "--http" || a.starts_with("--http="));
        if !sets_http {
            // Not the default :8080: tests run side by side.
            hub_cmd.args(["--http", "127.0.0.1:0"]);
        }
        hub_cmd.args(&opts.hub_args);
        quiet_env(&mut hub_cmd);
        let mut hub = Proc::spawn("hub", &mut hub_cmd);
        if hub
            .stderr
            .wait_for(0, deadline, |l| l.contains("listening on unix:"))
            .is_none()
        {
            hub.kill();
            panic!(
                "hub did not log `listening on unix:` (it exited, or {READY_TIMEOUT:?} passed)\n{}",
                hub.describe()
            );
        }

        // Logged before the hub socket's line, when on.
        let http_addr = hub
            .stderr
            .wait_for(0, Instant::now(), |l| l.contains("listening on http://"))
            .and_then(|l| parse_addr(&l, "listening on http://"));

        let mut ingest_cmd = Command::new(bin("ingest-rtmp"));
        ingest_cmd
            .args(["--listen", "127.0.0.1:0", "--hub"])
            .arg(&socket)
            .args(&opts.ingest_args);
        quiet_env(&mut ingest_cmd);
        let mut ingest = Proc::spawn("ingest-rtmp", &mut ingest_cmd);
        let line = ingest
            .stderr
            .wait_for(0, deadline, |l| l.contains("listening on rtmp://"));
        let rtmp_addr = line.as_deref().and_then(parse_rtmp_addr);
        let Some(rtmp_addr) = rtmp_addr else {
            ingest.kill();
            hub.kill();
            panic!(
                "ingest-rtmp did not log `listening on rtmp://IP:PORT` (it exited, or \
                 {READY_TIMEOUT:?} passed; line: {line:?})\n{}\n{}",
                ingest.describe(),
                hub.describe()
            );
        };
        Server {
            ingest,
            hub,
            rtmp_addr,
            http_addr,
            socket,
            dir,
            _serial: serial,
        }
    }

    /// The RTMP address ingest-rtmp bound.
    pub fn addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    /// The hub's HTTP address (`--http`; panics when the test turned it off).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr.unwrap_or_else(|| {
            panic!(
                "the hub logged no `listening on http://`\n{}",
                self.describe()
            )
        })
    }

    /// `http://IP:PORT` of the hub followed by `path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr())
    }

    /// Waits (up to 20 s) until the hub's API says `live/<name>` has a live publisher.
    pub fn wait_live(&self, name: &str) {
        let path = format!("/api/v1/streams/live/{name}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while crate::http::get(self.http_addr(), &path).json()["live"] != true {
            assert!(
                Instant::now() < deadline,
                "live/{name} never went live\n{}",
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `rtmp://IP:PORT/live/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("rtmp://{}/live/{name}", self.rtmp_addr)
    }

    /// The hub socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The test's private directory (for output files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The collected stderr of one process.
    pub fn log(&self, which: Which) -> &LineLog {
        match which {
            Which::Hub => &self.hub.stderr,
            Which::Ingest => &self.ingest.stderr,
        }
    }

    /// Marks the current end of both logs, for [`Server::wait_log`].
    pub fn log_marks(&self) -> (usize, usize) {
        (self.hub.stderr.len(), self.ingest.stderr.len())
    }

    /// Waits until a line after `marks` in either log satisfies `pred`.
    pub fn wait_log(
        &self,
        marks: (usize, usize),
        timeout: Duration,
        pred: impl Fn(&str) -> bool + Copy,
    ) -> Option<(Which, String)> {
        let deadline = Instant::now() + timeout;
        // Each process logs independently; alternate short waits so neither hides the other.
        loop {
            let step = (Instant::now() + Duration::from_millis(100)).min(deadline);
            let (hub_log, ingest_log) = (&self.hub.stderr, &self.ingest.stderr);
            // Block on a log that can still grow; a closed one answers at once.
            let (ingest_until, hub_until) = if ingest_log.is_closed() {
                (Instant::now(), step)
            } else {
                (step, Instant::now())
            };
            if let Some(l) = ingest_log.wait_for(marks.1, ingest_until, pred) {
                return Some((Which::Ingest, l));
            }
            if let Some(l) = hub_log.wait_for(marks.0, hub_until, pred) {
                return Some((Which::Hub, l));
            }
            if Instant::now() >= deadline || (ingest_log.is_closed() && hub_log.is_closed()) {
                return None;
            }
        }
    }

    /// Sends `signal` to ingest-rtmp (e.g. `SIGHUP` to reload).
    pub fn signal_ingest(&mut self, signal: i32) {
        self.ingest.signal(signal);
    }

    /// Waits until ingest-rtmp exits; its status, `None` if it still runs at `deadline`.
    pub fn wait_ingest_exit(&mut self, deadline: Instant) -> Option<std::process::ExitStatus> {
        self.ingest.wait_until(deadline)
    }

    /// Sends SIGHUP to ingest-rtmp and returns the first line after it that contains
    /// `expect` (panics after 10 s without one).
    pub fn hangup_ingest(&mut self, expect: &str) -> String {
        let mark = self.log_marks();
        self.signal_ingest(libc::SIGHUP);
        self.wait_log(mark, Duration::from_secs(10), |l| l.contains(expect))
            .unwrap_or_else(|| panic!("no `{expect}` after SIGHUP\n{}", self.describe()))
            .1
    }

    /// The hub's process id (for /proc samples).
    pub fn hub_pid(&self) -> u32 {
        self.hub.pid()
    }

    /// Panics unless both processes are still running.
    pub fn assert_alive(&mut self) {
        let hub_up = self.hub.is_running();
        let ingest_up = self.ingest.is_running();
        assert!(
            hub_up && ingest_up,
            "server process died (hub running: {hub_up}, ingest running: {ingest_up})\n{}",
            self.describe()
        );
    }

    /// Both logs, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "--- hub log:\n{}\n--- ingest-rtmp log:\n{}",
            self.hub.stderr.tail(60),
            self.ingest.stderr.tail(60)
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Each process prints its log tail itself when the test is failing.
        self.ingest.kill();
        self.hub.kill();
    }
}

fn quiet_env(cmd: &mut Command) {
    // Plain text logs at the default level whatever the developer's shell exports.
    cmd.env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "1");
}

/// Extracts `IP:PORT` from a line containing `listening on rtmp://IP:PORT`.
pub fn parse_rtmp_addr(line: &str) -> Option<SocketAddr> {
    parse_addr(line, "listening on rtmp://")
}

/// The `IP:PORT` right after `prefix` in a log line.
pub fn parse_addr(line: &str, prefix: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Whether a log line is a warn-level `tracing` line (text or JSON format).
pub fn is_warn(line: &str) -> bool {
    line.contains(" WARN ") || line.starts_with("WARN") || line.contains("\"level\":\"WARN\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_lines() {
        let line = "2026-11-22T13:05:00Z  INFO ingest_rtmp: listening on rtmp://127.0.0.1:40123";
        assert_eq!(
            parse_rtmp_addr(line),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        let line = r#"{"fields":{"message":"listening on rtmp://127.0.0.1:9"}}"#;
        assert_eq!(parse_rtmp_addr(line), Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(parse_rtmp_addr("listening on rtmp://nope"), None);
    }
}
