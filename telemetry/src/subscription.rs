//! A subscriber of the hub that outlives the hub: the recorder, the relayer and hookd each
//! hand [`keep_subscribed`] their [`Subscriber`], which connects, subscribes, lets the
//! subscriber serve the connection, and after the hub goes away (a restart, a crash, a
//! kick through the API) connects and subscribes again with backoff.
//!
//! ```text
//!  subscription() --Hello+Subscribe--> hub.sock --hub's Hello--> session(Session)
//!        ^                                                            | hub closed, error
//!        '--- wait (backoff; while_away() runs meanwhile) <-- disconnected()
//! ```
//!
//! Nothing is replayed by the subscriber: the hub announces every live stream again to a
//! new subscription (proto/FORMAT.md section 7, step 3), so whatever a subscriber built from
//! the lost connection ends in [`Subscriber::disconnected`] and starts again from the new
//! announcements.
//!
//! Events are the exception the other way: within 10 s of its start the hub also gives a
//! new subscription the events it routed before (FORMAT.md section 3.1), which a subscriber
//! that was connected then already had. [`Session::message`] skips those, by their `id`, so
//! a subscriber is handed each event at most once however often it reconnects.

use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use proto::ipc::{Event, EventId, FrameDecoder, Header, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::hub_conn::{self, HubConn, OpenError};

/// The first wait after a lost or refused connection.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A session longer than this shows the hub healthy, so the next wait starts at
/// [`BACKOFF_MIN`] again; a shorter one keeps the waits growing, so a hub that accepts and
/// drops a subscriber at once is not asked again ten times a second.
const HEALTHY_SESSION: Duration = Duration::from_secs(10);
/// Receive buffer reserved for a subscription with media (frames arrive in large reads)
/// and for one with events only.
const MEDIA_BUFFER: usize = 256 * 1024;
const EVENTS_BUFFER: usize = 64 * 1024;

/// What a subscriber asks the hub for: its `Subscribe` (FORMAT.md section 7, step 3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Stream key globs; empty is every stream.
    pub patterns: Vec<String>,
    /// Whether it wants the matching streams' media.
    pub media: bool,
    /// Whether it wants the hub's events.
    pub events: bool,
}

/// One program's side of its subscription, driven by [`keep_subscribed`].
pub trait Subscriber {
    /// Why a session ended other than by the hub closing it.
    type Error: Display;

    /// What to subscribe to; asked before every connection, so a change (a rules reload)
    /// holds for the next one.
    fn subscription(&self) -> Subscription;

