//! `supervisor check`: component binaries validate their own flags; problems are reported
//! as `[section] key: why` with a non-zero exit.

mod common;

use common::{run_to_end, workspace_bin_dir, Sandbox};

fn check(sandbox: &Sandbox, body: &str) -> (bool, String) {
    let file = sandbox.profile("p.toml", body);
    let (status, out, err) = run_to_end(&["check", file.to_str().unwrap()]);
    (status.success(), format!("{out}\n{err}"))
}

/// `check` against the real component binaries (which `scripts/test.sh` builds first).
fn check_real(sandbox: &Sandbox, file: &std::path::Path) -> (bool, String) {
    let bin_dir = workspace_bin_dir();
    common::require_real_components(&bin_dir);
    let (status, out, err) = run_to_end(&[
        "--bin-dir",
        bin_dir.to_str().unwrap(),
        "--runtime-dir",
        sandbox.runtime_dir().to_str().unwrap(),
        "check",
        file.to_str().unwrap(),
    ]);
    (status.success(), format!("{out}\n{err}"))
}

#[test]
fn a_valid_profile_passes() {
    let sandbox = Sandbox::with_fakes();
    let (ok, out) = check(
        &sandbox,
        "[hub]\n[ingest-rtmp]\nlisten = \"127.0.0.1:0\"\nport = 5\n",
    );
    assert!(ok, "{out}");
    assert!(out.contains("p.toml: ok"), "{out}");
}

#[test]
fn an_unknown_key_is_named_with_its_section() {
    let sandbox = Sandbox::with_fakes();
    let (ok, out) = check(
        &sandbox,
        "[hub]\n[ingest-rtmp]\nlisten = \"127.0.0.1:0\"\nbogus = 1\n",
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("[ingest-rtmp] bogus: unexpected argument '--bogus' found"),
        "{out}"
    );
}

#[test]
fn an_invalid_value_is_named_with_its_key() {
    let sandbox = Sandbox::with_fakes();
    let (ok, out) = check(&sandbox, "[hub]\nport = \"eighty\"\n");
    assert!(!ok, "{out}");
    assert!(out.contains("[hub] port: invalid value 'eighty'"), "{out}");
}

#[test]
fn profile_errors_are_reported_without_running_components() {
    let sandbox = Sandbox::with_fakes();
    let (ok, out) = check(&sandbox, "[hub]\n[transcoder]\n");
    assert!(!ok);
    assert!(out.contains("[transcoder]: unknown section"), "{out}");
    let (ok, out) = check(&sandbox, "[hub]\nlog_level = \"debug\"\n");
    assert!(!ok);
    assert!(out.contains("[hub] log_level: flag names use '-'"), "{out}");
}

#[test]
fn a_missing_component_binary_is_reported() {
    let sandbox = Sandbox::with_fakes();
    let (ok, out) = check(&sandbox, "[hub]\n[relayer]\n");
    assert!(!ok);
    assert!(
        out.contains("[relayer]: component binary not found"),
        "{out}"
    );
}

/// Every example profile passes `check` against the real component binaries (which
/// `scripts/test.sh` builds before the tests run).
#[test]
fn every_example_profile_passes_check() {
    let sandbox = Sandbox::with_fakes();
    let profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let mut count = 0;
    for entry in std::fs::read_dir(&profiles).expect("profiles/") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            count += 1;
            let (ok, out) = check_real(&sandbox, &path);
            assert!(ok, "{}:\n{out}", path.display());
        }
    }
    assert!(
        count >= 2,
        "expected default.toml and dev.toml in profiles/"
    );
}

