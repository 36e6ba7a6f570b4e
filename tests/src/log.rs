//! Line buffers filled from a child's pipe by a reader thread, with bounded waits on them.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

#[derive(Default)]
struct State {
    lines: Vec<String>,
    closed: bool,
}

/// Lines read so far from one pipe, and whether the pipe has closed.
#[derive(Default)]
pub struct LineLog {
    state: Mutex<State>,
    changed: Condvar,
}

impl LineLog {
    /// Starts a thread that reads `pipe` line by line into a new log until EOF.
    /// ANSI escape sequences are removed so assertions can match `key=value` text.
    pub fn spawn_reader(pipe: impl Read + Send + 'static) -> (Arc<LineLog>, JoinHandle<()>) {
        let log = Arc::new(LineLog::default());
        let writer = Arc::clone(&log);
        let handle = std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&raw);
                        writer.push(strip_ansi(text.trim_end_matches(['\n', '\r'])));
                    }
                }
            }
            writer.close();
        });
        (log, handle)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An empty, open log that the test itself writes to (see [`LineLog::push`]).
    pub fn new_shared() -> Arc<LineLog> {
        Arc::new(LineLog::default())
    }

    /// Appends a line and wakes waiters.
    pub fn push(&self, line: String) {
        self.lock().lines.push(line);
        self.changed.notify_all();
    }

    /// Marks the log complete: no more lines will come.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// A copy of every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.clone()
    }

    /// How many lines have arrived so far (a marker for [`LineLog::wait_for`]).
    pub fn len(&self) -> usize {
        self.lock().lines.len()
    }

    /// Whether no line has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the writing end has closed (the process exited or closed the pipe).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How many lines satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lock().lines.iter().filter(|l| pred(l)).count()
    }

    /// Waits until a line at index `from` or later satisfies `pred`, and returns it.
    /// Returns `None` when the deadline passes or the pipe closes first.
    pub fn wait_for(
        &self,
        from: usize,
        deadline: Instant,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let mut state = self.lock();
        let mut checked = from;
        loop {
            if let Some(line) = state.lines.iter().skip(checked).find(|l| pred(l)) {
                return Some(line.clone());
            }
            checked = checked.max(state.lines.len());
            if state.closed {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until at least `n` lines satisfy `pred`; returns whether that happened before
    /// the deadline (or the pipe closing).
    pub fn wait_count(&self, n: usize, deadline: Instant, pred: impl Fn(&str) -> bool) -> bool {
        let mut state = self.lock();
        loop {
            if state.lines.iter().filter(|l| pred(l)).count() >= n {
                return true;
            }
            let now = Instant::now();
            if state.closed || now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until the pipe closes; returns whether it did before the deadline.
    pub fn wait_closed(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        loop {
            if state.closed {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The last `n` lines joined for a failure message.
    pub fn tail(&self, n: usize) -> String {
        let state = self.lock();
        let start = state.lines.len().saturating_sub(n);
        state.lines[start..].join("\n")
    }
}

/// Panics when a line of any of `logs` (each named for the message) contains any of
/// `secrets`: credentials must reach neither a process's log nor an event.
pub fn assert_no_secrets(logs: &[(&str, &LineLog)], secrets: &[&str]) {
    for (name, log) in logs {
        for line in log.lines() {
            for s in secrets {
                assert!(!line.contains(s), "{name} shows a secret: {line}");
            }
        }
    }
}

/// Removes ANSI CSI escape sequences (colors) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates run until a final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of a `name=value` word of a log or event line (`hub_events::line`).
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colors() {
        let line = "\u{1b}[2m2026\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m \u{1b}[2mconn_id\u{1b}[0m\u{1b}[2m=\u{1b}[0m7";
        assert_eq!(strip_ansi(line), "2026  WARN conn_id=7");
    }
}
