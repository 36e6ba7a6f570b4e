//! The restart policy: exponential backoff, reset after a long run, give up on start loops.

use std::time::Duration;

use supervisor::{Decision, RestartPolicy, RestartState};

const POLICY: RestartPolicy = RestartPolicy {
    min: Duration::from_millis(100),
    max: Duration::from_secs(10),
    reset_after: Duration::from_secs(60),
    max_start_failures: 5,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn backoff_doubles_up_to_the_bound_for_ready_children() {
    let mut state = RestartState::new(&POLICY);
    let delays: Vec<Duration> = (0..10)
        .map(|_| match state.handle_exit(&POLICY, ms(1000), true) {
            Decision::Restart { delay } => delay,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        delays,
        [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000].map(ms)
    );
}

#[test]
fn a_long_run_resets_the_backoff() {
    let mut state = RestartState::new(&POLICY);
    for _ in 0..4 {
        state.handle_exit(&POLICY, ms(10), true);
    }
    assert_eq!(
        state.handle_exit(&POLICY, Duration::from_secs(60), true),
        Decision::Restart { delay: ms(100) }
    );
}

#[test]
fn start_failures_give_up_after_the_limit() {
    let mut state = RestartState::new(&POLICY);
    for n in 1..5 {
        assert!(matches!(
            state.handle_exit(&POLICY, ms(5), false),
            Decision::Restart { .. }
        ));
        assert_eq!(state.start_failures(), n);
    }
    assert_eq!(
        state.handle_exit(&POLICY, ms(5), false),
        Decision::GiveUp { start_failures: 5 }
    );
}

#[test]
fn becoming_ready_forgives_start_failures() {
    let mut state = RestartState::new(&POLICY);
    for _ in 0..4 {
        state.handle_exit(&POLICY, ms(5), false);
    }
    state.handle_ready();
    assert_eq!(state.start_failures(), 0);
    for _ in 0..4 {
        assert!(matches!(
            state.handle_exit(&POLICY, ms(5), false),
            Decision::Restart { .. }
        ));
    }
}
