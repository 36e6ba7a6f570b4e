//! Events this process reports (auth decisions): over one long-lived hub connection that
//! carries nothing else, or into the `--out` pipe.
//!
//! ```text
//!  conn tasks --try_send--> [bounded: EVENT_QUEUE] --> events task --> hub.sock (Publisher
//!                            full: the event is dropped      | hello, then Event messages;
//!                                                            | reconnects with backoff)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, Event, Header, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use ingest_link::link::{LinkError, HUB_TIMEOUT};
use ingest_link::pipe::Pipe;

use crate::handoff::{encode_hello, read_hub_hello};

/// Events held while the hub is away; further ones are dropped.
const EVENT_QUEUE: usize = 1024;
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Where events go; cheap to clone into every connection.
#[derive(Clone, Debug)]
pub(crate) struct Events {
    tx: mpsc::Sender<Header>,
}

impl Events {
    /// Events to the hub at `hub`, over a connection of their own.
    pub(crate) fn to_hub(hub: PathBuf) -> Events {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(run(hub, rx));
        Events { tx }
    }

    /// Events into the `--out` pipe, between the streams' messages.
    pub(crate) fn to_pipe(pipe: &Pipe) -> Events {
        let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
        let pipe = pipe.clone();
        tokio::spawn(async move {
            while let Some(h) = rx.recv().await {
                pipe.send_control(h).await;
            }
        });
        Events { tx }
    }

    /// Reports `event` without waiting; dropped when the queue is full.
    pub(crate) fn send(&self, event: Event) {
        if self.tx.try_send(Header::Event(event)).is_err() {
            tracing::debug!("event queue full; event dropped");
        }
    }
}

async fn run(hub: PathBuf, mut rx: mpsc::Receiver<Header>) {
    let mut backoff = Duration::from_millis(100);
    let mut pending: Option<Header> = None;
    loop {
        let mut sock = match connect(&hub).await {
            Ok(s) => {
                backoff = Duration::from_millis(100);
                s
            }
            Err(e) => {
                tracing::debug!(error = %e, "event connection to the hub failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let mut out = BytesMut::new();
        let mut sink = [0u8; 512];
        loop {
            let header = match pending.take() {
                Some(h) => h,
                None => tokio::select! {
                    h = rx.recv() => match h {
                        Some(h) => h,
                        None => return,
                    },
                    // The hub never writes after its hello: a read returning is its end.
                    _ = sock.read(&mut sink) => break,
                },
            };
            out.clear();
            ipc::encode(&header, &[], &mut out);
            if sock.write_all(&out).await.is_err() {
                pending = Some(header);
                break;
            }
        }
    }
}

async fn connect(hub: &std::path::Path) -> Result<UnixStream, LinkError> {
    let exchange = async {
        let mut sock = UnixStream::connect(hub).await?;
        let mut out = BytesMut::new();
        encode_hello(Role::Publisher, None, &mut out);
        sock.write_all(&out).await?;
        read_hub_hello(&mut sock).await?;
        Ok(sock)
    };
    tokio::time::timeout(HUB_TIMEOUT, exchange)
        .await
        .map_err(|_| LinkError::Timeout(HUB_TIMEOUT))?
}
