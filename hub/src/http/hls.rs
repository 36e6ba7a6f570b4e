//! HLS players: `GET /hls/{app}/{name}/index.m3u8` (the media playlist) and
//! `GET /hls/{app}/{name}/{seq}.ts` (its MPEG-TS segments), each admitted by play auth
//! (`?token=...`, which the playlist repeats on its segment URIs) like HTTP-FLV.
//!
//! ```text
//!  first playlist request of a live key --> a segmenter task (at most --hls-max-streams)
//!     ring --Cursor (from the GOP cache's keyframe; behind: skips to a keyframe)-->
//!     crate::hls::Segmenter --> the last --hls-segment-count segments (Bytes)
//!  playlist: waits up to 3 segment durations for the first segment (then 503)
//!  segment: served from memory, shared; gone or unknown: 404
//! ```
//!
//! A stream nobody plays over HLS costs nothing: the segmenter starts with the first
//! playlist request and ends [`IDLE`] after the last request, or when the stream closes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use proto::media::StreamKey;
use tokio::sync::{watch, Notify};

use super::body::Body;
use super::router::{error, response};
use super::{Http, HANDLER_TIMEOUT};
use crate::cursor::{Cursor, LagDecision};
use crate::hls::{HlsOptions, Segmenter};
use crate::registry::Registry;
use crate::ring::Item;
use crate::stream::{SharedWaker, Stream};

/// A segmenter with no request for this long ends.
pub const IDLE: Duration = Duration::from_secs(30);
/// Most ring entries taken per pass under the stream lock.
const BATCH_ENTRIES: usize = 64;

/// The HLS settings (`--hls-*`).
#[derive(Debug, Clone, Copy)]
pub struct HlsConfig {
    /// Target segment duration.
    pub segment_duration: Duration,
    /// Segments kept and listed per stream.
    pub segment_count: usize,
    /// Most streams segmented at once; 0 turns HLS off.
    pub max_streams: usize,
}

/// The segmenters running, by key.
#[derive(Debug, Default)]
pub(super) struct Segmenters {
    map: Mutex<HashMap<StreamKey, Arc<Live>>>,
    viewings: Viewings,
}

/// Most viewings remembered; past it the expired ones are forgotten, and if none has
/// expired all are (a viewing then announces itself once more).
const MAX_VIEWINGS: usize = 65_536;

/// Who fetched which key's playlist lately, so that a viewing (playlist refreshes every
/// segment duration, then segments) reports one `auth_allowed`, not one per request.
#[derive(Debug, Default)]
struct Viewings {
    last: Mutex<HashMap<(IpAddr, StreamKey), Instant>>,
}

impl Viewings {
    /// Whether this playlist request from `ip` for `key` starts a viewing: none from the
    /// same address for the same key within [`IDLE`].
    fn first(&self, ip: IpAddr, key: &StreamKey) -> bool {
        let now = Instant::now();
        let mut last = lock(&self.last);
        if last.len() >= MAX_VIEWINGS {
            last.retain(|_, at| now.duration_since(*at) <= IDLE);
            if last.len() >= MAX_VIEWINGS {
                last.clear();
            }
        }
        let seen = last.insert((ip, key.clone()), now);
        seen.is_none_or(|at| now.duration_since(at) > IDLE)
    }
}

/// One stream's segmenter, shared by its task and the requests.
#[derive(Debug)]
struct Live {
    key: StreamKey,
    stream: Arc<Stream>,
    segmenter: Mutex<Segmenter>,
    /// Segments cut so far (playlist requests wait for the first).
    cut: watch::Sender<u64>,
    last_request: Mutex<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    fn touch(&self) {
        *lock(&self.last_request) = Instant::now();
    }
}

/// The request's file: the playlist or a segment.
enum File {
    Playlist,
    Segment(u64),
}

/// `{app}/{name}/{file}` after `/hls/`.
fn parse(rest: &str) -> Option<(StreamKey, File)> {
    let (key, file) = rest.rsplit_once('/')?;
    let (app, name) = key.split_once('/')?;
    let file = match file {
        "index.m3u8" => File::Playlist,
        f => File::Segment(f.strip_suffix(".ts")?.parse().ok()?),
    };
    Some((StreamKey::new(app, name).ok()?, file))
}

