//! Every binary documents every flag in `--help`, and every flag that takes a value says
//! its default (or that there is none), so standalone and supervised use need no other
//! reference. Every component also supports `--check`, which `supervisor check` relies on.

use std::process::Command;

use e2e::bins::bin;

/// The components and the supervisor; each is run with `--help`.
const BINARIES: [&str; 7] = [
    "hub",
    "ingest-rtmp",
    "ingest-srt",
    "recorder",
    "relayer",
    "hookd",
    "supervisor",
];

/// One flag's entry in the long help: its header line and its description lines.
struct Entry {
    flag: String,
    takes_value: bool,
    text: String,
}

fn entries(help: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let is_header = (t.starts_with("--") || (t.starts_with('-') && t.get(2..4) == Some(", ")))
            && line.len() - t.len() <= 6;
        if is_header {
            let flag = t
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .unwrap_or(t)
                .to_string();
            out.push(Entry {
                flag,
                takes_value: t.contains('<'),
                text: String::new(),
            });
        } else if let Some(e) = out.last_mut() {
            e.text.push_str(t);
            e.text.push('\n');
        }
    }
    out
}

fn help_of(name: &str) -> String {
    let out = Command::new(bin(name))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{name} --help: {e}"));
    assert!(out.status.success(), "{name} --help failed");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn every_flag_is_documented_with_its_default() {
    for name in BINARIES {
        let help = help_of(name);
        let entries = entries(&help);
        assert!(
            entries.iter().any(|e| e.flag == "--help"),
            "{name}: no flags parsed from:\n{help}"
        );
        for e in &entries {
            assert!(
                e.text.trim().len() >= 5,
                "{name} {}: no description\n{help}",
                e.flag
            );
            if e.takes_value {
                assert!(
                    e.text.to_lowercase().contains("default"),
                    "{name} {}: takes a value but does not say its default\n{}",
                    e.flag,
                    e.text
                );
            }
        }
    }
}

#[test]
fn every_component_supports_check() {
    for name in ["hub", "ingest-rtmp", "ingest-srt", "recorder"] {
        assert!(
            help_of(name).contains("--check"),
            "{name} --help does not document --check"
        );
        let status = Command::new(bin(name))
            .args(["--check", "--log-level", "info"])
            .status()
            .expect("runs");
        assert!(status.success(), "{name} --check with valid flags failed");
        let out = Command::new(bin(name))
            .args(["--check", "--log-level", "x=["])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains("error: invalid value 'x=[' for '--log-level'"),
            "{name}: {err}"
        );
    }
}
