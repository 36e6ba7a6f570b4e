//! One output timeline per stream, kept monotonic for readers across publisher restarts,
//! takeovers and timestamp jumps.
//!
//! Input timestamps are in the current publisher's timescale. Output = input + offset. The
//! offset is 0 for the first publisher (timestamps pass through), and is recomputed
//! ("rebase") so that output continues from the last output timestamp plus [`STEP_MS`]
//! when a new publisher starts, or when a publisher's timestamps jump by more than
//! [`JUMP_MS`] either way. Smaller backwards steps within a track are clamped to the
//! track kind's last output, so audio and video each never go backwards.

/// The largest jump (either direction) taken as-is; larger ones rebase.
pub const JUMP_MS: i64 = 5_000;
/// Gap inserted at a rebase, in milliseconds.
pub const STEP_MS: i64 = 10;

/// The timeline state of one stream.
#[derive(Debug, Clone)]
pub struct Timeline {
    timescale: u32,
    offset: i64,
    /// A publisher started and its first frame has not been seen yet.
    fresh: bool,
    last_out: Option<i64>,
    last_video: Option<i64>,
    last_audio: Option<i64>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

fn rescale(v: i64, from: u32, to: u32) -> i64 {
    if from == to || from == 0 {
        return v;
    }
    let r = i128::from(v) * i128::from(to) / i128::from(from);
    r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl Timeline {
    /// A timeline with no output yet (timescale 1000 until a publisher starts).
    pub fn new() -> Timeline {
        Timeline {
            timescale: 1000,
            offset: 0,
            fresh: true,
            last_out: None,
            last_video: None,
            last_audio: None,
        }
    }

    /// The current timescale (ticks per second).
    pub fn timescale(&self) -> u32 {
        self.timescale
    }

    /// A publisher (the first, a returning one or one taking over) starts with
    /// `timescale`: the next frame rebases if it would not continue the output.
    pub fn start_publisher(&mut self, timescale: u32) {
        let timescale = timescale.max(1);
        let old = self.timescale;
        let conv = |v: Option<i64>| v.map(|v| rescale(v, old, timescale));
        self.last_out = conv(self.last_out);
        self.last_video = conv(self.last_video);
        self.last_audio = conv(self.last_audio);
        self.timescale = timescale;
        self.fresh = true;
    }

    fn ticks(&self, ms: i64) -> i64 {
        (ms * i64::from(self.timescale) / 1000).max(1)
    }

    /// Maps an input decode timestamp of a video or audio frame to the output timeline.
    pub fn map(&mut self, dts: i64, video: bool) -> i64 {
        let mut out = dts.saturating_add(self.offset);
        match self.last_out {
            None => {
                if self.fresh && dts < 0 {
                    // RTMP timestamps are unsigned: start a negative clock at 0.
                    self.offset = -dts;
                    out = 0;
                }
            }
            Some(last) => {
                let jump = self.ticks(JUMP_MS);
                if self.fresh || out < last - jump || out > last + jump {
                    let target = last + self.ticks(STEP_MS);
                    self.offset = target.saturating_sub(dts);
                    out = target;
                }
            }
        }
        self.fresh = false;
        let last_kind = if video {
            &mut self.last_video
        } else {
            &mut self.last_audio
        };
        if let Some(l) = *last_kind {
            out = out.max(l);
        }
        *last_kind = Some(out);
        self.last_out = Some(self.last_out.map_or(out, |l| l.max(out)));
        out
    }

    /// The newest output timestamp, in the current timescale (0 before any frame).
    pub fn last_out(&self) -> i64 {
        self.last_out.unwrap_or(0)
    }

    /// Converts an output timestamp to milliseconds.
    pub fn to_ms(&self, ticks: i64) -> i64 {
        rescale(ticks, self.timescale, 1000)
    }

    /// Milliseconds wrapped into the 32-bit RTMP timestamp field.
    pub fn rtmp_ts(ms: i64) -> u32 {
        ms as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_publisher_passes_through() {
        let mut t = Timeline::new();
        t.start_publisher(1000);
        assert_eq!(t.map(1234, true), 1234);
        assert_eq!(t.map(1200, false), 1200);
        assert_eq!(t.map(1274, true), 1274);
    }

    #[test]
    fn restart_continues_after_last_output() {
        let mut t = Timeline::new();
        t.start_publisher(1000);
        for ts in [0, 40, 80, 950] {
            t.map(ts, true);
        }
        t.start_publisher(1000);
        assert_eq!(t.map(0, true), 960);
        assert_eq!(t.map(0, false), 960);
        assert_eq!(t.map(40, true), 1000);
        // A new publisher whose clock is far ahead also continues from the last output.
        t.start_publisher(1000);
        assert_eq!(t.map(1_000_000, true), 1010);
        assert_eq!(t.map(1_000_040, true), 1050);
    }

    #[test]
    fn jumps_rebase_small_steps_do_not() {
        let mut t = Timeline::new();
        t.start_publisher(1000);
        assert_eq!(t.map(10_000, true), 10_000);
        assert_eq!(t.map(14_000, true), 14_000, "4 s forward is kept");
        assert_eq!(t.map(100_000, true), 14_010, "86 s forward rebases");
        assert_eq!(t.map(100_040, true), 14_050);
        assert_eq!(t.map(50, true), 14_060, "backwards jump rebases");
        // Slightly backwards within a kind is clamped, not rebased.
        assert_eq!(t.map(40, true), 14_060);
        assert_eq!(t.map(90, true), 14_100);
    }

    #[test]
    fn timescale_change_and_conversion() {
        let mut t = Timeline::new();
        t.start_publisher(1000);
        t.map(2000, true);
        t.start_publisher(90_000);
        // 2000 ms = 180000 ticks; + 10 ms = 900 ticks.
        assert_eq!(t.map(0, true), 180_900);
        assert_eq!(t.to_ms(180_900), 2010);
        assert_eq!(Timeline::rtmp_ts(0x1_0000_0005), 5);
    }

    #[test]
    fn negative_start_is_shifted_to_zero() {
        let mut t = Timeline::new();
        t.start_publisher(1000);
        assert_eq!(t.map(-500, true), 0);
        assert_eq!(t.map(-460, true), 40);
    }
}
