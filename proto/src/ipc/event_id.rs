//! The `id` the hub stamps on every event (FORMAT.md section 3.1):
//! `<hub start, ms, hex>.<hub pid, hex>.<counter>`. The hub writes it, subscribers read it
//! back to tell a replayed event from a new one; both sides use this one definition.

use std::fmt;

/// An event's stamp id: which hub run routed it, and its place in that run's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId<'a> {
    /// `<hub start, ms, hex>.<hub pid, hex>`: differs between hub processes.
    pub run: &'a str,
    /// From 1 at the hub's start, up by one per event in the order every subscriber
    /// receives them.
    pub counter: u64,
}

impl<'a> EventId<'a> {
    /// The run part for a hub started at `started_ms` (Unix time) with process id `pid`.
    pub fn run_of(started_ms: u128, pid: u32) -> String {
        format!("{started_ms:x}.{pid:x}")
    }

    /// Reads an id back; None for one that does not have a decimal counter after its last
    /// `.` (an emitter's own field, or a hub of another format).
    pub fn parse(id: &'a str) -> Option<EventId<'a>> {
        let (run, counter) = id.rsplit_once('.')?;
        if run.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(EventId {
            run,
            counter: counter.parse().ok()?,
        })
    }
}

impl fmt::Display for EventId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.run, self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_id_round_trips() {
        let run = EventId::run_of(0x18f3a2b4c5d, 0x1a2b);
        assert_eq!(run, "18f3a2b4c5d.1a2b");
        let id = EventId {
            run: &run,
            counter: 42,
        };
        let text = id.to_string();
        assert_eq!(text, "18f3a2b4c5d.1a2b.42");
        assert_eq!(EventId::parse(&text), Some(id));
    }

    #[test]
    fn what_is_not_an_id_is_refused() {
        for bad in [
            "",
            "42",
            ".42",
            "abc.def",
            "a.b.+4",
            "a.b.",
            "a.b.18446744073709551616",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
    }
}
