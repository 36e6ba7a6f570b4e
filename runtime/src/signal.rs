//! Waiting for the request to stop (SIGTERM from a supervisor or init, SIGINT from a
//! terminal).

use std::fmt;

/// Which signal asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

impl fmt::Display for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shutdown::Terminate => "SIGTERM",
            Shutdown::Interrupt => "SIGINT",
        })
    }
}

/// Resolves at the first SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: a caller that calls it before it logs
/// that it is ready can be stopped from then on, never killed by the default action.
/// Must run inside a tokio runtime with signals enabled; a handler that cannot be
/// installed leaves that signal's default action.
pub fn shutdown() -> impl std::future::Future<Output = Shutdown> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async fn recv(s: &mut std::io::Result<tokio::signal::unix::Signal>) {
        match s {
            Ok(s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    }
    async move {
        let (mut term, mut int) = (term, int);
        tokio::select! {
            _ = recv(&mut term) => Shutdown::Terminate,
            _ = recv(&mut int) => Shutdown::Interrupt,
        }
    }
}

/// Runs `action` on every SIGHUP. The handler is installed before this returns (not when
/// a task first runs), so a SIGHUP that arrives once the caller has logged that it is
/// ready never gets the default action, which would end the process.
pub fn on_hangup<F, Fut>(mut action: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    action().await;
                }
            });
        }
        Err(e) => tracing::warn!("SIGHUP handler unavailable ({e}): reloading is off"),
    }
}

/// A flag that turns true at the first SIGTERM or SIGINT, for work that winds down on its
/// own (ends its files, closes its connections politely) instead of being dropped.
/// `on_signal` runs first, so the caller logs the signal under its own target. Must be
/// called inside a tokio runtime.
pub fn stop_flag(
    on_signal: impl FnOnce(Shutdown) + Send + 'static,
) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        on_signal(shutdown().await);
        let _ = tx.send(true);
    });
    rx
}
