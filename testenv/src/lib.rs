//! What the test suites of every crate need from the machine: the one FFmpeg locator, and
//! the rule for a missing tool: a test skips (saying so) on a developer machine and fails
//! under CI (`CI` set, as `.ci/run` does), where every tool is installed, so a suite can
//! never pass there without having run. Also the stable runner of fuzz target bodies
//! ([`fuzz`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod fuzz;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Whether the tests run under CI.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Returns true (and says why on stderr) when a tool a test needs is missing, so the test
/// can return early; under CI a missing tool fails the test instead.
pub fn skip_without(what: &str, present: bool) -> bool {
    if present {
        return false;
    }
    assert!(
        !in_ci(),
        "{what} is not installed; .ci/run installs it, so CI must have it"
    );
    eprintln!("SKIPPED: {what} is not installed (see README.md, Testing)");
    true
}

/// The FFmpeg binary: `$FFMPEG`, else the one the `imageio-ffmpeg` Python package ships
/// (`pip install imageio-ffmpeg`); `None` when neither is there.
pub fn ffmpeg() -> Option<&'static Path> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("FFMPEG").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let out = Command::new("python3")
            .args([
                "-c",
                "import imageio_ffmpeg;print(imageio_ffmpeg.get_ffmpeg_exe())",
            ])
            .output()
            .ok()?;
        let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
    })
    .as_deref()
}

/// FFmpeg for a test that needs it: `None` means skip (said on stderr); under CI a
/// missing FFmpeg fails the test.
pub fn require_ffmpeg() -> Option<&'static Path> {
    let found = ffmpeg();
    if skip_without(
        "FFmpeg (pip install imageio-ffmpeg, or FFMPEG=/path/to/ffmpeg)",
        found.is_some(),
    ) {
        return None;
    }
    found
}
