//! Where the binaries under test are.

use std::path::PathBuf;

/// The directory holding the workspace's built binaries: `$MEDIASERVER_BIN_DIR` if set,
/// else `target/<profile>` of this workspace (the profile this test crate was built with).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEDIASERVER_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    target.join(profile)
}

/// The path of binary `name`, panicking with the command that builds it when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "binary {} not found: run `cargo build --workspace --bins` first \
         (or point MEDIASERVER_BIN_DIR at the directory holding `{name}`)",
        path.display()
    );
    path
}
