//! Reconnection delays: exponential from `min` to `max`, with full jitter in the upper
//! half (so that many destinations dropped by one outage do not all return at once).

use std::time::Duration;

/// A backoff schedule.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A schedule starting at `min` and doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The next delay; `unit` in [0, 1) picks the point in the jitter range (the caller's
    /// random number, so the schedule itself is deterministic).
    pub fn next(&mut self, unit: f64) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    /// Back to the first delay (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let top: Vec<u64> = (0..6).map(|_| b.next(1.0).as_millis() as u64).collect();
        assert_eq!(top, [1000, 2000, 4000, 8000, 10000, 10000]);
        b.reset();
        assert_eq!(b.next(0.0), Duration::from_millis(500));
        assert_eq!(b.next(0.5), Duration::from_millis(1500));
    }
}
