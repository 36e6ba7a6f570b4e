//! A task's one timer, for `select!` loops whose deadline may be unset or move.

use std::pin::Pin;
use std::time::Instant;

use tokio::time::Sleep;

/// One `Sleep` for a task's lifetime, re-armed only when the deadline changes: a loop
/// that wakes for every frame does not register a new timer on each wake.
#[derive(Debug)]
pub struct Timer {
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

#[cfg(test)]
thread_local! {
    /// Deadlines armed on this thread: a test on a current-thread runtime counts what the
    /// tasks it drives arm.
    static ARMED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many deadlines timers on this thread have armed so far.
#[cfg(test)]
pub(crate) fn armed_on_this_thread() -> u64 {
    ARMED.with(|a| a.get())
}

impl Default for Timer {
    fn default() -> Timer {
        Timer::new()
    }
}

impl Timer {
    /// A timer without a deadline (it never fires until one is set).
    pub fn new() -> Timer {
        Timer {
            // Not polled (so not registered) until a deadline is set.
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            armed: None,
        }
    }

    /// Sets the deadline (`None`: never fires); the timer is re-armed only if it moved.
    pub fn set(&mut self, deadline: Option<Instant>) {
        if deadline == self.armed {
            return;
        }
        if let Some(d) = deadline {
            self.sleep.as_mut().reset(tokio::time::Instant::from_std(d));
            #[cfg(test)]
            ARMED.with(|a| a.set(a.get() + 1));
        }
        self.armed = deadline;
    }

    /// Resolves at the deadline (at once if it passed), or never when there is none.
    pub async fn wait(&mut self) {
        match self.armed {
            Some(_) => self.sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_timer_is_rearmed_only_when_the_deadline_moves() {
        let base = armed_on_this_thread();
        let arms = || armed_on_this_thread() - base;
        let mut t = Timer::new();
        let d = Instant::now() + Duration::from_millis(20);
        for _ in 0..1000 {
            t.set(Some(d));
        }
        assert_eq!(arms(), 1, "the same deadline on every wake arms once");
        t.wait().await;
        assert!(Instant::now() >= d);

        let later = d + Duration::from_millis(5);
        t.set(Some(later));
        assert_eq!(arms(), 2);
        t.wait().await;
        assert!(Instant::now() >= later);

        t.set(None);
        let never = tokio::time::timeout(Duration::from_millis(30), t.wait()).await;
        assert!(never.is_err(), "no deadline: never fires");
        t.set(Some(later));
        assert_eq!(arms(), 3, "a deadline after none is armed again");
        t.wait().await;
    }
}