impl Http {
    /// `GET /hls/...`: the playlist or a segment of a live key.
    pub(super) async fn hls(
        &self,
        rest: &str,
        query: Option<&str>,
        remote: std::net::SocketAddr,
    ) -> Response<Body> {
        if self.cfg.hls.max_streams == 0 {
            return error(StatusCode::NOT_FOUND, "HLS is off (--hls-max-streams 0)");
        }
        let Some((key, file)) = parse(rest) else {
            return error(
                StatusCode::NOT_FOUND,
                "expected /hls/{app}/{name}/index.m3u8 or /hls/{app}/{name}/{seq}.ts",
            );
        };
        let conn_id = self.registry.reader_id();
        // One `auth_allowed` per viewing, not one per playlist refresh and segment.
        let announce = matches!(file, File::Playlist) && self.hls.viewings.first(remote.ip(), &key);
        let key = match self
            .authorize_player(auth::Protocol::Hls, key, query, remote, conn_id, announce)
            .await
        {
            Ok(k) => k,
            Err(refused) => return refused,
        };
        match file {
            File::Playlist => self.playlist(key, query).await,
            File::Segment(seq) => self.segment(&key, seq),
        }
    }

    async fn playlist(&self, key: StreamKey, query: Option<&str>) -> Response<Body> {
        let stats = self.registry.stats();
        let live = match self.live(key) {
            Ok(l) => l,
            Err(refused) => return *refused,
        };
        let mut cut = live.cut.subscribe();
        let wait = (self.cfg.hls.segment_duration * 3).min(HANDLER_TIMEOUT / 2);
        let ready = tokio::time::timeout(wait, cut.wait_for(|n| *n > 0)).await;
        if !matches!(ready, Ok(Ok(_))) {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{}: no HLS segment yet", live.key),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        let suffix = query.map(|q| format!("?{q}")).unwrap_or_default();
        let text = lock(&live.segmenter).playlist(&suffix);
        stats.hls_playlists.inc();
        let mut r = response(StatusCode::OK, "application/vnd.apple.mpegurl", text);
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }

    fn segment(&self, key: &StreamKey, seq: u64) -> Response<Body> {
        let live = lock(&self.hls.map).get(key).cloned();
        let data = live.and_then(|l| {
            l.touch();
            let seg = lock(&l.segmenter);
            seg.segment(seq).map(|s| s.data.clone())
        });
        let Some(data) = data else {
            return error(StatusCode::NOT_FOUND, format!("{key}: no segment {seq}"));
        };
        let stats = self.registry.stats();
        stats.hls_segments_served.inc();
        stats.hls_bytes.add(data.len() as u64);
        let mut r = response(StatusCode::OK, "video/mp2t", data);
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        r
    }

    /// The segmenter of `key`, started if it has none and is live (one that has keeps it
    /// while its publisher is away, so that players ride out a reconnect).
    fn live(&self, key: StreamKey) -> Result<Arc<Live>, Box<Response<Body>>> {
        let not_live = || Box::new(error(StatusCode::NOT_FOUND, format!("{key} is not live")));
        let Some(stream) = self.registry.stream(&key) else {
            return Err(not_live());
        };
        let (is_live, timescale) = {
            let st = stream.lock();
            (st.is_live(), st.timeline.timescale())
        };
        let mut map = lock(&self.hls.map);
        if let Some(l) = map.get(&key).filter(|l| Arc::ptr_eq(&l.stream, &stream)) {
            l.touch();
            return Ok(l.clone());
        }
        if !is_live {
            return Err(not_live());
        }
        if map.len() >= self.cfg.hls.max_streams {
            return Err(Box::new(error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "too many HLS streams (--hls-max-streams {})",
                    self.cfg.hls.max_streams
                ),
            )));
        }
        let options = HlsOptions {
            target: self.cfg.hls.segment_duration,
            count: self.cfg.hls.segment_count,
        };
        let live = Arc::new(Live {
            key: key.clone(),
            stream,
            segmenter: Mutex::new(Segmenter::new(timescale, options)),
            cut: watch::Sender::new(0),
            last_request: Mutex::new(Instant::now()),
        });
        map.insert(key, live.clone());
        drop(map);
        tracing::debug!(key = %live.key, "hls segmenter started");
        let registry = self.registry.clone();
        let task = live.clone();
        let segmenters = self.hls.clone();
        tokio::spawn(async move {
            segment_stream(&registry, &task).await;
            let mut map = lock(&segmenters.map);
            if map.get(&task.key).is_some_and(|l| Arc::ptr_eq(l, &task)) {
                map.remove(&task.key);
            }
            tracing::debug!(key = %task.key, "hls segmenter ended");
        });
        Ok(live)
    }
}

