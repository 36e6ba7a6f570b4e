//! The supervisor running real processes (fake components, and the real hub and
//! ingest-rtmp when they are built): start order, merged logs, restarts, shutdown, and no
//! orphans when the supervisor itself is killed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{alive, gone_within, Sandbox, Sup};

const BOUND: Duration = Duration::from_secs(10);
const SIGKILL: i32 = 9;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn kill(pid: i32, signal: i32) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

fn start(sandbox: &Sandbox, body: &str) -> Sup {
    let file = sandbox.profile("p.toml", body);
    Sup::spawn(&["--profile", file.to_str().unwrap()])
}

const BASIC: &str = "[hub]\n[ingest-rtmp]\nlisten = \"127.0.0.1:0\"\n";

#[test]
fn hub_first_then_the_others_with_prefixed_merged_logs_then_orderly_stop() {
    let sandbox = Sandbox::with_fakes();
    let mut sup = start(&sandbox, BASIC);
    let socket = sandbox.runtime_dir().join("hub.sock");
    let (ready_at, _) = sup.expect_line(0, "hub is ready");
    let (listen_at, _) = sup.expect_line(
        0,
        &format!("[hub] INFO hub: listening on unix:{}", socket.display()),
    );
    assert!(listen_at < ready_at);
    let (ingest_at, _) = sup.expect_line(0, "started ingest-rtmp (pid");
    assert!(
        ingest_at > ready_at,
        "ingest started before the hub was ready:\n{}",
        sup.log()
    );
    sup.expect_line(
        0,
        &format!(
            "[ingest-rtmp] fake ingest-rtmp starting: --listen=127.0.0.1:0 --hub={}",
            socket.display()
        ),
    );
    sup.expect_line(0, "[hub] fake hub on stdout");
    sup.expect_line(0, "ingest-rtmp is ready");
    let mode = std::fs::metadata(sandbox.runtime_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    let pids = [sup.child_pid("hub", 1), sup.child_pid("ingest-rtmp", 1)];
    sup.signal(SIGTERM);
    let status = sup.wait(BOUND).expect("supervisor exits after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", sup.log());
    for pid in pids {
        assert!(!alive(pid), "child {pid} survived the shutdown");
    }
    let log = sup.log();
    let ingest_stop = log.find("ingest-rtmp stopped").expect("ingest stopped");
    let hub_stop = log.find("hub stopped").expect("hub stopped");
    assert!(ingest_stop < hub_stop, "hub stopped before ingest:\n{log}");
    assert!(!log.contains("did not stop within"), "{log}");
    assert!(log.contains("restarts: hub=0 ingest-rtmp=0"), "{log}");
}

#[test]
fn no_arguments_run_the_default_profile() {
    let sandbox = Sandbox::with_fakes();
    let sup = Sup::spawn(&[
        "--bin-dir",
        sandbox.bin_dir().to_str().unwrap(),
        "--runtime-dir",
        sandbox.runtime_dir().to_str().unwrap(),
    ]);
    sup.expect_line(0, "running built-in default profile");
    sup.expect_line(
        0,
        "[ingest-rtmp] fake ingest-rtmp starting: --listen=0.0.0.0:1935 --hub=",
    );
    sup.expect_line(0, "ingest-rtmp is ready");
    sup.expect_line(
        0,
        "[ingest-srt] fake ingest-srt starting: --listen=0.0.0.0:4200 --hub=",
    );
    sup.expect_line(0, "ingest-srt is ready");
}

#[test]
fn a_child_killed_with_sigkill_is_restarted_and_counted() {
    let sandbox = Sandbox::with_fakes();
    let mut sup = start(&sandbox, BASIC);
    let first = sup.child_pid("ingest-rtmp", 1);
    sup.expect_line(0, "ingest-rtmp is ready");
    kill(first, SIGKILL);
    sup.expect_line(0, "ingest-rtmp exited unexpectedly (signal: 9 (SIGKILL)");
    sup.expect_line(0, "restarting ingest-rtmp in 50 ms (restart 1,");
    let second = sup.child_pid("ingest-rtmp", 2);
    assert_ne!(first, second);
    let (at, _) = sup.expect_line(0, "started ingest-rtmp (pid");
    sup.expect_line(at + 1, "ingest-rtmp is ready");

    // The hub too; the running ingest is left alone.
    let hub = sup.child_pid("hub", 1);
    kill(hub, SIGKILL);
    sup.child_pid("hub", 2);
    sup.expect_line(0, "restarting hub in 50 ms (restart 1,");
    assert!(alive(second));
    sup.signal(SIGTERM);
    assert!(sup.wait(BOUND).expect("exits").success());
    assert!(
        sup.log().contains("restarts: hub=1 ingest-rtmp=1"),
        "{}",
        sup.log()
    );
}

#[test]
fn a_child_ignoring_sigterm_is_killed_after_the_shutdown_timeout() {
    let sandbox = Sandbox::with_fakes();
    let mut sup = start(
        &sandbox,
        "[hub]\n[ingest-rtmp]\nlisten = \"127.0.0.1:0\"\nignore-term = true\n",
    );
    sup.expect_line(0, "ingest-rtmp is ready");
    let pids = [sup.child_pid("hub", 1), sup.child_pid("ingest-rtmp", 1)];
    let started = Instant::now();
    sup.signal(SIGTERM);
    sup.expect_line(0, "ingest-rtmp did not stop within 2s; killing it");
    let status = sup.wait(BOUND).expect("exits");
    assert!(status.success());
    // The kill came only after ingest's 2 s shutdown timeout (the exit itself is bounded
    // by the wait above).
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "killed after {:?}, before the shutdown timeout",
        started.elapsed()
    );
    for pid in pids {
        assert!(
            gone_within(pid, Duration::from_secs(1)),
            "child {pid} left running"
        );
    }
    assert!(sup.log().contains("hub stopped"));
}

