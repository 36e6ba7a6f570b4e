//! E-RTMP multitrack end to end: a publisher sends two video and two audio tracks (FFmpeg
//! encodes them; the test's client publishes FFmpeg's tags with an `onMetaData` that names
//! the extra tracks), and the recorder writes every track into its MP4 with its codec,
//! every frame, and the languages and names the publisher gave.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e::deadline_in;
use e2e::ffmpeg::{self, decode_every_stream, PlayOpts, Player};
use e2e::proc::Proc;
use e2e::recorder::{files_under, recorder, wait_done};
use e2e::rtmp_client::amf0::Amf0;
use e2e::rtmp_client::RtmpClient;
use e2e::{Server, ServerOpts};
use proto::flv::{read_file, FlvFile};

/// FFmpeg writes a multitrack FLV: video 320x240 and 160x120 (H.264), audio 440 Hz and
/// 880 Hz (AAC); the second track of each kind goes out as E-RTMP multitrack id 1.
fn encode_multitrack(path: &Path, seconds: u32) {
    let t = seconds.to_string();
    let mut cmd = Command::new(ffmpeg::ffmpeg_path());
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]);
    for input in [
        "testsrc=size=320x240:rate=25",
        "testsrc2=size=160x120:rate=25",
        "sine=frequency=440:sample_rate=48000",
        "sine=frequency=880:sample_rate=48000",
    ] {
        cmd.args(["-f", "lavfi", "-t", &t, "-i", input]);
    }
    cmd.args(["-map", "0", "-map", "1", "-map", "2", "-map", "3"]);
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
    ]);
    cmd.args(["-c:a", "aac", "-b:a", "64k", "-threads", "1", "-f", "flv"]);
    cmd.arg(path);
    let mut proc = Proc::spawn("ffmpeg encode multitrack", &mut cmd);
    let (status, killed) = proc.wait_or_kill(Instant::now() + Duration::from_secs(120));
    assert!(status.success() && !killed, "{}", proc.describe());
}

/// A 3-second multitrack FLV made by FFmpeg in `dir`: the frames FFmpeg decodes of each of
/// its four streams, and the file's tags.
fn source(dir: &Path) -> (Vec<usize>, FlvFile) {
    let path = dir.join("source.flv");
    encode_multitrack(&path, 3);
    let (want, errors) = decode_every_stream(&path);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(want.len(), 4, "FFmpeg's own file: {want:?}");
    let flv = read_file(&Bytes::from(std::fs::read(&path).expect("read source")))
        .expect("FFmpeg's FLV parses");
    (want, flv)
}

/// Publishes the audio and video tags of `flv` as fast as the socket takes them.
fn send_tags(publisher: &mut RtmpClient, sid: u32, flv: &FlvFile) {
    for tag in &flv.tags {
        match tag.tag_type {
            8 => publisher.send_audio(sid, tag.timestamp_ms, &tag.body),
            9 => publisher.send_video(sid, tag.timestamp_ms, &tag.body),
            _ => Ok(()),
        }
        .expect("send");
    }
}

/// FFmpeg's `Stream #0:N...` lines and the `title` lines under them, from its listing of
/// `path`.
fn stream_lines(path: &Path) -> Vec<String> {
    let mut cmd = Command::new(ffmpeg::ffmpeg_path());
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "info", "-i"]);
    cmd.arg(path);
    let mut proc = Proc::spawn("ffmpeg list", &mut cmd);
    proc.wait_or_kill(Instant::now() + Duration::from_secs(60));
    proc.stderr
        .lines()
        .into_iter()
        .map(|l| l.trim().to_string())
        .filter(|l| l.starts_with("Stream #0:") || l.starts_with("title"))
        .collect()
}

