//! The file writer: a dedicated thread that owns every open file, so disk stalls never
//! block the async runtime. It takes [`Command`]s from a bounded channel (when it lags,
//! the hub link stops reading and the hub drops for us and says so) and answers with
//! [`Report`]s. A write error closes that file and is reported; the thread goes on.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::mux::Chunk;

/// Identifies one output file for its whole life.
pub type FileId = u64;

static NEXT_FILE: AtomicU64 = AtomicU64::new(1);
static WRITE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// A fresh file id.
pub fn next_file_id() -> FileId {
    NEXT_FILE.fetch_add(1, Ordering::Relaxed)
}

/// Write errors seen since the process started.
pub fn write_errors() -> u64 {
    WRITE_ERRORS.load(Ordering::Relaxed)
}

/// Work for the writer thread.
#[derive(Debug)]
pub enum Command {
    /// Create a new file (never overwriting: `_1`, `_2` ... are tried) and write `chunks`.
    Open {
        /// Id used by later commands.
        file: FileId,
        /// Wanted path (inside the recording directory).
        path: PathBuf,
        /// The container header.
        chunks: Vec<Chunk>,
    },
    /// Append/patch; `sync` marks the end of a complete unit (fragment), after which the
    /// file is fdatasync'ed when that is configured.
    Write {
        /// File.
        file: FileId,
        /// Output of the muxer.
        chunks: Vec<Chunk>,
        /// Complete unit written.
        sync: bool,
    },
    /// Write the last chunks and close.
    Close {
        /// File.
        file: FileId,
        /// Final output of the muxer (pending fragment, patches).
        chunks: Vec<Chunk>,
        /// Why the file ends (`unpublish`, `segment`, `dropped`, ...).
        reason: String,
        /// Media duration in the file, milliseconds.
        duration_ms: u64,
    },
}

/// What happened to a file.
#[derive(Debug)]
pub enum Report {
    /// The file exists and its header is written.
    Opened {
        /// File.
        file: FileId,
        /// Final path.
        path: PathBuf,
    },
    /// The file is complete and closed.
    Closed {
        /// File.
        file: FileId,
        /// Path.
        path: PathBuf,
        /// Bytes written.
        bytes: u64,
        /// From the close command.
        reason: String,
        /// From the close command.
        duration_ms: u64,
    },
    /// A write failed; the file is closed as it is and later commands for it are ignored.
    Failed {
        /// File.
        file: FileId,
        /// Path, when the file was created.
        path: Option<PathBuf>,
        /// Bytes written before the error.
        bytes: u64,
        /// The error.
        error: String,
    },
}

/// The writer's counters, reported to the hub (component `recorder`).
#[derive(Debug, Clone)]
pub struct WriterStats {
    /// Files open now.
    pub open: telemetry::Gauge,
    /// Files created.
    pub files: telemetry::Counter,
    /// Bytes written.
    pub bytes: telemetry::Counter,
    /// Files that could not be created or written.
    pub errors: telemetry::Counter,
}

impl WriterStats {
    /// Registers the series in `m`.
    pub fn new(m: &telemetry::Metrics) -> WriterStats {
        WriterStats {
            open: m.gauge("mediaserver_recorder_files_open", &[]),
            files: m.counter("mediaserver_recorder_files_total", &[]),
            bytes: m.counter("mediaserver_recorder_bytes_total", &[]),
            errors: m.counter("mediaserver_recorder_errors_total", &[]),
        }
    }
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// fdatasync after every complete fragment and at close, and fsync the directory
    /// after creating a file (power-loss safety at the cost of disk bandwidth); without
    /// it a kill -9 still loses nothing written, as the data is in the kernel.
    pub fsync: bool,
    /// Permission bits of new files (before the umask). Default 0o640.
    pub file_mode: u32,
    /// A new file is refused while the file system has fewer free bytes than this
    /// (0: no floor). Default 256 MiB.
    pub min_free: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            fsync: false,
            file_mode: 0o640,
            min_free: 256 << 20,
        }
    }
}

struct Open {
    file: File,
    path: PathBuf,
    bytes: u64,
}

/// Runs the writer until the command channel closes. Call on a dedicated thread.
pub fn run(
    opts: WriterOptions,
    mut commands: mpsc::Receiver<Command>,
    reports: mpsc::Sender<Report>,
    stats: WriterStats,
) {
    let mut files: HashMap<FileId, Open> = HashMap::new();
    while let Some(cmd) = commands.blocking_recv() {
        let (id, result) = match cmd {
            Command::Open { file, path, chunks } => {
                let r = create(&path, &opts).and_then(|(f, path)| {
                    let mut o = Open {
                        file: f,
                        path,
                        bytes: 0,
                    };
                    stats.files.inc();
                    stats.open.inc();
                    let r = apply(&mut o, &chunks, &stats.bytes);
                    let path = o.path.clone();
                    files.insert(file, o);
                    r.map(|_| path)
                });
                match r {
                    Ok(path) => {
                        let _ = reports.blocking_send(Report::Opened { file, path });
                        (file, Ok(()))
                    }
                    Err(e) => (file, Err(e)),
                }
            }
            Command::Write { file, chunks, sync } => match files.get_mut(&file) {
                Some(o) => {
                    let r = apply(o, &chunks, &stats.bytes).and_then(|_| {
                        if sync && opts.fsync {
                            o.file.sync_data()
                        } else {
                            Ok(())
                        }
                    });
                    (file, r)
                }
                None => continue,
            },
            Command::Close {
                file,
                chunks,
                reason,
                duration_ms,
            } => match files.get_mut(&file) {
                Some(o) => {
                    let r = apply(o, &chunks, &stats.bytes).and_then(|_| {
                        if opts.fsync {
                            o.file.sync_data()
                        } else {
                            Ok(())
                        }
                    });
                    if r.is_ok() {
                        if let Some(o) = files.remove(&file) {
                            stats.open.dec();
                            let _ = reports.blocking_send(Report::Closed {
                                file,
                                path: o.path,
                                bytes: o.bytes,
                                reason,
                                duration_ms,
                            });
                        }
                    }
                    (file, r)
                }
                None => continue,
            },
        };
        if let Err(e) = result {
            WRITE_ERRORS.fetch_add(1, Ordering::Relaxed);
            stats.errors.inc();
            let o = files.remove(&id);
            if o.is_some() {
                stats.open.dec();
            }
            let _ = reports.blocking_send(Report::Failed {
                file: id,
                path: o.as_ref().map(|o| o.path.clone()),
                bytes: o.map_or(0, |o| o.bytes),
                error: e.to_string(),
            });
        }
    }
}