#[test]
fn a_second_signal_kills_everything_at_once() {
    let sandbox = Sandbox::with_fakes();
    let mut sup = start(
        &sandbox,
        "[hub]\nignore-term = true\n[ingest-rtmp]\nlisten = \"127.0.0.1:0\"\nignore-term = true\n",
    );
    sup.expect_line(0, "ingest-rtmp is ready");
    let pids = [sup.child_pid("hub", 1), sup.child_pid("ingest-rtmp", 1)];
    sup.signal(SIGINT);
    sup.expect_line(0, "stopping ingest-rtmp (SIGTERM)");
    sup.signal(SIGINT);
    sup.expect_line(0, "again: killing every child now");
    assert!(sup.wait(BOUND).expect("exits").success());
    for pid in pids {
        assert!(!alive(pid), "child {pid} left running");
    }
    assert!(!sup.log().contains("did not stop within"), "{}", sup.log());
}

#[test]
fn a_component_failing_at_start_is_given_up_and_the_rest_keeps_running() {
    let sandbox = Sandbox::with_fakes();
    let mut sup = start(&sandbox, "[hub]\n[ingest-rtmp]\nfail = true\n");
    sup.expect_line(0, "[ingest-rtmp] fake ingest-rtmp failing on purpose");
    sup.expect_line(0, "ingest-rtmp exited unexpectedly (exit status: 3)");
    let (_, line) = sup.expect_line(0, "giving up on ingest-rtmp");
    assert!(
        line.contains("failed 5 times in a row without becoming ready"),
        "{line}"
    );
    let hub = sup.child_pid("hub", 1);
    assert!(alive(hub));
    // Exactly max_start_failures runs, no sixth after giving up.
    assert!(sup.log().contains("started ingest-rtmp (pid"));
    assert!(!sup.log().contains(", run 6)"), "{}", sup.log());
    sup.signal(SIGTERM);
    let status = sup.wait(BOUND).expect("exits");
    assert_eq!(
        status.code(),
        Some(1),
        "a given-up component makes the exit non-zero"
    );
}

