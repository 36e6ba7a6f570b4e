//! Timestamp-based packet delivery (draft 4.5-4.7).
//!
//! A packet is delivered at time base plus its sender timestamp plus the latency, where
//! the time base follows the sender's clock (drift tracking) and the 32-bit microsecond
//! timestamps are unwrapped.

use std::time::{Duration, Instant};

/// Samples averaged before the drift is applied (libsrt: 1000).
const DRIFT_SAMPLES: u32 = 1000;
/// Drift beyond which the time base is moved, microseconds (libsrt: 5 ms).
const DRIFT_MAX_US: i64 = 5_000;

#[derive(Debug)]
pub(crate) struct Tsbpd {
    /// Local instant of sender timestamp 0 (extended), including the one-way delay.
    base: Instant,
    latency: Duration,
    /// The last extended timestamp seen, for unwrapping.
    last_ext: u64,
    drift_sum: i64,
    drift_count: u32,
    /// Total correction applied so far, microseconds (a statistic).
    pub(crate) drift_applied_us: i64,
}

impl Tsbpd {
    /// `now` is when a packet carrying sender timestamp `ts` arrived.
    pub(crate) fn new(now: Instant, ts: u32, latency: Duration) -> Self {
        let base = now
            .checked_sub(Duration::from_micros(u64::from(ts)))
            .unwrap_or(now);
        Tsbpd {
            base,
            latency,
            last_ext: u64::from(ts),
            drift_sum: 0,
            drift_count: 0,
            drift_applied_us: 0,
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        self.latency
    }

    /// Extends a 32-bit timestamp to the value nearest the last one seen.
    pub(crate) fn extend(&mut self, ts: u32) -> u64 {
        const WRAP: u64 = 1 << 32;
        let hi = self.last_ext & !(WRAP - 1);
        let cands = [hi.wrapping_sub(WRAP), hi, hi + WRAP];
        let ext = cands
            .into_iter()
            .filter(|c| c.checked_add(u64::from(ts)).is_some())
            .map(|c| c + u64::from(ts))
            .min_by_key(|e| e.abs_diff(self.last_ext))
            .unwrap_or(u64::from(ts));
        if ext > self.last_ext {
            self.last_ext = ext;
        }
        ext
    }

    /// When a packet with sender timestamp `ts` is due.
    pub(crate) fn delivery_time(&mut self, ts: u32) -> Instant {
        let ext = self.extend(ts);
        self.base + Duration::from_micros(ext) + self.latency
    }

    /// A drift sample: a control packet with sender timestamp `ts` arrived at `now`.
    /// Returns the correction when one was applied.
    pub(crate) fn drift_sample(&mut self, now: Instant, ts: u32) -> Option<i64> {
        let ext = self.extend(ts);
        let expected = self.base + Duration::from_micros(ext);
        let d = if now >= expected {
            (now - expected).as_micros() as i64
        } else {
            -((expected - now).as_micros() as i64)
        };
        self.drift_sum += d.clamp(-1_000_000, 1_000_000);
        self.drift_count += 1;
        if self.drift_count < DRIFT_SAMPLES {
            return None;
        }
        let avg = self.drift_sum / i64::from(self.drift_count);
        self.drift_sum = 0;
        self.drift_count = 0;
        if avg.abs() <= DRIFT_MAX_US {
            return None;
        }
        if avg > 0 {
            self.base += Duration::from_micros(avg as u64);
        } else {
            self.base -= Duration::from_micros((-avg) as u64);
        }
        self.drift_applied_us += avg;
        Some(avg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_timestamps() {
        let t0 = Instant::now();
        let mut t = Tsbpd::new(t0, u32::MAX - 10, Duration::from_millis(120));
        assert_eq!(t.extend(5), (1u64 << 32) + 5);
        // A late packet from before the wrap still maps before it.
        assert_eq!(t.extend(u32::MAX - 3), u64::from(u32::MAX - 3));
    }

    #[test]
    fn drift_moves_the_base() {
        let t0 = Instant::now();
        let mut t = Tsbpd::new(t0, 0, Duration::from_millis(120));
        let due0 = t.delivery_time(1_000_000);
        // The sender's clock runs 10 ms slow: its packets arrive 10 ms later than expected.
        let mut applied = None;
        for i in 0..DRIFT_SAMPLES {
            let ts = i * 1000;
            applied =
                applied.or(t.drift_sample(t0 + Duration::from_micros(u64::from(ts) + 10_000), ts));
        }
        assert_eq!(applied, Some(10_000));
        assert_eq!(t.delivery_time(1_000_000) - due0, Duration::from_millis(10));
        // Within 5 ms nothing moves.
        for i in 0..DRIFT_SAMPLES {
            let ts = 2_000_000 + i * 1000;
            assert_eq!(
                t.drift_sample(t0 + Duration::from_micros(u64::from(ts) + 13_000), ts),
                None
            );
        }
    }
}
