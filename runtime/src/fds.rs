//! File descriptors: every connection, file and socket of a component is one, and a
//! process that runs out of them cannot even accept a connection to refuse it. Each binary
//! raises its soft `RLIMIT_NOFILE` to the hard limit at start ([`raise_limit`]) and sizes
//! its connection limits from the result ([`budget`]).

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Below this many descriptors a component warns at start: a busy server needs more.
pub const LOW: u64 = 4096;

/// Descriptors kept aside for everything that is not a client connection (listeners,
/// the hub link, log and recording files, the runtime's own).
pub const RESERVED: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now in
/// force. Logs a warning naming both when it stays below [`LOW`]. On a system that does
/// not report the limit, returns [`LOW`].
pub fn raise_limit() -> u64 {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return LOW;
        }
    };
    let now = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit");
                soft
            }
        }
    } else {
        soft
    };
    if now < LOW {
        tracing::warn!(
            limit = now,
            hard,
            "open-file limit is low: connection limits are sized down to fit; raise the hard \
             limit (ulimit -Hn, LimitNOFILE=) to serve more clients"
        );
    } else {
        tracing::debug!(limit = now, "open-file limit");
    }
    now
}

/// The soft `RLIMIT_NOFILE` in force (after [`raise_limit`], the limit it returned); on a
/// system that does not report it, [`LOW`].
pub fn limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(LOW, |(soft, _)| soft)
}

/// How many connections fit in `limit` descriptors when each one needs `per_connection`
/// of them, after [`RESERVED`]; at least 1.
pub fn budget(limit: u64, per_connection: u64) -> usize {
    let n = limit.saturating_sub(RESERVED) / per_connection.max(1);
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_leaves_the_reserve() {
        assert_eq!(budget(1024, 1), 960);
        assert_eq!(budget(1024, 2), 480);
        assert_eq!(budget(10, 2), 1);
        assert_eq!(
            budget(u64::MAX, 1) as u64,
            (u64::MAX - RESERVED).min(usize::MAX as u64)
        );
    }

    #[test]
    fn raising_is_idempotent() {
        let first = raise_limit();
        assert_eq!(raise_limit(), first);
        assert_eq!(limit(), first);
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, first);
        assert_eq!(soft, hard);
    }
}
