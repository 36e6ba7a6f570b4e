//! Fuzz target bodies on stable, without libFuzzer: deterministic inputs (random bytes
//! and mutations of valid seeds) and the inputs a fuzzer once crashed on. Not a
//! substitute for `scripts/fuzz.sh`, but it keeps the targets compiling and catches
//! shallow bugs on every test run.

use std::path::Path;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 56) as u8).collect()
    }

    /// `seed` with one to four edits: a bit flipped, a byte replaced, cut short, or a
    /// few random bytes inserted.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            match self.below(4) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = self.next() as u8;
                }
                2 => {
                    let n = self.below(v.len() + 1);
                    v.truncate(n);
                }
                _ => {
                    let i = self.below(v.len() + 1);
                    let n = 1 + self.below(8);
                    let extra = self.bytes(n);
                    v.splice(i..i, extra);
                }
            }
        }
        v
    }
}

/// Runs `target` on each seed, then on `iterations` inputs: every fourth random bytes,
/// the others mutated seeds.
pub fn run(target: fn(&[u8]), seeds: &[&[u8]], iterations: usize) {
    run_seeded(target, seeds, iterations, 0x9E37_79B9_7F4A_7C15);
}

/// [`run`] with the generator started from `seed`, so that targets sharing seeds get
/// different inputs.
pub fn run_seeded<S: AsRef<[u8]>>(target: fn(&[u8]), seeds: &[S], iterations: usize, seed: u64) {
    let mut rng = Rng(seed.max(1));
    for s in seeds {
        target(s.as_ref());
    }
    for i in 0..iterations {
        let input = if seeds.is_empty() || i % 4 == 0 {
            let len = rng.below(256);
            rng.bytes(len)
        } else {
            let seed = seeds[rng.below(seeds.len())].as_ref();
            rng.mutate(seed)
        };
        target(&input);
    }
}

/// Runs every file `TARGET-what.bin` in `dir` through `target_of(TARGET)`; returns how
/// many ran. Panics on a file naming no known target. A missing `dir` runs none.
pub fn regressions(dir: &Path, target_of: impl Fn(&str) -> Option<fn(&[u8])>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let target = name.split('-').next().unwrap_or_default();
        let run = target_of(target)
            .unwrap_or_else(|| panic!("{}: no fuzz target {target:?}", path.display()));
        run(&std::fs::read(&path).expect("regression input"));
        n += 1;
    }
    n
}
