//! The stream registry: `app/name` to [`Stream`], the duplicate-publisher policy, the
//! stream and player limits, and the subscribers that want to hear about new streams.
//!
//! Lock order: the registry lock may be held while taking a stream lock, never the
//! reverse.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use proto::glob::{self, Glob};
use proto::ipc::{Event, RejectReason};
use proto::media::StreamKey;
use tokio::sync::{broadcast, Notify};

use crate::config::{Config, OnDuplicate};
use crate::conns::Conns;
use crate::events::EventBus;
use crate::reconnect::{Order, Orders, Requested};
use crate::reports::Reports;
use crate::stats::HubStats;
use crate::stream::{Owner, PublisherId, Revocation, SharedWaker, Stream};

/// A new stream a subscriber should start reading, and the cursor to start at.
#[derive(Debug, Clone)]
pub struct NewStream {
    /// The stream.
    pub stream: Arc<Stream>,
    /// Where the subscriber's cursor starts.
    pub cursor: u64,
    /// The subscriber's reader registered on the stream, to report its position to.
    pub reader: Arc<SharedWaker>,
}

/// A subscriber's registration: its new streams wait here until its task takes them, so
/// that a subscriber busy writing (or not reading) misses none. At most one entry per
/// stream that is still open, so no more than `--max-streams`.
#[derive(Debug)]
struct Subscriber {
    id: u64,
    patterns: Vec<Glob>,
    waker: Arc<Notify>,
    new_streams: Vec<NewStream>,
    /// Set when `new_streams` has entries; the task checks it on every wakeup without
    /// taking the registry lock.
    has_new: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Inner {
    streams: HashMap<StreamKey, Arc<Stream>>,
    subscribers: Vec<Subscriber>,
    players: usize,
}

/// Why a player was not attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// `--max-players` reached.
    #[error("player limit {max} reached")]
    TooManyPlayers {
        /// The limit.
        max: usize,
    },
    /// `--max-streams` reached (the key is not known yet).
    #[error("stream limit {max} reached")]
    TooManyStreams {
        /// The limit.
        max: usize,
    },
}

/// A player attached to a stream until this is dropped ([`Registry::hold_player`]).
#[derive(Debug)]
pub struct HeldPlayer {
    registry: Arc<Registry>,
    stream: Arc<Stream>,
}

impl Drop for HeldPlayer {
    fn drop(&mut self) {
        self.registry.detach_player(&self.stream);
    }
}

/// The registry, shared by every connection task.
#[derive(Debug)]
pub struct Registry {
    cfg: Arc<Config>,
    events: EventBus,
    inner: Mutex<Inner>,
    next_stream_id: AtomicU32,
    next_reader_id: AtomicU64,
    stats: Arc<HubStats>,
    reports: Reports,
    conns: Arc<Conns>,
    orders: Orders,
}

