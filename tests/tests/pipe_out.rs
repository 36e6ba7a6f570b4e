//! `ingest-rtmp --out -` piped into `examples/consumer.py`, which parses the framed format
//! from FORMAT.md alone: publishers become streams with their own handles, every frame
//! becomes a line, players are refused.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::bins::bin;
use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PublishOpts};
use e2e::log::field;
use e2e::proc::Proc;
use e2e::rtmp_client::RtmpClient;
use e2e::scenario::{raw_publisher, send_h264_aac};
use e2e::server::parse_rtmp_addr;

fn consumer_py() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/consumer.py")
}

#[test]
fn out_pipe_to_python_consumer() {
    let _serial = e2e::serial();
    // One process group: ingest-rtmp writing the format, the consumer reading it.
    let pipeline = Proc::spawn(
        "ingest-rtmp --out - | consumer.py",
        Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" --listen 127.0.0.1:0 --out - | python3 "$1""#)
            .arg(bin("ingest-rtmp"))
            .arg(consumer_py()),
    );
    let addr = pipeline
        .stderr
        .wait_for(0, deadline_in(30.0), |l| l.contains("listening on rtmp://"))
        .as_deref()
        .and_then(parse_rtmp_addr)
        .unwrap_or_else(|| panic!("ingest-rtmp did not start\n{}", pipeline.describe()));

    // A player has nothing to play from: refused with a clear status, connection kept.
    let (mut player, sid) = RtmpClient::open(addr, "live").expect("player connects");
    player.play(sid, "cam").expect("play sent");
    let status = player
        .wait_status(deadline_in(10.0), |_| true)
        .expect("play answered");
    assert_eq!(status.code, "NetStream.Play.Failed", "{status:?}");
    assert!(status.description.contains("--out"), "{status:?}");

    // Two publishers at once: FFmpeg (real H.264 + AAC) and a raw one.
    let url = format!("rtmp://{addr}/live/cam");
    let mut ff = ffmpeg::publish(
        &url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(3)),
    );
    let (mut raw, raw_sid) = raw_publisher(addr, "second");
    send_h264_aac(&mut raw, raw_sid, 0, 10, 40, 5).expect("raw publisher sends");
    drop(raw);
    let (status, killed) = ff.wait_or_kill(deadline_in(60.0));
    assert!(
        status.success() && !killed,
        "ffmpeg publish failed\n{}",
        ff.describe()
    );

    let out = &pipeline.stdout;
    let ended = out.wait_count(2, deadline_in(30.0), |l| l.starts_with("end "));
    assert!(ended, "both streams should end\n{}", pipeline.describe());
    let lines = out.lines();

    assert!(
        lines[0].starts_with("hello version=1 role=Publisher name=ingest-rtmp/"),
        "{}",
        lines[0]
    );
    let handle_of = |key: &str| {
        lines
            .iter()
            .find(|l| l.starts_with("announce ") && field(l, "key") == Some(key))
            .and_then(|l| field(l, "stream"))
            .unwrap_or_else(|| panic!("no announce of {key}:\n{}", lines.join("\n")))
            .to_string()
    };
    let cam = handle_of("live/cam");
    let second = handle_of("live/second");
    assert_ne!(cam, second, "each publisher has its own handle");

    let of = |stream: &str, prefix: &str| -> Vec<&String> {
        lines
            .iter()
            .filter(|l| l.starts_with(prefix) && field(l, "stream") == Some(stream))
            .collect()
    };
    let configs = of(&cam, "config ");
    for codec in ["H264", "Aac"] {
        assert!(
            configs.iter().any(|l| field(l, "codec") == Some(codec)),
            "no {codec} config for live/cam: {configs:?}"
        );
    }
    assert_eq!(
        of(&cam, "metadata ").len(),
        1,
        "FFmpeg sends onMetaData once"
    );
    for (kind, min) in [("video", 50), ("audio", 100)] {
        let frames: Vec<&String> = of(&cam, "frame ")
            .into_iter()
            .filter(|l| l.split_whitespace().any(|w| w == kind))
            .collect();
        // 3 s at 20 fps and ~47 AAC frames/s: ask for most of them.
        assert!(frames.len() >= min, "{} {kind} frames", frames.len());
        let dts: Vec<i64> = frames
            .iter()
            .map(|l| field(l, "dts").expect("dts").parse().expect("number"))
            .collect();
        assert!(
            dts.windows(2).all(|w| w[0] <= w[1]),
            "{kind} dts not monotonic: {dts:?}"
        );
        if kind == "video" {
            assert_eq!(
                field(frames[0], "key"),
                Some("1"),
                "first video frame is a keyframe"
            );
        }
    }
    assert_eq!(
        of(&second, "frame ").len(),
        20,
        "raw publisher: 10 video + 10 audio"
    );
    for h in [&cam, &second] {
        let end = of(h, "end ");
        assert_eq!(end.len(), 1, "one end of stream {h}");
        let last = lines
            .iter()
            .rposition(|l| field(l, "stream") == Some(h.as_str()))
            .expect("lines of the stream");
        assert!(
            lines[last].starts_with("end "),
            "end is the stream's last line"
        );
    }
    assert!(
        !pipeline
            .stderr
            .lines()
            .iter()
            .any(|l| l.contains("malformed")),
        "consumer.py reported malformed input\n{}",
        pipeline.describe()
    );
}
