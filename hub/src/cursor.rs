//! A reader's place in a stream's ring, and the policies that move it: waiting for a
//! keyframe, skipping whole GOPs when the reader falls behind, and (for players) how many
//! skips are too many, and how long a socket may take nothing. Players and subscribers
//! use the same [`Cursor`]; time is passed in (`now`), never read here, so the policies
//! are tested on simulated time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::ring::{Entry, Lag, Ring};

/// Counts lag skips in a sliding window.
#[derive(Debug)]
pub struct LagCounter {
    max: u32,
    window: Duration,
    skips: VecDeque<Instant>,
}

impl LagCounter {
    /// A counter allowing `max` skips per `window`.
    pub fn new(max: u32, window: Duration) -> LagCounter {
        LagCounter {
            max,
            window,
            skips: VecDeque::new(),
        }
    }

    /// Records a skip at `now`; true when there were more than `max` within the window.
    pub fn record(&mut self, now: Instant) -> bool {
        while self
            .skips
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) > self.window)
        {
            self.skips.pop_front();
        }
        self.skips.push_back(now);
        self.skips.len() > self.max as usize
    }

    /// Skips within the window at the last record.
    pub fn count(&self) -> usize {
        self.skips.len()
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// A jump the lag policy made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip {
    /// Where the cursor was.
    pub from: u64,
    /// Where it is now: the newest keyframe, or the head.
    pub to: u64,
    /// Whether `to` is a keyframe (else the head: video waits for the next keyframe).
    pub to_keyframe: bool,
    /// Frames skipped.
    pub frames: u64,
    /// Payload bytes skipped (frames already trimmed from the ring count as 0).
    pub bytes: u64,
}

/// What the lag policy decided for a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagDecision {
    /// Within bounds: keep reading.
    Fine,
    /// Too far behind: whole GOPs were skipped.
    Skipped(Skip),
    /// Too many skips within the window: the reader must be closed.
    TooSlow {
        /// Skips counted.
        skips: usize,
        /// The window they were counted in.
        window: Duration,
    },
}

/// One reader's position in a stream's ring.
#[derive(Debug)]
pub struct Cursor {
    seq: u64,
    /// Video is skipped until a keyframe (joined without a GOP, skipped to the head,
    /// video turned back on, a new publisher).
    waiting_key: bool,
    /// `None`: the reader is never closed for lagging (subscribers).
    lag: Option<LagCounter>,
}

impl Cursor {
    /// A cursor at `seq`; `waiting_key` when video must start at a keyframe; `lag` counts
    /// skips for readers that are closed when they skip too often.
    pub fn new(seq: u64, waiting_key: bool, lag: Option<LagCounter>) -> Cursor {
        Cursor {
            seq,
            waiting_key,
            lag,
        }
    }

    /// The sequence number of the next entry this reader takes.
    pub fn at(&self) -> u64 {
        self.seq
    }

    /// Whether video waits for a keyframe.
    pub fn waiting_key(&self) -> bool {
        self.waiting_key
    }

    /// From now on, video waits for a keyframe.
    pub fn wait_for_keyframe(&mut self) {
        self.waiting_key = true;
    }

    /// Whether entries remain between the cursor and the head.
    pub fn behind_head(&self, ring: &Ring) -> bool {
        self.seq < ring.head()
    }

