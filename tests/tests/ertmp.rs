//! Enhanced RTMP v2 beyond frames and configurations: video metadata (colorInfo),
//! SequenceEnd, audio MultichannelConfig, ModEx nanosecond offsets, data messages other
//! than onMetaData and an unknown FourCC travel from a publisher to players byte for byte
//! and in order; late joiners get the colour and channel layout as stream state. What a
//! player announced in `connect` decides what it gets: the unknown FourCC only when it named
//! it, ModEx only when it announced ModEx (the plain frame otherwise), other tracks only
//! with Multitrack. FFmpeg's HDR colour description reaches players and the recorded MP4;
//! a full HDR description (mastering display, light level) and nano offsets reach the
//! recorded MP4's boxes and timing.

use std::time::Duration;

use bytes::Bytes;
use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, Player, PublishOpts};
use e2e::recorder::{files_under, recorder, wait_done};
use e2e::rtmp_client::amf0::{encode_all, Amf0};
use e2e::rtmp_client::{is_stream_message, msg_type, RtmpClient};
use e2e::{Server, ServerOpts};
use proto::flv::read_file;

/// `colorInfo` as an E-RTMP video Metadata body (after the 5-byte header).
fn color_info() -> Vec<u8> {
    encode_all(&[
        Amf0::str("colorInfo"),
        Amf0::object(&[
            (
                "colorConfig",
                Amf0::object(&[
                    ("bitDepth", Amf0::Number(10.0)),
                    ("colorPrimaries", Amf0::Number(9.0)),
                    ("transferCharacteristics", Amf0::Number(16.0)),
                    ("matrixCoefficients", Amf0::Number(9.0)),
                ]),
            ),
            (
                "hdrCll",
                Amf0::object(&[
                    ("maxFall", Amf0::Number(400.0)),
                    ("maxCLL", Amf0::Number(1000.0)),
                ]),
            ),
        ]),
    ])
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The messages a publisher sends, as (RTMP type, timestamp, body), in order. Every one
/// reaches a player that was there from the start unchanged.
fn script() -> Vec<(u8, u32, Vec<u8>)> {
    let (v, a, d) = (msg_type::VIDEO, msg_type::AUDIO, msg_type::DATA);
    vec![
        // HEVC SequenceStart (the hub does not look inside the record).
        (v, 0, cat(&[b"\x90hvc1", b"\x01\x02\x03\x04"])),
        // Video Metadata as FFmpeg writes it (frame type 5).
        (v, 0, cat(&[b"\xd4hvc1", &color_info()])),
        // Opus SequenceStart, then a native 2-channel MultichannelConfig.
        (
            a,
            0,
            cat(&[b"\x90Opus", b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0"]),
        ),
        (a, 0, b"\x94Opus\x01\x02\x00\x00\x00\x03".to_vec()),
        // A keyframe under a ModEx TimestampOffsetNano of 123 456 ns (CodedFramesX).
        (
            v,
            0,
            b"\x97\x02\x01\xe2\x40\x03hvc1\x00\x00\x00\x02\x26\x01".to_vec(),
        ),
        (a, 3, b"\x91Opus\xfc\x01\x02".to_vec()),
        // A cue point, in order with the media.
        (
            d,
            10,
            encode_all(&[
                Amf0::str("onCuePoint"),
                Amf0::object(&[("name", Amf0::str("cue1")), ("time", Amf0::Number(0.01))]),
            ]),
        ),
        // An inter frame with a composition offset of 40 ms.
        (
            v,
            40,
            b"\xa1hvc1\x00\x00\x28\x00\x00\x00\x02\x02\x01".to_vec(),
        ),
        // A FourCC this server does not know, on audio track 1 (Multitrack OneTrack).
        (a, 40, b"\x95\x00ipcm\x01\x10\x20".to_vec()),
        (a, 43, b"\x95\x01ipcm\x01\x33\x44\x55".to_vec()),
        (
            d,
            50,
            encode_all(&[
                Amf0::str("onTextData"),
                Amf0::object(&[("text", Amf0::str("hi"))]),
            ]),
        ),
        // ModEx on Opus too.
        (a, 60, b"\x97\x02\x00\x03\xe8\x01Opus\xfc\x05".to_vec()),
        (v, 80, b"\x92hvc1".to_vec()),
    ]
}

fn csid(type_id: u8) -> u32 {
    match type_id {
        msg_type::AUDIO => 4,
        msg_type::DATA => 5,
        _ => 6,
    }
}

/// What a player announces in `connect`.
#[derive(Clone, Copy, Debug)]
enum Announces {
    /// `fourCcList` with the unknown FourCC `ipcm`, capsEx Multitrack | ModEx.
    Ipcm,
    /// `fourCcList` without it, capsEx Multitrack | ModEx.
    KnownOnly,
    /// Nothing (FFmpeg's default, rtmpdump).
    Legacy,
}

/// A player of `name` announcing `what`, attached to the stream (or waiting for its
/// publisher) once this returns.
fn player(server: &Server, name: &str, what: Announces) -> RtmpClient {
    let mut c = RtmpClient::connect_tcp(server.addr()).expect("player connects");
    c.handshake().expect("handshake");
    let list = |codes: &[&str]| Amf0::StrictArray(codes.iter().map(|c| Amf0::str(c)).collect());
    let extra = match what {
        Announces::Ipcm => vec![
            ("fourCcList", list(&["hvc1", "Opus", "ipcm"])),
            ("capsEx", Amf0::Number(6.0)),
        ],
        Announces::KnownOnly => vec![
            ("fourCcList", list(&["hvc1", "Opus"])),
            ("capsEx", Amf0::Number(6.0)),
        ],
        Announces::Legacy => vec![],
    };
    c.connect_with("live", &extra).expect("connect");
    let sid = c.create_stream().expect("createStream");
    c.play_started(sid, name).expect("play starts");
    c
}

/// The script's ModEx messages without their ModEx prefix: what a player that did not
/// announce ModEx gets (an HEVC keyframe without composition offset is CodedFramesX).
const PLAIN: [(&[u8], &[u8]); 2] = [
    (
        b"\x97\x02\x01\xe2\x40\x03hvc1\x00\x00\x00\x02\x26\x01",
        b"\x93hvc1\x00\x00\x00\x02\x26\x01",
    ),
    (b"\x97\x02\x00\x03\xe8\x01Opus\xfc\x05", b"\x91Opus\xfc\x05"),
];

/// `messages` as a player announcing `what` gets them: the unknown FourCC only when
/// announced, ModEx only when announced (else the plain form).
fn as_seen_by(what: Announces, messages: &[(u8, u32, Vec<u8>)]) -> Vec<(u8, Vec<u8>)> {
    messages
        .iter()
        .filter(|(_, _, b)| matches!(what, Announces::Ipcm) || find(b, b"ipcm").is_none())
        .map(|(t, _, b)| {
            let plain = PLAIN.iter().find(|(m, _)| *m == &b[..]);
            match (what, plain) {
                (Announces::Legacy, Some((_, p))) => (*t, p.to_vec()),
                _ => (*t, b.clone()),
            }
        })
        .collect()
}

const EVERY_KIND: [Announces; 3] = [Announces::Ipcm, Announces::KnownOnly, Announces::Legacy];

#[test]
fn everything_a_publisher_sends_reaches_players_in_order() {
    let server = Server::start(ServerOpts::default());
    // These players wait for the publisher, so they see every message from the first.
    let mut early: Vec<_> = EVERY_KIND
        .iter()
        .map(|&what| (what, player(&server, "hdr", what)))
        .collect();
    let (mut publisher, sid) = RtmpClient::open(server.addr(), "live").expect("publisher");
    let status = publisher.publish(sid, "hdr").expect("publish");
    assert_eq!(status.code, "NetStream.Publish.Start");
    let script = script();
    for (type_id, ts, body) in &script {
        publisher
            .send_message(csid(*type_id), *type_id, sid, *ts, body)
            .expect("send");
    }
    for (what, p) in &mut early {
        let want = as_seen_by(*what, &script);
        let got = p.collect_stream(want.len(), deadline_in(20.0));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{what:?}: message {i} differs");
        }
        // The stream ends with a SequenceEnd; nothing the player must not get came after.
        assert_eq!(
            got.last(),
            script.last().map(|(t, _, b)| (*t, b.clone())).as_ref()
        );
    }

    // A late joiner starts at the keyframe (script[4]) with the stream's state in front
    // of it: the configurations (the unknown FourCC's only when announced), the colour
    // description and the channel layout; then the rest in order, to the SequenceEnd.
    let key = 4;
    for what in EVERY_KIND {
        let mut late = player(&server, "hdr", what);
        let deadline = deadline_in(20.0);
        let mut got = Vec::new();
        while got.last() != Some(&script[script.len() - 1].2) {
            let m = late.next_message(deadline).expect("late joiner message");
            if is_stream_message(&m) {
                got.push(m.payload);
            }
        }
        let tail: Vec<Vec<u8>> = as_seen_by(what, &script[key..])
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        assert!(got.len() > tail.len(), "{what:?}: {got:?}");
        let (head, rest) = got.split_at(got.len() - tail.len());
        assert_eq!(rest, &tail[..], "{what:?}: from the keyframe on");
        for (what_state, body) in [
            ("HEVC sequence start", &script[0].2),
            ("colorInfo", &script[1].2),
            ("Opus sequence start", &script[2].2),
            ("MultichannelConfig", &script[3].2),
        ] {
            assert!(
                head.contains(body),
                "{what:?}: late joiner lacks the {what_state}: {head:?}"
            );
        }
        let unknown = head.contains(&script[8].2);
        assert_eq!(
            unknown,
            matches!(what, Announces::Ipcm),
            "{what:?}: unknown FourCC sequence start in the joiner's state: {head:?}"
        );
    }
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// FFmpeg publishes HEVC marked BT.2020 / PQ: its `colorInfo` reaches a player, whose
/// stream info shows the colour, and the recorder writes it into the MP4's `colr` box.
#[test]
fn ffmpeg_hdr_colour_reaches_players_and_recordings() {
    let server = Server::start(ServerOpts::default());
    let dir = tempfile::tempdir().expect("temp dir");
    // Segments: FFmpeg's colorInfo follows its first keyframe, so the files after the first
    // carry it.
    let rec = recorder(&server, dir.path(), &["--segment", "1s"]);
    let mut opts = PublishOpts::new(Codecs::HevcAac, Duration::from_secs(4));
    opts.extra = vec![
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "smpte2084",
        "-colorspace",
        "bt2020nc",
    ];
    let mut publisher = ffmpeg::publish(&server.url("hdr"), &opts);
    server.wait_live("hdr");
    let copy = dir.path().join("player.mkv");
    let (listing, _) = ffmpeg::copy_to_file(&server.url("hdr"), &copy, Duration::from_secs(1));
    let video = listing
        .stream("Video")
        .unwrap_or_else(|| panic!("player saw no video: {listing:?}"));
    // FFmpeg 9's colorInfo for these options names only the matrix (primaries and
    // transfer go out unspecified; the recording's colr below shows the same 2, 2, 9).
    assert!(video.contains("bt2020nc"), "player's stream info: {video}");
    let (status, killed) = publisher.wait_or_kill(deadline_in(40.0));
    assert!(status.success() && !killed, "{}", publisher.describe());
    wait_done(&rec, 1);
    let files: Vec<_> = files_under(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    let colored: Vec<_> = files
        .iter()
        .filter_map(|f| {
            let mp4 = std::fs::read(f).expect("read recording");
            let at = find(&mp4, b"colrnclx")?;
            Some((f.clone(), mp4[at + 8..at + 15].to_vec()))
        })
        .collect();
    let (file, colr) = colored
        .first()
        .unwrap_or_else(|| panic!("no colr box in {files:?}"));
    // As FFmpeg sent it: primaries 2 and transfer 2 (unspecified), matrix 9 (BT.2020
    // NCL), limited range.
    assert_eq!(&colr[..], &[0, 2, 0, 2, 0, 9, 0]);
    let listing = ffmpeg::list_file(file);
    let video = listing.stream("Video").expect("recorded video");
    assert!(video.contains("bt2020nc"), "{video}");
}

/// `colorInfo` with a mastering display and content light level, as an E-RTMP video
/// Metadata body (after the 5-byte header).
fn hdr_color_info() -> Vec<u8> {
    let n = Amf0::Number;
    encode_all(&[
        Amf0::str("colorInfo"),
        Amf0::object(&[
            (
                "colorConfig",
                Amf0::object(&[
                    ("bitDepth", n(8.0)),
                    ("colorPrimaries", n(9.0)),
                    ("transferCharacteristics", n(16.0)),
                    ("matrixCoefficients", n(9.0)),
                ]),
            ),
            (
                "hdrCll",
                Amf0::object(&[("maxFall", n(400.0)), ("maxCLL", n(1000.0))]),
            ),
            (
                "hdrMdcv",
                Amf0::object(&[
                    ("redX", n(0.708)),
                    ("redY", n(0.292)),
                    ("greenX", n(0.17)),
                    ("greenY", n(0.797)),
                    ("blueX", n(0.131)),
                    ("blueY", n(0.046)),
                    ("whitePointX", n(0.3127)),
                    ("whitePointY", n(0.329)),
                    ("maxLuminance", n(1000.0)),
                    ("minLuminance", n(0.0001)),
                ]),
            ),
        ]),
    ])
}

/// An E-RTMP video tag body (HEVC coded frames) under a ModEx TimestampOffsetNano of
/// `nanos`: the packet type moves behind the ModEx data.
fn with_nanos(body: &[u8], nanos: u32) -> Vec<u8> {
    let mut out = vec![(body[0] & 0xf0) | 7, 2];
    out.extend_from_slice(&nanos.to_be_bytes()[1..]);
    out.push(body[0] & 0x0f);
    out.extend_from_slice(&body[1..]);
    out
}

/// The `size` bytes after the first box named `name` in `mp4`.
fn box_body<'a>(mp4: &'a [u8], name: &[u8], size: usize) -> &'a [u8] {
    let at = find(mp4, name).unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(name)));
    &mp4[at + 4..at + 4 + size]
}

