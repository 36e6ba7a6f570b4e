//! `--out -`: every publisher's stream written in the framed format to stdout (or a file
//! or FIFO) instead of to a hub, for consumers that read it on their stdin.
//!
//! ```text
//!  publisher A: Link --bounded--> forwarder (handle 1) --+
//!  publisher B: Link --bounded--> forwarder (handle 2) --+--> writer task --> stdout
//! ```
//!
//! The writer sends `Hello` (role Publisher) first, then each stream's `Announce` with its
//! own handle, its messages, and `EndOfStream`. A slow reader backs up into each
//! publisher's bounded queue, which drops frames up to the next keyframe exactly as toward
//! a slow hub; the publishers never wait. When the reader goes away (EPIPE) the
//! process ends: there is nobody left to deliver to.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use proto::ipc::{self, Header, Role, FORMAT_VERSION};
use proto::media::StreamKey;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::link::{Item, Link};
use crate::{Guard, Origin};

/// Where `--out` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-`: standard output.
    Stdout,
    /// A file or FIFO, created if missing, appended to.
    Path(PathBuf),
}

impl Target {
    /// Parses the `--out` value.
    pub fn parse(s: &str) -> Result<Target, String> {
        match s {
            "" => Err("empty; use - for standard output".into()),
            "-" => Ok(Target::Stdout),
            p => Ok(Target::Path(PathBuf::from(p))),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Stdout => f.write_str("-"),
            Target::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The shared output; cheap to clone into every connection.
#[derive(Clone)]
pub struct Pipe {
    tx: mpsc::Sender<Item>,
    next_handle: Arc<AtomicU32>,
    queue_bytes: usize,
    origin: Origin,
}

impl std::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipe").finish_non_exhaustive()
    }
}

/// Messages the writer task may hold beyond each publisher's own bounded queue.
const WRITER_QUEUE: usize = 256;

impl Pipe {
    /// Opens `target` and starts the writer task. The process exits when the reader is
    /// gone (broken pipe) or writing fails.
    pub async fn start(
        target: &Target,
        queue_bytes: usize,
        origin: Origin,
        guard: Guard,
    ) -> io::Result<Pipe> {
        let out: Box<dyn AsyncWrite + Send + Unpin> = match target {
            Target::Stdout => Box::new(tokio::io::stdout()),
            Target::Path(p) => Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .await?,
            ),
        };
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(async move {
            let _guard = guard;
            match write_all(out, rx, origin.component).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    tracing::info!("the reader of --out closed it; exiting");
                    std::process::exit(0);
                }
                Err(e) => {
                    tracing::error!(error = %e, "writing --out failed; exiting");
                    std::process::exit(1);
                }
            }
        });
        Ok(Pipe {
            tx,
            next_handle: Arc::new(AtomicU32::new(1)),
            queue_bytes,
            origin,
        })
    }

    /// Writes a message that belongs to no stream (an event), waiting for room.
    pub async fn send_control(&self, header: Header) {
        let _ = self.tx.send(Item::control(header)).await;
    }

    /// A publisher's link into the pipe: its stream gets the next handle.
    pub fn open(&self, key: &StreamKey, guard: Guard) -> Link {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        // Nothing is ever revoked on a pipe: the event sender is dropped at once.
        let (link, mut rx, _events) = Link::channel(self.queue_bytes);
        let tx = self.tx.clone();
        let announce = Header::Announce {
            stream: handle,
            key: key.to_string(),
            timescale: self.origin.timescale,
        };
        tokio::spawn(async move {
            let _guard = guard;
            if tx.send(Item::control(announce)).await.is_err() {
                return;
            }
            while let Some(mut item) = rx.recv().await {
                if let Some(s) = item.header.stream_mut() {
                    *s = handle;
                }
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        link
    }
}

async fn write_all(
    mut out: Box<dyn AsyncWrite + Send + Unpin>,
    mut rx: mpsc::Receiver<Item>,
    component: &str,
) -> io::Result<()> {
    let mut hdr = BytesMut::with_capacity(256);
    let hello = Header::Hello {
        version: FORMAT_VERSION,
        role: Role::Publisher,
        name: format!("{component}/{}", std::process::id()),
    };
    ipc::encode(&hello, &[], &mut hdr);
    out.write_all(&hdr).await?;
    out.flush().await?;
    while let Some(item) = rx.recv().await {
        hdr.clear();
        ipc::encode_header(&item.header, item.payload.len(), &mut hdr);
        let mut buf = Buf::chain(&hdr[..], &item.payload[..]);
        out.write_all_buf(&mut buf).await?;
        // Flush per message when nothing else is waiting, so a reader sees frames live.
        if rx.is_empty() {
            out.flush().await?;
        }
    }
    out.flush().await
}
