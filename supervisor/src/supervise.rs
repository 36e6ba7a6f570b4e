//! The supervising loop: starts the children in order, restarts the ones that exit, applies
//! a reloaded profile on SIGHUP (restarting only what changed), and stops them in order on
//! SIGINT/SIGTERM. Runs on the main thread, which is the only thread that
//! spawns children (see [`crate::child`]); helper threads only report events to it.

use std::io;
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use runtime::exit::CANNOT_START;

use crate::child::{self, Event, RunId};
use crate::component::{Component, Readiness, Role};
use crate::policy::{Decision, RestartPolicy, RestartState};
use crate::profile::{RulesFile, Settings};

/// How long the supervisor waits, once every component has exited, for their last output
/// lines to be copied (only a process a component left behind holds a pipe longer).
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// One component to run: which, where its binary is and its full command line.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The component.
    pub component: &'static Component,
    /// Its binary.
    pub bin: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The rules file `args` point it to, written before each start and on a reload
    /// that changes only it (then the component reloads it in place on SIGHUP).
    pub rules: Option<RulesFile>,
}

/// Writes `rules` (atomically: readers see the old file or the new one, never half).
fn write_rules(name: &str, rules: &RulesFile) {
    let tmp = rules.path.with_extension("toml.tmp");
    let written =
        std::fs::write(&tmp, &rules.text).and_then(|()| std::fs::rename(&tmp, &rules.path));
    if let Err(e) = written {
        tracing::error!(
            "cannot write {name}'s rules file {}: {e}",
            rules.path.display()
        );
    }
}

/// How the supervisor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped on a signal with every component healthy.
    Stopped,
    /// A component could not start at all (everything was stopped), or was given up on
    /// (the hub: everything was stopped; another component: the rest ran on until the
    /// signal).
    ComponentFailed,
}

enum State {
    /// Start due at this instant (components other than the hub also wait for it).
    Pending(Instant),
    Running(Running),
    Stopped,
    GaveUp,
}

struct Running {
    child: Child,
    run: u64,
    started: Instant,
    ready: bool,
    killed: bool,
    /// Sent SIGTERM by a reload (its flags changed, or it left the profile); SIGKILL at
    /// this instant if it is still running.
    replacing: Option<Instant>,
}

struct Slot {
    plan: Planned,
    /// Taken out of the profile by a reload: stopped, never started again.
    retired: bool,
    state: State,
    restart: RestartState,
    restarts: u64,
    runs: u64,
    /// `mediaserver_component_restarts_total{component}`.
    restarts_total: telemetry::Counter,
    /// `mediaserver_component_up{component}`: 1 while running and ready.
    up: telemetry::Gauge,
}

enum Phase {
    Normal,
    /// Stopping role `Role::STOP_ORDER[index]`; SIGKILL at `deadline`.
    Stopping {
        index: usize,
        deadline: Instant,
        killed: bool,
    },
    Forced,
}

/// Runs `plan` until a shutdown signal (or the hub is given up on). The shutdown signals
/// must have been blocked with [`crate::signals::block`] before any thread was started,
/// and this must run on the main thread.
pub fn run(plan: Vec<Planned>, settings: &Settings) -> io::Result<Outcome> {
    run_with_metrics(plan, settings, &telemetry::Metrics::new())
}

/// [`run`], counting restarts and running components in `metrics`
/// (`mediaserver_component_restarts_total`, `mediaserver_component_up`).
pub fn run_with_metrics(
    plan: Vec<Planned>,
    settings: &Settings,
    metrics: &telemetry::Metrics,
) -> io::Result<Outcome> {
    run_reporting(plan, settings, metrics, telemetry::Emitter::discard())
}

/// [`run_with_metrics`], also sending `component_start`, `component_exit`,
/// `component_restart` and `component_gave_up` events (proto/FORMAT.md 3.1) to `events`,
/// which keeps them while the hub is down. SIGHUP has no profile to reload here: the plan
/// stays, and the components that reload in place are sent SIGHUP.
pub fn run_reporting(
    plan: Vec<Planned>,
    settings: &Settings,
    metrics: &telemetry::Metrics,
    events: telemetry::Emitter,
) -> io::Result<Outcome> {
    let fixed = (plan.clone(), settings.clone());
    let mut no_hub = || tracing::warn!("received SIGUSR1: no hub socket known; ignored");
    run_reloading(
        plan,
        settings,
        metrics,
        events,
        &mut || Ok(fixed.clone()),
        &mut no_hub,
    )
}

