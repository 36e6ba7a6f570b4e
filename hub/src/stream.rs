//! The state of one stream: its publisher, track configurations, metadata, output
//! timeline and shared ring, and the readers (players, subscribers) to wake.
//!
//! All of it sits behind one short-held `std::sync::Mutex` (never held across `.await`).
//! The publisher's task mutates it; readers lock it only to copy `Bytes` handles out of the
//! ring from their cursor to the head. New entries are offered to the readers after the
//! lock is released ([`Delivery`]), so a reader writing to its socket never holds up
//! another.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use proto::media::{Codec, Frame, StreamKey, TrackKind};
use proto::rtmp::session::{Needs, PlayerCaps};
use tokio::sync::{mpsc, Notify};

use crate::config::Config;
use crate::ring::{Item, Ring, RingLimits, Side};
use crate::rtmp_out::{MediaWriter, SHARED_STREAM_ID};
use crate::timeline::Timeline;
use crate::wire::{Built, Wire};
use proto::flv::{PacketKind, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};

/// The media bitrate of a stream, measured over windows of one second of media time
/// (so it reads the same however bursty the arrival is).
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    start_ms: Option<i64>,
    bytes: u64,
    bps: u64,
}

impl RateMeter {
    /// A frame of `bytes` at media time `ms`.
    pub fn add(&mut self, ms: i64, bytes: usize) {
        let start = *self.start_ms.get_or_insert(ms);
        let elapsed = ms.saturating_sub(start);
        if elapsed >= 1000 {
            self.bps = self.bytes * 8 * 1000 / elapsed as u64;
            self.start_ms = Some(ms);
            self.bytes = 0;
        } else if elapsed < 0 {
            // Timestamps went back (a new publisher's timeline): start over.
            self.start_ms = Some(ms);
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
    }

    /// Bits per second over the last complete window (0 before the first one).
    pub fn bits_per_second(&self) -> u64 {
        self.bps
    }
}

/// Which publisher (connection and its stream handle) owns a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherId {
    /// The publisher connection.
    pub conn_id: u64,
    /// The handle it chose in `Announce`.
    pub handle: u32,
}

/// Why a publisher loses its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Another publisher took the key over (the stream goes on with it).
    Takeover,
    /// An operator stopped it through the API (the stream ends).
    Kicked,
}

impl Revocation {
    /// The `Revoke.reason` sent to the publisher.
    pub fn reason(self) -> &'static str {
        match self {
            Revocation::Takeover => "takeover",
            Revocation::Kicked => "kicked",
        }
    }
}

/// The owning publisher and how to tell it that it lost the stream.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Who.
    pub id: PublisherId,
    /// Receives the handle of a stream taken away, and why.
    pub revoke: mpsc::Sender<(u32, Revocation)>,
}

/// A track's current decoder configuration.
#[derive(Debug, Clone)]
pub struct TrackConfig {
    /// Codec.
    pub codec: Codec,
    /// Configuration record.
    pub payload: Bytes,
}

/// Why a publisher's message was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The sender does not own the stream any more (taken over).
    #[error("not the owner of the stream")]
    NotOwner,
    /// A frame of a track that has no configuration (its codec is unknown).
    #[error("frame of track {track} (video: {video}) before its TrackConfig")]
    UnknownTrack {
        /// Track.
        track: u8,
        /// Video or audio.
        video: bool,
    },
}

/// One stream, shared by its publisher, players and subscribers.
#[derive(Debug)]
pub struct Stream {
    /// The key.
    pub key: StreamKey,
    /// Hub-wide handle, used as the stream handle towards subscribers.
    pub id: u32,
    state: Mutex<StreamState>,
}

