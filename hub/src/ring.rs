//! The per-stream shared ring of serialized messages that every player and subscriber of
//! the stream reads through its own cursor.
//!
//! Each entry is built once when the publisher's message arrives (RTMP chunk bytes for
//! message stream id 1, plus the normalized frame for IPC subscribers) and shared by
//! cloning `Bytes`. Readers hold a sequence number, never a copy.
//!
//! What is retained: everything from the current join point (the newest video keyframe, or
//! for audio-only streams the audio of the last [`AUDIO_JOIN_MS`]) to the head, as long as
//! that GOP stays within the GOP cache bounds, plus older entries while the ring holds at
//! most `queue_bytes`. Trimming happens on push, so the ring never exceeds
//! `max(gop_bytes, queue_bytes)` plus one entry.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use proto::media::{Codec, Frame};
use proto::rtmp::session::Needs;

use crate::wire::Wire;

/// How much audio an audio-only stream keeps for joiners (they start up to this far
/// behind the live edge, which fills their buffer at once).
pub const AUDIO_JOIN_MS: i64 = 1000;
/// Bytes counted per entry on top of its buffers, so that tiny entries are bounded too.
const ENTRY_OVERHEAD: u64 = 64;

/// What an entry carries.
#[derive(Debug, Clone)]
pub enum Item {
    /// One media sample; its `dts` is on the output timeline (the stream's timescale).
    Frame(Frame),
    /// A track's decoder configuration changed (or was first set).
    Config {
        /// Track number.
        track: u8,
        /// Codec.
        codec: Codec,
        /// Configuration record.
        payload: Bytes,
    },
    /// New metadata (AMF0 `onMetaData`, object).
    Metadata {
        /// The AMF0 values.
        payload: Bytes,
    },
    /// What an Enhanced RTMP publisher sends besides frames, configurations and
    /// `onMetaData` (FORMAT.md section 3, variants 13 to 17).
    Side {
        /// What it is.
        side: Side,
        /// The FLV tag type of `body` (8 audio, 9 video, 18 data).
        tag: u8,
        /// The FLV tag body (the RTMP message body) players get; empty for what travels
        /// inside another message (a nanosecond offset rides on its frame).
        body: Bytes,
    },
    /// A publisher started (first one, returning one, or one taking over).
    Published {
        /// Its timescale.
        timescale: u32,
    },
    /// The publisher left; players are told and wait for it to return.
    Unpublished {
        /// Why (`unpublish`, `disconnect`, ...).
        reason: Arc<str>,
    },
    /// The stream is gone for good (unpublish timeout); readers close.
    Closed,
}

/// The side messages of a stream; timestamps are on the output timeline.
#[derive(Debug, Clone)]
pub enum Side {
    /// Video metadata (`colorInfo`) of a track; AMF0 values.
    TrackMetadata {
        /// Track number.
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// Output decode timestamp.
        dts: i64,
        /// The AMF0 values.
        payload: Bytes,
    },
    /// End of a track's coded sequence.
    EndOfSequence {
        /// Track number.
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// Output decode timestamp.
        dts: i64,
    },
    /// Speaker layout of an audio track (MultichannelConfig body).
    ChannelConfig {
        /// Track number.
        track: u8,
        /// Codec of the track.
        codec: Codec,
        /// The body.
        payload: Bytes,
    },
    /// A data message other than `onMetaData`; AMF0 values, handler name first.
    Data {
        /// Output decode timestamp.
        dts: i64,
        /// The AMF0 values.
        payload: Bytes,
    },
    /// The next frame of the track is presented `nanos` ns later than its timestamps say.
    TimestampOffset {
        /// Track number.
        track: u8,
        /// Video or audio.
        video: bool,
        /// 1 to 999 999.
        nanos: u32,
    },
}