/// Reads the stream's ring into the segmenter until the stream closes or nobody asked
/// for the stream over HLS for [`IDLE`].
async fn segment_stream(registry: &Registry, live: &Live) {
    let stats = registry.stats();
    let _running = stats.hls_segmenters.track();
    let reader_id = registry.reader_id();
    let notify = Arc::new(Notify::new());
    let (mut cursor, reader) = {
        let st = &mut *live.stream.lock();
        let join = st.ring.join_point();
        let start = join.unwrap_or(st.ring.head());
        let mut seg = lock(&live.segmenter);
        for (&(_, track), t) in &st.tracks {
            if let Err(e) = seg.config(track, t.codec, &t.payload) {
                tracing::info!(key = %live.key, track, error = %e, "track left out of HLS");
            }
        }
        let reader = SharedWaker::new(notify.clone(), start);
        // Registered under the lock that fixed the cursor: no entry falls between.
        st.add_reader(reader_id, reader.clone());
        (Cursor::new(start, join.is_none(), None), reader)
    };
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH_ENTRIES);
    loop {
        let more = {
            let st = live.stream.lock();
            if let LagDecision::Skipped(skip) = cursor.check_lag(&st.ring, Instant::now()) {
                tracing::debug!(key = %live.key, frames = skip.frames, "hls segmenter fell behind; skipped to a keyframe");
                lock(&live.segmenter).skip();
            }
            while batch.len() < BATCH_ENTRIES {
                let Some(entry) = cursor.next(&st.ring) else {
                    break;
                };
                batch.push(entry.item.clone());
            }
            reader.taken_to(cursor.at());
            cursor.behind_head(&st.ring)
        };
        let mut closed = false;
        let mut cuts = 0;
        {
            let mut seg = lock(&live.segmenter);
            for item in batch.drain(..) {
                match item {
                    Item::Frame(f) => match seg.frame(&f) {
                        Ok(cut) => cuts += u64::from(cut),
                        Err(e) => {
                            tracing::debug!(key = %live.key, error = %e, "frame left out of HLS")
                        }
                    },
                    Item::Config {
                        track,
                        codec,
                        payload,
                    } => {
                        if let Err(e) = seg.config(track, codec, &payload) {
                            tracing::info!(key = %live.key, track, error = %e, "track left out of HLS");
                        }
                    }
                    Item::Published { timescale } => seg.restart(timescale),
                    Item::Closed => closed = true,
                    Item::Metadata { .. } | Item::Side { .. } | Item::Unpublished { .. } => {}
                }
            }
        }
        if cuts > 0 {
            stats.hls_segments_cut.add(cuts);
            live.cut.send_modify(|n| *n += cuts);
        }
        if closed || lock(&live.last_request).elapsed() > IDLE {
            break;
        }
        if !more {
            let _ = tokio::time::timeout(Duration::from_secs(1), notify.notified()).await;
        }
    }
    live.stream.lock().remove_reader(reader_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewing_is_announced_once_per_address_and_key() {
        let v = Viewings::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let (cam, other) = (
            StreamKey::parse("live/cam").unwrap(),
            StreamKey::parse("live/other").unwrap(),
        );
        assert!(v.first(a, &cam));
        assert!(!v.first(a, &cam), "a playlist refresh is the same viewing");
        assert!(v.first(b, &cam), "another address views on its own");
        assert!(v.first(a, &other), "another key is another viewing");
        // One idle for longer than IDLE starts a new viewing.
        lock(&v.last).insert(
            (a, cam.clone()),
            Instant::now() - IDLE - Duration::from_secs(1),
        );
        assert!(v.first(a, &cam));
        assert!(!v.first(a, &cam));
    }
}
