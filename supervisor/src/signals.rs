//! Signals turned into events: SIGINT and SIGTERM (shutdown), SIGHUP (reload) and
//! SIGUSR1 (reconnect requests) are
//! blocked in every thread and collected by one thread with sigwait, so no async signal
//! handler is needed.

use std::io;
use std::sync::mpsc::SyncSender;

use nix::sys::signal::{SigSet, Signal};

use crate::child::Event;

/// The signals the supervisor acts on: SIGINT and SIGTERM start a shutdown (a second one
/// forces it), SIGHUP reloads the profile, SIGUSR1 asks RTMP clients to reconnect.
const SHUTDOWN: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
];

fn shutdown_set() -> SigSet {
    let mut set = SigSet::empty();
    for signal in SHUTDOWN {
        set.add(signal);
    }
    set
}

/// Blocks the supervisor's signals in the calling thread. Call it first thing in `main`,
/// before any thread exists, so every later thread inherits the mask. Children would
/// inherit it too (a mask survives exec), so the spawn hook clears it.
pub fn block() -> io::Result<()> {
    shutdown_set().thread_block().map_err(io::Error::from)
}

/// Starts the thread that reports each of the supervisor's signals as an event.
pub(crate) fn spawn_listener(events: SyncSender<Event>) -> io::Result<()> {
    let set = shutdown_set();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match set.wait() {
                Ok(signal) => {
                    if events.send(Event::Signal(signal)).is_err() {
                        return;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!("sigwait failed: {e}; signals are no longer handled");
                    return;
                }
            }
        })?;
    Ok(())
}
