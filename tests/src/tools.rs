//! Independent RTMP clients installed on the machine (rtmpdump, GStreamer).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The path of `program` on `$PATH`, if present.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether GStreamer has `element` (checked with `gst-inspect-1.0`).
pub fn gst_has(element: &str) -> bool {
    which("gst-inspect-1.0").is_some()
        && Command::new("gst-inspect-1.0")
            .arg(element)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Returns `true` (and says why on stderr) when a tool a test needs is missing, so the
/// test can skip. In CI (`CI` set) a missing tool is a failure instead: CI installs them.
pub fn skip_without(what: &str, present: bool) -> bool {
    if present {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is not installed; .ci/run installs it, so CI must have it"
    );
    eprintln!("SKIPPED: {what} is not installed (apt-get install the package named in README.md)");
    true
}
