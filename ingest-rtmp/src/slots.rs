//! Connection slots: who may hold one of the listener's connections, decided on accept
//! without ever waiting.
//!
//! A connection is *in setup* from accept until it publishes or is handed to the hub as a
//! player; only then is it *established*. The slow cannot hold slots against the rest:
//! - when the process is at `--max-connections`, a new connection takes the slot of the
//!   oldest connection still in setup (which is told to close); only when every slot is
//!   established is the new one refused;
//! - the same holds per remote address at `--max-connections-per-ip`;
//! - an address opens at most `--max-new-connections-per-ip` connections per second
//!   (a token bucket with one second of burst), so one address cannot churn the others
//!   out.
//!
//! Connections in setup are also closed by their own deadline (`--setup-timeout`), so the
//! eviction only matters while an attack lasts.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

/// Admissions between two sweeps of the address table (amortizes the sweep to O(1)).
const SWEEP_EVERY: usize = 1024;

/// The limits, from the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotLimits {
    /// Connections at once.
    pub(crate) max: usize,
    /// Connections at once from one address.
    pub(crate) per_ip: usize,
    /// New connections per second from one address (also the burst).
    pub(crate) new_per_ip_per_sec: u32,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every slot is held by an established connection.
    Full { max: usize },
    /// Every slot of this address is held by an established connection.
    AddressFull { max: usize },
    /// The address opens connections faster than allowed.
    TooFast { per_sec: u32 },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Full { max } => {
                write!(f, "{max} connections already publishing or playing")
            }
            Refusal::AddressFull { max } => write!(
                f,
                "{max} connections from this address already publishing or playing"
            ),
            Refusal::TooFast { per_sec } => write!(
                f,
                "more than {per_sec} new connections per second from this address"
            ),
        }
    }
}

struct Entry {
    ip: IpAddr,
    evict: Arc<Notify>,
}

struct Address {
    open: usize,
    tokens: f64,
    refilled: Instant,
}

#[derive(Default)]
struct Table {
    conns: HashMap<u64, Entry>,
    /// Connections in setup, oldest (lowest id) first.
    setup: BTreeMap<u64, IpAddr>,
    addrs: HashMap<IpAddr, Address>,
    /// Admissions since the last sweep of idle addresses.
    since_sweep: usize,
}

/// The listener's connection table, shared by the accept loop and the connections.
pub(crate) struct Slots {
    limits: SlotLimits,
    table: Mutex<Table>,
}

/// One admitted connection's slot; dropping it frees the slot.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    conn_id: u64,
    evict: Arc<Notify>,
}

