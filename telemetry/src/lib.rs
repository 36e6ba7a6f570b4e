//! A component's counters and gauges ([`Metrics`]) and the task that reports them to the
//! hub ([`report`]), which serves the whole system's numbers at `/metrics`.
//!
//! ```text
//!  hot paths: Counter::add / Gauge::inc (one relaxed atomic)
//!        |
//!  Metrics (series -> atomic) --snapshot every second--> report() --Event "metrics"--> hub.sock
//! ```
//!
//! Events go the same way through an [`Emitter`], which keeps them while the hub is away.
//! Every client of the hub opens its connection with [`hub_conn`]; a subscriber that must
//! outlive a hub restart (recorder, relayer, hookd) runs in [`subscription::keep_subscribed`].
//!
//! The report format is `proto::metrics` (proto/FORMAT.md section 9); the names are listed
//! with their meaning in docs/metrics.md.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod catalog;
pub mod control;
pub mod events;
pub mod hub_conn;
mod registry;
mod report;
pub mod subscription;

pub use events::Emitter;
pub use registry::{Counter, Gauge, GaugeGuard, Metrics};
pub use report::{report, report_from_thread, REPORT_INTERVAL};