impl Side {
    /// The framed-format message for stream handle `stream`, and its payload.
    pub fn message(&self, stream: u32) -> (proto::ipc::Header, Bytes) {
        use proto::ipc::Header;
        match self {
            Side::TrackMetadata {
                track,
                codec,
                dts,
                payload,
            } => (
                Header::TrackMetadata {
                    stream,
                    track: *track,
                    codec: *codec,
                    dts: *dts,
                },
                payload.clone(),
            ),
            Side::EndOfSequence { track, codec, dts } => (
                Header::EndOfSequence {
                    stream,
                    track: *track,
                    codec: *codec,
                    dts: *dts,
                },
                Bytes::new(),
            ),
            Side::ChannelConfig {
                track,
                codec,
                payload,
            } => (
                Header::ChannelConfig {
                    stream,
                    track: *track,
                    codec: *codec,
                },
                payload.clone(),
            ),
            Side::Data { dts, payload } => (Header::Data { stream, dts: *dts }, payload.clone()),
            Side::TimestampOffset {
                track,
                video,
                nanos,
            } => (
                Header::TimestampOffset {
                    stream,
                    track: *track,
                    video: *video,
                    nanos: *nanos,
                },
                Bytes::new(),
            ),
        }
    }
}

/// One shared entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What it is.
    pub item: Item,
    /// Output timestamp in milliseconds (before wrapping to the 32-bit RTMP field).
    pub out_ms: i64,
    /// The RTMP chunks of this entry for message stream id 1 (empty for events).
    pub rtmp: Wire,
    /// Which RTMP players may get `rtmp` (decided once, when the entry is made).
    pub needs: Needs,
    /// `rtmp` without its ModEx prefix, for players that cannot parse ModEx (empty
    /// unless `needs.modex`).
    pub plain: Wire,
    /// Ring byte offset where this entry starts.
    start: u64,
}

impl Entry {
    /// Whether this is a video keyframe.
    pub fn is_video_keyframe(&self) -> bool {
        matches!(&self.item, Item::Frame(f) if f.is_video_keyframe())
    }

    /// Whether this is a video frame.
    pub fn is_video(&self) -> bool {
        matches!(&self.item, Item::Frame(f) if f.is_video())
    }

    /// Whether this is a media frame.
    pub fn is_frame(&self) -> bool {
        matches!(self.item, Item::Frame(_))
    }

    /// What the entry costs a reader and the ring: the larger of its chunk bytes (what an
    /// RTMP player writes) and its payload (what an HTTP player or subscriber writes).
    /// A frame's payload and chunks share their bytes, so this is also about what it holds.
    fn size(&self) -> u64 {
        let payload = match &self.item {
            Item::Frame(Frame { payload, .. })
            | Item::Config { payload, .. }
            | Item::Metadata { payload } => payload.len(),
            Item::Side { body, .. } => body.len(),
            _ => 0,
        };
        (self.rtmp.len().max(payload) + self.plain.own_bytes()) as u64 + ENTRY_OVERHEAD
    }
}

/// Retention bounds.
#[derive(Debug, Clone, Copy)]
pub struct RingLimits {
    /// Largest GOP kept for joiners, bytes.
    pub gop_bytes: u64,
    /// Longest GOP kept for joiners, milliseconds.
    pub gop_ms: i64,
    /// How far behind the head a reader may fall before it must skip.
    pub queue_bytes: u64,
}

/// What a reader at some cursor must do about its lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Within bounds: keep reading from the cursor.
    Fine,
    /// Too far behind: continue at this keyframe entry (whole GOPs are dropped).
    SkipTo(u64),
    /// Too far behind and no usable keyframe: continue at the head, waiting for the next
    /// video keyframe.
    SkipToHead(u64),
}

/// The ring itself. Sequence numbers start at 0 and never wrap.
#[derive(Debug)]
pub struct Ring {
    limits: RingLimits,
    entries: VecDeque<Entry>,
    first_seq: u64,
    /// Bytes ever pushed (the offset of the next entry).
    end: u64,
    has_video: bool,
    /// Whether the default track (0) carries video.
    default_video: bool,
    /// Newest video keyframe still in the ring.
    last_key: Option<u64>,
    /// Whether the GOP from `last_key` is within the cache bounds (joiners start there).
    gop_valid: bool,
    /// Audio-only join point.
    audio_join: Option<u64>,
    /// The oldest entry a reader still needs (`None`: unknown, keep the whole lag
    /// window). Entries before it and before the join point are dropped at once.
    low_water: Option<u64>,
}

