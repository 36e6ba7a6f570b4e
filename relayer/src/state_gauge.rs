//! A task's place in a `{state}` gauge family (`mediaserver_relay_destinations`,
//! `mediaserver_relay_pulls`): it counts in exactly one state at a time, or in none once
//! stopped.

use std::sync::Arc;

/// One destination's or pull's share of a `{state}` gauge.
#[derive(Debug)]
pub struct StateGauge {
    metrics: Arc<telemetry::Metrics>,
    name: &'static str,
    state: Option<&'static str>,
}

impl StateGauge {
    /// Counted in no state yet.
    pub fn new(metrics: &Arc<telemetry::Metrics>, name: &'static str) -> StateGauge {
        StateGauge {
            metrics: metrics.clone(),
            name,
            state: None,
        }
    }

    /// Moves to `state`; `stopped` leaves every state.
    pub fn set(&mut self, state: &'static str) {
        if self.state == Some(state) {
            return;
        }
        if let Some(old) = self.state.take() {
            self.metrics.gauge(self.name, &[("state", old)]).dec();
        }
        if state != "stopped" {
            self.metrics.gauge(self.name, &[("state", state)]).inc();
            self.state = Some(state);
        }
    }
}

impl Drop for StateGauge {
    fn drop(&mut self) {
        self.set("stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_one_state_at_a_time() {
        let m = Arc::new(telemetry::Metrics::new());
        let live = m.gauge("g", &[("state", "live")]);
        let connecting = m.gauge("g", &[("state", "connecting")]);
        let mut a = StateGauge::new(&m, "g");
        let mut b = StateGauge::new(&m, "g");
        a.set("connecting");
        b.set("connecting");
        assert_eq!(connecting.get(), 2);
        a.set("live");
        a.set("live");
        assert_eq!((connecting.get(), live.get()), (1, 1));
        a.set("stopped");
        drop(b);
        assert_eq!((connecting.get(), live.get()), (0, 0));
    }
}
