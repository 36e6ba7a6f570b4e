//! Events a component emits (proto/FORMAT.md section 3.1), sent to the hub's event bus over
//! a connection of their own, and kept while the hub is away.
//!
//! ```text
//!  any thread --send()--> [queue: at most `capacity`, full: the oldest is dropped and
//!                          counted] --deliver task--> hub.sock (Publisher hello, Events)
//!                                        | hub away or restarting: reconnect with backoff,
//!                                        | the queue waits; a failed write puts the
//!                                        | events the kernel did not take whole back
//!                                        | at the front
//! ```
//!
//! An event leaves the queue once the kernel took it; one written in the instant the hub
//! dies can still be lost with the hub.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
/// The event message (re-exported for components that do not use `proto` otherwise).
pub use proto::ipc::Event;
use proto::ipc::{self, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Notify;

use crate::Counter;

/// The queue bound components use unless they have a reason for another.
pub const DEFAULT_CAPACITY: usize = 4096;
/// Events written in one go.
const BATCH: usize = 256;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Where a component's events go; cheap to clone into every task and thread.
#[derive(Debug, Clone)]
pub struct Emitter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    wake: Notify,
    /// `mediaserver_events_dropped_total`.
    dropped: Counter,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Events taken by the delivery task and not yet written.
    in_flight: usize,
    /// Dropped since the last warning about it.
    unreported: u64,
}

impl Emitter {
    /// Delivers events to the hub at `hub` from a task on the current tokio runtime, as
    /// `component`. At most `capacity` events wait for the hub; `dropped` counts the
    /// oldest ones dropped beyond that.
    pub fn start(
        hub: PathBuf,
        component: &'static str,
        capacity: usize,
        dropped: Counter,
    ) -> Emitter {
        let emitter = Emitter::queue_only(capacity, dropped);
        tokio::spawn(deliver(hub, component, emitter.shared.clone()));
        emitter
    }