/// Reads the profile again for SIGHUP: the new plan and settings, or every reason the
/// profile cannot be used (then the running one stays).
pub type Reload<'a> = dyn FnMut() -> Result<(Vec<Planned>, Settings), Vec<String>> + 'a;

/// What SIGUSR1 does (asks the hub for reconnect requests); called on the supervising
/// loop, so it must not wait.
pub type OnUser1<'a> = dyn FnMut() + 'a;

/// [`run_reporting`], calling `reload` on SIGHUP: components whose command line changed
/// are restarted with the new one, components that left the profile are stopped, new
/// ones are started, the others are sent SIGHUP when they reload in place
/// ([`Component::reloads_on_hangup`]); a refused profile changes nothing. SIGUSR1 calls
/// `on_user1` unless the supervisor is shutting down.
pub fn run_reloading(
    plan: Vec<Planned>,
    settings: &Settings,
    metrics: &telemetry::Metrics,
    events: telemetry::Emitter,
    reload: &mut Reload<'_>,
    on_user1: &mut OnUser1<'_>,
) -> io::Result<Outcome> {
    let (tx, rx) = mpsc::sync_channel(256);
    crate::signals::spawn_listener(tx.clone())?;
    let policy = RestartPolicy::from_settings(settings);
    let now = Instant::now();
    let mut sup = Supervisor {
        slots: plan
            .into_iter()
            .map(|plan| new_slot(plan, metrics, &policy, now))
            .collect(),
        metrics,
        reload_due: false,
        user1_due: false,
        phase: Phase::Normal,
        outcome: Outcome::Stopped,
        policy,
        ready_timeout: settings.ready_timeout,
        shutdown_timeout: settings.shutdown_timeout,
        events: tx,
        emitter: events,
    };
    loop {
        let now = Instant::now();
        sup.tick(now);
        if sup.finished() {
            break;
        }
        if std::mem::take(&mut sup.user1_due) {
            on_user1();
        }
        if std::mem::take(&mut sup.reload_due) {
            match reload() {
                Ok((plan, settings)) => sup.apply(plan, &settings, now),
                Err(problems) => {
                    for problem in &problems {
                        tracing::error!("reload: {problem}");
                    }
                    tracing::error!(
                        "SIGHUP: the profile was not reloaded ({} problems); the running \
                         configuration stays",
                        problems.len()
                    );
                }
            }
            continue;
        }
        let event = match sup.next_deadline() {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(now)) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(event) => event,
                Err(_) => break,
            },
        };
        sup.handle(event, Instant::now());
    }
    // The components' last lines (a recording finished, a clean exit) come before ours.
    if !child::drain_output(OUTPUT_DRAIN) {
        tracing::warn!(
            "a component's output was still open {OUTPUT_DRAIN:?} after it exited; its \
             last lines may be missing"
        );
    }
    let counts: Vec<String> = sup
        .slots
        .iter()
        .map(|s| format!("{}={}", s.plan.component.name, s.restarts))
        .collect();
    tracing::info!("supervisor stopped; restarts: {}", counts.join(" "));
    Ok(sup.outcome)
}

fn new_slot(
    plan: Planned,
    metrics: &telemetry::Metrics,
    policy: &RestartPolicy,
    now: Instant,
) -> Slot {
    let label = [("component", plan.component.name)];
    Slot {
        restarts_total: metrics.counter("mediaserver_component_restarts_total", &label),
        up: metrics.gauge("mediaserver_component_up", &label),
        plan,
        retired: false,
        state: State::Pending(now),
        restart: RestartState::new(policy),
        restarts: 0,
        runs: 0,
    }
}

struct Supervisor<'m> {
    slots: Vec<Slot>,
    metrics: &'m telemetry::Metrics,
    /// A SIGHUP arrived: reload the profile before waiting again.
    reload_due: bool,
    /// A SIGUSR1 arrived: ask for reconnect requests before waiting again.
    user1_due: bool,
    phase: Phase,
    outcome: Outcome,
    policy: RestartPolicy,
    ready_timeout: Duration,
    shutdown_timeout: Duration,
    events: mpsc::SyncSender<Event>,
    /// The component events, to the hub.
    emitter: telemetry::Emitter,
}

