//! The reconnect grace at shutdown (`--reconnect-grace`): once the listeners are closed,
//! the hub is asked to send every RTMP client that announced the E-RTMP Reconnect
//! capability a reconnect request (ingest's publishers through their links, the hub's
//! players directly), and the process waits, up to the grace, until every such publisher
//! has left: it reconnects elsewhere (another instance on the same port with
//! `--reuse-port`, or the hub's `--reconnect-tc-url`) and then drops this connection.
//! Clients without the capability are left alone until the ordinary shutdown that
//! follows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// The description of the requests sent at shutdown.
const DESCRIPTION: &str = "The server is shutting down; reconnect to continue.";

/// Publishers that announced the Reconnect capability, open now.
#[derive(Debug, Default)]
pub(crate) struct Capable {
    open: AtomicUsize,
    changed: Notify,
}

/// Counts one publisher in [`Capable`] until dropped.
#[derive(Debug)]
pub(crate) struct CapableGuard(Arc<Capable>);

impl Capable {
    /// Counts a publisher until the guard is dropped.
    pub(crate) fn track(self: &Arc<Self>) -> CapableGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        CapableGuard(self.clone())
    }

    /// Waits until no such publisher is open, or `limit` passed; false on the latter.
    async fn all_left(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if self.open.load(Ordering::Relaxed) == 0 {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Drop for CapableGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.changed.notify_waiters();
    }
}

/// Asks the hub at `hub` for the requests and waits up to `grace` for the capable
/// publishers to leave.
pub(crate) async fn run(hub: &std::path::Path, capable: &Capable, grace: Duration) {
    let g = humantime::format_duration(grace);
    match telemetry::control::request_reconnect(hub, "ingest-rtmp", None, Some(DESCRIPTION)).await {
        Ok(answer) => tracing::info!(
            "shutting down: asked RTMP clients that can reconnect to do so ({}); waiting up \
             to {g} for publishers to leave",
            telemetry::control::summary(&answer)
        ),
        Err(e) => {
            tracing::warn!(
                "shutting down without a reconnect grace: the hub did not take the request: {e}"
            );
            return;
        }
    }
    if capable.all_left(grace).await {
        tracing::info!("every publisher that could reconnect has left");
    } else {
        let left = capable.open.load(Ordering::Relaxed);
        tracing::info!(
            "reconnect grace of {g} over; {left} publishers that could reconnect are still here"
        );
    }
}
