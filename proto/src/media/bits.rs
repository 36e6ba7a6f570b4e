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

    /// Exp-Golomb signed (`se(v)`).
    pub fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Some(v as i32)
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