impl Supervisor<'_> {
    fn hub_ready(&self) -> bool {
        self.slots
            .iter()
            .filter(|s| s.plan.component.role == Role::Hub)
            .all(|s| matches!(&s.state, State::Running(r) if r.ready))
    }

    fn finished(&self) -> bool {
        let running = self
            .slots
            .iter()
            .any(|s| matches!(s.state, State::Running(_)));
        match self.phase {
            Phase::Normal => {
                let pending = self
                    .slots
                    .iter()
                    .any(|s| matches!(s.state, State::Pending(_)));
                if !running && !pending {
                    tracing::error!("no component left to run");
                    return true;
                }
                false
            }
            Phase::Stopping { .. } | Phase::Forced => !running,
        }
    }

    fn tick(&mut self, now: Instant) {
        match self.phase {
            Phase::Normal => {
                for index in 0..self.slots.len() {
                    let due = matches!(self.slots[index].state, State::Pending(at) if at <= now);
                    let gated =
                        self.slots[index].plan.component.role != Role::Hub && !self.hub_ready();
                    if due && !gated {
                        self.start(index, now);
                    }
                }
                for slot in &mut self.slots {
                    check_readiness(slot, now, self.ready_timeout);
                    check_replacing(slot, now);
                }
            }
            Phase::Stopping { .. } => self.tick_stopping(now),
            Phase::Forced => {}
        }
    }

    fn tick_stopping(&mut self, now: Instant) {
        // Move past every role with nothing left running, so an empty phase costs no wait.
        loop {
            let Phase::Stopping { index, .. } = self.phase else {
                return;
            };
            if self.role_running(Role::STOP_ORDER[index]) {
                break;
            }
            if index + 1 >= Role::STOP_ORDER.len() {
                return;
            }
            self.enter_phase(index + 1, now);
        }
        let Phase::Stopping {
            index,
            deadline,
            killed: false,
        } = self.phase
        else {
            return;
        };
        if now < deadline {
            return;
        }
        let role = Role::STOP_ORDER[index];
        for slot in self.slots.iter().filter(|s| s.plan.component.role == role) {
            if let State::Running(r) = &slot.state {
                tracing::warn!(
                    "{} did not stop within {}; killing it",
                    slot.plan.component.name,
                    humantime::format_duration(self.shutdown_timeout)
                );
                signal(r, Signal::SIGKILL);
            }
        }
        self.phase = Phase::Stopping {
            index,
            deadline,
            killed: true,
        };
    }

    fn role_running(&self, role: Role) -> bool {
        self.slots
            .iter()
            .any(|s| s.plan.component.role == role && matches!(s.state, State::Running(_)))
    }

    fn enter_phase(&mut self, index: usize, now: Instant) {
        let role = Role::STOP_ORDER[index];
        let mut grace = Duration::ZERO;
        for slot in self.slots.iter().filter(|s| s.plan.component.role == role) {
            if let State::Running(r) = &slot.state {
                tracing::info!("stopping {} (SIGTERM)", slot.plan.component.name);
                signal(r, Signal::SIGTERM);
                grace = grace.max(reconnect_grace(&slot.plan));
            }
        }
        self.phase = Phase::Stopping {
            index,
            deadline: now + grace + self.shutdown_timeout,
            killed: false,
        };
    }

    fn begin_shutdown(&mut self, now: Instant) {
        for slot in &mut self.slots {
            if matches!(slot.state, State::Pending(_)) {
                slot.state = State::Stopped;
            }
        }
        self.enter_phase(0, now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Normal => {
                let hub_ready = self.hub_ready();
                self.slots
                    .iter()
                    .filter_map(|slot| match &slot.state {
                        State::Pending(at)
                            if hub_ready || slot.plan.component.role == Role::Hub =>
                        {
                            Some(*at)
                        }
                        State::Running(r) if r.killed => None,
                        State::Running(Running {
                            replacing: Some(at),
                            ..
                        }) => Some(*at),
                        State::Running(r) if !r.ready => {
                            Some(match slot.plan.component.readiness {
                                Readiness::Running(settle) => r.started + settle,
                                Readiness::LogLine(_) => r.started + self.ready_timeout,
                            })
                        }
                        _ => None,
                    })
                    .min()
            }
            Phase::Stopping {
                deadline, killed, ..
            } => (!killed).then_some(deadline),
            Phase::Forced => None,
        }
    }

    fn start(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        let component = slot.plan.component;
        slot.runs += 1;
        let id = RunId {
            slot: index,
            run: slot.runs,
        };
        let ready_line = match component.readiness {
            Readiness::LogLine(line) => Some(line),
            Readiness::Running(_) => None,
        };
        if let Some(rules) = &slot.plan.rules {
            write_rules(component.name, rules);
        }
        match child::spawn(
            component.name,
            &slot.plan.bin,
            &slot.plan.args,
            ready_line,
            id,
            &self.events,
        ) {
            Ok(child) => {
                tracing::info!(
                    "started {} (pid {}, run {})",
                    component.name,
                    child.id(),
                    slot.runs
                );
                let fields = [
                    ("pid", child.id().to_string()),
                    ("run", slot.runs.to_string()),
                ];
                self.emitter
                    .send(component_event("component_start", component.name, fields));
                slot.state = State::Running(Running {
                    child,
                    run: slot.runs,
                    started: now,
                    ready: false,
                    killed: false,
                    replacing: None,
                });
            }
            Err(e) => {
                tracing::error!(
                    "cannot start {} ({}): {e}",
                    component.name,
                    slot.plan.bin.display()
                );
                self.after_exit(index, Duration::ZERO, false, now);
            }
        }
    }

    fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Signal(Signal::SIGHUP) => match self.phase {
                Phase::Normal => {
                    tracing::info!("received SIGHUP: reloading the profile");
                    self.reload_due = true;
                }
                _ => tracing::info!("received SIGHUP while shutting down: ignored"),
            },
            Event::Signal(Signal::SIGUSR1) => match self.phase {
                Phase::Normal => {
                    tracing::info!("received SIGUSR1: asking RTMP clients to reconnect");
                    self.user1_due = true;
                }
                _ => tracing::info!("received SIGUSR1 while shutting down: ignored"),
            },
            Event::Signal(signal) => match self.phase {
                Phase::Normal => {
                    tracing::info!(
                        "received {signal}: shutting down in order (send it again to force)"
                    );
                    self.begin_shutdown(now);
                }
                Phase::Stopping { .. } => {
                    tracing::warn!("received {signal} again: killing every child now");
                    for slot in &self.slots {
                        if let State::Running(r) = &slot.state {
                            signal_kill(r);
                        }
                    }
                    self.phase = Phase::Forced;
                }
                Phase::Forced => {}
            },
            Event::Ready(id) => {
                let slot = &mut self.slots[id.slot];
                if let State::Running(r) = &mut slot.state {
                    if r.run == id.run && !r.ready {
                        r.ready = true;
                        slot.restart.handle_ready();
                        slot.up.set(1);
                        tracing::info!(
                            "{} is ready (pid {}, after {} ms)",
                            slot.plan.component.name,
                            r.child.id(),
                            now.duration_since(r.started).as_millis()
                        );
                    }
                }
            }
            Event::Exited(id) => {
                let slot = &mut self.slots[id.slot];
                let State::Running(r) = &mut slot.state else {
                    return;
                };
                if r.run != id.run {
                    return;
                }
                let (status, code) = match r.child.wait() {
                    Ok(status) => (status.to_string(), status.code()),
                    Err(e) => (format!("unknown status ({e})"), None),
                };
                let uptime = now.duration_since(r.started);
                let ready = r.ready;
                let replaced = r.replacing.is_some();
                let fields = [
                    ("pid", r.child.id().to_string()),
                    ("status", status.clone()),
                    ("uptime_ms", uptime.as_millis().to_string()),
                    (
                        "expected",
                        (replaced || !matches!(self.phase, Phase::Normal)).to_string(),
                    ),
                ];
                let name = slot.plan.component.name;
                self.emitter
                    .send(component_event("component_exit", name, fields));
                let first_start = slot.runs == 1 && !ready;
                slot.state = State::Stopped;
                slot.up.set(0);
                let normal = matches!(self.phase, Phase::Normal);
                if normal && replaced {
                    if slot.retired {
                        tracing::info!("{name} stopped ({status}): no longer in the profile");
                    } else {
                        tracing::info!("{name} stopped ({status}); starting it with its new flags");
                        slot.state = State::Pending(now);
                    }
                } else if normal && first_start && code == Some(CANNOT_START.into()) {
                    // Its own error line says why; restarting would fail the same way,
                    // and running on without it would look up while serving nothing.
                    tracing::error!(
                        "{name} cannot start (exit status {CANNOT_START}, its error is above); \
                         stopping"
                    );
                    slot.state = State::GaveUp;
                    self.outcome = Outcome::ComponentFailed;
                    self.begin_shutdown(now);
                } else if normal {
                    tracing::warn!(
                        "{name} exited unexpectedly ({status}) after {} ms",
                        uptime.as_millis()
                    );
                    self.after_exit(id.slot, uptime, ready, now);
                } else {
                    tracing::info!("{name} stopped ({status})");
                }
            }
        }
    }

    /// Applies a reloaded profile: `plan` replaces the running one component by component.
    fn apply(&mut self, plan: Vec<Planned>, settings: &Settings, now: Instant) {
        self.policy = RestartPolicy::from_settings(settings);
        self.ready_timeout = settings.ready_timeout;
        self.shutdown_timeout = settings.shutdown_timeout;
        let mut report = Vec::new();
        let mut new: Vec<Option<Planned>> = plan.into_iter().map(Some).collect();
        for slot in self.slots.iter_mut().filter(|s| !s.retired) {
            let name = slot.plan.component.name;
            let wanted = new
                .iter_mut()
                .find(|p| p.as_ref().is_some_and(|p| p.component.name == name))
                .and_then(Option::take);
            let change = match wanted {
                None => {
                    slot.retired = true;
                    Change::Removed
                }
                Some(p) if p.bin == slot.plan.bin && p.args == slot.plan.args => {
                    if p.rules == slot.plan.rules {
                        Change::Same
                    } else {
                        slot.plan = p;
                        Change::Rules
                    }
                }
                Some(p) => {
                    slot.plan = p;
                    Change::Changed
                }
            };
            let done = change.apply(slot, &self.policy, self.shutdown_timeout, now);
            report.push(format!("{name} {done}"));
        }
        for plan in new.into_iter().flatten() {
            report.push(format!("{} added", plan.component.name));
            self.slots
                .push(new_slot(plan, self.metrics, &self.policy, now));
        }
        tracing::info!("SIGHUP: profile reloaded: {}", report.join("; "));
    }

    /// Applies the restart policy to slot `index`, whose run just ended.
    fn after_exit(&mut self, index: usize, uptime: Duration, ready: bool, now: Instant) {
        let slot = &mut self.slots[index];
        let name = slot.plan.component.name;
        match slot.restart.handle_exit(&self.policy, uptime, ready) {
            Decision::Restart { delay } => {
                slot.restarts += 1;
                slot.restarts_total.inc();
                tracing::warn!(
                    "restarting {name} in {} ms (restart {}, {} start failures in a row)",
                    delay.as_millis(),
                    slot.restarts,
                    slot.restart.start_failures()
                );
                slot.state = State::Pending(now + delay);
                let fields = [
                    ("delay_ms", delay.as_millis().to_string()),
                    ("restarts", slot.restarts.to_string()),
                    ("start_failures", slot.restart.start_failures().to_string()),
                ];
                self.emitter
                    .send(component_event("component_restart", name, fields));
            }
            Decision::GiveUp { start_failures } => {
                slot.state = State::GaveUp;
                let fields = [("start_failures", start_failures.to_string())];
                self.emitter
                    .send(component_event("component_gave_up", name, fields));
                self.outcome = Outcome::ComponentFailed;
                if slot.plan.component.role == Role::Hub {
                    tracing::error!(
                        "giving up on {name}: it failed {start_failures} times in a row \
                         without becoming ready; nothing works without the hub, shutting down"
                    );
                    self.begin_shutdown(now);
                } else {
                    tracing::error!(
                        "giving up on {name}: it failed {start_failures} times in a row \
                         without becoming ready; the other components keep running"
                    );
                }
            }
        }
    }
}