impl Registry {
    /// An empty registry.
    pub fn new(cfg: Arc<Config>) -> Registry {
        Registry {
            cfg,
            events: EventBus::new(),
            inner: Mutex::new(Inner::default()),
            next_stream_id: AtomicU32::new(1),
            next_reader_id: AtomicU64::new(1),
            stats: Arc::new(HubStats::new()),
            reports: Reports::default(),
            conns: Arc::default(),
            orders: Orders::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stamps an event and routes it to every event subscriber (none listening is fine).
    /// Access decisions are counted for `/metrics` on the way.
    pub fn publish_event(&self, event: Event) {
        crate::auth_counts::count(&self.stats.metrics, &event);
        self.events.publish(event);
    }

    /// An event received on connection `conn_id`: a counter report is kept for
    /// `/metrics` (and not routed), any other event is routed to the event subscribers.
    pub fn on_event(&self, conn_id: u64, event: Event) {
        if event.kind != proto::metrics::KIND {
            return self.publish_event(event);
        }
        if let Err(e) = self.reports.update(conn_id, &event) {
            tracing::warn!(conn_id, layer = "metrics", error = %e, "counter report ignored");
        }
    }

    /// Connection `conn_id` closed: its counter report goes with it.
    pub fn connection_closed(&self, conn_id: u64) {
        self.reports.forget(conn_id);
    }

    /// The hub's own counters.
    pub fn stats(&self) -> &Arc<HubStats> {
        &self.stats
    }

    /// The client connections (for the API).
    pub fn conns(&self) -> &Arc<Conns> {
        &self.conns
    }

    /// Every stream, in key order.
    pub fn streams(&self) -> Vec<Arc<Stream>> {
        let mut v: Vec<_> = self.lock().streams.values().cloned().collect();
        v.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        v
    }

    /// The stream of `key`, if known.
    pub fn stream(&self, key: &StreamKey) -> Option<Arc<Stream>> {
        self.lock().streams.get(key).cloned()
    }

    /// Stops the publisher of `key` (API kick): it is told with `Revoke` (reason
    /// `kicked`) and its stream ends as if it had left. False when nobody publishes it.
    pub fn kick_publisher(&self, key: &StreamKey) -> bool {
        let Some(stream) = self.stream(key) else {
            return false;
        };
        let st = stream.lock();
        match &st.owner {
            Some(o) => o.revoke.try_send((o.id.handle, Revocation::Kicked)).is_ok(),
            None => false,
        }
    }

    /// A receiver of every reconnect request from now on (RTMP players, publishers).
    pub fn reconnect_orders(&self) -> crate::reconnect::Receiver {
        self.orders.subscribe()
    }

    /// Asks the RTMP clients of `key` (every stream's when `None`) to reconnect: players
    /// that announced the capability get `NetConnection.Connect.ReconnectRequest`, and
    /// every publisher's ingest a `Reconnect` message. `tc_url` defaults to
    /// `--reconnect-tc-url`. `by` names the requester in the `reconnect_request` event.
    pub fn request_reconnect(
        &self,
        key: Option<StreamKey>,
        tc_url: Option<String>,
        description: Option<String>,
        by: &str,
    ) -> Requested {
        let order = Order {
            key,
            tc_url: tc_url.or_else(|| self.cfg.reconnect_tc_url.clone()),
            description: description
                .unwrap_or_else(|| crate::reconnect::DEFAULT_DESCRIPTION.to_owned()),
        };
        let r = Requested::count(&order, &self.conns.list());
        let key = order.key.as_ref().map_or("", |k| k.as_str()).to_owned();
        tracing::info!(
            key = if key.is_empty() { "*" } else { &key },
            by,
            players = r.players,
            skipped_players = r.skipped_players,
            publishers = r.publishers,
            tc_url = order.tc_url.as_deref().unwrap_or(""),
            "reconnect requested"
        );
        let mut e = crate::events::event("reconnect_request", &key, 0, "");
        e.fields = vec![
            ("by".to_owned(), by.to_owned()),
            ("players".to_owned(), r.players.to_string()),
            ("skipped_players".to_owned(), r.skipped_players.to_string()),
            ("publishers".to_owned(), r.publishers.to_string()),
        ];
        if let Some(url) = &order.tc_url {
            e.fields.push(("tc_url".to_owned(), url.clone()));
        }
        self.publish_event(e);
        self.orders.send(order);
        r
    }

    /// The other components' counter reports.
    pub fn reports(&self) -> &Reports {
        &self.reports
    }

    /// Live streams and streams in total (live or waited for by players).
    pub fn stream_counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let live = inner
            .streams
            .values()
            .filter(|s| s.lock().is_live())
            .count();
        (live, inner.streams.len())
    }

    /// A receiver of every event published from now on.
    pub fn events(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// [`Registry::events`] with the events routed since the hub started, while it started
    /// less than `events::STARTUP_REPLAY` ago.
    pub fn events_with_startup(&self) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        self.events.subscribe_with_startup()
    }

    /// A fresh id for a reader's waker registration.
    pub fn reader_id(&self) -> u64 {
        self.next_reader_id.fetch_add(1, Ordering::Relaxed)
    }

    fn get_or_create(&self, inner: &mut Inner, key: &StreamKey) -> Option<Arc<Stream>> {
        if let Some(s) = inner.streams.get(key) {
            return Some(s.clone());
        }
        if inner.streams.len() >= self.cfg.max_streams {
            return None;
        }
        let id = self.next_stream_id.fetch_add(1, Ordering::Relaxed);
        let stream = Arc::new(Stream::new(key.clone(), id, &self.cfg));
        {
            let mut st = stream.lock();
            for sub in &mut inner.subscribers {
                if glob::any_matches(&sub.patterns, key.as_str()) {
                    let cursor = st.ring.head();
                    let reader = SharedWaker::new(sub.waker.clone(), cursor);
                    st.add_reader(sub.id, reader.clone());
                    if sub.new_streams.len() >= self.cfg.max_streams {
                        // Streams that ended before the subscriber took them need no
                        // announcement; what stays is bounded by the open streams.
                        sub.new_streams.retain(|n| !n.stream.lock().closed);
                    }
                    sub.new_streams.push(NewStream {
                        stream: stream.clone(),
                        cursor,
                        reader,
                    });
                    sub.has_new.store(true, Ordering::Release);
                    sub.waker.notify_one();
                }
            }
        }
        inner.streams.insert(key.clone(), stream.clone());
        Some(stream)
    }

    /// A publisher announces `key`. On success the stream is live with `owner`; a
    /// replaced publisher is sent a revoke for its handle.
    pub fn announce(
        &self,
        key: &StreamKey,
        owner: Owner,
        timescale: u32,
    ) -> Result<Arc<Stream>, RejectReason> {
        self.announce_over(key, owner, timescale).map(|(s, _)| s)
    }

    /// [`Registry::announce`], also saying which publisher it took the key from (if it
    /// was live).
    pub fn announce_over(
        &self,
        key: &StreamKey,
        owner: Owner,
        timescale: u32,
    ) -> Result<(Arc<Stream>, Option<PublisherId>), RejectReason> {
        let mut inner = self.lock();
        let stream = self
            .get_or_create(&mut inner, key)
            .ok_or(RejectReason::Capacity)?;
        let mut st = stream.lock();
        if st.is_live() && self.cfg.on_duplicate == OnDuplicate::Reject {
            return Err(RejectReason::Duplicate);
        }
        let previous = st.publish(owner, timescale).map(|old| {
            tracing::info!(key = %key, old_conn = old.id.conn_id, "publisher taken over");
            // The old publisher's frames are ignored from now on whether or not it hears.
            let _ = old.revoke.try_send((old.id.handle, Revocation::Takeover));
            old.id
        });
        drop(st);
        Ok((stream, previous))
    }

    /// The owner of `stream` leaves. Returns whether players remain (so the caller
    /// arms the unpublish timeout); otherwise the stream is closed and removed now.
    pub fn unpublish(&self, stream: &Arc<Stream>, id: PublisherId, reason: &str) -> Option<u64> {
        let mut inner = self.lock();
        let mut st = stream.lock();
        if !st.unpublish(id, reason) {
            return None;
        }
        if st.players == 0 {
            st.close();
            drop(st);
            Self::remove(&mut inner, stream);
            return None;
        }
        Some(st.generation)
    }

    /// The unpublish timeout of `generation` expired: close the stream unless a publisher
    /// came back meanwhile.
    pub fn unpublish_expired(&self, stream: &Arc<Stream>, generation: u64) {
        let mut inner = self.lock();
        let mut st = stream.lock();
        if st.generation != generation || st.is_live() || st.closed {
            return;
        }
        tracing::info!(key = %stream.key, "publisher did not return; closing the stream");
        st.close();
        drop(st);
        Self::remove(&mut inner, stream);
    }

    fn remove(inner: &mut Inner, stream: &Arc<Stream>) {
        if inner
            .streams
            .get(&stream.key)
            .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            inner.streams.remove(&stream.key);
        }
    }

