//! A bit reader for the codec headers (SPS, ADTS, LATM, AC-3), and removal of the
//! emulation prevention bytes of H.264/H.265 NAL units.

/// Reads big-endian bit fields; every read is bounds-checked and returns `None` past the end.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits left.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() * 8 - self.pos
    }

    /// One bit.
    pub(crate) fn bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = byte >> (7 - self.pos % 8) & 1;
        self.pos += 1;
        Some(b == 1)
    }

    /// `n` bits (at most 32).
    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        if self.remaining() < n as usize {
            return None;
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v as u32)
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        if self.remaining() < n {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// An unsigned Exp-Golomb value, `ue(v)` (at most 31 leading zeros).
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }
}

/// The RBSP of a NAL unit: its bytes with every emulation prevention byte (the 03 of a
/// 00 00 03 sequence) removed. Only the first `limit` output bytes are produced: the
/// headers read from it sit at the start.
pub(crate) fn unescape(nal: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len().min(limit));
    let mut zeros = 0;
    for &b in nal {
        if out.len() >= limit {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_exp_golomb() {
        // 1 | 010 | 011 | 00100 | 0001000 ...: ue = 0, 1, 2, 3, 7.
        let data = [0b1010_0110, 0b0100_0001, 0b0000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.ue(), Some(2));
        assert_eq!(r.ue(), Some(3));
        assert_eq!(r.ue(), Some(7));
        assert_eq!(r.bits(5), Some(0));
        assert_eq!(r.bit(), None);
        let mut r = BitReader::new(&[0xAB, 0xCD]);
        assert_eq!(r.bits(12), Some(0xABC));
        assert_eq!(r.bits(5), None);
        assert_eq!(BitReader::new(&[0; 8]).ue(), None);
    }

    #[test]
    fn removes_emulation_prevention() {
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3], 100),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(unescape(&[1, 2, 3, 4], 2), vec![1, 2]);
    }
}
