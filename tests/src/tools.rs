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

pub use testenv::skip_without;