#[test]
fn a_hub_that_never_becomes_ready_is_killed_then_given_up_and_nothing_else_starts() {
    let sandbox = Sandbox::with_fakes();
    let file = sandbox.profile_with(
        "p.toml",
        "ready_timeout = \"300ms\"\nmax_start_failures = 2\n",
        "[hub]\nnever-ready = true\n[ingest-rtmp]\n",
    );
    let mut sup = Sup::spawn(&["--profile", file.to_str().unwrap()]);
    let status = sup.wait(BOUND).expect("supervisor gives up and exits");
    assert_eq!(status.code(), Some(1));
    let log = sup.log();
    assert!(
        log.contains("hub did not log \"listening on unix:\" within 300ms; killing it"),
        "{log}"
    );
    assert!(
        log.contains("giving up on hub: it failed 2 times in a row"),
        "{log}"
    );
    assert!(!log.contains("started ingest-rtmp"), "{log}");
}

#[test]
fn killing_the_supervisor_with_sigkill_leaves_no_child() {
    let sandbox = Sandbox::with_fakes();
    let mut sup = start(&sandbox, BASIC);
    sup.expect_line(0, "ingest-rtmp is ready");
    let pids = [sup.child_pid("hub", 1), sup.child_pid("ingest-rtmp", 1)];
    assert!(pids.iter().all(|&pid| alive(pid)));
    sup.signal(SIGKILL);
    sup.wait(BOUND).expect("supervisor dies");
    for pid in pids {
        assert!(
            gone_within(pid, BOUND),
            "child {pid} outlived the supervisor"
        );
    }
}

#[test]
fn a_second_supervisor_cannot_take_the_same_runtime_dir() {
    let sandbox = Sandbox::with_fakes();
    let first = start(&sandbox, BASIC);
    first.expect_line(0, "hub is ready");
    let file = sandbox.profile("q.toml", BASIC);
    let (status, _, err) = common::run_to_end(&["--profile", file.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        err.contains("is in use by another supervisor (pid"),
        "{err}"
    );
}

/// The real binaries: readiness and merged logs of the actual hub and ingest-rtmp.
#[test]
fn real_hub_and_ingest_rtmp_start_and_stop() {
    let bin_dir = common::workspace_bin_dir();
    common::require_real_components(&bin_dir);
    let sandbox = Sandbox::with_fakes();
    let file = sandbox.profile("p.toml", BASIC);
    let mut sup = Sup::spawn(&[
        "--bin-dir",
        bin_dir.to_str().unwrap(),
        "--profile",
        file.to_str().unwrap(),
    ]);
    sup.expect_line(0, "hub is ready");
    let (_, line) = sup.expect_line(0, "listening on rtmp://");
    assert!(line.starts_with("[ingest-rtmp] "), "{line}");
    sup.expect_line(0, "ingest-rtmp is ready");
    let pids = [sup.child_pid("hub", 1), sup.child_pid("ingest-rtmp", 1)];
    kill(pids[1], SIGKILL);
    sup.expect_line(0, "restarting ingest-rtmp");
    sup.child_pid("ingest-rtmp", 2);
    sup.signal(SIGTERM);
    assert!(sup.wait(BOUND).expect("exits").success(), "{}", sup.log());
    assert!(!alive(pids[0]));
}

/// An ingest-rtmp whose port is taken cannot start: it says so in one line (no backtrace,
/// even with RUST_BACKTRACE set), and the supervisor stops the hub and exits non-zero
/// instead of retrying it and running on with a hub that serves nobody.
#[test]
fn an_ingest_that_cannot_bind_its_port_stops_the_supervisor_with_one_line() {
    let bin_dir = common::workspace_bin_dir();
    common::require_real_components(&bin_dir);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("addr");
    let sandbox = Sandbox::with_fakes();
    let file = sandbox.profile(
        "p.toml",
        &format!("[hub]\n[ingest-rtmp]\nlisten = \"{addr}\"\n"),
    );
    let mut sup = Sup::spawn_env(
        &[
            "--bin-dir",
            bin_dir.to_str().unwrap(),
            "--profile",
            file.to_str().unwrap(),
        ],
        &[("RUST_BACKTRACE", "1")],
    );
    let status = sup.wait(BOUND).expect("supervisor exits on its own");
    let log = sup.log();
    assert_eq!(status.code(), Some(1), "{log}");
    let ingest: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("[ingest-rtmp] "))
        .collect();
    assert_eq!(
        ingest.len(),
        1,
        "ingest-rtmp should log exactly its one error line:\n{log}"
    );
    assert!(
        ingest[0].contains("ERROR")
            && ingest[0].contains(&format!("cannot listen on rtmp://{addr}"))
            && ingest[0].contains("in use"),
        "{log}"
    );
    assert!(
        log.contains("ingest-rtmp cannot start (exit status 78"),
        "{log}"
    );
    assert!(!log.contains("restarting ingest-rtmp"), "{log}");
    assert!(log.contains("hub stopped"), "{log}");
    let hub = sup.child_pid("hub", 1);
    assert!(!alive(hub), "the hub was left running");
}