impl Slots {
    pub(crate) fn new(limits: SlotLimits) -> Arc<Slots> {
        Arc::new(Slots {
            limits,
            table: Mutex::new(Table::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a consistent table (no multi-step updates
        // across a panic point), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits connection `conn_id` from `ip` at `now`, evicting the oldest connection in
    /// setup if that is what makes room. Returns the evicted connection's id with the slot.
    pub(crate) fn admit(
        self: &Arc<Self>,
        conn_id: u64,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(Slot, Vec<u64>), Refusal> {
        let l = self.limits;
        let mut t = self.lock();
        let rate = f64::from(l.new_per_ip_per_sec.max(1));
        t.since_sweep += 1;
        if t.since_sweep >= SWEEP_EVERY {
            t.sweep(now, rate);
        }
        let addr = t.addrs.entry(ip).or_insert(Address {
            open: 0,
            tokens: rate,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(addr.refilled).as_secs_f64();
        addr.tokens = (addr.tokens + elapsed * rate).min(rate);
        addr.refilled = now;
        if addr.tokens < 1.0 {
            let per_sec = l.new_per_ip_per_sec;
            t.forget_idle(ip, rate);
            return Err(Refusal::TooFast { per_sec });
        }
        let addr_open = addr.open;
        let mut evicted = Vec::new();
        if addr_open >= l.per_ip {
            let Some(victim) = t.setup.iter().find(|(_, a)| **a == ip).map(|(&id, _)| id) else {
                return Err(Refusal::AddressFull { max: l.per_ip });
            };
            t.evict(victim);
            evicted.push(victim);
        }
        if t.conns.len() >= l.max {
            let Some((&victim, _)) = t.setup.iter().next() else {
                t.forget_idle(ip, rate);
                return Err(Refusal::Full { max: l.max });
            };
            t.evict(victim);
            evicted.push(victim);
        }
        let evict = Arc::new(Notify::new());
        let addr = t.addrs.get_mut(&ip).expect("address entry made above");
        addr.tokens -= 1.0;
        addr.open += 1;
        t.conns.insert(
            conn_id,
            Entry {
                ip,
                evict: evict.clone(),
            },
        );
        t.setup.insert(conn_id, ip);
        Ok((
            Slot {
                slots: self.clone(),
                conn_id,
                evict,
            },
            evicted,
        ))
    }

    /// Connections held now, and how many of them are in setup.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let t = self.lock();
        (t.conns.len(), t.setup.len())
    }
}

impl Table {
    fn evict(&mut self, conn_id: u64) {
        self.setup.remove(&conn_id);
        if let Some(e) = self.conns.remove(&conn_id) {
            if let Some(a) = self.addrs.get_mut(&e.ip) {
                a.open -= 1;
            }
            // Stored if the connection is not waiting right now: it sees it next time.
            e.evict.notify_one();
        }
    }

    /// Forgets every address with nothing open whose bucket has refilled: remembering it
    /// changes nothing, and the table stays as small as the set of active addresses.
    fn sweep(&mut self, now: Instant, rate: f64) {
        self.since_sweep = 0;
        self.addrs.retain(|_, a| {
            let elapsed = now.saturating_duration_since(a.refilled).as_secs_f64();
            a.open > 0 || a.tokens + elapsed * rate < rate
        });
    }

    /// Drops the entry of an address with no connections and a full bucket, so the
    /// table stays as small as the set of addresses that are active.
    fn forget_idle(&mut self, ip: IpAddr, rate: f64) {
        if self
            .addrs
            .get(&ip)
            .is_some_and(|a| a.open == 0 && a.tokens >= rate)
        {
            self.addrs.remove(&ip);
        }
    }
}

impl Slot {
    /// The connection publishes or was handed over: it can no longer be evicted.
    pub(crate) fn establish(&self) {
        self.slots.lock().setup.remove(&self.conn_id);
    }

    /// Resolves when a newer connection took this one's slot.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.slots.lock();
        t.setup.remove(&self.conn_id);
        if let Some(e) = t.conns.remove(&self.conn_id) {
            if let Some(a) = t.addrs.get_mut(&e.ip) {
                a.open -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn slots(max: usize, per_ip: usize, rate: u32) -> Arc<Slots> {
        Slots::new(SlotLimits {
            max,
            per_ip,
            new_per_ip_per_sec: rate,
        })
    }

    #[test]
    fn full_table_evicts_the_oldest_in_setup() {
        let s = slots(3, 10, 100);
        let now = Instant::now();
        let (a, ev) = s.admit(1, ip(1), now).unwrap();
        assert!(ev.is_empty());
        a.establish();
        let (_b, _) = s.admit(2, ip(2), now).unwrap();
        let (_c, _) = s.admit(3, ip(3), now).unwrap();
        // Full: 2 is the oldest in setup (1 is established).
        let (d, ev) = s.admit(4, ip(4), now).unwrap();
        assert_eq!(ev, vec![2]);
        assert_eq!(s.counts(), (3, 2));
        d.establish();
        let (_e, ev) = s.admit(5, ip(5), now).unwrap();
        assert_eq!(ev, vec![3]);
        // Every slot established: refused.
        _e.establish();
        assert_eq!(s.admit(6, ip(6), now).err(), Some(Refusal::Full { max: 3 }));
        drop(a);
        assert!(s.admit(7, ip(7), now).is_ok());
    }

    #[test]
    fn per_address_limit_evicts_that_address_first() {
        let s = slots(100, 2, 100);
        let now = Instant::now();
        let (_a, _) = s.admit(1, ip(1), now).unwrap();
        let (_other, _) = s.admit(2, ip(2), now).unwrap();
        let (_b, _) = s.admit(3, ip(1), now).unwrap();
        let (_c, ev) = s.admit(4, ip(1), now).unwrap();
        assert_eq!(
            ev,
            vec![1],
            "the address's own oldest goes, not the neighbour"
        );
        _b.establish();
        _c.establish();
        assert_eq!(
            s.admit(5, ip(1), now).err(),
            Some(Refusal::AddressFull { max: 2 })
        );
        assert!(s.admit(6, ip(2), now).is_ok());
    }

    #[test]
    fn new_connections_per_address_are_rate_limited() {
        let s = slots(1000, 1000, 10);
        let now = Instant::now();
        let mut held = Vec::new();
        for id in 0..10 {
            held.push(s.admit(id, ip(1), now).unwrap());
        }
        assert_eq!(
            s.admit(10, ip(1), now).err(),
            Some(Refusal::TooFast { per_sec: 10 })
        );
        assert!(
            s.admit(11, ip(2), now).is_ok(),
            "other addresses unaffected"
        );
        let later = now + Duration::from_millis(200);
        assert!(s.admit(12, ip(1), later).is_ok());
        assert!(s.admit(13, ip(1), later).is_ok());
        assert!(s.admit(14, ip(1), later).is_err());
    }

    #[tokio::test]
    async fn an_evicted_connection_is_told() {
        let s = slots(1, 1, 100);
        let now = Instant::now();
        let (a, _) = s.admit(1, ip(1), now).unwrap();
        let (_b, ev) = s.admit(2, ip(1), now).unwrap();
        assert_eq!(ev, vec![1]);
        tokio::time::timeout(Duration::from_secs(5), a.evicted())
            .await
            .expect("eviction notified");
        drop(a);
        assert_eq!(s.counts(), (1, 1));
    }
}