/// The locked part of a [`Stream`].
#[derive(Debug)]
pub struct StreamState {
    /// Shared serialized entries.
    pub ring: Ring,
    /// Output timeline.
    pub timeline: Timeline,
    /// Current configuration per (video, track).
    pub tracks: BTreeMap<(bool, u8), TrackConfig>,
    /// Current metadata (AMF0 values).
    pub metadata: Option<Bytes>,
    /// Current E-RTMP video metadata (`colorInfo`) per (video, track), with the codec.
    pub track_metadata: BTreeMap<(bool, u8), (Codec, Bytes)>,
    /// Current speaker layout (MultichannelConfig body) per audio track, with the codec.
    pub channel_configs: BTreeMap<u8, (Codec, Bytes)>,
    /// A nanosecond offset waiting for the next frame of (video, track).
    pending_offset: Option<(bool, u8, u32)>,
    /// The live publisher, if any.
    pub owner: Option<Owner>,
    /// Incremented at every publish; unpublish timers check it.
    pub generation: u64,
    /// Players attached.
    pub players: usize,
    /// Set once the stream is removed from the registry; readers finish and let go.
    pub closed: bool,
    /// When the current publisher started (for the API's uptime).
    pub published_at: Option<std::time::SystemTime>,
    /// Media bitrate of the current publisher.
    pub rate: RateMeter,
    readers: Vec<(u64, Arc<dyn Reader>)>,
    /// The readers as one shared list, rebuilt when one comes or goes, so that a delivery
    /// takes it with a reference count and walks it without the lock.
    snapshot: Arc<[Arc<dyn Reader>]>,
    media: MediaWriter,
}

/// Something that reads a stream's ring from its own cursor.
pub trait Reader: Send + Sync + std::fmt::Debug {
    /// An entry was appended (called without the stream lock held). A reader whose
    /// cursor is at it may take it on the spot; it must not block.
    fn offer(&self, new: &NewEntry);
    /// Something changed that the reader's own task must look at (called with the
    /// stream lock held: it must only wake the task).
    fn wake(&self);
    /// The ring entry this reader takes next, if it keeps track of it: the ring keeps
    /// entries from the oldest such position (within the lag window), so a stream whose
    /// readers keep up holds only its GOP cache. `None` keeps the whole lag window.
    fn position(&self) -> Option<u64> {
        None
    }
    /// The publisher went quiet: bytes a reader held back to write together with later
    /// entries go out now (called without the stream lock held; must not block).
    fn flush(&self) {}
}

impl Reader for Notify {
    fn offer(&self, _: &NewEntry) {
        self.notify_one();
    }

    fn wake(&self) {
        self.notify_one();
    }
}

/// A subscriber's reader of one stream: one task reads many streams, so they share its
/// [`Notify`], and each reports how far the task has taken its entries, so that a stream a
/// recorder or relayer keeps up with holds only its GOP cache, as with players.
#[derive(Debug)]
pub struct SharedWaker {
    waker: Arc<Notify>,
    position: AtomicU64,
}

impl SharedWaker {
    /// A reader waking `waker`, whose first entry is `start`.
    pub fn new(waker: Arc<Notify>, start: u64) -> Arc<SharedWaker> {
        Arc::new(SharedWaker {
            waker,
            position: AtomicU64::new(start),
        })
    }

    /// The task has taken every entry before `next`.
    pub fn taken_to(&self, next: u64) {
        self.position.store(next, Ordering::Relaxed);
    }
}

impl Reader for SharedWaker {
    fn offer(&self, _: &NewEntry) {
        self.waker.notify_one();
    }

    fn wake(&self) {
        self.waker.notify_one();
    }

    fn position(&self) -> Option<u64> {
        Some(self.position.load(Ordering::Relaxed))
    }
}

/// A media entry just appended, as a caught-up reader needs it: where it is, what it is
/// and its shared chunk bytes (so the fast path does not take the stream lock again).
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Its sequence number in the ring.
    pub seq: u64,
    /// `Some(keyframe)` for a video frame, `None` for audio.
    pub video: Option<bool>,
    /// A frame (filtered by receiveAudio/receiveVideo) rather than a header or metadata.
    pub frame: bool,
    /// The serialized chunks (message stream [`SHARED_STREAM_ID`]).
    pub rtmp: Wire,
    /// Which RTMP players may get it (see [`crate::ring::Entry::needs`]).
    pub needs: Needs,
    /// `rtmp` without ModEx, for players that cannot parse it.
    pub plain: Wire,
    /// When it was offered (read once per delivery, not once per reader).
    pub at: Instant,
}

