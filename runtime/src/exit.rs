//! Exit statuses the components and the supervisor agree on (documented in
//! `docs/supervisor.md`), and ending a binary's run with one of them ([`crate::exit_code`]).

/// A component could not start for a reason that starting it again will not fix: its
/// listen address is in use or not permitted, its hub socket is served by a running hub,
/// its output cannot be opened. It has logged one line saying which and why. The
/// supervisor treats this status on a component's first start as fatal (it stops the
/// others and exits non-zero) instead of restarting the component. `EX_CONFIG` in
/// `sysexits.h`.
pub const CANNOT_START: u8 = 78;

/// Any other failure: the component ran and then failed; the supervisor's restart policy
/// applies.
pub const FAILED: u8 = 1;

/// Why a component's run ended in error, which fixes its exit status.
#[derive(Debug)]
pub enum Failure<E> {
    /// Before it served anything, for a reason starting again will not fix
    /// ([`CANNOT_START`]).
    CannotStart(E),
    /// Anything else ([`FAILED`]).
    Failed(E),
}

impl<E> Failure<E> {
    /// The exit status this failure ends the process with.
    pub fn status(&self) -> u8 {
        match self {
            Failure::CannotStart(_) => CANNOT_START,
            Failure::Failed(_) => FAILED,
        }
    }

    /// The error itself.
    pub fn error(&self) -> &E {
        match self {
            Failure::CannotStart(e) | Failure::Failed(e) => e,
        }
    }
}

/// The [`std::process::ExitCode`] of a finished run, a `Result<(), Failure<E>>` with
/// `E: Display`. A failure is logged first as one error line in the calling binary's log
/// target (the alternate form, so an `anyhow` chain reads `what: why: cause`), never as
/// the multi-line report (and backtrace) that returning an error from `main` prints.
/// The caller depends on `tracing`.
#[macro_export]
macro_rules! exit_code {
    ($result:expr) => {
        match $result {
            Ok(()) => ::std::process::ExitCode::SUCCESS,
            Err(failure) => {
                ::tracing::error!("{:#}", failure.error());
                ::std::process::ExitCode::from(failure.status())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::ExitCode;

    #[test]
    fn statuses() {
        assert_eq!(Failure::CannotStart("x").status(), 78);
        assert_eq!(Failure::Failed("x").status(), 1);
        assert_eq!(*Failure::Failed("y").error(), "y");
        let ok: Result<(), Failure<&str>> = Ok(());
        assert_eq!(crate::exit_code!(ok), ExitCode::SUCCESS);
        let failed: Result<(), _> = Err(Failure::CannotStart("z"));
        assert_eq!(crate::exit_code!(failed), ExitCode::from(78));
    }
}
