//! The per-user runtime directory that holds `hub.sock` (and the supervisor's lock):
//! where it is by default, and making sure it is ours and private before a socket goes in.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The socket's file name inside the runtime directory.
pub const HUB_SOCKET: &str = "hub.sock";

/// Why the runtime directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    /// Creating or inspecting it failed.
    #[error("runtime directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// It exists but is not a directory.
    #[error("runtime directory {path} exists and is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// It belongs to another user, so nobody can promise it is private.
    #[error("runtime directory {path} is owned by uid {owner}, not by us (uid {us})")]
    NotOwned {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        us: u32,
    },
}

/// The private runtime directory used when none is given: `$XDG_RUNTIME_DIR/mediaserver`;
/// else `/run/user/UID/mediaserver` when that per-user directory exists and is ours; else
/// `$HOME/.local/state/mediaserver`. Never a path in a directory every user can write
/// (such as `/tmp`), where another user could create it first.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("mediaserver");
    }
    let uid = nix::unistd::getuid().as_raw();
    let run_user = PathBuf::from(format!("/run/user/{uid}"));
    if fs::symlink_metadata(&run_user).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
        return run_user.join("mediaserver");
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
    home.join(".local/state/mediaserver")
}

/// The hub socket used when no `--socket`/`--hub` is given: `hub.sock` in [`default_dir`].
pub fn default_hub_socket() -> PathBuf {
    default_dir().join(HUB_SOCKET)
}

/// Creates `path` with mode 0700 when missing (parents too), then checks that it is a
/// directory owned by us; one of ours that is open to others is tightened to 0700.
/// Anything else is refused: a socket in a directory another user controls can be
/// replaced or listened on by them.
pub fn ensure_private(path: &Path) -> Result<(), DirError> {
    let io_err = |source| DirError::Io {
        path: path.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err)?;
    // symlink_metadata: a symlink planted in place of the directory is refused.
    let meta = fs::symlink_metadata(path).map_err(io_err)?;
    if !meta.is_dir() {
        return Err(DirError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    let us = nix::unistd::getuid().as_raw();
    if meta.uid() != us {
        return Err(DirError::NotOwned {
            path: path.to_path_buf(),
            owner: meta.uid(),
            us,
        });
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_err)?;
    }
    Ok(())
}

/// [`ensure_private`], then, with `group`, opened to that group for traversal only
/// (0710, group-owned) so its members can reach a socket inside that is theirs too.
pub fn ensure_private_for(path: &Path, group: Option<u32>) -> Result<(), DirError> {
    ensure_private(path)?;
    if let Some(gid) = group {
        let io_err = |source| DirError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io_err)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o710)).map_err(io_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn creates_missing_directories_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_private(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // Idempotent.
        ensure_private(&dir).unwrap();
    }

    #[test]
    fn tightens_an_open_directory_of_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn refuses_a_file_and_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(
            ensure_private(&file),
            Err(DirError::NotADirectory { .. }) | Err(DirError::Io { .. })
        ));
        let target = tmp.path().join("target");
        fs::create_dir(&target).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            ensure_private(&link),
            Err(DirError::NotADirectory { .. })
        ));
    }

    #[test]
    fn refuses_a_directory_of_another_user() {
        // Root owns `/`; as root, hand a fresh directory to `nobody` instead.
        let tmp = tempfile::tempdir().unwrap();
        let theirs = if nix::unistd::getuid().is_root() {
            let dir = tmp.path().join("theirs");
            fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            dir
        } else {
            PathBuf::from("/")
        };
        assert!(matches!(
            ensure_private(&theirs),
            Err(DirError::NotOwned { .. })
        ));
    }
}