    /// Takes the entry at the cursor (if the ring has it yet) and moves past it.
    pub fn next<'r>(&mut self, ring: &'r Ring) -> Option<&'r Entry> {
        let e = ring.get(self.seq)?;
        self.seq += 1;
        Some(e)
    }

    /// Moves past the entry at the cursor, which the caller got elsewhere (the
    /// publisher's fan-out hands it over directly).
    pub fn step(&mut self) {
        self.seq += 1;
    }

    /// Whether a frame the cursor just passed goes to the reader, as far as keyframes
    /// are concerned (`video`: `Some(keyframe)` for video, `None` for audio): video
    /// waiting for a keyframe is dropped until one comes.
    pub fn admit(&mut self, video: Option<bool>) -> bool {
        match video {
            Some(true) => {
                self.waiting_key = false;
                true
            }
            Some(false) => !self.waiting_key,
            None => true,
        }
    }

    /// The lag policy at `now`: a cursor more than the ring's queue bound behind the head
    /// (or off the ring) jumps to the newest keyframe within bounds, or to the head
    /// waiting for the next one.
    pub fn check_lag(&mut self, ring: &Ring, now: Instant) -> LagDecision {
        self.check_lag_queued(ring, 0, now)
    }

    /// [`Cursor::check_lag`] for a reader that holds `queued` bytes not yet written (taken
    /// from the ring, or replies built for it alone): they count against the bound too.
    pub fn check_lag_queued(&mut self, ring: &Ring, queued: usize, now: Instant) -> LagDecision {
        let (to, to_keyframe) = match ring.check_lag_queued(self.seq, queued as u64) {
            Lag::Fine => return LagDecision::Fine,
            Lag::SkipTo(k) => (k, true),
            Lag::SkipToHead(h) => (h, false),
        };
        if let Some(lag) = &mut self.lag {
            if lag.record(now) {
                return LagDecision::TooSlow {
                    skips: lag.count(),
                    window: lag.window(),
                };
            }
        }
        let (frames, bytes) = ring.frames_between(self.seq, to);
        let skip = Skip {
            from: self.seq,
            to,
            to_keyframe,
            frames,
            bytes,
        };
        self.seq = to;
        self.waiting_key |= !to_keyframe;
        LagDecision::Skipped(skip)
    }

    /// Skips within the lag window (0 for readers without a limit).
    pub fn skips(&self) -> usize {
        self.lag.as_ref().map_or(0, LagCounter::count)
    }

    /// Moves to where a joiner would start now (a seek on a live stream): the join point,
    /// or the head waiting for a keyframe. Not counted as a lag skip.
    pub fn rejoin(&mut self, ring: &Ring) {
        match ring.join_point() {
            Some(j) => self.seq = j,
            None => {
                self.seq = ring.head();
                self.waiting_key = true;
            }
        }
    }
}

/// The stall policy: a socket that takes no bytes for `timeout` while some are queued
/// belongs to a reader that stopped reading.
#[derive(Debug, Clone, Copy)]
pub struct StallTimer {
    timeout: Duration,
    blocked_since: Option<Instant>,
}

impl StallTimer {
    /// A timer closing readers blocked for `timeout`.
    pub fn new(timeout: Duration) -> StallTimer {
        StallTimer {
            timeout,
            blocked_since: None,
        }
    }

    /// A write at `now` took bytes; `blocked` when it could not take everything.
    pub fn progress(&mut self, now: Instant, blocked: bool) {
        self.blocked_since = blocked.then_some(now);
    }

    /// A write at `now` took nothing.
    pub fn blocked(&mut self, now: Instant) {
        self.blocked_since.get_or_insert(now);
    }

    /// Nothing is queued any more.
    pub fn idle(&mut self) {
        self.blocked_since = None;
    }

    /// When the reader is closed unless the socket takes bytes before.
    pub fn deadline(&self) -> Option<Instant> {
        self.blocked_since.map(|t| t + self.timeout)
    }

    /// Whether the reader stalled by `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proto::media::{Frame, FrameFlags, TrackKind};

    use super::*;
    use crate::ring::{Item, RingLimits};

    const LAG_WINDOW: Duration = Duration::from_secs(30);
    /// Payload bytes per video frame in these rings.
    const FRAME: usize = 1000;
    /// Frames per GOP.
    const GOP: usize = 10;

    /// A ring holding at most about two GOPs behind the head.
    fn ring() -> Ring {
        Ring::new(RingLimits {
            gop_bytes: 1 << 20,
            gop_ms: 10_000,
            queue_bytes: (2 * GOP * (FRAME + 100)) as u64,
        })
    }

    fn push_gop(r: &mut Ring, ms: &mut i64) -> u64 {
        let mut key = 0;
        for i in 0..GOP {
            let seq = r.push(
                Item::Frame(Frame {
                    track: 0,
                    kind: TrackKind::Video,
                    dts: *ms,
                    cts: 0,
                    flags: FrameFlags::new(i == 0, false),
                    payload: Bytes::from(vec![0; FRAME]),
                }),
                *ms,
                crate::wire::Wire::default(),
            );
            if i == 0 {
                key = seq;
            }
            *ms += 40;
        }
        key
    }