#[test]
fn every_track_of_a_multitrack_publish_is_recorded() {
    let server = Server::start(ServerOpts::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let rec_dir = dir.path().join("rec");
    std::fs::create_dir(&rec_dir).expect("mkdir");
    let rec = recorder(&server, &rec_dir, &[]);
    let (want, flv) = source(dir.path());

    let (mut publisher, sid) = RtmpClient::open(server.addr(), "live").expect("publisher");
    publisher.publish(sid, "mt").expect("publish");
    publisher
        .send_metadata(
            sid,
            &[
                ("width", Amf0::Number(320.0)),
                ("height", Amf0::Number(240.0)),
                ("framerate", Amf0::Number(25.0)),
                (
                    "videoTrackIdInfoMap",
                    Amf0::object(&[(
                        "1",
                        Amf0::object(&[
                            ("width", Amf0::Number(160.0)),
                            ("height", Amf0::Number(120.0)),
                            ("name", Amf0::str("Small")),
                        ]),
                    )]),
                ),
                (
                    "audioTrackIdInfoMap",
                    Amf0::object(&[
                        ("0", Amf0::object(&[("language", Amf0::str("eng"))])),
                        (
                            "1",
                            Amf0::object(&[
                                ("language", Amf0::str("deu")),
                                ("name", Amf0::str("Deutsch")),
                            ]),
                        ),
                    ]),
                ),
            ],
        )
        .expect("metadata");
    send_tags(&mut publisher, sid, &flv);
    drop(publisher);
    wait_done(&rec, 1);

    let files = files_under(&rec_dir);
    assert_eq!(files.len(), 1, "one recording: {files:?}");
    let file = &files[0];
    assert_eq!(
        file.extension().unwrap(),
        "mp4",
        "multitrack is written as MP4"
    );
    let listing = stream_lines(file);
    let streams: Vec<&String> = listing.iter().filter(|l| l.starts_with("Stream")).collect();
    assert_eq!(streams.len(), 4, "{listing:#?}");
    for (i, (kind, what)) in [
        ("Video: h264", "320x240"),
        ("Video: h264", "160x120"),
        ("Audio: aac", "(eng)"),
        ("Audio: aac", "(deu)"),
    ]
    .iter()
    .enumerate()
    {
        assert!(
            streams[i].contains(kind) && streams[i].contains(what),
            "stream {i} should be {kind} {what}: {listing:#?}"
        );
    }
    for title in ["Small", "Deutsch"] {
        assert!(
            listing
                .iter()
                .any(|l| l.starts_with("title") && l.ends_with(title)),
            "no title {title}: {listing:#?}"
        );
    }
    let (got, errors) = decode_every_stream(file);
    assert!(errors.is_empty(), "decoding the recording: {errors:?}");
    assert_eq!(got, want, "frames per track, recording vs. source");
}

/// FFmpeg 9 as a legacy player (its `connect` announces no FourCC and no capsEx) of a
/// multitrack E-RTMP publish: the hub sends it the default tracks only, in legacy tags,
/// and it decodes every frame of them without an error.
#[test]
fn ffmpeg_as_a_legacy_player_gets_the_default_tracks() {
    let server = Server::start(ServerOpts::default().hub(&["--unpublish-timeout", "1s"]));
    let dir = tempfile::tempdir().expect("temp dir");
    let (want, flv) = source(dir.path());
    let multitrack = flv.tags.iter().filter(|t| is_multitrack(&t.body)).count();
    assert!(
        multitrack > 100,
        "the source has other tracks: {multitrack}"
    );

    // The player waits for the publisher, so it gets the stream from its first frame. It
    // decodes every stream it finds: FFmpeg 9 reads multitrack packets, so a player sent
    // the other tracks would have four, where by default it would pick two of them.
    let every_stream = PlayOpts {
        every_stream: true,
        ..PlayOpts::default()
    };
    let player = Player::waiting_with(&server, "legacy", &every_stream);
    let (mut publisher, sid) = RtmpClient::open(server.addr(), "live").expect("publisher");
    publisher.publish(sid, "legacy").expect("publish");
    send_tags(&mut publisher, sid, &flv);
    drop(publisher);

    // The hub ends the stream a second after the publisher left; the player then ends.
    let report = player.finish(deadline_in(60.0));
    assert_eq!(
        report.spans.len(),
        2,
        "one video and one audio stream: {:?}\n{}",
        report.spans,
        report.description
    );
    // Every frame of the default tracks (FFmpeg's streams 0 and 2), none of the others.
    report.assert_decoded_exactly("the legacy player", want[0], want[2]);
}

/// Whether an FLV audio or video tag body is an E-RTMP Multitrack packet.
fn is_multitrack(body: &[u8]) -> bool {
    match body.first() {
        Some(b) if b >> 4 == 9 => b & 0x0f == 5,
        Some(b) if b & 0x80 != 0 => b & 0x0f == 6,
        _ => false,
    }
}