/// A new entry to offer to the readers once the stream lock is released.
#[must_use = "readers see new entries only when the delivery is run"]
pub struct Delivery {
    readers: Arc<[Arc<dyn Reader>]>,
    new: NewEntry,
}

/// Frames between two refreshes of the ring's low-water mark (one pass over the readers).
const LOW_WATER_EVERY: u64 = 16;

/// Readers below which one task offers a new entry to all of them.
const SHARD_READERS: usize = 256;

/// RTMP timestamp of every `onMetaData` sent to players. FFmpeg's FLV demuxer applies
/// metadata stamped 0 (dimensions, frame rate, tags) but turns metadata with any other
/// timestamp into an extra data track (a "Subtitle: text" stream holding raw AMF), so a
/// player that joins mid-stream must get it at 0 too. Data
/// messages travel on their own chunk stream with absolute (FMT 0) timestamps, so this
/// does not disturb the media timeline.
const METADATA_TS: u32 = 0;

impl Delivery {
    /// Whether any reader is offered the entry (one that may hold it back to coalesce).
    pub fn has_readers(&self) -> bool {
        !self.readers.is_empty()
    }

    /// Offers the new entry to every reader. Many readers are split across the runtime's
    /// worker threads (the caller takes the first share, spawned tasks the rest), so the
    /// last reader of a large audience does not wait for every other socket write. Order
    /// is safe: a reader takes an entry only at its own cursor, else its task does.
    pub fn run(self) {
        let n = self.readers.len();
        let workers = tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_workers())
            .unwrap_or(1);
        let shards = (n / SHARD_READERS).clamp(1, workers.max(1));
        let per = n.div_ceil(shards);
        for i in 1..shards {
            let (readers, new) = (self.readers.clone(), self.new.clone());
            tokio::spawn(async move {
                for r in &readers[i * per..((i + 1) * per).min(n)] {
                    r.offer(&new);
                }
            });
        }
        for r in &self.readers[..per.min(n)] {
            r.offer(&self.new);
        }
    }
}

impl Stream {
    /// Has every reader write what it held back for coalescing (the publisher sent
    /// nothing for a while). Like [`Delivery::run`], it walks a snapshot without the lock.
    pub fn flush_readers(&self) {
        let readers = self.lock().snapshot.clone();
        for r in readers.iter() {
            r.flush();
        }
    }

    /// A stream with no publisher yet.
    pub fn new(key: StreamKey, id: u32, cfg: &Config) -> Stream {
        let limits = RingLimits {
            gop_bytes: cfg.gop_cache_bytes as u64,
            gop_ms: cfg.gop_cache_duration.as_millis().min(i64::MAX as u128) as i64,
            queue_bytes: cfg.player_queue_bytes as u64,
        };
        Stream {
            key,
            id,
            state: Mutex::new(StreamState {
                ring: Ring::new(limits),
                timeline: Timeline::new(),
                tracks: BTreeMap::new(),
                metadata: None,
                track_metadata: BTreeMap::new(),
                channel_configs: BTreeMap::new(),
                pending_offset: None,
                owner: None,
                generation: 0,
                players: 0,
                closed: false,
                published_at: None,
                rate: RateMeter::default(),
                readers: Vec::new(),
                snapshot: Arc::new([]),
                media: MediaWriter::new(cfg.chunk_size),
            }),
        }
    }