/// What a reload does to one component.
enum Change {
    Same,
    /// Only what its rules file holds changed: rewritten, and reloaded in place.
    Rules,
    Changed,
    Removed,
}

impl Change {
    /// Acts on `slot` (its plan already updated); says what was done, for the log.
    fn apply(
        self,
        slot: &mut Slot,
        policy: &RestartPolicy,
        shutdown_timeout: Duration,
        now: Instant,
    ) -> &'static str {
        let component = slot.plan.component;
        match (self, &mut slot.state) {
            (Change::Same, State::Running(r)) if component.reloads_on_hangup => {
                signal(r, Signal::SIGHUP);
                "unchanged (sent SIGHUP)"
            }
            (Change::Same, _) => "unchanged",
            (Change::Rules, state) => {
                if let Some(rules) = &slot.plan.rules {
                    write_rules(component.name, rules);
                }
                match state {
                    State::Running(r) => {
                        signal(r, Signal::SIGHUP);
                        "rules changed (reloaded in place, sent SIGHUP)"
                    }
                    State::GaveUp => {
                        *state = State::Pending(now);
                        slot.restart = RestartState::new(policy);
                        "rules changed (starting again)"
                    }
                    _ => "rules changed (starts with the new rules)",
                }
            }
            (change, State::Running(r)) => {
                if r.replacing.is_none() && !r.killed {
                    signal(r, Signal::SIGTERM);
                    r.replacing = Some(now + shutdown_timeout);
                }
                match change {
                    Change::Removed => "removed (stopping)",
                    _ => "changed (restarting)",
                }
            }
            (Change::Removed, state) => {
                *state = State::Stopped;
                "removed"
            }
            (_, state @ State::GaveUp) => {
                // New flags deserve a new try.
                *state = State::Pending(now);
                slot.restart = RestartState::new(policy);
                "changed (starting again)"
            }
            (_, _) => "changed (starts with the new flags)",
        }
    }
}

