//! Wrapping sequence and message numbers.
//!
//! SRT numbers data packets with 31 bits and messages with 26 bits; both wrap. Ordering is
//! defined over a half-range window, so comparisons hold across the wrap.

use std::cmp::Ordering;
use std::fmt;

/// A 31-bit data packet sequence number with wrapping arithmetic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(u32);

impl SeqNo {
    /// Largest value plus one: sequence numbers are taken modulo this.
    pub const MODULUS: u32 = 1 << 31;
    const HALF: u32 = 1 << 30;

    /// The sequence number `v` modulo 2^31.
    pub const fn new(v: u32) -> Self {
        SeqNo(v & (Self::MODULUS - 1))
    }

    /// The raw 31-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `self + n`, wrapping.
    pub fn plus(self, n: u32) -> Self {
        SeqNo::new(self.0.wrapping_add(n))
    }

    /// `self - n`, wrapping.
    pub fn minus(self, n: u32) -> Self {
        SeqNo::new(self.0.wrapping_sub(n))
    }

    /// The next sequence number.
    pub fn next(self) -> Self {
        self.plus(1)
    }

    /// Signed distance from `other` to `self` (positive when `self` is later).
    pub fn diff(self, other: SeqNo) -> i32 {
        let d = self.0.wrapping_sub(other.0) & (Self::MODULUS - 1);
        if d >= Self::HALF {
            (i64::from(d) - i64::from(Self::MODULUS)) as i32
        } else {
            d as i32
        }
    }
}

impl PartialOrd for SeqNo {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeqNo {
    fn cmp(&self, other: &Self) -> Ordering {
        self.diff(*other).cmp(&0)
    }
}

impl fmt::Debug for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A 26-bit message number (the message number field of a data packet), wrapping, never 0
/// when produced by [`MsgNo::next`] (libsrt skips 0, which drop requests use as "unknown").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct MsgNo(u32);

impl MsgNo {
    const MASK: u32 = (1 << 26) - 1;

    /// The message number `v` modulo 2^26.
    pub const fn new(v: u32) -> Self {
        MsgNo(v & Self::MASK)
    }

    /// The raw 26-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The following message number, skipping 0.
    pub fn next(self) -> Self {
        let n = MsgNo::new(self.0.wrapping_add(1));
        if n.0 == 0 {
            MsgNo(1)
        } else {
            n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_across_the_wrap() {
        let last = SeqNo::new(SeqNo::MODULUS - 1);
        let first = last.next();
        assert_eq!(first.get(), 0);
        assert!(first > last);
        assert_eq!(first.diff(last), 1);
        assert_eq!(last.diff(first), -1);
        assert_eq!(SeqNo::new(5).minus(10).get(), SeqNo::MODULUS - 5);
    }

    #[test]
    fn message_numbers_skip_zero() {
        assert_eq!(MsgNo::new((1 << 26) - 1).next().get(), 1);
    }
}