    /// Locks the state. A poisoned lock (a panic elsewhere) still yields the state: every
    /// mutation leaves it consistent between statements that could panic.
    pub fn lock(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StreamState {
    /// Whether a publisher is live.
    pub fn is_live(&self) -> bool {
        self.owner.is_some()
    }

    /// Registers a reader.
    pub fn add_reader(&mut self, id: u64, reader: Arc<dyn Reader>) {
        self.readers.push((id, reader));
        self.rebuild_snapshot();
        self.update_low_water();
    }

    /// Removes a reader.
    pub fn remove_reader(&mut self, id: u64) {
        self.readers.retain(|(r, _)| *r != id);
        self.rebuild_snapshot();
        self.update_low_water();
    }

    /// Tells the ring what its readers still need. Readers only move forward, so a mark
    /// some entries old only keeps a little more than needed; it is refreshed every
    /// [`LOW_WATER_EVERY`] frames and whenever a reader comes or goes.
    fn update_low_water(&mut self) {
        let low = self
            .readers
            .iter()
            .try_fold(u64::MAX, |low, (_, r)| r.position().map(|p| low.min(p)));
        self.ring.set_low_water(low);
    }

    fn rebuild_snapshot(&mut self) {
        self.snapshot = self.readers.iter().map(|(_, r)| r.clone()).collect();
    }

    fn wake(&self) {
        for (_, r) in &self.readers {
            r.wake();
        }
    }

    fn delivery(&self, new: NewEntry) -> Delivery {
        Delivery {
            readers: self.snapshot.clone(),
            new,
        }
    }

    fn out_ms(&self) -> i64 {
        self.timeline.to_ms(self.timeline.last_out())
    }

    fn check_owner(&self, id: PublisherId) -> Result<(), StreamError> {
        match &self.owner {
            Some(o) if o.id == id => Ok(()),
            _ => Err(StreamError::NotOwner),
        }
    }

    /// `owner` starts publishing (first, returning or taking over): the previous owner,
    /// if any, is returned so the caller can revoke it.
    pub fn publish(&mut self, owner: Owner, timescale: u32) -> Option<Owner> {
        let previous = self.owner.replace(owner);
        self.generation += 1;
        self.published_at = Some(std::time::SystemTime::now());
        self.rate = RateMeter::default();
        self.timeline.start_publisher(timescale);
        self.tracks.clear();
        self.metadata = None;
        self.track_metadata.clear();
        self.channel_configs.clear();
        self.pending_offset = None;
        let ms = self.out_ms();
        self.ring.push(
            Item::Published {
                timescale: self.timeline.timescale(),
            },
            ms,
            Wire::default(),
        );
        self.wake();
        previous
    }

    /// The owner ends its stream. Returns false (and changes nothing) for a non-owner.
    pub fn unpublish(&mut self, id: PublisherId, reason: &str) -> bool {
        if self.check_owner(id).is_err() {
            return false;
        }
        self.owner = None;
        self.published_at = None;
        let ms = self.out_ms();
        self.ring.push(
            Item::Unpublished {
                reason: reason.into(),
            },
            ms,
            Wire::default(),
        );
        self.wake();
        true
    }

    /// The stream is gone: readers close after what they already have.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.owner = None;
        let ms = self.out_ms();
        self.ring.push(Item::Closed, ms, Wire::default());
        self.wake();
    }

    /// A track configuration from the owner.
    pub fn track_config(
        &mut self,
        id: PublisherId,
        track: u8,
        codec: Codec,
        payload: Bytes,
    ) -> Result<Delivery, StreamError> {
        self.check_owner(id)?;
        let video = codec.kind() == TrackKind::Video;
        let ms = self.out_ms();
        let Built {
            wire: rtmp,
            payload,
        } = self.media.config(
            codec,
            track,
            &payload,
            Timeline::rtmp_ts(ms),
            SHARED_STREAM_ID,
        );
        self.tracks.insert(
            (video, track),
            TrackConfig {
                codec,
                payload: payload.clone(),
            },
        );
        let needs = Needs::media(codec, track, PacketKind::Config, 0);
        let seq = self.ring.push_for(
            Item::Config {
                track,
                codec,
                payload,
            },
            ms,
            rtmp.clone(),
            needs,
            Wire::default(),
        );
        Ok(self.delivery(NewEntry {
            seq,
            video: video.then_some(false),
            frame: false,
            rtmp,
            needs,
            plain: Wire::default(),
            at: Instant::now(),
        }))
    }

    /// Metadata from the owner.
    pub fn metadata(&mut self, id: PublisherId, payload: Bytes) -> Result<Delivery, StreamError> {
        self.check_owner(id)?;
        let ms = self.out_ms();
        let rtmp = Wire::one(self.media.metadata(&payload, METADATA_TS, SHARED_STREAM_ID));
        self.metadata = Some(payload.clone());
        let seq = self.ring.push(Item::Metadata { payload }, ms, rtmp.clone());
        Ok(self.delivery(NewEntry {
            seq,
            video: None,
            frame: false,
            rtmp,
            needs: Needs::default(),
            plain: Wire::default(),
            at: Instant::now(),
        }))
    }

    /// A side message from the owner (FORMAT.md variants 13 to 17), in order with the
    /// media around it at the current output time. The stream-state ones (video metadata,
    /// speaker layout) are kept for joiners; `@clearDataFrame` clears the metadata; a
    /// nanosecond offset waits for its frame. `None` when there is nothing to deliver yet.
    pub fn side(&mut self, id: PublisherId, side: Side) -> Result<Option<Delivery>, StreamError> {
        self.check_owner(id)?;
        let ms = self.out_ms();
        let dts = self.timeline.last_out();
        let (side, tag, body, needs) = match side {
            Side::TimestampOffset {
                track,
                video,
                nanos,
            } => {
                self.pending_offset = Some((video, track, nanos));
                return Ok(None);
            }
            Side::TrackMetadata {
                track,
                codec,
                payload,
                ..
            } => {
                let video = codec.kind() == TrackKind::Video;
                self.track_metadata
                    .insert((video, track), (codec, payload.clone()));
                let body = MediaWriter::tag_body(codec, track, PacketKind::Metadata, &payload);
                let side = Side::TrackMetadata {
                    track,
                    codec,
                    dts,
                    payload,
                };
                let needs = Needs::media(codec, track, PacketKind::Metadata, 0);
                (side, media_tag(codec), body, needs)
            }
            Side::EndOfSequence { track, codec, .. } => {
                let body =
                    MediaWriter::tag_body(codec, track, PacketKind::EndOfSequence, &Bytes::new());
                (
                    Side::EndOfSequence { track, codec, dts },
                    media_tag(codec),
                    body,
                    Needs::media(codec, track, PacketKind::EndOfSequence, 0),
                )
            }
            Side::ChannelConfig {
                track,
                codec,
                payload,
            } => {
                self.channel_configs.insert(track, (codec, payload.clone()));
                let body = MediaWriter::tag_body(codec, track, PacketKind::ChannelConfig, &payload);
                let side = Side::ChannelConfig {
                    track,
                    codec,
                    payload,
                };
                let needs = Needs::media(codec, track, PacketKind::ChannelConfig, 0);
                (side, media_tag(codec), body, needs)
            }
            Side::Data { payload, .. } => {
                if clears_metadata(&payload) {
                    self.metadata = None;
                }
                (
                    Side::Data {
                        dts,
                        payload: payload.clone(),
                    },
                    TAG_SCRIPT,
                    payload,
                    Needs::default(),
                )
            }
        };
        let rtmp = Wire::one(
            self.media
                .tag(tag, &body, Timeline::rtmp_ts(ms), SHARED_STREAM_ID),
        );
        let item = Item::Side { side, tag, body };
        let seq = self
            .ring
            .push_for(item, ms, rtmp.clone(), needs, Wire::default());
        Ok(Some(self.delivery(NewEntry {
            seq,
            video: None,
            frame: false,
            rtmp,
            needs,
            plain: Wire::default(),
            at: Instant::now(),
        })))
    }

    /// A media frame from the owner: mapped onto the output timeline, serialized once and
    /// appended to the ring.
    pub fn frame(&mut self, id: PublisherId, mut frame: Frame) -> Result<Delivery, StreamError> {
        self.check_owner(id)?;
        let (track, video) = (frame.track, frame.is_video());
        let codec = self
            .tracks
            .get(&(video, track))
            .map(|t| t.codec)
            .ok_or(StreamError::UnknownTrack { track, video })?;
        frame.dts = self.timeline.map(frame.dts, video);
        let ms = self.timeline.to_ms(frame.dts);
        self.rate.add(ms, frame.payload.len());
        let cts_ms = self
            .timeline
            .to_ms(i64::from(frame.cts))
            .clamp(-(1 << 23), (1 << 23) - 1) as i32;
        let nanos = match self.pending_offset {
            Some((v, t, nanos)) if v == video && t == track => {
                self.pending_offset = None;
                // For subscribers; players get the offset inside the frame's message.
                let side = Side::TimestampOffset {
                    track,
                    video,
                    nanos,
                };
                let item = Item::Side {
                    side,
                    tag: media_tag(codec),
                    body: Bytes::new(),
                };
                self.ring.push(item, ms, Wire::default());
                nanos
            }
            _ => 0,
        };
        let ts = Timeline::rtmp_ts(ms);
        let Built {
            wire: rtmp,
            payload,
        } = (self.media).frame_offset(codec, &frame, ts, cts_ms, nanos, SHARED_STREAM_ID);
        let needs = Needs::media(codec, track, MediaWriter::frame_kind(&frame, cts_ms), nanos);
        // Players that cannot parse ModEx get the frame without its offset.
        let plain = if needs.modex {
            (self.media)
                .frame(codec, &frame, ts, cts_ms, SHARED_STREAM_ID)
                .wire
        } else {
            Wire::default()
        };
        // The ring keeps the payload once: within the chunk bytes, or as the chunks' slices.
        frame.payload = payload;
        let video = video.then_some(frame.is_keyframe());
        if self.ring.head().is_multiple_of(LOW_WATER_EVERY) {
            self.update_low_water();
        }
        let item = Item::Frame(frame);
        let seq = (self.ring).push_for(item, ms, rtmp.clone(), needs, plain.clone());
        Ok(self.delivery(NewEntry {
            seq,
            video,
            frame: true,
            rtmp,
            needs,
            plain,
            at: Instant::now(),
        }))
    }

    /// Serializes the current metadata and sequence headers for one player that starts
    /// (or resumes after a skip) at output time `ms`, on message stream `stream_id`:
    /// those that `caps` can take.
    pub fn headers_for(
        &mut self,
        ms: i64,
        stream_id: u32,
        caps: &PlayerCaps,
        out: &mut Vec<Bytes>,
    ) {
        let ts = Timeline::rtmp_ts(ms);
        if let Some(m) = &self.metadata {
            out.push(self.media.metadata(m, METADATA_TS, stream_id));
        }
        for (&(_, track), t) in &self.tracks {
            if caps.takes(&Needs::media(t.codec, track, PacketKind::Config, 0)) {
                let wire = self
                    .media
                    .config(t.codec, track, &t.payload, ts, stream_id)
                    .wire;
                out.push(wire.first().clone());
                wire.for_each_rest(|b| out.push(b));
            }
        }
        let state = self
            .track_metadata
            .iter()
            .map(|(&(_, track), (codec, p))| (track, *codec, PacketKind::Metadata, p))
            .chain(
                self.channel_configs
                    .iter()
                    .map(|(&track, (codec, p))| (track, *codec, PacketKind::ChannelConfig, p)),
            );
        for (track, codec, kind, payload) in state {
            if !caps.takes(&Needs::media(codec, track, kind, 0)) {
                continue;
            }
            let body = MediaWriter::tag_body(codec, track, kind, payload);
            out.push(self.media.tag(media_tag(codec), &body, ts, stream_id));
        }
    }
}

/// The FLV tag (and RTMP message) type of `codec`'s messages.
fn media_tag(codec: Codec) -> u8 {
    match codec.kind() {
        TrackKind::Video => TAG_VIDEO,
        TrackKind::Audio => TAG_AUDIO,
    }
}

/// Whether a data message is `@clearDataFrame` (its AMF0 handler name, a short string).
fn clears_metadata(amf0: &[u8]) -> bool {
    const NAME: &[u8] = b"@clearDataFrame";
    amf0.len() >= 3 + NAME.len()
        && amf0[0] == 0x02
        && usize::from(u16::from_be_bytes([amf0[1], amf0[2]])) == NAME.len()
        && &amf0[3..3 + NAME.len()] == NAME
}

#[cfg(test)]
mod rate_tests {
    use super::RateMeter;

    #[test]
    fn bitrate_over_one_second_of_media_time() {
        let mut r = RateMeter::default();
        assert_eq!(r.bits_per_second(), 0);
        for i in 0..=25 {
            r.add(i * 40, 5000); // 25 frames a second, 5000 bytes each
        }
        assert_eq!(r.bits_per_second(), 1_000_000);
        r.add(0, 10); // a new timeline starts over, keeping the last rate
        assert_eq!(r.bits_per_second(), 1_000_000);
    }
}
