//! What every binary of the media server does the same way before and around its real
//! work: logging set-up (`log`), waiting for a shutdown signal (`signal`), finding and
//! securing the private runtime directory that holds the hub socket (`dir`), raising the
//! open-file limit and sizing connection limits from it (`fds`), the exit statuses the
//! supervisor acts on (`exit`), byte sizes with units in flags (`size`), the flags every
//! component has and starting its command line and tokio runtime (`start`), and with the
//! `tls-client` feature the TLS client side (`tls_client`), with `rules-file` the rules
//! files reloaded on SIGHUP (`rules_file`).
//!
//! This is the one crate that reads the environment (`RUST_LOG`, `NO_COLOR`,
//! `XDG_RUNTIME_DIR`, `USER`); `proto` stays free of it.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod dir;
pub mod exit;
pub mod fds;
pub mod log;
#[cfg(feature = "rules-file")]
pub mod rules_file;
pub mod signal;
pub mod size;
pub mod start;
#[cfg(feature = "tls-client")]
pub mod tls_client;
