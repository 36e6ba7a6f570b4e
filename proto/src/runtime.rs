//! Where processes find each other when run standalone.

use std::path::PathBuf;

/// The hub socket used when no `--hub`/`--socket` is given:
/// `$XDG_RUNTIME_DIR/mediaserver/hub.sock`, else `/tmp/mediaserver-$USER/hub.sock`.
/// The hub creates the directory with mode 0700.
pub fn default_hub_socket() -> PathBuf {
    default_runtime_dir().join("hub.sock")
}

/// The private runtime directory used when none is given.
pub fn default_runtime_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("mediaserver");
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    std::env::temp_dir().join(format!("mediaserver-{user}"))
}
