//! The table of the hub's client connections (publishers, players, subscribers) that the
//! API lists and kicks. Each entry lives as long as its [`ConnGuard`]; a kick wakes the
//! connection's task, which closes it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::Notify;

/// What a connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// Publishes one stream (one entry per announced stream).
    Publisher,
    /// Plays one stream.
    Player,
    /// A subscriber (recorder, relayer, custom consumer).
    Subscriber,
}

impl ConnKind {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnKind::Publisher => "publisher",
            ConnKind::Player => "player",
            ConnKind::Subscriber => "subscriber",
        }
    }
}

/// What the API shows of one connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The hub's id of the entry (what `DELETE /api/v1/connections/{id}` takes).
    pub id: u64,
    /// The connection id the client got where it connected (ingest-rtmp's for RTMP
    /// players; the hub's own for HTTP players and hub.sock connections).
    pub conn_id: u64,
    /// What it does.
    pub kind: ConnKind,
    /// `rtmp`, `http-flv`, `ws-flv`, or the hub.sock peer's name (`ingest-rtmp/123`).
    pub protocol: String,
    /// Remote address, empty when unknown.
    pub remote: String,
    /// Stream key, empty for subscribers.
    pub key: String,
    /// When it started.
    pub since: SystemTime,
    /// Whether the client announced the E-RTMP Reconnect capability (RTMP players; the
    /// hub does not know it of publishers, whose ingest decides).
    pub reconnect: bool,
}

#[derive(Debug)]
struct Entry {
    info: ConnInfo,
    kick: Arc<Notify>,
}

/// Every connection, by id.
#[derive(Debug, Default)]
pub struct Conns {
    map: Mutex<BTreeMap<u64, Entry>>,
    next: AtomicU64,
}

/// Keeps a connection listed; dropping it removes the entry.
#[derive(Debug)]
pub struct ConnGuard {
    conns: Arc<Conns>,
    id: u64,
    kick: Arc<Notify>,
}

impl ConnGuard {
    /// The entry's id.
    #[cfg(test)]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What [`ConnGuard::kicked`] waits on, for a connection that polls by hand.
    pub fn kick_handle(&self) -> Arc<Notify> {
        self.kick.clone()
    }

    /// Records that the client announced the E-RTMP Reconnect capability.
    pub fn set_reconnect(&self) {
        if let Some(e) = self.conns.lock().get_mut(&self.id) {
            e.info.reconnect = true;
        }
    }

    /// Completes when the connection is kicked through the API.
    pub async fn kicked(&self) {
        self.kick.notified().await
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.conns.lock().remove(&self.id);
    }
}

impl Conns {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists a connection until the returned guard is dropped.
    pub fn register(
        self: &Arc<Self>,
        conn_id: u64,
        kind: ConnKind,
        protocol: &str,
        remote: &str,
        key: &str,
    ) -> ConnGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let kick = Arc::new(Notify::new());
        let info = ConnInfo {
            id,
            conn_id,
            kind,
            protocol: protocol.to_string(),
            remote: remote.to_string(),
            key: key.to_string(),
            since: SystemTime::now(),
            reconnect: false,
        };
        self.lock().insert(
            id,
            Entry {
                info,
                kick: kick.clone(),
            },
        );
        ConnGuard {
            conns: self.clone(),
            id,
            kick,
        }
    }

    /// Every connection, by id.
    pub fn list(&self) -> Vec<ConnInfo> {
        self.lock().values().map(|e| e.info.clone()).collect()
    }

    /// Tells connection `id` to close. Returns what it was, or `None` when there is no
    /// such connection.
    pub fn kick(&self, id: u64) -> Option<ConnInfo> {
        let map = self.lock();
        let e = map.get(&id)?;
        // notify_one stores a permit: a task not waiting right now sees it at its next wait.
        e.kick.notify_one();
        Some(e.info.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listed_until_dropped_and_kick_wakes_the_holder() {
        let conns = Arc::new(Conns::default());
        let a = conns.register(7, ConnKind::Player, "rtmp", "1.2.3.4:5", "live/a");
        let b = conns.register(8, ConnKind::Publisher, "ingest-rtmp/1", "", "live/a");
        assert_eq!(conns.list().len(), 2);
        assert_eq!(conns.kick(a.id()).map(|i| i.conn_id), Some(7));
        tokio::time::timeout(std::time::Duration::from_secs(1), a.kicked())
            .await
            .expect("kick seen");
        let id = a.id();
        drop(a);
        assert!(conns.kick(id).is_none());
        assert_eq!(conns.list().len(), 1);
        assert_eq!(conns.list()[0].id, b.id());
    }
}
