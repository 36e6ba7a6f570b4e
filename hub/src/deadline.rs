//! Sleeping until an optional deadline, for `select!` branches whose timer may be unset.

use std::time::Instant;

/// Resolves at `deadline`, or never when there is none.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