impl Ring {
    /// An empty ring.
    pub fn new(limits: RingLimits) -> Ring {
        Ring {
            limits,
            entries: VecDeque::new(),
            first_seq: 0,
            end: 0,
            has_video: false,
            default_video: false,
            last_key: None,
            gop_valid: false,
            audio_join: None,
            low_water: None,
        }
    }

    /// Tells the ring which is the oldest entry its readers still need (`None`: some
    /// reader cannot say, so keep the whole lag window). With every reader at the head, the
    /// ring holds the GOP cache alone; a lagging reader holds entries back to its cursor,
    /// never more than `queue_bytes`.
    pub fn set_low_water(&mut self, seq: Option<u64>) {
        self.low_water = seq;
    }

    /// Sequence number the next pushed entry gets.
    pub fn head(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    /// Oldest sequence number still held.
    #[cfg(test)]
    pub fn first(&self) -> u64 {
        self.first_seq
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.entries.front().map_or(0, |e| self.end - e.start)
    }

    /// Number of entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        let i = seq.checked_sub(self.first_seq)?;
        self.entries.get(usize::try_from(i).ok()?)
    }

    /// Held entries from `seq` (or the oldest held, if later) to the head.
    pub fn iter_from(&self, seq: u64) -> impl Iterator<Item = (u64, &Entry)> {
        let skip = usize::try_from(seq.saturating_sub(self.first_seq)).unwrap_or(usize::MAX);
        self.entries
            .iter()
            .enumerate()
            .skip(skip)
            .map(move |(i, e)| (self.first_seq + i as u64, e))
    }

    /// Where a reader joining now starts so that it decodes at once: the newest video
    /// keyframe, of the default track when it carries video (if its GOP is within the cache bounds), or for audio-only streams the
    /// last second of audio. `None`: start at the head and wait for a keyframe.
    pub fn join_point(&self) -> Option<u64> {
        if self.has_video {
            self.last_key.filter(|_| self.gop_valid)
        } else {
            self.audio_join
        }
    }

    /// Forgets the join point: a new publisher starts, and its frames must not be
    /// joined through the previous publisher's GOP.
    pub fn reset_join(&mut self) {
        self.has_video = false;
        self.default_video = false;
        self.last_key = None;
        self.gop_valid = false;
        self.audio_join = None;
    }

    /// Appends an entry that every RTMP player may get and trims the front; returns its
    /// sequence number.
    pub fn push(&mut self, item: Item, out_ms: i64, rtmp: Wire) -> u64 {
        self.push_for(item, out_ms, rtmp, Needs::default(), Wire::default())
    }

    /// Appends an entry whose RTMP form `rtmp` goes to the players that meet `needs`
    /// (`plain` to those without ModEx) and trims the front; returns its sequence number.
    pub fn push_for(
        &mut self,
        item: Item,
        out_ms: i64,
        rtmp: Wire,
        needs: Needs,
        plain: Wire,
    ) -> u64 {
        let seq = self.head();
        let entry = Entry {
            item,
            out_ms,
            rtmp,
            needs,
            plain,
            start: self.end,
        };
        self.end += entry.size();
        let (is_frame, is_video, is_key) = (
            entry.is_frame(),
            entry.is_video(),
            entry.is_video_keyframe(),
        );
        let default_track = matches!(&entry.item, Item::Frame(f) if f.track == 0);
        if matches!(entry.item, Item::Published { .. }) {
            self.reset_join();
        }
        self.entries.push_back(entry);
        if is_video {
            self.has_video = true;
            self.audio_join = None;
            self.default_video |= default_track;
        }
        // With video on the default track, joiners and skips start at its keyframes:
        // a player that takes only that track (a legacy one) must start at one.
        if is_key && (default_track || !self.default_video) {
            self.last_key = Some(seq);
            self.gop_valid = true;
        } else if is_frame && !self.has_video {
            self.advance_audio_join(seq, out_ms);
        }
        if self.gop_valid {
            if let Some(k) = self.last_key.and_then(|k| self.get(k)) {
                if self.end - k.start > self.limits.gop_bytes
                    || out_ms - k.out_ms > self.limits.gop_ms
                {
                    self.gop_valid = false;
                }
            }
        }
        self.trim();
        seq
    }

