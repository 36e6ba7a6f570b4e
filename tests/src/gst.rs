//! GStreamer clients: `rtmp2src` recording a stream to an FLV file, and `rtmp2sink`
//! publishing an FLV file, both through `gst-launch-1.0`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::proc::Proc;
use crate::{deadline_in, ffmpeg, flv};

/// Whether every element [`rtmp2src`] and [`rtmp2sink`] pipelines use is installed.
pub fn available() -> bool {
    let elements = [
        "rtmp2sink",
        "rtmp2src",
        "flvmux",
        "flvdemux",
        "h264parse",
        "aacparse",
    ];
    elements.iter().all(|e| crate::tools::gst_has(e))
}

/// Starts `rtmp2src location=URL PROPS... ! filesink location=OUT`.
pub fn rtmp2src(url: &str, props: &[&str], out: &Path) -> Proc {
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(["-e", "rtmp2src"])
        .args(props)
        .arg(format!("location={url}"))
        .args(["!", "filesink"])
        .arg(format!("location={}", out.display()));
    Proc::spawn(&format!("gst-launch rtmp2src {url}"), &mut cmd)
}

/// Starts `rtmp2sink` publishing the FLV file `source` (H.264 + AAC) to `url` in real time.
pub fn rtmp2sink(source: &Path, url: &str, props: &[&str]) -> Proc {
    let pipeline = format!(
        "filesrc location={} ! flvdemux name=d flvmux name=m streamable=true ! \
         rtmp2sink {} location={url} d.video ! queue ! h264parse ! m.video \
         d.audio ! queue ! aacparse ! m.audio",
        source.display(),
        props.join(" ")
    );
    Proc::spawn(
        &format!("gst-launch rtmp2sink {url}"),
        Command::new("gst-launch-1.0").args(pipeline.split_whitespace()),
    )
}

/// Records `url` with rtmp2src until the file holds `frames` coded video frames, stops it
/// cleanly and checks that FFmpeg decodes the recording without errors.
pub fn rtmp2src_records(url: &str, props: &[&str], out: &Path, frames: usize, what: &str) {
    let mut gst = rtmp2src(url, props, out);
    let deadline = deadline_in(40.0);
    while flv::coded_video_in(out) < frames {
        assert!(
            gst.is_running() && Instant::now() < deadline,
            "{what}: rtmp2src recorded {} frames\n{}",
            flv::coded_video_in(out),
            gst.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    gst.signal(libc::SIGINT);
    gst.wait_or_kill(deadline_in(10.0));
    let data = std::fs::read(out).expect("read the recording");
    let (_, complete) = flv::read_tags(&data).expect("recording parses");
    let clean = out.with_extension("complete.flv");
    std::fs::write(&clean, &data[..complete]).expect("write trimmed copy");
    ffmpeg::decode_file(&clean).assert_decoded(what, frames * 3 / 4, frames * 3 / 4);
}
