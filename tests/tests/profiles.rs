//! The example profiles in `profiles/` run for real under the supervisor.

use std::time::Duration;

use e2e::deadline_in;
use e2e::ffmpeg::{self, decode_file, Codecs, PublishOpts};
use e2e::supervised::Supervised;

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `profiles/record.toml`, with only its address and directory moved into the test's
/// sandbox, records a publish into a file that decodes.
#[test]
fn record_profile_records_a_publish() {
    let text = example("record.toml");
    let recordings = tempfile::tempdir().expect("temp dir");
    let rec_dir = recordings.path().to_str().expect("utf-8 path").to_string();
    let s = Supervised::start_profile(|addr| {
        let moved = text
            .replace("listen = \"0.0.0.0:1935\"", &format!("listen = \"{addr}\""))
            .replace("dir = \"./recordings\"", &format!("dir = \"{rec_dir}\""));
        assert_ne!(moved, text, "record.toml no longer has the expected keys");
        moved
    });
    s.wait_line(0, Duration::from_secs(20), |l| {
        l.contains("recorder is ready")
    })
    .unwrap_or_else(|| panic!("recorder never ready\n{}", s.describe()));

    let mut publisher = ffmpeg::publish(
        &s.url("rec"),
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(3)),
    );
    let (status, killed) = publisher.wait_or_kill(deadline_in(60.0));
    assert!(status.success() && !killed, "{}", publisher.describe());
    let done = s
        .wait_line(0, Duration::from_secs(30), |l| {
            l.starts_with("[recorder]") && l.contains("recording done")
        })
        .unwrap_or_else(|| panic!("recorder never finished the file\n{}", s.describe()));

    let files: Vec<_> = std::fs::read_dir(recordings.path())
        .expect("recordings dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one recording expected: {files:?}\n{done}");
    let file = &files[0];
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert!(
        name.starts_with("live_rec_") && name.ends_with(".flv"),
        "{name}"
    );
    // 3 s at 20 fps and ~47 AAC frames/s: nearly all of it is in the file.
    decode_file(file).assert_decoded("recording", 50, 120);
}
