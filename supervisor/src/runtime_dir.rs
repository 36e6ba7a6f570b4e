//! The private runtime directory holding the sockets, locked so that two supervisors never
//! share (and steal each other's) `hub.sock`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use runtime::dir::DirError;
use thiserror::Error;

/// Why the runtime directory cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeDirError {
    /// It cannot be created, or is not a private directory of ours.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// Locking it failed.
    #[error("runtime directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// Another supervisor holds its lock.
    #[error("runtime directory {path} is in use by another supervisor ({holder})")]
    Busy {
        /// The directory.
        path: PathBuf,
        /// What the lock file says about the holder.
        holder: String,
    },
}

/// A created, private (0700) and exclusively locked runtime directory. The lock is released
/// when this is dropped or the process dies.
#[derive(Debug)]
pub struct RuntimeDir {
    path: PathBuf,
    _lock: Flock<File>,
}

/// The name of the lock file inside the runtime directory.
pub const LOCK_FILE: &str = "supervisor.lock";

impl RuntimeDir {
    /// Makes `path` a private directory of ours ([`runtime::dir::ensure_private`]) and
    /// takes its lock.
    pub fn prepare(path: &Path) -> Result<RuntimeDir, RuntimeDirError> {
        let io_err = |source| RuntimeDirError::Io {
            path: path.to_path_buf(),
            source,
        };
        runtime::dir::ensure_private(path)?;
        let lock_path = path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
                let holder = fs::read_to_string(&lock_path).unwrap_or_default();
                let holder = holder.trim();
                return Err(RuntimeDirError::Busy {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() {
                        "unknown pid".into()
                    } else {
                        format!("pid {holder}")
                    },
                });
            }
            Err((_, errno)) => return Err(io_err(errno.into())),
        };
        lock.set_len(0).map_err(io_err)?;
        writeln!(lock, "{}", std::process::id()).map_err(io_err)?;
        Ok(RuntimeDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the hub's socket goes.
    pub fn hub_socket(&self) -> PathBuf {
        self.path.join("hub.sock")
    }
}
