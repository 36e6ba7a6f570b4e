//! When to restart a child that exited, and when to stop trying. Pure: the caller passes
//! in what happened, so the rules are tested without processes or clocks.

use std::time::Duration;

use crate::profile::Settings;

/// The bounds of the restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// First delay.
    pub min: Duration,
    /// Largest delay; the delay doubles up to it.
    pub max: Duration,
    /// Uptime after which the delay starts over at `min`.
    pub reset_after: Duration,
    /// Consecutive exits before readiness after which the component is given up.
    pub max_start_failures: u32,
}

impl RestartPolicy {
    /// The policy configured by a profile's `[supervisor]` section.
    pub fn from_settings(settings: &Settings) -> Self {
        RestartPolicy {
            min: settings.restart_backoff_min,
            max: settings.restart_backoff_max,
            reset_after: settings.restart_backoff_reset,
            max_start_failures: settings.max_start_failures,
        }
    }
}

/// What to do about a child that exited on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after `delay`.
    Restart {
        /// The backoff delay.
        delay: Duration,
    },
    /// It failed `start_failures` times in a row before becoming ready: stop trying.
    GiveUp {
        /// Consecutive start failures.
        start_failures: u32,
    },
}

/// Restart bookkeeping for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartState {
    next_delay: Duration,
    start_failures: u32,
}

impl RestartState {
    /// A component that has not failed yet.
    pub fn new(policy: &RestartPolicy) -> Self {
        RestartState {
            next_delay: policy.min,
            start_failures: 0,
        }
    }

    /// Consecutive exits before readiness so far.
    pub fn start_failures(&self) -> u32 {
        self.start_failures
    }

    /// Records that the component just became ready: start failures are forgiven.
    pub fn handle_ready(&mut self) {
        self.start_failures = 0;
    }

    /// Decides about an exit after `uptime`, where `became_ready` says whether this run
    /// ever became ready.
    pub fn handle_exit(
        &mut self,
        policy: &RestartPolicy,
        uptime: Duration,
        became_ready: bool,
    ) -> Decision {
        if uptime >= policy.reset_after {
            self.next_delay = policy.min;
        }
        if became_ready {
            self.start_failures = 0;
        } else {
            self.start_failures += 1;
            if self.start_failures >= policy.max_start_failures {
                return Decision::GiveUp {
                    start_failures: self.start_failures,
                };
            }
        }
        let delay = self.next_delay;
        self.next_delay = (self.next_delay * 2).min(policy.max);
        Decision::Restart { delay }
    }
}