/// The real components validate their own values (beyond syntax) under `--check`, and
/// each problem is reported with its section and key.
#[test]
fn real_components_name_the_bad_key() {
    let sandbox = Sandbox::with_fakes();
    let file = sandbox.profile(
        "bad.toml",
        "[hub]\ngop-cache-bytes = 0\n\
         [ingest-rtmp]\nlisten = \"127.0.0.1:0\"\nidle-timeout = \"0s\"\n\
         [recorder]\ndir = \"/tmp\"\npattern = \"{nope}.flv\"\n",
    );
    let (ok, all) = check_real(&sandbox, &file);
    assert!(!ok, "{all}");
    for expected in [
        "[hub] gop-cache-bytes: invalid value '0'",
        "[ingest-rtmp] idle-timeout: invalid value '0s'",
        "[recorder] pattern: invalid value '{nope}.flv'",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
}

/// Several mistakes in several sections, of every kind (a section, a setting, a key name,
/// unknown flags, bad values the parser or the component refuses), are all named in one
/// pass, each with its section and key.
#[test]
fn every_problem_of_every_section_is_named_in_one_pass() {
    let sandbox = Sandbox::with_fakes();
    let file = sandbox.profile_with(
        "many.toml",
        "ready_timeout = \"5s\"\nmax_start_failures = 0\n",
        "[hub]\ngop-cache-bytes = 0\nplayer-queue-bytes = 0\non-duplicate = \"maybe\"\n\
         colour = true\n\
         [ingest-rtmp]\nlisten = \"127.0.0.1:0\"\nidle-timeout = \"0s\"\n\
         handshake-timeout = \"ten\"\nmax_connections = 5\n\
         [recorder]\ndir = \"/tmp\"\npattern = \"{nope}.flv\"\nsegment = \"0s\"\n\
         [transcoder]\n",
    );
    let (ok, all) = check_real(&sandbox, &file);
    assert!(!ok, "{all}");
    let expected = [
        "[supervisor] max_start_failures:",
        "[transcoder]: unknown section",
        "[ingest-rtmp] max_connections: flag names use '-'",
        "[hub] gop-cache-bytes: invalid value '0'",
        "[hub] player-queue-bytes: invalid value '0'",
        "[hub] on-duplicate: invalid value 'maybe'",
        "[hub] colour: unexpected argument",
        "[ingest-rtmp] idle-timeout: invalid value '0s'",
        "[ingest-rtmp] handshake-timeout: invalid value 'ten'",
        "[recorder] pattern: invalid value '{nope}.flv'",
        "[recorder] segment: invalid value '0s'",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|e| !all.contains(e))
        .collect();
    assert!(missing.is_empty(), "missing {missing:#?} in:\n{all}");
    let lines = all.lines().filter(|l| l.contains(": [")).count();
    assert_eq!(lines, expected.len(), "one line per problem:\n{all}");
}

/// Byte sizes take units in profiles as on command lines, and a size a flag cannot hold is
/// named with its key.
#[test]
fn byte_sizes_take_units_in_profiles() {
    let sandbox = Sandbox::with_fakes();
    let good = sandbox.profile(
        "units.toml",
        "[hub]\ngop-cache-bytes = \"32MiB\"\nplayer-queue-bytes = \"512KiB\"\n\
         [ingest-rtmp]\nlisten = \"127.0.0.1:0\"\nmax-message-size = \"1MiB\"\n\
         hub-queue-bytes = \"16 MiB\"\nwindow-ack-size = \"5MB\"\n",
    );
    let (ok, out) = check_real(&sandbox, &good);
    assert!(ok, "{out}");
    let bad = sandbox.profile(
        "bad-units.toml",
        "[hub]\ngop-cache-bytes = \"16 megs\"\n\
         [ingest-rtmp]\nlisten = \"127.0.0.1:0\"\nmax-message-size = \"8GiB\"\n",
    );
    let (ok, out) = check_real(&sandbox, &bad);
    assert!(!ok, "{out}");
    assert!(
        out.contains("[hub] gop-cache-bytes: invalid value '16 megs'"),
        "{out}"
    );
    assert!(
        out.contains("[ingest-rtmp] max-message-size: invalid value '8GiB'")
            && out.contains("too large"),
        "{out}"
    );
}
