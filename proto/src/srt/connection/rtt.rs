//! Round-trip time from ACK/ACKACK pairs (draft 4.10): an exponentially weighted mean and
//! variance, as libsrt computes them.

use std::time::Duration;

/// RTT estimate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rtt {
    rtt_us: u32,
    var_us: u32,
    sampled: bool,
}

impl Default for Rtt {
    fn default() -> Self {
        // libsrt's initial values.
        Rtt {
            rtt_us: 100_000,
            var_us: 50_000,
            sampled: false,
        }
    }
}

impl Rtt {
    pub(crate) fn sample(&mut self, sample: Duration) {
        let s = sample.as_micros().min(u32::MAX as u128) as u32;
        if !self.sampled {
            // The first measurement replaces the guess (libsrt 1.5 does the same).
            self.sampled = true;
            self.rtt_us = s;
            self.var_us = s / 2;
            return;
        }
        let diff = self.rtt_us.abs_diff(s);
        self.var_us = ((u64::from(self.var_us) * 3 + u64::from(diff)) / 4) as u32;
        self.rtt_us = ((u64::from(self.rtt_us) * 7 + u64::from(s)) / 8) as u32;
    }

    /// Take the receiver's values from an ACK (the sender side has no ACKACK of its own).
    pub(crate) fn set(&mut self, rtt_us: u32, var_us: u32) {
        self.sampled = true;
        self.rtt_us = rtt_us;
        self.var_us = var_us;
    }

    pub(crate) fn rtt_us(&self) -> u32 {
        self.rtt_us
    }

    pub(crate) fn var_us(&self) -> u32 {
        self.var_us
    }

    /// RTT + 4 x RTTVar: when an unanswered request is considered lost.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_micros(u64::from(self.rtt_us) + 4 * u64::from(self.var_us))
    }
}
