//! Failed attempts per client address: after `max_failures` failures within `window`, the
//! address is refused without checking until the window has passed since its first counted
//! failure. IPv6 addresses count per /64 (one host usually owns the whole prefix).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most addresses tracked at once; beyond it, expired entries are dropped first, then the
/// oldest.
pub const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Entry {
    since: Instant,
    failures: u32,
}

/// The bookkeeping. Pure: every call takes `now`.
#[derive(Debug)]
pub struct Limiter {
    max_failures: u32,
    window: Duration,
    entries: HashMap<IpAddr, Entry>,
}

fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Limiter {
    /// Locks an address out after `max_failures` failures within `window`; 0 disables.
    pub fn new(max_failures: u32, window: Duration) -> Limiter {
        Limiter {
            max_failures,
            window,
            entries: HashMap::new(),
        }
    }

    /// Whether `ip` is locked out at `now`.
    pub fn is_locked(&self, ip: IpAddr, now: Instant) -> bool {
        self.max_failures > 0
            && self.entries.get(&bucket(ip)).is_some_and(|e| {
                e.failures >= self.max_failures && now.duration_since(e.since) < self.window
            })
    }

    /// Counts a failed attempt from `ip`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        if self.max_failures == 0 {
            return;
        }
        if self.entries.len() >= MAX_TRACKED {
            let window = self.window;
            self.entries
                .retain(|_, e| now.duration_since(e.since) < window);
            if self.entries.len() >= MAX_TRACKED {
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.since)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        let e = self.entries.entry(bucket(ip)).or_insert(Entry {
            since: now,
            failures: 0,
        });
        if now.duration_since(e.since) >= self.window {
            *e = Entry {
                since: now,
                failures: 0,
            };
        }
        e.failures = e.failures.saturating_add(1);
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_failures_then_forgets() {
        let t0 = Instant::now();
        let mut l = Limiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..3 {
            assert!(!l.is_locked(ip, t0), "after {i}");
            l.failed(ip, t0 + Duration::from_secs(i));
        }
        assert!(l.is_locked(ip, t0 + Duration::from_secs(10)));
        assert!(!l.is_locked(other, t0));
        assert!(!l.is_locked(ip, t0 + Duration::from_secs(61)));
        // A new window starts from the next failure.
        l.failed(ip, t0 + Duration::from_secs(61));
        assert!(!l.is_locked(ip, t0 + Duration::from_secs(62)));
    }

    #[test]
    fn ipv6_counts_per_prefix_and_zero_disables() {
        let t0 = Instant::now();
        let mut l = Limiter::new(2, Duration::from_secs(60));
        l.failed("2001:db8::1".parse().unwrap(), t0);
        l.failed("2001:db8::2".parse().unwrap(), t0);
        assert!(l.is_locked("2001:db8::99".parse().unwrap(), t0));
        assert!(!l.is_locked("2001:db9::1".parse().unwrap(), t0));
        let mut off = Limiter::new(0, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..10 {
            off.failed(ip, t0);
        }
        assert!(!off.is_locked(ip, t0));
        assert_eq!(off.tracked(), 0);
    }

    #[test]
    fn bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, Duration::from_secs(60));
        for i in 0..(MAX_TRACKED as u32 + 10) {
            l.failed(IpAddr::V4(i.into()), t0);
        }
        assert!(l.tracked() <= MAX_TRACKED);
    }
}