    /// A player wants `key` (live or not yet).
    pub fn attach_player(&self, key: &StreamKey) -> Result<Arc<Stream>, AttachError> {
        let mut inner = self.lock();
        if inner.players >= self.cfg.max_players {
            return Err(AttachError::TooManyPlayers {
                max: self.cfg.max_players,
            });
        }
        let stream = self
            .get_or_create(&mut inner, key)
            .ok_or(AttachError::TooManyStreams {
                max: self.cfg.max_streams,
            })?;
        inner.players += 1;
        let (count, live) = {
            let mut st = stream.lock();
            st.players += 1;
            (st.players, st.is_live())
        };
        drop(inner);
        self.players_event(key.as_str(), count, live);
        Ok(stream)
    }

    /// Tells event subscribers how many players a key has (FORMAT.md `players`): the
    /// relayer's pull mode starts a pull when a player waits for a key that is not live
    /// and stops it after the last player left.
    fn players_event(&self, key: &str, count: usize, live: bool) {
        self.publish_event(Event {
            kind: "players".into(),
            key: key.to_owned(),
            conn_id: 0,
            remote: String::new(),
            fields: vec![
                ("count".into(), count.to_string()),
                ("live".into(), live.to_string()),
            ],
        });
    }

    /// A player of `stream` is gone; a stream left with no publisher and no players is
    /// closed and removed.
    pub fn detach_player(&self, stream: &Arc<Stream>) {
        let mut inner = self.lock();
        inner.players = inner.players.saturating_sub(1);
        let mut st = stream.lock();
        st.players = st.players.saturating_sub(1);
        let (count, live) = (st.players, st.is_live());
        if st.players == 0 && !st.is_live() {
            st.close();
            drop(st);
            Self::remove(&mut inner, stream);
        }
        drop(inner);
        self.players_event(stream.key.as_str(), count, live);
    }