/// The cannot-start status on a restart (the first run worked) keeps the restart policy:
/// the component is retried, then given up, and the others run on.
#[test]
fn a_cannot_start_status_after_a_good_first_run_is_retried() {
    let sandbox = Sandbox::with_fakes();
    let marker = sandbox.dir.path().join("started-once");
    let mut sup = start(
        &sandbox,
        &format!(
            "[hub]\n[ingest-rtmp]\nlisten = \"127.0.0.1:0\"\ncannot-start-marker = {marker:?}\n"
        ),
    );
    sup.expect_line(0, "ingest-rtmp is ready");
    kill(sup.child_pid("ingest-rtmp", 1), SIGKILL);
    sup.expect_line(0, "[ingest-rtmp] fake ingest-rtmp cannot start");
    sup.expect_line(0, "ingest-rtmp exited unexpectedly (exit status: 78)");
    sup.child_pid("ingest-rtmp", 3);
    sup.expect_line(0, "giving up on ingest-rtmp");
    assert!(
        !sup.log().contains("cannot start (exit status 78"),
        "{}",
        sup.log()
    );
    assert!(alive(sup.child_pid("hub", 1)));
    sup.signal(SIGTERM);
    assert_eq!(sup.wait(BOUND).expect("exits").code(), Some(1));
}

/// A component exiting with the cannot-start status on its first run stops everything.
#[test]
fn a_cannot_start_status_on_the_first_run_stops_everything() {
    let sandbox = Sandbox::with_fakes();
    let marker = sandbox.dir.path().join("marker");
    std::fs::write(&marker, "").expect("marker");
    let mut sup = start(
        &sandbox,
        &format!("[hub]\n[ingest-rtmp]\ncannot-start-marker = {marker:?}\n"),
    );
    let status = sup.wait(BOUND).expect("supervisor exits on its own");
    assert_eq!(status.code(), Some(1), "{}", sup.log());
    let log = sup.log();
    assert!(
        log.contains("ingest-rtmp cannot start (exit status 78"),
        "{log}"
    );
    assert!(!log.contains("run 2)"), "{log}");
    assert!(log.contains("hub stopped"), "{log}");
}

/// Logs captured by the supervisor (not a terminal) are plain text in every real
/// component: no ANSI colour escapes in any line.
#[test]
fn real_components_log_plain_text_when_not_on_a_terminal() {
    let bin_dir = common::workspace_bin_dir();
    common::require_real_components(&bin_dir);
    let sandbox = Sandbox::with_fakes();
    let rec = sandbox.dir.path().join("rec");
    let file = sandbox.profile("p.toml", &format!("{BASIC}[recorder]\ndir = {rec:?}\n"));
    let mut sup = Sup::spawn(&[
        "--bin-dir",
        bin_dir.to_str().unwrap(),
        "--profile",
        file.to_str().unwrap(),
    ]);
    sup.expect_line(0, "recorder is ready");
    sup.expect_line(0, "ingest-rtmp is ready");
    sup.signal(SIGTERM);
    assert!(sup.wait(BOUND).expect("exits").success(), "{}", sup.log());
    let lines = sup.stderr.lines();
    for name in ["hub", "ingest-rtmp", "recorder"] {
        let prefix = format!("[{name}] ");
        assert!(
            lines.iter().any(|l| l.starts_with(&prefix)),
            "no line from {name}:\n{}",
            sup.log()
        );
    }
    let coloured: Vec<&String> = lines.iter().filter(|l| l.contains('\u{1b}')).collect();
    assert!(coloured.is_empty(), "ANSI escapes in: {coloured:#?}");
}
