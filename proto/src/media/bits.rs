//! A big-endian bit reader for the codec headers every component peeks into (SPS, ADTS,
//! LATM, AC-3, AV1 sequence headers), and removal of H.264/H.265 emulation prevention
//! bytes. Every read is bounds-checked and returns `None` past the end, so hostile
//! headers cannot panic it.

/// Reads bits MSB first from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits left.
    pub fn remaining(&self) -> usize {
        self.data.len() * 8 - self.pos
    }

    /// One bit, as 0 or 1.
    pub fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    /// One bit, as a flag.
    pub fn flag(&mut self) -> Option<bool> {
        self.bit().map(|b| b == 1)
    }

    /// Up to 32 bits.
    pub fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        if self.remaining() < n as usize {
            return None;
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v as u32)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() * 8 {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Exp-Golomb unsigned (H.264/H.265 `ue(v)`), refusing codes longer than 32 bits.
    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// Exp-Golomb signed (`se(v)`): codes 0, 1, 2, 3, 4... are 0, 1, -1, 2, -2...; `None`
    /// for a value outside `i32` (checked, so it holds whatever code length `ue` accepts).
    pub fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).ok()
    }

    /// AV1 `uvlc()`.
    pub fn uvlc(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros >= 32 {
                return Some(u32::MAX);
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }
}

/// The RBSP of an H.264/H.265 NAL unit: its bytes with every emulation prevention byte
/// (`00 00 03` -> `00 00`) removed.
pub fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    unescape_rbsp_prefix(nal, usize::MAX)
}

/// Like [`unescape_rbsp`], producing only the first `limit` bytes (headers sit at the start
/// of long NAL units).
pub fn unescape_rbsp_prefix(nal: &[u8], limit: usize) -> Vec<u8> {
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
    fn golomb() {
        // 1 | 010 | 011 | 00100 | 00101 -> 0, 1, 2, 3, 4
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0010, 0b1000_0000]);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.se(), Some(-1));
        assert_eq!(r.ue(), Some(3));
        assert_eq!(r.se(), Some(-2));
        assert_eq!(r.bits(8), None);
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), None);
    }

    /// The Exp-Golomb code of `k` (`k + 1` in binary after as many zeros as it has bits
    /// less one), padded to whole bytes with ones.
    fn ue_code(k: u64) -> Vec<u8> {
        let len = 64 - (k + 1).leading_zeros();
        let bits: Vec<bool> = (0..len - 1)
            .map(|_| false)
            .chain((0..len).rev().map(|i| (k + 1) >> i & 1 == 1))
            .collect();
        bits.chunks(8)
            .map(|c| (0..8).fold(0u8, |b, i| b << 1 | u8::from(*c.get(i).unwrap_or(&true))))
            .collect()
    }

    #[test]
    fn se_at_the_ends_of_i32() {
        // The longest codes ue takes: 31 zeros, then 32 bits.
        assert_eq!(BitReader::new(&ue_code((1 << 32) - 3)).se(), Some(i32::MAX));
        assert_eq!(
            BitReader::new(&ue_code((1 << 32) - 2)).se(),
            Some(-i32::MAX)
        );
        // i32::MIN and i32::MAX + 1 need 32 zeros: refused, not wrapped.
        assert_eq!(BitReader::new(&ue_code(1 << 32)).se(), None);
        assert_eq!(BitReader::new(&ue_code((1 << 32) - 1)).se(), None);
    }

    proptest::proptest! {
        /// Every code ue takes decodes to its exact signed value (compared in i64, so a
        /// wrapped one would show); longer codes are refused.
        #[test]
        fn se_is_exact_or_none(k in 0u64..(1 << 33)) {
            let k_signed = k as i64;
            let want = (k < (1 << 32) - 1)
                .then(|| if k % 2 == 1 { (k_signed + 1) / 2 } else { -(k_signed / 2) });
            let got = BitReader::new(&ue_code(k)).se().map(i64::from);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn fields() {
        let mut r = BitReader::new(&[0xAB, 0xCD]);
        assert_eq!(r.bits(12), Some(0xABC));
        assert_eq!(r.remaining(), 4);
        assert_eq!(r.bits(5), None);
        assert_eq!(r.flag(), Some(true));
        assert_eq!(r.skip(4), None);
    }

    #[test]
    fn rbsp() {
        assert_eq!(unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
        assert_eq!(
            unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(unescape_rbsp_prefix(&[1, 2, 3, 4], 2), vec![1, 2]);
    }
}