    fn player_cursor(seq: u64) -> Cursor {
        Cursor::new(seq, false, Some(LagCounter::new(2, LAG_WINDOW)))
    }

    #[test]
    fn one_gop_behind_is_fine() {
        let (mut r, mut ms) = (ring(), 0);
        let first = push_gop(&mut r, &mut ms);
        let mut c = player_cursor(first);
        assert_eq!(r.head() - c.at(), GOP as u64);
        assert_eq!(c.check_lag(&r, Instant::now()), LagDecision::Fine);
        assert_eq!(c.at(), first);
    }

    #[test]
    fn two_gops_behind_is_still_within_the_bound() {
        let (mut r, mut ms) = (ring(), 0);
        let first = push_gop(&mut r, &mut ms);
        let mut c = player_cursor(first);
        push_gop(&mut r, &mut ms);
        // The reader has not taken a single entry of two whole GOPs.
        assert_eq!(r.head() - c.at(), 2 * GOP as u64);
        assert_eq!(c.check_lag(&r, Instant::now()), LagDecision::Fine);
        assert_eq!(c.skips(), 0);
    }

    #[test]
    fn three_gops_behind_skips_to_the_newest_keyframe() {
        let (mut r, mut ms) = (ring(), 0);
        let first = push_gop(&mut r, &mut ms);
        let mut c = player_cursor(first);
        push_gop(&mut r, &mut ms);
        push_gop(&mut r, &mut ms);
        let newest = push_gop(&mut r, &mut ms);
        match c.check_lag(&r, Instant::now()) {
            LagDecision::Skipped(s) => {
                assert_eq!((s.from, s.to, s.to_keyframe), (first, newest, true));
                assert_eq!(s.frames, newest - first, "whole GOPs skipped");
                assert!(s.frames % GOP as u64 == 0);
            }
            other => panic!("expected a skip, got {other:?}"),
        }
        assert_eq!(c.at(), newest);
        assert!(!c.waiting_key());
        assert_eq!(c.check_lag(&r, Instant::now()), LagDecision::Fine);
    }

    #[test]
    fn many_gops_behind_off_the_ring_still_lands_on_a_keyframe() {
        let (mut r, mut ms) = (ring(), 0);
        let mut c = player_cursor(push_gop(&mut r, &mut ms));
        let mut newest = 0;
        for _ in 0..20 {
            newest = push_gop(&mut r, &mut ms);
        }
        assert!(r.get(c.at()).is_none(), "the cursor fell off the ring");
        match c.check_lag(&r, Instant::now()) {
            LagDecision::Skipped(s) => assert_eq!((s.to, s.to_keyframe), (newest, true)),
            other => panic!("expected a skip, got {other:?}"),
        }
        // Reading on from there: the keyframe, then its GOP.
        let e = c.next(&r).unwrap();
        assert!(e.is_video_keyframe());
    }

    #[test]
    fn a_gop_larger_than_the_bound_skips_to_the_head_and_waits_for_a_keyframe() {
        let mut r = Ring::new(RingLimits {
            gop_bytes: 1 << 20,
            gop_ms: 10_000,
            queue_bytes: (5 * (FRAME + 100)) as u64,
        });
        let mut ms = 0;
        let mut c = player_cursor(push_gop(&mut r, &mut ms));
        push_gop(&mut r, &mut ms);
        match c.check_lag(&r, Instant::now()) {
            LagDecision::Skipped(s) => {
                assert!(!s.to_keyframe);
                assert_eq!(s.to, r.head());
            }
            other => panic!("expected a skip, got {other:?}"),
        }
        assert!(c.waiting_key());
        assert!(!c.admit(Some(false)), "inter frames wait");
        assert!(c.admit(None), "audio does not wait");
        assert!(c.admit(Some(true)));
        assert!(c.admit(Some(false)), "after the keyframe video flows");
    }