    fn advance_audio_join(&mut self, seq: u64, out_ms: i64) {
        let mut j = self.audio_join.unwrap_or(seq);
        while j < seq {
            match self.get(j) {
                Some(e) if e.is_frame() && e.out_ms >= out_ms - AUDIO_JOIN_MS => break,
                _ => j += 1,
            }
        }
        self.audio_join = Some(j);
    }

    fn trim(&mut self) {
        let keep_from = self.join_point().unwrap_or(self.head());
        let needed_from = self.low_water.unwrap_or(0);
        while self.first_seq < keep_from
            && (self.first_seq < needed_from || self.bytes() > self.limits.queue_bytes)
        {
            self.entries.pop_front();
            self.first_seq += 1;
        }
        if self.last_key.is_some_and(|k| k < self.first_seq) {
            self.last_key = None;
            self.gop_valid = false;
        }
        if self.audio_join.is_some_and(|k| k < self.first_seq) {
            self.audio_join = None;
        }
    }

    /// Bytes between `cursor` and the head, or `None` if `cursor` fell off the ring.
    pub fn behind(&self, cursor: u64) -> Option<u64> {
        if cursor >= self.head() {
            return Some(0);
        }
        self.get(cursor).map(|e| self.end - e.start)
    }

    /// The lag policy for a reader at `cursor`: fine while it is at most `queue_bytes`
    /// behind; otherwise it jumps to the newest keyframe (if that GOP itself is within
    /// `queue_bytes` of the head and ahead of the cursor) or to the head.
    pub fn check_lag(&self, cursor: u64) -> Lag {
        self.check_lag_queued(cursor, 0)
    }

    /// [`Ring::check_lag`] for a reader that also holds `queued` bytes taken from the ring
    /// or built for it alone (control replies) but not yet written: they count against
    /// `queue_bytes` like the entries it has not taken.
    pub fn check_lag_queued(&self, cursor: u64, queued: u64) -> Lag {
        let bound = self.limits.queue_bytes.saturating_sub(queued);
        match self.behind(cursor) {
            Some(b) if b <= bound => Lag::Fine,
            _ => {
                let target = self
                    .last_key
                    .filter(|&k| k > cursor && self.behind(k).is_some_and(|b| b <= bound));
                match target {
                    Some(k) => Lag::SkipTo(k),
                    None => Lag::SkipToHead(self.head()),
                }
            }
        }
    }

