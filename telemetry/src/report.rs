//! The reporting task: a connection to `hub.sock` that sends the component's counters
//! every [`REPORT_INTERVAL`], and comes back after the hub restarts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Metrics;

/// How often the counters are sent (when they changed).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// A report is sent at least this often even when nothing changed.
const REFRESH: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Reports `metrics` as `component` to the hub at `hub` until the task is dropped or
/// aborted. A missing or restarting hub is retried with backoff (logged once per outage);
/// each new connection starts with a full report, so the hub's view is whole again after
/// its restart.
pub async fn report(hub: PathBuf, component: &'static str, metrics: Arc<Metrics>) {
    let mut backoff = BACKOFF_MIN;
    let mut warned = false;
    loop {
        match session(&hub, component, &metrics).await {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => {
                if !warned {
                    tracing::debug!(hub = %hub.display(), error = %e, "metrics report: hub not reachable; retrying");
                    warned = true;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Runs [`report`] on a thread of its own (for programs without an async runtime, like
/// the supervisor). The thread runs until the process exits.
pub fn report_from_thread(
    hub: PathBuf,
    component: &'static str,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("metrics-report".into())
        .spawn(move || rt.block_on(report(hub, component, metrics)))?;
    Ok(())
}

/// One connection: hello, then reports until the hub goes away.
async fn session(hub: &std::path::Path, component: &str, metrics: &Metrics) -> std::io::Result<()> {
    let mut sock = crate::hub_conn::connect(hub, component).await?;
    let mut out = BytesMut::new();
    let mut buf = BytesMut::with_capacity(1024);
    let mut tick = tokio::time::interval(REPORT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Vec<_>> = None;
    let mut since_sent = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            n = sock.read_buf(&mut buf) => {
                // The hub sends nothing after its hello; anything else is discarded.
                if n? == 0 {
                    return Ok(());
                }
                buf.clear();
                continue;
            }
        }
        let snapshot = metrics.snapshot();
        since_sent += REPORT_INTERVAL;
        if last.as_ref() == Some(&snapshot) && since_sent < REFRESH {
            continue;
        }
        out.clear();
        let event = proto::metrics::report_event(component, snapshot.iter().map(|(s, v)| (s, *v)));
        ipc::encode(&Header::Event(event), &[], &mut out);
        sock.write_all(&out).await?;
        last = Some(snapshot);
        since_sent = Duration::ZERO;
    }
}