    /// [`Registry::attach_player`] for a player whose end is the end of a value's life
    /// (a subscription that serves one, `Header::Player`): detached when the returned
    /// guard is dropped, on every path out of the task that holds it.
    pub fn hold_player(self: &Arc<Self>, key: &StreamKey) -> Result<HeldPlayer, AttachError> {
        let stream = self.attach_player(key)?;
        Ok(HeldPlayer {
            registry: self.clone(),
            stream,
        })
    }

    /// Subscriber `id` registers, or changes its patterns (it sent `Subscribe` again).
    /// Returns the matching streams it has not been handed yet (a subscriber that changes
    /// its patterns skips those it already reads); waiting new streams that no longer
    /// match are forgotten. Streams created later are kept for
    /// [`Registry::take_new_streams`], with `has_new` set and the waker notified.
    pub fn subscribe(
        &self,
        id: u64,
        patterns: Vec<String>,
        waker: Arc<Notify>,
        has_new: Arc<AtomicBool>,
    ) -> Vec<Arc<Stream>> {
        let patterns: Vec<Glob> = patterns.iter().map(|p| Glob::new(p)).collect();
        let mut inner = self.lock();
        let Inner {
            streams,
            subscribers,
            ..
        } = &mut *inner;
        let at = match subscribers.iter().position(|s| s.id == id) {
            Some(at) => {
                subscribers[at].patterns = patterns;
                at
            }
            None => {
                subscribers.push(Subscriber {
                    id,
                    patterns,
                    waker,
                    new_streams: Vec::new(),
                    has_new,
                });
                subscribers.len() - 1
            }
        };
        let sub = &mut subscribers[at];
        let patterns = &sub.patterns;
        sub.new_streams.retain(|n| {
            let keep = glob::any_matches(patterns, n.stream.key.as_str());
            if !keep {
                n.stream.lock().remove_reader(id);
            }
            keep
        });
        let waiting = &sub.new_streams;
        streams
            .values()
            .filter(|s| glob::any_matches(patterns, s.key.as_str()))
            .filter(|s| !waiting.iter().any(|w| Arc::ptr_eq(&w.stream, s)))
            .cloned()
            .collect()
    }

