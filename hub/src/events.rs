//! The event bus: every event the hub routes (its own and those of publishers and
//! subscribers) is stamped with an id, a time and a per-key sequence number, then sent to
//! every event subscriber. Stamping and sending happen under one lock, so subscribers see
//! each key's events in sequence order.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::ipc::{Event, EventId};
use proto::rtmp::amf0::{self, AmfLimits};
use tokio::sync::broadcast;

use crate::stream::StreamState;

/// Events kept for event subscribers that fall behind (older ones are dropped for them).
const EVENT_BACKLOG: usize = 1024;

/// Keys whose sequence counter is remembered; past it the counters start over (a key's
/// sequence then restarts at 1, which a consumer sees as it sees a hub restart).
const MAX_SEQUENCES: usize = 65_536;

/// Events routed this soon after the hub started are also kept for event subscribers that
/// subscribe within that time: after a hub restart, the events components kept while it
/// was down often arrive before hookd has subscribed again. One that subscribes again
/// within it gets them again; `telemetry::subscription` skips those by their `id`.
pub const STARTUP_REPLAY: Duration = Duration::from_secs(10);

/// The field names the hub sets on every routed event (FORMAT.md).
pub const STAMP_FIELDS: [&str; 3] = ["id", "time_ms", "seq"];

#[derive(Debug)]
struct Stamps {
    /// Unique per hub run: start time and pid.
    run: String,
    next_id: u64,
    seq: HashMap<String, u64>,
    /// Events routed since the start, until [`STARTUP_REPLAY`] has passed (then `None`).
    early: Option<Early>,
}

#[derive(Debug)]
struct Early {
    until: Instant,
    events: VecDeque<Arc<Event>>,
}

/// Stamps and routes events to event subscribers.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    stamps: Mutex<Stamps>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    /// A bus with no subscribers.
    pub fn new() -> EventBus {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        EventBus {
            tx: broadcast::channel(EVENT_BACKLOG).0,
            stamps: Mutex::new(Stamps {
                run: EventId::run_of(started, std::process::id()),
                next_id: 1,
                seq: HashMap::new(),
                early: Some(Early {
                    until: Instant::now() + STARTUP_REPLAY,
                    events: VecDeque::new(),
                }),
            }),
        }
    }

    /// Stamps `event` (replacing any stamp fields the emitter set) and sends it to every
    /// event subscriber (none listening is fine).
    pub fn publish(&self, mut event: Event) {
        event
            .fields
            .retain(|(name, _)| !STAMP_FIELDS.contains(&name.as_str()));
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut s = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        let id = EventId {
            run: &s.run,
            counter: s.next_id,
        }
        .to_string();
        s.next_id += 1;
        if s.seq.len() >= MAX_SEQUENCES && !s.seq.contains_key(&event.key) {
            s.seq.clear();
        }
        let seq = s.seq.entry(event.key.clone()).or_insert(0);
        *seq += 1;
        let seq = *seq;
        event.fields.extend([
            ("id".to_owned(), id),
            ("time_ms".to_owned(), time_ms.to_string()),
            ("seq".to_owned(), seq.to_string()),
        ]);
        let event = Arc::new(event);
        s.keep_early(&event);
        let _ = self.tx.send(event);
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// A receiver of every event published from now on and, within [`STARTUP_REPLAY`] of
    /// the hub's start, the events routed before (oldest first, at most the backlog).
    pub fn subscribe_with_startup(&self) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let mut s = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        s.expire_early(Instant::now());
        let early = s
            .early
            .as_ref()
            .map(|e| e.events.iter().cloned().collect())
            .unwrap_or_default();
        (early, self.tx.subscribe())
    }
}

impl Stamps {
    fn expire_early(&mut self, now: Instant) {
        if self.early.as_ref().is_some_and(|e| now >= e.until) {
            self.early = None;
        }
    }

    fn keep_early(&mut self, event: &Arc<Event>) {
        self.expire_early(Instant::now());
        if let Some(e) = &mut self.early {
            if e.events.len() >= EVENT_BACKLOG {
                e.events.pop_front();
            }
            e.events.push_back(event.clone());
        }
    }
}

/// An event of the hub about `key`.
pub fn event(kind: &str, key: &str, conn_id: u64, remote: &str) -> Event {
    Event {
        kind: kind.to_owned(),
        key: key.to_owned(),
        conn_id,
        remote: remote.to_owned(),
        fields: Vec::new(),
    }
}