/// A supervisor event about `component`: its name first, then `fields`.
fn component_event<const N: usize>(
    kind: &str,
    component: &str,
    fields: [(&str, String); N],
) -> telemetry::events::Event {
    let mut all = vec![("component".to_owned(), component.to_owned())];
    all.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
    telemetry::events::Event {
        kind: kind.to_owned(),
        key: String::new(),
        conn_id: 0,
        remote: String::new(),
        fields: all,
    }
}

/// The `--reconnect-grace` a component was given (ingest-rtmp): at shutdown it first waits
/// up to that long for clients asked to reconnect, so its phase's deadline grows by it.
fn reconnect_grace(plan: &Planned) -> Duration {
    plan.args
        .iter()
        .find_map(|a| a.strip_prefix("--reconnect-grace="))
        .and_then(|v| humantime::parse_duration(v).ok())
        .unwrap_or(Duration::ZERO)
}

fn check_readiness(slot: &mut Slot, now: Instant, ready_timeout: Duration) {
    let State::Running(r) = &mut slot.state else {
        return;
    };
    if r.ready || r.killed {
        return;
    }
    let name = slot.plan.component.name;
    match slot.plan.component.readiness {
        Readiness::Running(settle) if now >= r.started + settle => {
            r.ready = true;
            slot.restart.handle_ready();
            tracing::info!("{name} is up (pid {})", r.child.id());
        }
        Readiness::LogLine(line) if now >= r.started + ready_timeout => {
            tracing::error!(
                "{name} did not log {line:?} within {}; killing it",
                humantime::format_duration(ready_timeout)
            );
            r.killed = true;
            signal(r, Signal::SIGKILL);
        }
        _ => {}
    }
}

/// A component a reload stopped that has not exited by its deadline is killed.
fn check_replacing(slot: &mut Slot, now: Instant) {
    let State::Running(r) = &mut slot.state else {
        return;
    };
    if r.killed || r.replacing.is_none_or(|at| now < at) {
        return;
    }
    tracing::warn!(
        "{} did not stop for the reload in time; killing it",
        slot.plan.component.name
    );
    r.killed = true;
    signal(r, Signal::SIGKILL);
}

fn signal_kill(r: &Running) {
    signal(r, Signal::SIGKILL);
}

/// Signals the child's process group (the child leads it, so helpers it started go too).
/// The child is not reaped until its exit event is handled, so the id is still its own.
fn signal(r: &Running, signal: Signal) {
    let pid = Pid::from_raw(r.child.id() as i32);
    if let Err(e) = killpg(pid, signal) {
        if e != nix::errno::Errno::ESRCH {
            tracing::warn!("cannot send {signal} to pid {pid}: {e}");
        }
    }
}
