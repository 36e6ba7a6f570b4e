//! hookd: a hub subscriber (events only, no media) that delivers every event to its
//! sinks: webhooks ([`webhook`]), programs ([`shell`]) and stdout ([`json`] lines).
//!
//! ```text
//!  hub.sock --Event--> link.rs --Arc<Delivery>--> stdout (one JSON line)
//!                                              +-> webhook.rs: one task + bounded queue per URL
//!                                              +-> shell.rs: one program per event, bounded
//! ```
//!
//! Sinks never block the link: each webhook has its own queue and task, so a slow or
//! dead endpoint delays only itself.

pub mod json;
pub mod link;
pub mod queue;
pub mod rule;
pub mod shell;
pub mod webhook;