/// A `play` or `stop` event of a player (`player` its kind: `rtmp`, `http-flv`, `ws-flv`).
pub fn player_event(
    kind: &str,
    key: &str,
    conn_id: u64,
    remote: &str,
    player: &str,
    fields: Vec<(String, String)>,
) -> Event {
    let mut e = event(kind, key, conn_id, remote);
    e.fields = fields;
    e.fields.push(("player".to_owned(), player.to_owned()));
    e
}

/// The fields of a `stop` event.
pub fn stop_fields(reason: String, bytes: u64, since: std::time::Instant) -> Vec<(String, String)> {
    vec![
        ("reason".to_owned(), reason),
        ("bytes".to_owned(), bytes.to_string()),
        (
            "duration_ms".to_owned(),
            since.elapsed().as_millis().to_string(),
        ),
    ]
}

/// Appends what the stream says about itself: `video_codec`, `audio_codec` (first track
/// of each kind), `tracks`, and from its metadata `width`, `height`, `framerate` and
/// `bitrate_kbps` (video plus audio data rate) when the source sent them.
pub fn describe_stream(st: &StreamState, fields: &mut Vec<(String, String)>) {
    for video in [true, false] {
        if let Some(t) = st.tracks.iter().find(|((v, _), _)| *v == video) {
            let name = if video { "video_codec" } else { "audio_codec" };
            fields.push((name.to_owned(), t.1.codec.name().to_owned()));
        }
    }
    fields.push(("tracks".to_owned(), st.tracks.len().to_string()));
    let Some(meta) = &st.metadata else { return };
    let Ok(values) = amf0::decode_all(meta, &AmfLimits::data()) else {
        return;
    };
    let Some(obj) = values.iter().find(|v| {
        v.get("width").is_some() || v.get("duration").is_some() || v.get("videocodecid").is_some()
    }) else {
        return;
    };
    let num = |name: &str| {
        obj.get(name)
            .and_then(|v| v.as_f64())
            .filter(|n| n.is_finite() && *n > 0.0)
    };
    for (name, field) in [("width", "width"), ("height", "height")] {
        if let Some(n) = num(name) {
            fields.push((field.to_owned(), format!("{}", n.round() as u64)));
        }
    }
    if let Some(n) = num("framerate").or_else(|| num("videoframerate")) {
        fields.push(("framerate".to_owned(), format!("{n:.3}")));
    }
    let rate = num("videodatarate").unwrap_or(0.0) + num("audiodatarate").unwrap_or(0.0);
    if rate > 0.0 {
        fields.push((
            "bitrate_kbps".to_owned(),
            format!("{}", rate.round() as u64),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(key: &str) -> Event {
        event("publish", key, 0, "")
    }

    fn field<'a>(e: &'a Event, name: &str) -> &'a str {
        e.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn a_subscriber_soon_after_the_start_gets_the_events_routed_before_it() {
        let bus = EventBus::new();
        bus.publish(ev("live/a"));
        bus.publish(ev("live/b"));
        let (early, mut rx) = bus.subscribe_with_startup();
        assert_eq!(early.len(), 2);
        assert_eq!(early[0].key, "live/a");
        bus.publish(ev("live/c"));
        assert_eq!(rx.try_recv().unwrap().key, "live/c");
        // After the window nothing is replayed, and nothing more is kept.
        bus.stamps.lock().unwrap().early.as_mut().unwrap().until = Instant::now();
        bus.publish(ev("live/d"));
        let (early, _rx) = bus.subscribe_with_startup();
        assert!(early.is_empty());
        assert!(bus.stamps.lock().unwrap().early.is_none());
    }

    #[test]
    fn stamps_ids_and_per_key_sequences() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        let mut forged = ev("live/a");
        forged.fields.push(("seq".into(), "99".into()));
        bus.publish(forged);
        bus.publish(ev("live/b"));
        bus.publish(ev("live/a"));
        let got: Vec<_> = (0..3).map(|_| rx.try_recv().unwrap()).collect();
        assert_eq!(field(&got[0], "seq"), "1");
        assert_eq!(field(&got[1], "seq"), "1");
        assert_eq!(field(&got[2], "seq"), "2");
        assert_eq!(got[0].fields.iter().filter(|(n, _)| n == "seq").count(), 1);
        assert_ne!(field(&got[0], "id"), field(&got[2], "id"));
        assert!(field(&got[0], "time_ms").parse::<u64>().unwrap() > 0);
    }
}