    /// The streams created for subscriber `id` since it last asked, oldest first.
    pub fn take_new_streams(&self, id: u64) -> Vec<NewStream> {
        let mut inner = self.lock();
        inner
            .subscribers
            .iter_mut()
            .find(|s| s.id == id)
            .map(|s| std::mem::take(&mut s.new_streams))
            .unwrap_or_default()
    }

    /// A subscriber is gone.
    pub fn unsubscribe(&self, id: u64) {
        self.lock().subscribers.retain(|s| s.id != id);
    }

    /// Number of streams.
    #[cfg(test)]
    pub fn stream_count(&self) -> usize {
        self.lock().streams.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[test]
    fn new_streams_wait_for_a_subscriber_that_does_not_take_them() {
        let mut cfg = Config::for_tests();
        cfg.max_streams = 1000;
        let reg = Registry::new(Arc::new(cfg));
        let has_new = Arc::new(AtomicBool::new(false));
        let existing = reg.subscribe(9, vec!["live/*".into()], Arc::default(), has_new.clone());
        assert!(existing.is_empty());
        // More than the 256 a bounded channel held before: none is lost.
        let keys: Vec<_> = (0..300)
            .map(|i| StreamKey::parse(&format!("live/s{i}")).unwrap())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            reg.announce(k, owner(i as u64).0, 1000).unwrap();
        }
        reg.announce(&StreamKey::parse("other/x").unwrap(), owner(999).0, 1000)
            .unwrap();
        assert!(has_new.load(Ordering::Acquire));
        let taken: Vec<_> = reg
            .take_new_streams(9)
            .into_iter()
            .map(|n| n.stream.key.clone())
            .collect();
        assert_eq!(taken, keys, "every matching stream, in creation order");
        assert!(reg.take_new_streams(9).is_empty());
    }

    /// A second `Subscribe` (a relayer's rules reloaded): the streams that match the new
    /// patterns come back (the task skips those it reads), waiting new streams that no
    /// longer match are forgotten, and later streams follow the new patterns.
    #[test]
    fn subscribing_again_changes_the_patterns_in_place() {
        let reg = Registry::new(Arc::new(Config::for_tests()));
        let k = |s: &str| StreamKey::parse(s).unwrap();
        let keys = |v: Vec<Arc<Stream>>| {
            let mut v: Vec<String> = v.iter().map(|s| s.key.as_str().to_owned()).collect();
            v.sort();
            v
        };
        reg.announce(&k("live/a"), owner(1).0, 1000).unwrap();
        let has_new = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(Notify::new());
        let first = reg.subscribe(9, vec!["live/*".into()], waker.clone(), has_new.clone());
        assert_eq!(keys(first), ["live/a"]);
        reg.announce(&k("live/b"), owner(2).0, 1000).unwrap();
        reg.announce(&k("tv/c"), owner(3).0, 1000).unwrap();
        let again = reg.subscribe(9, vec!["tv/*".into(), "live/a".into()], waker, has_new);
        assert_eq!(keys(again), ["live/a", "tv/c"]);
        assert!(
            reg.take_new_streams(9).is_empty(),
            "live/b waited and no longer matches"
        );
        reg.announce(&k("tv/d"), owner(4).0, 1000).unwrap();
        reg.announce(&k("live/e"), owner(5).0, 1000).unwrap();
        let taken: Vec<_> = reg
            .take_new_streams(9)
            .into_iter()
            .map(|n| n.stream.key.as_str().to_owned())
            .collect();
        assert_eq!(taken, ["tv/d"]);
    }

