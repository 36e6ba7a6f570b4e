//! An event subscriber on the hub: every `Event` the hub routes becomes one line of a
//! [`LineLog`], `kind key=K conn_id=N remote=R name=value ...`, for tests to wait on.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, Event, FrameDecoder, Header, Role, FORMAT_VERSION};

use crate::log::LineLog;

/// One event as a log line.
pub fn line(e: &Event) -> String {
    let mut s = format!(
        "{} key={} conn_id={} remote={}",
        e.kind, e.key, e.conn_id, e.remote
    );
    for (n, v) in &e.fields {
        s.push_str(&format!(" {n}={v}"));
    }
    s
}

/// Subscribes to every event of the hub at `socket`; returns once the hub has answered,
/// so every event published afterwards is in the log. The reader thread ends when the hub
/// closes the connection.
pub fn subscribe(socket: &Path) -> Arc<LineLog> {
    let mut sock =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    let mut out = BytesMut::new();
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Subscriber,
            name: "e2e-events".into(),
        },
        &[],
        &mut out,
    );
    ipc::encode(
        &Header::Subscribe {
            patterns: vec![],
            media: false,
            events: true,
        },
        &[],
        &mut out,
    );
    sock.write_all(&out).expect("send subscribe");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    // The hub's hello first.
    loop {
        if let Some(m) = decoder.decode(&mut buf).expect("hub framing") {
            assert!(
                matches!(
                    m.header,
                    Header::Hello {
                        role: Role::Hub,
                        ..
                    }
                ),
                "{m:?}"
            );
            break;
        }
        let n = sock.read(&mut chunk).expect("hub hello");
        assert!(n > 0, "hub closed before its hello");
        buf.extend_from_slice(&chunk[..n]);
    }
    sock.set_read_timeout(None).expect("timeout");
    let log = LineLog::new_shared();
    let writer = log.clone();
    std::thread::spawn(move || loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => {
                    if let Header::Event(e) = m.header {
                        writer.push(line(&e));
                    }
                }
                Ok(None) => break,
                Err(_) => return writer.close(),
            }
        }
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return writer.close(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    });
    log
}

/// Waits up to 10 s for an event line satisfying `pred` and returns it; panics naming
/// `what`, with the last events, when none comes.
pub fn wait_event(events: &LineLog, what: &str, pred: impl Fn(&str) -> bool) -> String {
    events
        .wait_for(0, crate::deadline_in(10.0), pred)
        .unwrap_or_else(|| panic!("no {what} event; events:\n{}", events.tail(30)))
}