    /// Serves one connection until the hub closes it (`Ok`), it fails, or `shutdown`
    /// turns true (`Ok`).
    fn session(
        &mut self,
        session: &mut Session,
        shutdown: &mut watch::Receiver<bool>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The connection is gone: end what it fed (the next subscription announces the
    /// live streams anew).
    fn disconnected(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Work that cannot wait for the hub, done while waiting to reconnect. Dropped when the
    /// wait ends, so it must not be left halfway at an `.await`.
    fn while_away(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// Keeps `subscriber` subscribed to the hub at `hub` as `component/PID` until `shutdown`
/// turns true (or its sender is dropped). Logs each connection, each loss, and the
/// attempts that fail (the 1st, 2nd, 4th, 8th ... in a row: an absent hub is said once,
/// then ever more rarely).
pub async fn keep_subscribed<S: Subscriber>(
    hub: &Path,
    component: &str,
    subscriber: &mut S,
    shutdown: &mut watch::Receiver<bool>,
) {
    let name = format!("{component}/{}", std::process::id());
    let mut retry = Retry::default();
    let mut handled = LastEvent::default();
    while !*shutdown.borrow() {
        let Subscription {
            patterns,
            media,
            events,
        } = subscriber.subscription();
        let opening = hub_conn::subscribe(hub, name.clone(), patterns, media, events);
        let opened = tokio::select! {
            r = opening => r,
            _ = shutdown.changed() => break,
        };
        match opened {
            Ok(conn) => {
                retry.connected();
                tracing::info!(socket = %hub.display(), media, events, "connected to the hub");
                let started = Instant::now();
                let mut session = Session::new(conn, media, std::mem::take(&mut handled));
                let r = subscriber.session(&mut session, shutdown).await;
                session.report_skipped();
                handled = session.handled;
                subscriber.disconnected().await;
                match r {
                    Ok(()) if *shutdown.borrow() => break,
                    Ok(()) => tracing::warn!("hub closed the connection"),
                    Err(e) => tracing::warn!(error = %e, "hub connection failed"),
                }
                retry.ended(started.elapsed());
            }
            Err(e) => {
                if retry.failed() {
                    tracing::warn!(socket = %hub.display(), error = %e, "cannot reach the hub, retrying");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry.next_delay()) => {}
            _ = shutdown.changed() => {}
            () = subscriber.while_away() => {}
        }
    }
}

/// One subscription's connection, past the hub's hello.
#[derive(Debug)]
pub struct Session {
    sock: UnixStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    /// Carried from one connection to the next by [`keep_subscribed`].
    handled: LastEvent,
    /// Events skipped as handled before, not yet logged.
    skipped: u64,
}

impl Session {
    fn new(conn: HubConn, media: bool, handled: LastEvent) -> Session {
        let HubConn { sock, mut buf } = conn;
        buf.reserve(if media { MEDIA_BUFFER } else { EVENTS_BUFFER });
        Session {
            sock,
            buf,
            decoder: FrameDecoder::default(),
            handled,
            skipped: 0,
        }
    }

    /// The next message received whole, if any. The hub's `Error` (its last message
    /// before it closes) is returned as [`OpenError::Hub`]. An event handed out before,
    /// over this connection or an earlier one to the same hub run, is skipped.
    pub fn message(&mut self) -> Result<Option<Message>, OpenError> {
        loop {
            let m = self.decoder.decode(&mut self.buf)?;
            match &m {
                Some(Message {
                    header: Header::Error { message },
                    ..
                }) => return Err(OpenError::Hub(message.clone())),
                Some(Message {
                    header: Header::Event(e),
                    ..
                }) => {
                    if !self.handled.first_time(e) {
                        self.skipped += 1;
                        continue;
                    }
                    self.report_skipped();
                }
                _ => {}
            }
            return Ok(m);
        }
    }

    /// Logs the events skipped since the last report (the hub's startup replay ends
    /// where the first new event starts).
    fn report_skipped(&mut self) {
        if self.skipped > 0 {
            tracing::info!(
                skipped = self.skipped,
                "the hub replayed events this subscriber had before its reconnection; skipped them"
            );
            self.skipped = 0;
        }
    }

    /// Waits for more bytes from the hub; `false` when it closed the connection. Nothing
    /// is lost when another branch of a `select!` wins: bytes are kept only once read.
    pub async fn receive(&mut self) -> Result<bool, OpenError> {
        Ok(self.sock.read_buf(&mut self.buf).await? > 0)
    }

    /// Writes framed messages (`Event`s, a new `Subscribe`) to the hub.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), OpenError> {
        Ok(self.sock.write_all(bytes).await?)
    }
}

/// The last event a subscriber was handed, by its stamp `id`
/// (`<hub start>.<hub pid>.<counter>`, FORMAT.md section 3.1): the counter goes up by one
/// per event in the order every subscriber receives them, so an event of the same hub run
/// whose counter is not past the last one's was handed out already (a replay). An event of
/// another run (a restarted hub) is new, and so is one whose `id` does not parse.
#[derive(Debug, Default)]
struct LastEvent {
    /// `<hub start>.<hub pid>`; empty before the first event.
    run: String,
    counter: u64,
}

impl LastEvent {
    /// Whether `event` was not handed out before; if so it becomes the last one.
    fn first_time(&mut self, event: &Event) -> bool {
        // The hub appends its stamp: the id is among the last fields.
        let id = event.fields.iter().rev().find(|(name, _)| name == "id");
        let Some(EventId { run, counter }) = id.and_then(|(_, id)| EventId::parse(id)) else {
            return true;
        };
        if run == self.run {
            if counter <= self.counter {
                return false;
            }
        } else {
            run.clone_into(&mut self.run);
        }
        self.counter = counter;
        true
    }
}

/// When to try again: the waits between attempts and which failures are worth a warning.
#[derive(Debug)]
struct Retry {
    delay: Duration,
    /// Failed attempts in a row.
    failures: u32,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            delay: BACKOFF_MIN,
            failures: 0,
        }
    }
}

impl Retry {
    fn connected(&mut self) {
        self.failures = 0;
    }

    /// The session that had connected lasted `lasted`.
    fn ended(&mut self, lasted: Duration) {
        if lasted > HEALTHY_SESSION {
            self.delay = BACKOFF_MIN;
        }
    }

    /// An attempt failed; whether to say so.
    fn failed(&mut self) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.failures.is_power_of_two()
    }

    /// The wait before the next attempt; each is twice the one before, up to the cap.
    fn next_delay(&mut self) -> Duration {
        let d = self.delay;
        self.delay = (d * 2).min(BACKOFF_MAX);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proto::ipc::{self, Role, FORMAT_VERSION};
    use tokio::net::UnixListener;

    #[test]
    fn waits_double_to_the_cap_and_restart_only_after_a_healthy_session() {
        let mut r = Retry::default();
        let waits: Vec<u64> = (0..8).map(|_| r.next_delay().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        r.connected();
        r.ended(Duration::from_secs(1));
        assert_eq!(
            r.next_delay(),
            BACKOFF_MAX,
            "a short session keeps the wait"
        );
        r.connected();
        r.ended(HEALTHY_SESSION + Duration::from_millis(1));
        assert_eq!(r.next_delay(), BACKOFF_MIN);
    }

    #[test]
    fn failures_are_said_ever_more_rarely_and_again_after_a_connection() {
        let mut r = Retry::default();
        let said: Vec<u32> = (1..=10).filter(|_| r.failed()).collect();
        assert_eq!(said, [1, 2, 4, 8]);
        r.connected();
        assert!(r.failed());
    }

    /// A subscriber that records what it was asked, serves each connection until the hub
    /// closes it, and stops the loop after its second connection.
    struct Probe {
        patterns: Vec<String>,
        sessions: u32,
        ended: u32,
        got: Vec<String>,
        stop: watch::Sender<bool>,
    }

    impl Subscriber for Probe {
        type Error = OpenError;

        fn subscription(&self) -> Subscription {
            Subscription {
                patterns: self.patterns.clone(),
                media: true,
                events: false,
            }
        }

        async fn session(
            &mut self,
            session: &mut Session,
            _shutdown: &mut watch::Receiver<bool>,
        ) -> Result<(), OpenError> {
            self.sessions += 1;
            loop {
                while let Some(m) = session.message()? {
                    match m.header {
                        Header::Announce { key, .. } => self.got.push(key),
                        Header::Event(e) => self.got.push(e.fields[0].1.clone()),
                        _ => {}
                    }
                }
                if !session.receive().await? {
                    // A reload between two connections: the next one asks for this.
                    self.patterns = vec!["live/b".into()];
                    if self.sessions == 2 {
                        let _ = self.stop.send(true);
                    }
                    return Ok(());
                }
            }
        }

        async fn disconnected(&mut self) {
            self.ended += 1;
        }
    }

    /// An event as the hub stamps it, with only its `id`.
    fn stamped(id: &str) -> Header {
        Header::Event(Event {
            kind: "test".into(),
            key: String::new(),
            conn_id: 0,
            remote: String::new(),
            fields: vec![("id".into(), id.into())],
        })
    }

    /// Plays the hub for one connection: answers the hello, reads the subscriber's
    /// `Subscribe`, announces `key`, sends events with `ids` and closes. Returns the
    /// patterns subscribed to.
    async fn serve_once(listener: &UnixListener, key: &str, ids: &[&str]) -> Vec<String> {
        let (mut sock, _) = listener.accept().await.unwrap();
        let decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let patterns = loop {
            match decoder.decode(&mut buf).unwrap() {
                Some(Message {
                    header: Header::Subscribe { patterns, .. },
                    ..
                }) => break patterns,
                Some(_) => {}
                None => assert!(sock.read_buf(&mut buf).await.unwrap() > 0),
            }
        };
        let mut out = BytesMut::new();
        let hello = Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Hub,
            name: "hub".into(),
        };
        ipc::encode(&hello, &[], &mut out);
        let announce = Header::Announce {
            stream: 1,
            key: key.into(),
            timescale: 1000,
        };
        ipc::encode(&announce, &[], &mut out);
        for id in ids {
            ipc::encode(&stamped(id), &[], &mut out);
        }
        sock.write_all(&out).await.unwrap();
        patterns
    }

    /// The hub goes away twice (a restart): each time the subscriber is told, connects
    /// again with the subscription it asks for then, and gets the new hub's announcements.
    /// The second connection replays events the first one had (the hub's startup window):
    /// only the new one is handed over.
    #[tokio::test]
    async fn subscribes_again_after_the_hub_goes_away() {
        let dir = std::env::temp_dir().join(format!("telemetry-sub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let (stop, mut shutdown) = watch::channel(false);
        let mut probe = Probe {
            patterns: vec!["live/a".into()],
            sessions: 0,
            ended: 0,
            got: Vec::new(),
            stop,
        };
        let hub = async {
            let first = serve_once(&listener, "live/a", &["5f.a1.1", "5f.a1.2"]).await;
            let second = serve_once(&listener, "live/b", &["5f.a1.1", "5f.a1.2", "5f.a1.3"]).await;
            (first, second)
        };
        let both = async {
            tokio::join!(
                keep_subscribed(&path, "test", &mut probe, &mut shutdown),
                hub
            )
        };
        // Bounds a hang, should the loop never stop; no claim on how fast it is.
        let (_, (first, second)) = tokio::time::timeout(Duration::from_secs(60), both)
            .await
            .expect("the subscriber stops after its second connection");
        assert_eq!(first, ["live/a"]);
        assert_eq!(second, ["live/b"]);
        assert_eq!(
            probe.got,
            ["live/a", "5f.a1.1", "5f.a1.2", "live/b", "5f.a1.3"]
        );
        assert_eq!((probe.sessions, probe.ended), (2, 2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn with_id(id: &str) -> Event {
        match stamped(id) {
            Header::Event(e) => e,
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_event_of_the_same_hub_run_not_past_the_last_one_is_a_replay() {
        let mut last = LastEvent::default();
        let first = |last: &mut LastEvent, id: &str| last.first_time(&with_id(id));
        assert!(first(&mut last, "18c.2a.1"));
        assert!(
            first(&mut last, "18c.2a.3"),
            "a gap (events missed) is fine"
        );
        assert!(!first(&mut last, "18c.2a.1"));
        assert!(!first(&mut last, "18c.2a.3"));
        assert!(first(&mut last, "18c.2a.4"));
        // A restarted hub counts from 1 again under another run.
        assert!(first(&mut last, "18d.2b.1"));
        assert!(!first(&mut last, "18d.2b.1"));
        // Not this hub's stamp: handed over as it is, the last one kept.
        assert!(first(&mut last, "no-counter"));
        assert!(first(&mut last, ""));
        let mut bare = with_id("x");
        bare.fields.clear();
        assert!(last.first_time(&bare));
        assert!(!first(&mut last, "18d.2b.1"));
    }
}