    fn owner(conn_id: u64) -> (Owner, mpsc::Receiver<(u32, Revocation)>) {
        let (tx, rx) = mpsc::channel(4);
        (
            Owner {
                id: PublisherId { conn_id, handle: 7 },
                revoke: tx,
            },
            rx,
        )
    }

    fn key() -> StreamKey {
        StreamKey::parse("live/a").unwrap()
    }

    #[test]
    fn takeover_revokes_old_publisher_and_keeps_stream() {
        let reg = Registry::new(Arc::new(Config::for_tests()));
        let (o1, mut rx1) = owner(1);
        let s1 = reg.announce(&key(), o1, 1000).unwrap();
        let (o2, _rx2) = owner(2);
        let s2 = reg.announce(&key(), o2, 1000).unwrap();
        assert!(Arc::ptr_eq(&s1, &s2), "same stream object, players stay");
        assert_eq!(rx1.try_recv(), Ok((7, Revocation::Takeover)));
        let st = s2.lock();
        assert_eq!(st.owner.as_ref().unwrap().id.conn_id, 2);
        assert_eq!(st.generation, 2);
    }

    #[test]
    fn reject_policy_refuses_duplicate() {
        let mut cfg = Config::for_tests();
        cfg.on_duplicate = OnDuplicate::Reject;
        let reg = Registry::new(Arc::new(cfg));
        let (o1, mut rx1) = owner(1);
        reg.announce(&key(), o1, 1000).unwrap();
        let (o2, _rx2) = owner(2);
        assert_eq!(
            reg.announce(&key(), o2, 1000).err(),
            Some(RejectReason::Duplicate)
        );
        assert!(rx1.try_recv().is_err(), "first publisher untouched");
    }

    #[test]
    fn unpublish_without_players_removes_and_old_owner_cannot_unpublish() {
        let reg = Registry::new(Arc::new(Config::for_tests()));
        let (o1, _rx1) = owner(1);
        let s = reg.announce(&key(), o1.clone(), 1000).unwrap();
        let (o2, _rx2) = owner(2);
        reg.announce(&key(), o2.clone(), 1000).unwrap();
        assert_eq!(reg.unpublish(&s, o1.id, "disconnect"), None);
        assert!(s.lock().is_live(), "revoked owner cannot end the stream");
        assert_eq!(reg.unpublish(&s, o2.id, "disconnect"), None);
        assert_eq!(reg.stream_count(), 0);
        assert!(s.lock().closed);
    }

    #[test]
    fn players_keep_stream_until_timeout() {
        let reg = Registry::new(Arc::new(Config::for_tests()));
        let p = reg.attach_player(&key()).unwrap();
        let (o1, _rx1) = owner(1);
        let s = reg.announce(&key(), o1.clone(), 1000).unwrap();
        assert!(Arc::ptr_eq(&p, &s));
        let generation = reg
            .unpublish(&s, o1.id, "unpublish")
            .expect("players remain");
        assert_eq!(reg.stream_count(), 1);
        reg.unpublish_expired(&s, generation);
        assert_eq!(reg.stream_count(), 0);
        assert!(s.lock().closed);
    }

    #[test]
    fn limits() {
        let mut cfg = Config::for_tests();
        cfg.max_players = 1;
        cfg.max_streams = 1;
        let reg = Registry::new(Arc::new(cfg));
        reg.attach_player(&key()).unwrap();
        assert!(matches!(
            reg.attach_player(&key()),
            Err(AttachError::TooManyPlayers { max: 1 })
        ));
        let (o, _rx) = owner(1);
        assert_eq!(
            reg.announce(&StreamKey::parse("live/b").unwrap(), o, 1000)
                .err(),
            Some(RejectReason::Capacity)
        );
    }
}
