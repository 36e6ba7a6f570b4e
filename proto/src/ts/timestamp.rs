//! The program clock: 33-bit 90 kHz PTS/DTS values of every track of a program mapped
//! onto one 64-bit timeline that starts at 0, so the tracks keep their exact relation.
//!
//! Each value is unwrapped to the nearest one (forward or back) to the last value seen
//! in the program, which handles the 33-bit wrap (every 26.5 hours) and the interleaving
//! of tracks. A jump further than `max_gap`, further than one second shortly after a PCR
//! discontinuity indicator, or back in time within one track by more than [`BACKSTEP`],
//! starts a new segment whose first value continues from the furthest time output so
//! far: players see no gap and no step back. The segment before stays known,
//! so the other tracks' packets still in flight from before the jump keep their timing.

/// Ticks per second of PTS/DTS.
pub const CLOCK_RATE: u32 = 90_000;

const WRAP: i64 = 1 << 33;

/// How far one track may step back in time (jitter) before it counts as a restart.
pub const BACKSTEP: i64 = CLOCK_RATE as i64 / 10;

/// The signed difference `a - b` of two 33-bit values, taken the short way round.
pub fn delta33(a: u64, b: u64) -> i64 {
    let d = (a as i64 - b as i64).rem_euclid(WRAP);
    if d >= WRAP / 2 {
        d - WRAP
    } else {
        d
    }
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Last raw value and its unwrapped value.
    raw: u64,
    ext: i64,
    /// Added to unwrapped values to get output values.
    offset: i64,
}

impl Segment {
    fn unwrap(&self, raw: u64) -> i64 {
        self.ext + delta33(raw, self.raw)
    }
}

/// One clock for all tracks of a program.
#[derive(Debug, Clone)]
pub struct ProgramClock {
    max_gap: i64,
    current: Option<Segment>,
    previous: Option<Segment>,
    max_out: i64,
    /// Values still to be mapped under the tighter limit of a PCR discontinuity.
    discontinuity: u8,
}

/// How many values after a PCR discontinuity indicator a one-second jump still counts.
const DISCONTINUITY_WINDOW: u8 = 16;

impl ProgramClock {
    /// A clock that treats jumps larger than `max_gap` ticks as discontinuities.
    pub fn new(max_gap: u64) -> Self {
        ProgramClock {
            max_gap: max_gap.min(WRAP as u64 / 4) as i64,
            current: None,
            previous: None,
            max_out: 0,
            discontinuity: 0,
        }
    }

    /// The PCR announced a discontinuity: a jump of more than a second in the next few
    /// values starts a segment.
    pub fn discontinuity(&mut self) {
        self.discontinuity = DISCONTINUITY_WINDOW;
    }

    /// Notes an output time reached by other means (audio frames counted on from their
    /// PES timestamp): a new segment starts no earlier.
    pub fn observe(&mut self, out: i64) {
        self.max_out = self.max_out.max(out);
    }

    /// Maps a decode (or presentation, when alone) timestamp to the output timeline.
    pub fn map(&mut self, raw: u64) -> i64 {
        self.map_after(raw, None)
    }

    /// Maps a timestamp of a track whose last output time was `floor`. A step back of more
    /// than [`BACKSTEP`] within one track cannot be interleaving: the source restarted,
    /// and a new segment starts as for a jump. Smaller steps back are the caller's to clamp.
    pub fn map_after(&mut self, raw: u64, floor: Option<i64>) -> i64 {
        let Some(cur) = self.current else {
            self.current = Some(Segment {
                raw,
                ext: 0,
                offset: 0,
            });
            return 0;
        };
        let ext = cur.unwrap(raw);
        let step = ext - cur.ext;
        let limit = if self.discontinuity > 0 {
            self.discontinuity -= 1;
            self.max_gap.min(i64::from(CLOCK_RATE))
        } else {
            self.max_gap
        };
        let backwards = floor.is_some_and(|f| ext + cur.offset < f - BACKSTEP);
        if step.abs() <= limit && !backwards {
            return self.advance(raw, ext, cur.offset);
        }
        if let Some(prev) = self.previous.filter(|_| !backwards) {
            let pext = prev.unwrap(raw);
            if (pext - prev.ext).abs() <= self.max_gap {
                // A late packet from before the jump: it keeps the old segment's timing.
                self.previous = Some(Segment {
                    raw,
                    ext: pext,
                    ..prev
                });
                let out = pext + prev.offset;
                self.max_out = self.max_out.max(out);
                return out;
            }
        }
        self.discontinuity = 0;
        self.previous = Some(cur);
        self.advance(raw, ext, self.max_out - ext)
    }

    fn advance(&mut self, raw: u64, ext: i64, offset: i64) -> i64 {
        self.current = Some(Segment { raw, ext, offset });
        let out = ext + offset;
        self.max_out = self.max_out.max(out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: u64 = (1 << 33) - 1;

    #[test]
    fn short_way_round() {
        assert_eq!(delta33(5, 3), 2);
        assert_eq!(delta33(3, 5), -2);
        assert_eq!(delta33(1, MASK), 2);
        assert_eq!(delta33(MASK, 1), -2);
    }

    #[test]
    fn wraps_and_interleaves() {
        let mut c = ProgramClock::new(10 * 90_000);
        let start = MASK - 3000;
        assert_eq!(c.map(start), 0);
        assert_eq!(c.map(start - 1000), -1000); // audio slightly behind video
        assert_eq!(c.map((start + 6000) & MASK), 6000); // across the wrap
        assert_eq!(c.map((start + 9000) & MASK), 9000);
    }

    #[test]
    fn jumps_continue_and_late_packets_keep_their_segment() {
        let mut c = ProgramClock::new(90_000);
        assert_eq!(c.map(1_000_000), 0);
        assert_eq!(c.map(1_003_600), 3600);
        // The source restarts at a far-away time: output continues from 3600.
        assert_eq!(c.map(50_000_000), 3600);
        assert_eq!(c.map(50_003_600), 7200);
        // An audio packet from before the restart keeps the old timing.
        assert_eq!(c.map(1_001_800), 1800);
        assert_eq!(c.map(50_007_200), 10800);
        // A track going back in time by more than BACKSTEP is a restart even when small.
        let mut c = ProgramClock::new(10 * 90_000);
        assert_eq!(c.map_after(126_000, None), 0);
        assert_eq!(c.map_after(171_000, Some(0)), 45_000);
        assert_eq!(c.map_after(127_800, None), 1800); // another track, interleaved
        assert_eq!(c.map_after(126_000, Some(45_000)), 45_000); // restart
        assert_eq!(c.map_after(129_600, Some(45_000)), 48_600);
        assert_eq!(c.map_after(127_800, Some(1800)), 46_800); // the other track follows

        // After a PCR discontinuity, a jump of over a second is a new segment too.
        let mut c = ProgramClock::new(10 * 90_000);
        assert_eq!(c.map(0), 0);
        assert_eq!(c.map(200_000), 200_000);
        c.discontinuity();
        assert_eq!(c.map(203_600), 203_600);
        assert_eq!(c.map(500_000), 203_600);
        assert_eq!(c.map(503_600), 207_200);
    }
}
