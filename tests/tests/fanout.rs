//! Fan-out: several streams and players at once, and late joiners.

use std::time::{Duration, Instant};

use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::flv;
use e2e::rtmp_client::{msg_type, RtmpClient};
use e2e::{Server, ServerOpts};

#[test]
fn two_streams_five_players_each() {
    let mut server = Server::start(ServerOpts::default());
    let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30));
    opts.fps = 15;
    opts.gop = 15;
    let mut publishers = Vec::new();
    for (name, source) in [("alpha", "testsrc2"), ("beta", "smptebars")] {
        opts.source = source;
        publishers.push(ffmpeg::publish(&server.url(name), &opts));
    }
    let play = PlayOpts {
        duration: Some(Duration::from_secs(3)),
        ..PlayOpts::default()
    };
    let players: Vec<(String, Player)> = ["alpha", "beta"]
        .iter()
        .flat_map(|name| (0..5).map(move |i| format!("{name}#{i}")))
        .map(|label| {
            let name = label.split('#').next().expect("name").to_string();
            let player = Player::spawn(&server.url(&name), &play);
            (label, player)
        })
        .collect();
    let deadline = deadline_in(60.0);
    for (label, player) in players {
        // 3 s at 15 fps = 45 video frames, ~140 AAC frames.
        player.finish(deadline).assert_decoded(&label, 30, 30);
    }
    for p in &mut publishers {
        assert!(p.is_running(), "publisher exited early\n{}", p.describe());
    }
    server.assert_alive();
}

/// Waits until a first player of `url` has decoded 30 video frames (past the first GOP,
/// 1.5 s at 20 fps), so that a player joining next is a late joiner. Returns that player.
fn running_stream(server: &Server, url: &str) -> Player {
    let early = Player::spawn(url, &PlayOpts::default());
    assert!(
        early.wait_frames(30, 1, deadline_in(30.0)),
        "first player did not get 30 frames\n{}",
        server.describe()
    );
    early
}

/// A player that joins a running stream gets a sequence header before any coded video,
/// and its first coded frame is a keyframe (the GOP cache starts at one).
#[test]
fn late_joiner_starts_with_header_and_keyframe() {
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("late");
    let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30));
    opts.gop = 20; // a keyframe every second: joining after 1.5 s lands mid-GOP
    let _publisher = ffmpeg::publish(&url, &opts);
    let mut early = running_stream(&server, &url);

    let (mut client, sid) = RtmpClient::open(server.addr(), "live").expect("raw player connects");
    client.play(sid, "late").expect("play");
    let mut media = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut coded_video = 0;
    while coded_video < 10 {
        let m = client
            .next_message(deadline)
            .unwrap_or_else(|e| panic!("raw player: {e} after {} media messages", media.len()));
        if m.type_id == msg_type::VIDEO
            && matches!(flv::video_packet(&m.payload), flv::Packet::Coded { .. })
        {
            coded_video += 1;
        }
        if m.is_media() {
            media.push(m);
        }
    }
    flv::check_start(media.iter().map(|m| (m.type_id, m.payload.as_slice())))
        .unwrap_or_else(|e| panic!("late joiner: {e}"));
    early.stop();
    server.assert_alive();
}

/// A player that joins a running stream sees exactly the publisher's tracks, with the
/// publisher's `onMetaData` applied: FFmpeg lists one video and one audio stream (no data
/// or subtitle track made of metadata), the published dimensions and the published title,
/// and a copy to Matroska holds the same two tracks.
#[test]
fn late_joiner_sees_publisher_tracks_and_metadata() {
    let mut server = Server::start(ServerOpts::default());
    let url = server.url("meta");
    let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30));
    opts.size = "352x288";
    opts.title = Some("late-joiner-check");
    let _publisher = ffmpeg::publish(&url, &opts);
    let mut early = running_stream(&server, &url);

    let mkv = server.dir().join("late.mkv");
    let (listing, copy) = ffmpeg::copy_to_file(&url, &mkv, Duration::from_secs(2));
    assert!(
        copy.status().is_some_and(|s| s.success()),
        "copy to MKV failed\n{}",
        copy.describe()
    );
    assert_eq!(
        listing.kinds(),
        ["Audio", "Video"],
        "late joiner's streams: {listing:#?}\n{}",
        copy.describe()
    );
    let video = listing.stream("Video").expect("video stream");
    assert!(
        video.contains("h264") && video.contains("352x288"),
        "late joiner's video: {video}"
    );
    assert!(
        listing.stream("Audio").is_some_and(|a| a.contains("aac")),
        "late joiner's audio: {listing:#?}"
    );
    assert_eq!(
        listing.meta("title"),
        Some("late-joiner-check"),
        "late joiner's metadata: {listing:#?}"
    );

    let file = ffmpeg::list_file(&mkv);
    assert_eq!(file.kinds(), ["Audio", "Video"], "MKV copy: {file:#?}");
    assert!(
        file.stream("Video").is_some_and(|v| v.contains("352x288")),
        "MKV copy: {file:#?}"
    );
    assert_eq!(file.meta("title"), Some("late-joiner-check"), "{file:#?}");
    early.stop();
    server.assert_alive();
}

/// With ingest-rtmp's longest read coalescing (`--read-coalesce 200ms`: a publisher's
/// frames wait in the kernel and are read on a shared tick), a player still gets every
/// video frame in order from a keyframe on, and a second publisher on the same tick is
/// not disturbed: paced reads lose, reorder and stall nothing.
#[test]
fn paced_ingest_reads_deliver_every_frame_in_order() {
    let mut server = Server::start(ServerOpts::default().ingest(&["--read-coalesce", "200ms"]));
    let mut opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30));
    opts.fps = 15;
    opts.gop = 15;
    let _other = ffmpeg::publish(&server.url("paced-other"), &opts);
    let _publisher = ffmpeg::publish(&server.url("paced"), &opts);
    server.wait_live("paced");

    let (mut client, sid) = RtmpClient::open(server.addr(), "live").expect("raw player connects");
    client.play(sid, "paced").expect("play");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut media = Vec::new();
    let mut video_ts = Vec::new();
    // 60 coded frames at 15 fps: 4 s, many ticks of 200 ms.
    while video_ts.len() < 60 {
        let m = client
            .next_message(deadline)
            .unwrap_or_else(|e| panic!("raw player: {e} after {} frames", video_ts.len()));
        if m.type_id == msg_type::VIDEO
            && matches!(flv::video_packet(&m.payload), flv::Packet::Coded { .. })
        {
            video_ts.push(m.timestamp);
        }
        if m.is_media() {
            media.push(m);
        }
    }
    flv::check_start(media.iter().map(|m| (m.type_id, m.payload.as_slice())))
        .unwrap_or_else(|e| panic!("paced stream: {e}"));
    // FFmpeg stamps 15 fps video 66-67 ms apart: a larger step is a lost frame.
    for w in video_ts.windows(2) {
        assert!(
            w[1] > w[0] && w[1] - w[0] <= 70,
            "video frames missing or out of order around {} -> {} ms: {video_ts:?}",
            w[0],
            w[1]
        );
    }
    server.assert_alive();
}