    /// Frames and their payload bytes between `from` (inclusive) and `to` (exclusive)
    /// that are still held; used to report what a reader skipped.
    pub fn frames_between(&self, from: u64, to: u64) -> (u64, u64) {
        let mut frames = 0;
        let mut bytes = 0;
        for (seq, e) in self.iter_from(from) {
            if seq >= to {
                break;
            }
            if let Item::Frame(Frame { payload, .. }) = &e.item {
                frames += 1;
                bytes += payload.len() as u64;
            }
        }
        // Entries already trimmed count as frames of unknown size.
        frames += self
            .first_seq
            .saturating_sub(from)
            .min(to.saturating_sub(from));
        (frames, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::media::{FrameFlags, TrackKind};

    fn limits(gop: u64, queue: u64) -> RingLimits {
        RingLimits {
            gop_bytes: gop,
            gop_ms: 10_000,
            queue_bytes: queue,
        }
    }

    fn frame(video: bool, key: bool, len: usize) -> Item {
        Item::Frame(Frame {
            track: 0,
            kind: TrackKind::from_video(video),
            dts: 0,
            cts: 0,
            flags: FrameFlags::new(key, false),
            payload: Bytes::from(vec![0u8; len]),
        })
    }

    /// Size of an entry with `len` bytes of payload and no RTMP bytes.
    fn sz(len: u64) -> u64 {
        len + ENTRY_OVERHEAD
    }

    #[test]
    fn join_point_is_newest_keyframe() {
        let mut r = Ring::new(limits(1 << 20, 1 << 20));
        assert_eq!(r.join_point(), None);
        r.push(frame(false, true, 10), 0, Wire::default());
        assert_eq!(r.join_point(), Some(0), "audio-only join point");
        let k1 = r.push(frame(true, true, 100), 0, Wire::default());
        assert_eq!(r.join_point(), Some(k1));
        r.push(frame(true, false, 100), 40, Wire::default());
        let k2 = r.push(frame(true, true, 100), 80, Wire::default());
        assert_eq!(r.join_point(), Some(k2));
        r.push(frame(false, true, 10), 90, Wire::default());
        assert_eq!(r.join_point(), Some(k2));
    }

    #[test]
    fn with_video_on_the_default_track_joiners_start_at_its_keyframes() {
        let on = |track, item: Item| match item {
            Item::Frame(f) => Item::Frame(Frame { track, ..f }),
            other => other,
        };
        let mut r = Ring::new(limits(1 << 20, 1 << 20));
        // Video only on track 1 so far: its keyframes are the join points.
        let k1 = r.push(on(1, frame(true, true, 100)), 0, Wire::default());
        assert_eq!(r.join_point(), Some(k1));
        let k0 = r.push(on(0, frame(true, true, 100)), 40, Wire::default());
        assert_eq!(r.join_point(), Some(k0));
        // A later keyframe of track 1 does not move it: a player of the default track
        // alone would start at an inter frame of its own.
        r.push(on(1, frame(true, true, 100)), 41, Wire::default());
        r.push(on(0, frame(true, false, 100)), 80, Wire::default());
        assert_eq!(r.join_point(), Some(k0));
        let k0b = r.push(on(0, frame(true, true, 100)), 120, Wire::default());
        assert_eq!(r.join_point(), Some(k0b));
    }

    #[test]
    fn gop_over_bounds_has_no_join_point() {
        let mut r = Ring::new(limits(sz(100) * 3, 0));
        r.push(frame(true, true, 100), 0, Wire::default());
        r.push(frame(true, false, 100), 10, Wire::default());
        r.push(frame(true, false, 100), 20, Wire::default());
        assert_eq!(r.join_point(), Some(0));
        r.push(frame(true, false, 100), 30, Wire::default());
        assert_eq!(r.join_point(), None, "GOP exceeds gop_bytes");
        // With no join point and queue_bytes 0, nothing older than the head is kept.
        assert_eq!(r.len(), 0);
        let k = r.push(frame(true, true, 100), 40, Wire::default());
        assert_eq!(r.join_point(), Some(k));

        let mut r = Ring::new(limits(1 << 20, 0));
        r.push(frame(true, true, 1), 0, Wire::default());
        r.push(frame(true, false, 1), 10_000, Wire::default());
        assert_eq!(r.join_point(), Some(0));
        r.push(frame(true, false, 1), 10_001, Wire::default());
        assert_eq!(r.join_point(), None, "GOP exceeds gop_ms");
    }

    #[test]
    fn trim_keeps_gop_and_queue_bytes() {
        let mut r = Ring::new(limits(1 << 20, sz(100) * 4));
        for i in 0..10 {
            r.push(frame(true, i == 0, 100), i * 10, Wire::default());
        }
        // The GOP (all 10) is the join point: all kept.
        assert_eq!(r.len(), 10);
        r.push(frame(true, true, 100), 100, Wire::default());
        // Join point moved to 10: older entries kept only within queue_bytes.
        assert_eq!(r.first(), 7);
        assert_eq!(r.bytes(), sz(100) * 4);
        assert!(r.get(6).is_none());
        assert_eq!(r.behind(6), None);
        assert_eq!(r.behind(7), Some(sz(100) * 4));
        assert_eq!(r.behind(11), Some(0));
    }

    #[test]
    fn without_lagging_readers_only_the_gop_is_kept() {
        let mut r = Ring::new(limits(1 << 20, 1 << 20));
        r.set_low_water(Some(u64::MAX));
        for i in 0..10 {
            r.push(frame(true, i % 5 == 0, 100), i * 10, Wire::default());
        }
        // The GOP from the keyframe at 5 is all there is, though the window allows more.
        assert_eq!((r.first(), r.len()), (5, 5));
        // A reader at 6 holds the ring back to its cursor when the next GOP starts.
        r.set_low_water(Some(6));
        for i in 10..13 {
            r.push(frame(true, i == 10, 100), i * 10, Wire::default());
        }
        assert_eq!(r.first(), 6);
        // Unknown readers keep the whole window.
        r.set_low_water(None);
        r.push(frame(true, false, 100), 130, Wire::default());
        assert_eq!(r.first(), 6);
        // Beyond the window even a reader's entries go (it will skip).
        let mut r = Ring::new(limits(1 << 20, sz(100) * 3));
        r.set_low_water(Some(0));
        for i in 0..10 {
            r.push(frame(true, i % 5 == 0, 100), i * 10, Wire::default());
        }
        assert_eq!(
            r.first(),
            5,
            "the GOP is kept, older entries past the window are not"
        );
    }

    #[test]
    fn audio_only_keeps_about_a_second() {
        let mut r = Ring::new(limits(1 << 20, 0));
        for i in 0..100 {
            r.push(frame(false, true, 10), i * 100, Wire::default());
        }
        let j = r.join_point().unwrap();
        assert_eq!(r.get(j).unwrap().out_ms, 9900 - AUDIO_JOIN_MS);
        assert_eq!(
            r.first(),
            j,
            "nothing older than the join point with queue 0"
        );
    }

    #[test]
    fn published_resets_join_point() {
        let mut r = Ring::new(limits(1 << 20, 1 << 20));
        r.push(frame(true, true, 10), 0, Wire::default());
        r.push(Item::Published { timescale: 1000 }, 0, Wire::default());
        assert_eq!(r.join_point(), None);
        let k = r.push(frame(true, true, 10), 5, Wire::default());
        assert_eq!(r.join_point(), Some(k));
    }

    #[test]
    fn lag_policy_skips_whole_gops() {
        let q = sz(100) * 5;
        let mut r = Ring::new(limits(1 << 20, q));
        for i in 0..4 {
            r.push(frame(true, i == 0, 100), i * 10, Wire::default());
        }
        assert_eq!(r.check_lag(0), Lag::Fine);
        for i in 4..8 {
            r.push(frame(true, i == 4, 100), i * 10, Wire::default());
        }
        // Cursor 0 is 8 entries behind (> 5): jump to the keyframe at 4 (4 behind).
        assert_eq!(r.check_lag(0), Lag::SkipTo(4));
        assert_eq!(r.check_lag(3), Lag::Fine);
        // Entry 3 is held (100 bytes); 0 to 2 were trimmed (size unknown).
        assert_eq!(r.frames_between(0, 4), (4, 100));
        // A GOP longer than the queue: the keyframe is too far back, go to the head.
        for i in 8..20 {
            r.push(frame(true, false, 100), i * 10, Wire::default());
        }
        assert_eq!(r.check_lag(4), Lag::SkipToHead(20));
        // A cursor that fell off the ring.
        let mut r = Ring::new(limits(0, 0));
        r.push(frame(true, false, 100), 0, Wire::default());
        r.push(frame(true, false, 100), 10, Wire::default());
        assert_eq!(r.behind(0), None);
        assert_eq!(r.check_lag(0), Lag::SkipToHead(2));
    }

    #[test]
    fn queued_bytes_count_against_the_queue_bound() {
        let q = sz(100) * 5;
        let mut r = Ring::new(limits(1 << 20, q));
        for i in 0..8 {
            r.push(frame(true, i == 4, 100), i * 10, Wire::default());
        }
        // 4 entries behind is fine alone; with two entries' worth queued it is not.
        assert_eq!(r.check_lag_queued(4, 0), Lag::Fine);
        assert_eq!(r.check_lag_queued(4, sz(100) * 2), Lag::SkipToHead(8));
        // The keyframe target must fit the bound left after what is queued.
        assert_eq!(r.check_lag_queued(3, sz(100)), Lag::SkipTo(4));
        assert_eq!(r.check_lag_queued(3, sz(100) * 2), Lag::SkipToHead(8));
        // Queued bytes above the whole bound: only the head is within it.
        assert_eq!(r.check_lag_queued(8, q + 1), Lag::Fine);
    }
}
