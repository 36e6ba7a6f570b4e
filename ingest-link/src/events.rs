//! The events an ingest process reports (auth decisions, connections accepted and closed):
//! to the hub through a `telemetry::Emitter` (a connection of its own that keeps them while
//! the hub is away), or into the `--out` pipe.
//!
//! ```text
//!  listener/conn tasks --send--> Emitter queue (bounded, oldest dropped) --> hub.sock
//!                            or  [bounded: PIPE_QUEUE, full: dropped] --> --out pipe
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use proto::ipc::{Event, Header};
use telemetry::{Counter, Emitter};
use tokio::sync::mpsc;

use crate::pipe::Pipe;

/// Events queued toward the `--out` pipe; further ones are dropped.
const PIPE_QUEUE: usize = 1024;

/// Where events go; cheap to clone into every connection.
#[derive(Clone, Debug)]
pub enum Events {
    /// To the hub.
    Hub(Emitter),
    /// Into the `--out` pipe.
    Pipe(mpsc::Sender<Header>),
}

impl Events {
    /// Events of `component` to the hub at `hub`, over a connection of their own;
    /// `dropped` counts those dropped because the hub was away too long.
    pub fn to_hub(hub: PathBuf, component: &'static str, dropped: Counter) -> Events {
        Events::Hub(Emitter::start(
            hub,
            component,
            telemetry::events::DEFAULT_CAPACITY,
            dropped,
        ))
    }

    /// Events nobody receives (before the sink is known).
    pub fn discard() -> Events {
        Events::Hub(Emitter::discard())
    }

    /// Events into the `--out` pipe, between the streams' messages.
    pub fn to_pipe(pipe: &Pipe) -> Events {
        let (tx, mut rx) = mpsc::channel(PIPE_QUEUE);
        let pipe = pipe.clone();
        tokio::spawn(async move {
            while let Some(h) = rx.recv().await {
                pipe.send_control(h).await;
            }
        });
        Events::Pipe(tx)
    }

    /// Reports `event` without waiting.
    pub fn send(&self, event: Event) {
        match self {
            Events::Hub(e) => e.send(event),
            Events::Pipe(tx) => {
                if tx.try_send(Header::Event(event)).is_err() {
                    tracing::debug!("event queue full; event dropped");
                }
            }
        }
    }

    /// The hub emitter, to flush at shutdown (`Emitter::flush`); none for a pipe.
    pub fn emitter(&self) -> Option<Emitter> {
        match self {
            Events::Hub(e) => Some(e.clone()),
            Events::Pipe(_) => None,
        }
    }

    /// `connection_accepted`: a client connection was admitted.
    pub fn accepted(&self, conn_id: u64, remote: SocketAddr, protocol: &str) {
        self.send(Event {
            kind: "connection_accepted".into(),
            key: String::new(),
            conn_id,
            remote: remote.to_string(),
            fields: vec![("protocol".into(), protocol.into())],
        });
    }

    /// `connection_closed`: the connection of `connection_accepted` ended.
    pub fn closed(&self, conn_id: u64, remote: SocketAddr, closed: Closed<'_>) {
        let mut fields = vec![
            ("protocol".to_owned(), closed.protocol.to_owned()),
            ("reason".to_owned(), closed.reason.to_owned()),
        ];
        if let Some(error) = closed.error {
            fields.push(("error".to_owned(), error.to_owned()));
        }
        fields.extend([
            (
                "duration_ms".to_owned(),
                closed.duration.as_millis().to_string(),
            ),
            ("bytes_in".to_owned(), closed.bytes_in.to_string()),
        ]);
        self.send(Event {
            kind: "connection_closed".into(),
            key: closed.key.to_owned(),
            conn_id,
            remote: remote.to_string(),
            fields,
        });
    }
}

/// What `connection_closed` says about a connection's end.
#[derive(Debug)]
pub struct Closed<'a> {
    /// `rtmp`, `rtmps`, `srt`.
    pub protocol: &'a str,
    /// The key it published or played, empty if none.
    pub key: &'a str,
    /// `closed`, `handed_over`, or what closed it (a layer, a limit, a timeout).
    pub reason: &'a str,
    /// The error, when one closed it.
    pub error: Option<&'a str>,
    /// Since it was accepted.
    pub duration: Duration,
    /// Bytes received from the client.
    pub bytes_in: u64,
}