/// Bytes available to unprivileged users on the file system holding `dir`.
fn free_bytes(dir: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

/// Creates `path` (and its directories) without overwriting anything, with the
/// configured mode, unless the disk is below the free-space floor. With `fsync`, the
/// directory entry is made durable too.
fn create(path: &Path, opts: &WriterOptions) -> io::Result<(File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    if opts.min_free > 0 {
        let free = free_bytes(dir)?;
        if free < opts.min_free {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "not starting a new file: {free} bytes free on the disk of {}, below \
                     --min-free {}",
                    dir.display(),
                    opts.min_free
                ),
            ));
        }
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let ext = path.extension().map(|s| s.to_string_lossy().into_owned());
    for n in 0..1000 {
        let candidate = if n == 0 {
            path.to_path_buf()
        } else {
            let name = match (&stem, &ext) {
                (Some(s), Some(e)) => format!("{s}_{n}.{e}"),
                (Some(s), None) => format!("{s}_{n}"),
                _ => format!("recording_{n}"),
            };
            path.with_file_name(name)
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(opts.file_mode)
            .open(&candidate)
        {
            Ok(f) => {
                if opts.fsync {
                    File::open(dir)?.sync_all()?;
                }
                return Ok((f, candidate));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free file name after 1000 tries",
    ))
}

fn apply(o: &mut Open, chunks: &[Chunk], written: &telemetry::Counter) -> io::Result<()> {
    let mut run: Vec<&Bytes> = Vec::new();
    for c in chunks {
        match c {
            Chunk::Append(b) => run.push(b),
            Chunk::Patch { offset, data } => {
                let n = write_all_vectored(&mut o.file, &run)?;
                o.bytes += n;
                written.add(n);
                run.clear();
                o.file.write_all_at(data, *offset)?;
            }
        }
    }
    let n = write_all_vectored(&mut o.file, &run)?;
    o.bytes += n;
    written.add(n);
    Ok(())
}

/// Most buffers handed to one writev (below every platform's IOV_MAX).
const MAX_IOV: usize = 512;

/// Writes every buffer, in order, with as few system calls as the kernel allows.
pub fn write_all_vectored(w: &mut impl Write, bufs: &[&Bytes]) -> io::Result<u64> {
    let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
    let (mut idx, mut off) = (0, 0);
    while idx < bufs.len() {
        if bufs[idx].len() == off {
            idx += 1;
            off = 0;
            continue;
        }
        let slices: Vec<IoSlice<'_>> = std::iter::once(&bufs[idx][off..])
            .chain(bufs[idx + 1..].iter().map(|b| &b[..]))
            .take(MAX_IOV)
            .map(IoSlice::new)
            .collect();
        let mut n = match w.write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while n > 0 {
            let rest = bufs[idx].len() - off;
            if n >= rest {
                n -= rest;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts at most 3 bytes per call, to exercise partial vectored writes.
    struct Dribble(Vec<u8>);

    impl Write for Dribble {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(3);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(3 - n);
                self.0.extend_from_slice(&b[..take]);
                n += take;
                if n == 3 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_are_resumed() {
        let bufs = [
            Bytes::from_static(b"hello"),
            Bytes::new(),
            Bytes::from_static(b" "),
            Bytes::from_static(b"world!"),
        ];
        let refs: Vec<&Bytes> = bufs.iter().collect();
        let mut d = Dribble(Vec::new());
        assert_eq!(write_all_vectored(&mut d, &refs).unwrap(), 12);
        assert_eq!(d.0, b"hello world!");
    }

    #[test]
    fn never_overwrites() {
        let dir = std::env::temp_dir().join(format!("rec-writer-{}", std::process::id()));
        let p = dir.join("sub/a.flv");
        let opts = WriterOptions::default();
        let (_, p1) = create(&p, &opts).unwrap();
        let (_, p2) = create(&p, &opts).unwrap();
        assert_eq!(p1, p);
        assert_eq!(p2, dir.join("sub/a_1.flv"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mode_fsync_and_free_space_floor() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rec-writer-mode-{}", std::process::id()));
        let fsynced = WriterOptions {
            fsync: true,
            file_mode: 0o600,
            ..WriterOptions::default()
        };
        let (_, p) = create(&dir.join("a.flv"), &fsynced).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (_, p) = create(&dir.join("b.flv"), &WriterOptions::default()).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        // 0o640 before the umask, which may only remove bits.
        assert_eq!(mode & !0o640, 0, "{mode:o}");
        let full = WriterOptions {
            min_free: u64::MAX,
            ..WriterOptions::default()
        };
        let e = create(&dir.join("c.flv"), &full).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(e.to_string().contains("--min-free"), "{e}");
        assert!(!dir.join("c.flv").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
