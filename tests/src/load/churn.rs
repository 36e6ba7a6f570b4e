//! A player slot that is never empty for long: one player after another plays the stream
//! for a random while and leaves (closing its socket, as most players end a session), the
//! next joining at once. The soak (scripts/soak.sh) keeps 200 such slots busy for an hour.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::player::{play, PlayerReport, Shared};

/// Plays `app/name` in turns until `shared.stop`: each player stays between half and one
/// and a half times `lifetime`. Every join is counted in `joins`. The report sums what the
/// players saw; `error` is the first error of any of them.
pub async fn churn(
    addr: SocketAddr,
    app: &str,
    name: &str,
    mut shared: Shared,
    lifetime: Duration,
    joins: Arc<AtomicU64>,
) -> PlayerReport {
    let mut total = PlayerReport::default();
    while !*shared.stop.borrow() {
        let stay = lifetime.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
        joins.fetch_add(1, Ordering::Relaxed);
        let turn = play(addr, app, name, shared.clone());
        let r = tokio::select! {
            r = turn => Some(r),
            // Dropping the player closes its connection: it leaves.
            _ = tokio::time::sleep(stay) => None,
            _ = shared.stop.changed() => break,
        };
        if let Some(r) = r {
            // It ended on its own: an error (counted) or the stop signal.
            let failed = r.error.is_some();
            merge(&mut total, r);
            if failed {
                // Do not spin against a server that refuses.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    total
}

fn merge(total: &mut PlayerReport, r: PlayerReport) {
    if total.error.is_none() {
        total.error = r.error;
    }
    total.violations.extend(r.violations);
    total.bytes += r.bytes;
    total.join_ms = total.join_ms.or(r.join_ms);
    total.latencies_us.extend(r.latencies_us);
    total.video_frames += r.video_frames;
    total.audio_frames += r.audio_frames;
    total.missed += r.missed;
}
