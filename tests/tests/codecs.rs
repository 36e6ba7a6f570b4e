//! FFmpeg publishes each codec pair over RTMP; FFmpeg plays it back over RTMP and decodes
//! it with no decoder errors, video and audio both present.

use std::time::Duration;

use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::{Server, ServerOpts};

/// Media time each player decodes.
const PLAY_SECS: u64 = 4;

fn round_trip(codecs: Codecs) {
    let mut server = Server::start(ServerOpts::default());
    let name = format!("{codecs:?}").to_lowercase();
    let url = server.url(&name);
    // The publisher outlives the player; it is killed when the test ends.
    let mut publisher = ffmpeg::publish(&url, &PublishOpts::new(codecs, Duration::from_secs(30)));
    let player = Player::spawn(
        &url,
        &PlayOpts {
            duration: Some(Duration::from_secs(PLAY_SECS)),
            ..PlayOpts::default()
        },
    );
    let report = player.finish(deadline_in(40.0));
    assert!(
        publisher.is_running(),
        "publisher exited early\n{}",
        publisher.describe()
    );
    // 20 fps and ~47 audio frames/s (AAC) or 50 (Opus): ask for a good half of each.
    report.assert_decoded(&format!("{codecs:?}"), 40, 40);
    server.assert_alive();
}

#[test]
fn h264_aac() {
    round_trip(Codecs::H264Aac);
}

#[test]
fn hevc_aac() {
    round_trip(Codecs::HevcAac);
}

#[test]
fn av1_opus() {
    round_trip(Codecs::Av1Opus);
}

#[test]
fn vp9_opus() {
    round_trip(Codecs::Vp9Opus);
}