    #[test]
    fn too_many_skips_within_the_window_close_the_player() {
        let (mut r, mut ms) = (ring(), 0);
        let mut c = player_cursor(push_gop(&mut r, &mut ms));
        let t0 = Instant::now();
        let mut fall_behind = |c: &mut Cursor, r: &mut Ring, at: Instant| {
            let from = r.head();
            for _ in 0..4 {
                push_gop(r, &mut ms);
            }
            // The reader is still where it was before these GOPs.
            *c = Cursor::new(from, false, c.lag.take());
            c.check_lag(r, at)
        };
        assert!(matches!(
            fall_behind(&mut c, &mut r, t0),
            LagDecision::Skipped(_)
        ));
        let t1 = t0 + Duration::from_secs(10);
        assert!(matches!(
            fall_behind(&mut c, &mut r, t1),
            LagDecision::Skipped(_)
        ));
        let t2 = t0 + Duration::from_secs(20);
        assert_eq!(
            fall_behind(&mut c, &mut r, t2),
            LagDecision::TooSlow {
                skips: 3,
                window: LAG_WINDOW
            }
        );
    }

    #[test]
    fn bytes_queued_for_the_reader_count_against_the_bound() {
        let (mut r, mut ms) = (ring(), 0);
        let key = push_gop(&mut r, &mut ms);
        let mut c = player_cursor(key);
        // One GOP behind: fine alone, a skip when two GOPs' worth waits for the socket.
        assert_eq!(c.check_lag_queued(&r, 0, Instant::now()), LagDecision::Fine);
        let queued = 2 * GOP * FRAME;
        match c.check_lag_queued(&r, queued, Instant::now()) {
            LagDecision::Skipped(s) => assert_eq!((s.from, s.to), (key, r.head())),
            other => panic!("expected a skip, got {other:?}"),
        }
        assert_eq!(c.skips(), 1);
    }

    #[test]
    fn skips_spread_beyond_the_window_are_forgiven() {
        let mut lag = LagCounter::new(2, LAG_WINDOW);
        let t0 = Instant::now();
        assert!(!lag.record(t0));
        assert!(!lag.record(t0 + Duration::from_secs(20)));
        assert!(
            !lag.record(t0 + Duration::from_secs(31)),
            "the first skip left the window"
        );
        assert!(
            lag.record(t0 + Duration::from_secs(32)),
            "three within 30 s"
        );
    }

    #[test]
    fn subscribers_skip_without_limit() {
        let (mut r, mut ms) = (ring(), 0);
        let mut c = Cursor::new(push_gop(&mut r, &mut ms), false, None);
        for _ in 0..10 {
            let from = r.head();
            for _ in 0..4 {
                push_gop(&mut r, &mut ms);
            }
            c = Cursor::new(from, false, None);
            assert!(matches!(
                c.check_lag(&r, Instant::now()),
                LagDecision::Skipped(_)
            ));
        }
        assert_eq!(c.skips(), 0);
    }

    #[test]
    fn rejoin_goes_to_the_join_point() {
        let (mut r, mut ms) = (ring(), 0);
        let mut c = player_cursor(push_gop(&mut r, &mut ms));
        let newest = push_gop(&mut r, &mut ms);
        c.rejoin(&r);
        assert_eq!(c.at(), newest);
        assert_eq!(c.skips(), 0, "a seek is not a lag skip");
    }

    #[test]
    fn a_stalled_reader_is_closed_after_the_write_timeout() {
        let mut s = StallTimer::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(s.deadline(), None);
        s.blocked(t0);
        // Further blocked writes do not move the deadline.
        s.blocked(t0 + Duration::from_secs(5));
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(!s.expired(t0 + Duration::from_secs(9)));
        assert!(s.expired(t0 + Duration::from_secs(10)));
        // Progress that still leaves bytes queued restarts the clock there.
        s.progress(t0 + Duration::from_secs(9), true);
        assert!(!s.expired(t0 + Duration::from_secs(18)));
        assert!(s.expired(t0 + Duration::from_secs(19)));
        // Progress that empties the queue clears it.
        s.progress(t0 + Duration::from_secs(19), false);
        assert_eq!(s.deadline(), None);
        s.blocked(t0 + Duration::from_secs(20));
        s.idle();
        assert_eq!(s.deadline(), None);
    }
}