    /// [`Emitter::start`] for programs without an async runtime (the supervisor): the
    /// delivery runs on a thread of its own until the process exits.
    pub fn start_on_thread(
        hub: PathBuf,
        component: &'static str,
        capacity: usize,
        dropped: Counter,
    ) -> std::io::Result<Emitter> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let emitter = Emitter::queue_only(capacity, dropped);
        let shared = emitter.shared.clone();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || rt.block_on(deliver(hub, component, shared)))?;
        Ok(emitter)
    }

    /// An emitter that discards every event (no hub to send them to).
    pub fn discard() -> Emitter {
        Emitter::queue_only(0, crate::Metrics::new().counter("discarded_total", &[]))
    }

    fn queue_only(capacity: usize, dropped: Counter) -> Emitter {
        Emitter {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                capacity,
                wake: Notify::new(),
                dropped,
            }),
        }
    }

    /// Queues `event` without waiting; when the queue is full the oldest event is dropped
    /// (and counted) to make room.
    pub fn send(&self, event: Event) {
        let s = &self.shared;
        if s.capacity == 0 {
            return;
        }
        let mut q = s.lock();
        if q.events.len() >= s.capacity {
            q.events.pop_front();
            q.unreported += 1;
            s.dropped.inc();
        }
        q.events.push_back(event);
        drop(q);
        s.wake.notify_one();
    }

    /// Events waiting for the hub, including those being written.
    pub fn pending(&self) -> usize {
        let q = self.shared.lock();
        q.events.len() + q.in_flight
    }

    /// Waits until every queued event was written, or `within` passed (at shutdown).
    pub async fn flush(&self, within: Duration) {
        let _ = tokio::time::timeout(within, async {
            while self.pending() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes up to [`BATCH`] events from the front.
    fn take(&self) -> Vec<Event> {
        let mut q = self.lock();
        let n = q.events.len().min(BATCH);
        let batch: Vec<Event> = q.events.drain(..n).collect();
        q.in_flight = batch.len();
        batch
    }

    /// Puts back a batch that was not written, ahead of what came since, within the bound.
    fn put_back(&self, batch: Vec<Event>) {
        let mut q = self.lock();
        q.in_flight = 0;
        for e in batch.into_iter().rev() {
            if q.events.len() >= self.capacity {
                q.unreported += 1;
                self.dropped.inc();
                continue;
            }
            q.events.push_front(e);
        }
    }

    fn written(&self) {
        self.lock().in_flight = 0;
    }

    fn take_unreported(&self) -> u64 {
        std::mem::take(&mut self.lock().unreported)
    }
}

/// Connects, delivers until the connection fails, and starts over with backoff.
async fn deliver(hub: PathBuf, component: &'static str, shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    let mut warned = false;
    loop {
        match crate::hub_conn::connect(&hub, component).await {
            Ok(sock) => {
                backoff = BACKOFF_MIN;
                if warned {
                    tracing::info!(
                        pending = shared.lock().events.len(),
                        "events: hub reachable again; sending the events kept meanwhile"
                    );
                    warned = false;
                }
                if let Err(e) = session(sock, &shared).await {
                    tracing::debug!(error = %e, "events: hub connection lost");
                }
            }
            Err(e) => {
                if !warned {
                    tracing::info!(hub = %hub.display(), error = %e, "events: hub not reachable; keeping events until it is");
                    warned = true;
                }
            }
        }
        let dropped = shared.take_unreported();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                capacity = shared.capacity,
                "events: queue full while the hub was away; the oldest were dropped"
            );
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Writes queued events until the hub goes away.
async fn session(mut sock: UnixStream, shared: &Shared) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    let mut ends = Vec::with_capacity(BATCH);
    let mut sink = [0u8; 256];
    loop {
        let batch = shared.take();
        if batch.is_empty() {
            tokio::select! {
                // The hub never writes after its hello: a read returning is its end.
                biased;
                _ = sock.read(&mut sink) => return Ok(()),
                () = shared.wake.notified() => continue,
            }
        }
        out.clear();
        ends.clear();
        for e in &batch {
            ipc::encode(&Header::Event(e.clone()), &[], &mut out);
            ends.push(out.len());
        }
        let mut written = 0;
        while written < out.len() {
            let result = match sock.write(&out[written..]).await {
                Ok(0) => Err(std::io::ErrorKind::WriteZero.into()),
                result => result,
            };
            match result {
                Ok(n) => written += n,
                Err(e) => {
                    shared.put_back(unwritten(batch, &ends, written));
                    return Err(e);
                }
            }
        }
        shared.written();
    }
}

/// The events of `batch` the kernel did not take whole, given where each one's encoding
/// ends in the written buffer: those it took left the queue (resending them would hand
/// the hub a duplicate under a new id), a cut one is sent again from its start.
fn unwritten(mut batch: Vec<Event>, ends: &[usize], written: usize) -> Vec<Event> {
    let taken = ends.iter().take_while(|&&end| end <= written).count();
    batch.drain(..taken);
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> Event {
        Event {
            kind: "test".into(),
            key: String::new(),
            conn_id: u64::from(n),
            remote: String::new(),
            fields: Vec::new(),
        }
    }

    fn ids(s: &Shared) -> Vec<u64> {
        s.lock().events.iter().map(|e| e.conn_id).collect()
    }

    #[test]
    fn full_queue_drops_the_oldest_and_counts() {
        let m = crate::Metrics::new();
        let dropped = m.counter("mediaserver_events_dropped_total", &[]);
        let em = Emitter::queue_only(3, dropped.clone());
        for n in 1..=5 {
            em.send(event(n));
        }
        assert_eq!(ids(&em.shared), [3, 4, 5]);
        assert_eq!(dropped.get(), 2);
        assert_eq!(em.shared.take_unreported(), 2);
        assert_eq!(em.shared.take_unreported(), 0);
    }

    #[test]
    fn an_unwritten_batch_goes_back_in_front_within_the_bound() {
        let m = crate::Metrics::new();
        let dropped = m.counter("mediaserver_events_dropped_total", &[]);
        let em = Emitter::queue_only(4, dropped.clone());
        for n in 1..=3 {
            em.send(event(n));
        }
        let batch = em.shared.take();
        assert_eq!(em.pending(), 3);
        for n in 4..=6 {
            em.send(event(n));
        }
        em.shared.put_back(batch);
        // Room for one of the three: the newest of the batch stays, the older two go.
        assert_eq!(ids(&em.shared), [3, 4, 5, 6]);
        assert_eq!(dropped.get(), 2);
        assert_eq!(em.pending(), 4);
    }

    #[test]
    fn only_events_the_kernel_did_not_take_whole_go_back() {
        let batch: Vec<Event> = (1..=4).map(event).collect();
        let ends = [10, 20, 30, 40];
        let conn_ids = |b: Vec<Event>| b.iter().map(|e| e.conn_id).collect::<Vec<_>>();
        assert_eq!(conn_ids(unwritten(batch.clone(), &ends, 0)), [1, 2, 3, 4]);
        assert_eq!(conn_ids(unwritten(batch.clone(), &ends, 20)), [3, 4]);
        assert_eq!(conn_ids(unwritten(batch.clone(), &ends, 25)), [3, 4]);
        assert!(unwritten(batch, &ends, 40).is_empty());
    }

    #[test]
    fn discard_keeps_nothing() {
        let em = Emitter::discard();
        em.send(event(1));
        assert_eq!(em.pending(), 0);
    }

    /// Events sent while no hub listens arrive, in order, once one does.
    #[tokio::test]
    async fn kept_while_the_hub_is_away_then_delivered() {
        let dir = std::env::temp_dir().join(format!("telemetry-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.sock");
        let _ = std::fs::remove_file(&path);
        let m = crate::Metrics::new();
        let em = Emitter::start(path.clone(), "test", 16, m.counter("d_total", &[]));
        for n in 1..=3 {
            em.send(event(n));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(em.pending(), 3);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (mut sock, _) = listener.accept().await.unwrap();
        let decoder = ipc::FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        ipc::encode(
            &Header::Hello {
                version: ipc::FORMAT_VERSION,
                role: ipc::Role::Hub,
                name: "hub".into(),
            },
            &[],
            &mut out,
        );
        sock.write_all(&out).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 3 {
            match decoder.decode(&mut buf).unwrap() {
                Some(m) => match m.header {
                    Header::Event(e) => got.push(e.conn_id),
                    Header::Hello { .. } => {}
                    other => panic!("unexpected {other:?}"),
                },
                None => assert!(sock.read_buf(&mut buf).await.unwrap() > 0),
            }
        }
        assert_eq!(got, [1, 2, 3]);
        em.flush(Duration::from_secs(5)).await;
        assert_eq!(em.pending(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
