//! Runs the recorder's fuzz target bodies (recorder/fuzz/src/lib.rs) on deterministic
//! random and mutated inputs, and on every input a fuzzer crashed on
//! (`tests/fuzz_regressions/TARGET-*.bin`), on stable without libFuzzer.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

/// xorshift64*: deterministic, no dependency.
fn bytes(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn run(target: fn(&[u8]), seeds: &[&[u8]], iterations: usize) {
    let mut state = 0x9E37_79B9_7F4A_7C15;
    for s in seeds {
        target(s);
        for i in 0..s.len() {
            let mut v = s.to_vec();
            v[i] ^= 0x80;
            target(&v);
            target(&s[..i]);
        }
    }
    for i in 0..iterations {
        let v = bytes(&mut state, i % 200);
        target(&v);
    }
}

#[test]
fn fuzz_codecs() {
    let avcc: &[u8] = &[
        1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 4, 0x68, 0xCE, 0x3C,
        0x80,
    ];
    let asc: &[u8] = &[0x12, 0x10];
    let opus: &[u8] = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
    run(targets::codecs, &[avcc, asc, opus], 3000);
}

#[test]
fn fuzz_metadata() {
    let mut m = vec![0x02, 0, 10];
    m.extend(b"onMetaData");
    m.extend([0x08, 0, 0, 0, 1, 0, 5]);
    m.extend(b"width");
    m.extend([0, 0x40, 0x90, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    run(targets::metadata, &[&m], 3000);
}

#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).expect("regression input");
        match name.split('-').next().unwrap_or_default() {
            "recorder_codecs" => targets::codecs(&data),
            "recorder_metadata" => targets::metadata(&data),
            other => panic!("{name}: no fuzz target {other:?}"),
        }
    }
}