/// A byte-level E-RTMP publisher sends FFmpeg's HEVC with a full HDR `colorInfo` and every
/// video frame under a ModEx nanosecond offset. The recording carries `colr`, `mdcv` and
/// `clli` and microsecond timing, and decodes to every frame; FFmpeg 9 as a legacy player
/// (no ModEx announced: it gets the frames without it) decodes every frame too.
#[test]
fn hdr_description_and_nano_offsets_reach_recordings_and_legacy_players() {
    let server = Server::start(ServerOpts::default().hub(&["--unpublish-timeout", "1s"]));
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("source.flv");
    ffmpeg::encode_file(
        &source,
        &PublishOpts::new(Codecs::HevcAac, Duration::from_secs(2)),
    );
    let (want, errors) = ffmpeg::decode_every_stream(&source);
    assert!(errors.is_empty() && want.len() == 2, "{want:?} {errors:?}");
    let flv = read_file(&Bytes::from(std::fs::read(&source).expect("read source")))
        .expect("FFmpeg's FLV parses");
    let rec_dir = dir.path().join("rec");
    std::fs::create_dir(&rec_dir).expect("mkdir");
    let rec = recorder(&server, &rec_dir, &[]);
    let player = Player::waiting(&server, "nano");

    let (mut publisher, sid) = RtmpClient::open(server.addr(), "live").expect("publisher");
    publisher.publish(sid, "nano").expect("publish");
    let mut wrapped = 0;
    // AAC frames that precede the first video frame wait for it: a recording opened on such
    // audio, before the first offset arrived, would keep millisecond timing (as
    // docs/recording.md says).
    let mut held = Vec::new();
    for tag in &flv.tags {
        let body = &tag.body;
        let ts = tag.timestamp_ms;
        match tag.tag_type {
            8 if wrapped == 0 && body.get(1) == Some(&1) => held.push(tag),
            8 => publisher.send_audio(sid, ts, body).expect("send"),
            // HEVC SequenceStart, then the colour description.
            9 if body[0] & 0x8f == 0x80 => {
                publisher.send_video(sid, ts, body).expect("send");
                let meta = [&b"\xd4hvc1"[..], &hdr_color_info()].concat();
                publisher.send_video(sid, ts, &meta).expect("send");
            }
            // FFmpeg's own colorInfo (after its first keyframe): ours replaces it.
            9 if body[0] & 0x8f == 0x84 => {}
            // Coded frames (CodedFrames, CodedFramesX), each 250 µs late.
            9 if matches!(body[0] & 0x8f, 0x81 | 0x83) => {
                wrapped += 1;
                let body = with_nanos(body, 250_000);
                publisher.send_video(sid, ts, &body).expect("send");
                for a in held.drain(..) {
                    (publisher.send_audio(sid, a.timestamp_ms, &a.body)).expect("send");
                }
            }
            9 => publisher.send_video(sid, ts, body).expect("send"),
            _ => {}
        }
    }
    assert_eq!(wrapped, want[0], "every video frame went out under ModEx");
    drop(publisher);
    wait_done(&rec, 1);

    player
        .finish(deadline_in(60.0))
        .assert_decoded_exactly("legacy player", want[0], want[1]);

    let files = files_under(&rec_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let mp4 = std::fs::read(&files[0]).expect("read recording");
    assert_eq!(
        box_body(&mp4, b"colr", 11),
        b"nclx\x00\x09\x00\x10\x00\x09\x00"
    );
    // maxCLL 1000, maxFALL 400.
    assert_eq!(box_body(&mp4, b"clli", 4), [0x03, 0xe8, 0x01, 0x90]);
    // Green x 0.17 (8500 in 0.00002 units) leads; max luminance 1000 cd/m2 (1e7 units).
    let mdcv = box_body(&mp4, b"mdcv", 24);
    assert_eq!(&mdcv[..2], &8500u16.to_be_bytes());
    assert_eq!(&mdcv[16..20], &10_000_000u32.to_be_bytes());
    // The video track's timescale: microseconds (the stream's milliseconds x 1000).
    let mdhd = box_body(&mp4, b"mdhd", 16);
    assert_eq!(mdhd[0], 0, "mdhd version 0");
    assert_eq!(
        &mdhd[12..16],
        &1_000_000u32.to_be_bytes(),
        "{}",
        rec.describe()
    );
    let (got, errors) = ffmpeg::decode_every_stream(&files[0]);
    assert!(errors.is_empty(), "decoding the recording: {errors:?}");
    assert_eq!(got, want, "frames per track, recording vs. source");
}

/// The relayer pushes a byte-level E-RTMP publish to a second server of ours: colorInfo,
/// MultichannelConfig, ModEx nano offsets (the second server announces ModEx), SequenceEnd
/// and data messages reach a player there unchanged and in order. The unknown FourCC is
/// not among what our server's `connect` answer lists, so the relayer leaves it out (and
/// says so with `relay_codec_unsupported`).
#[test]
fn the_relayer_forwards_everything_to_our_servers_in_order() {
    let origin = Server::start(ServerOpts::default());
    let second = Server::start_second(ServerOpts::default());
    let mut cmd = std::process::Command::new(e2e::bins::bin("relayer"));
    cmd.arg("--hub")
        .arg(origin.socket())
        .arg("--push")
        .arg(format!("live/*=rtmp://{}/live/{{name}}", second.addr()))
        .env("NO_COLOR", "1");
    let relayer = e2e::proc::Proc::spawn("relayer", &mut cmd);
    relayer
        .stderr
        .wait_for(0, deadline_in(20.0), |l| l.contains("connected to the hub"))
        .unwrap_or_else(|| panic!("relayer never connected\n{}", relayer.describe()));
    let mut far = player(&second, "hdr", Announces::Ipcm);
    let (mut publisher, sid) = RtmpClient::open(origin.addr(), "live").expect("publisher");
    publisher.publish(sid, "hdr").expect("publish");
    let script = script();
    for (type_id, ts, body) in &script {
        publisher
            .send_message(csid(*type_id), *type_id, sid, *ts, body)
            .expect("send");
    }
    let want = as_seen_by(Announces::KnownOnly, &script);
    let got = far.collect_stream(want.len(), deadline_in(30.0));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "message {i} differs\n{}", relayer.describe());
    }
    relayer
        .stderr
        .wait_for(0, deadline_in(10.0), |l| {
            l.contains("destination does not take this codec") && l.contains("track=1")
        })
        .unwrap_or_else(|| panic!("no word about ipcm\n{}", relayer.describe()));
}
