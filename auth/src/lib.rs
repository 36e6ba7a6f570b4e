//! Who may publish and who may play: the auth decisions of every ingest (RTMP, RTMPS, SRT).
//!
//! ```text
//!  ingest (rtmp/srt) --Request{action, protocol, key, remote, params}--> Authenticator
//!                                                                          | limiter: locked-out address?
//!                                                                          | mode for the action:
//!                                                                          |   none | token | file | callback | jwt
//!                                                                          v
//!  ingest <--Outcome{Allow{key, passphrase} | Deny(Denial)} + event() for the hub
//! ```
//!
//! The decisions themselves are pure and take `now` as an argument: secret tables from flags or a file ([`table`]), JWT claims ([`jwt`]),
//! callback documents ([`callback`]), failed-attempt bookkeeping ([`limiter`]), redaction
//! ([`redact`]), SRT stream id fields ([`srt`]) and constant-time comparison ([`secret`]). The thin async part,
//! [`Authenticator`], owns what needs I/O: reading the file and keys, reloading them, the
//! HTTP callback and the JWKS download ([`http`]).
//!
//! Why a crate of its own: ingest-rtmp and ingest-srt must decide alike without depending on
//! each other, and `proto` stays free of I/O and clocks.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod callback;
pub mod config;
pub mod http;
pub mod jwt;
pub mod limiter;
pub mod redact;
mod refusal;
pub mod request;
pub mod secret;
mod service;
pub mod srt;
pub mod table;

pub use config::{AuthArgs, Mode};
pub use refusal::{Refusal, RefusalReason};
pub use request::{Action, Denial, Outcome, Protocol, Request};
pub use secret::Secret;
pub use service::{Authenticator, LoadError};
