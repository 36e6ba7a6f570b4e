//! Auth of SRT callers, end to end with FFmpeg 9 (libsrt) against the real ingest-srt and
//! hub: the credential in the stream id (`s=`, a `token=` item, `r=...?token=`) in token
//! and file mode, for publish (`m=publish`) and play (`m=request`); refusals are SRT
//! rejections 1401/1403 that FFmpeg reports, with a log line saying why; a callback that
//! chooses the stream's passphrase, which the publisher must then use; a stalled callback
//! holds up no other caller; every decision is an event, and no secret reaches a log line
//! or an event.

use e2e::ffmpeg::{PlayOpts, Player};
use e2e::http_stub::HttpStub;
use e2e::hub_events::wait_event;
use e2e::jwt::{jwks, now, SigningKey};
use e2e::log::LineLog;
use e2e::server::Which;
use e2e::srt::{ffmpeg_refused, ffmpeg_send, make_ts, url_with_stream_id, SrtIngest, TsCodecs};
use e2e::{deadline_in, Server, ServerOpts};

/// A TS file of `secs` seconds in the server's directory.
fn ts(server: &Server, secs: u32) -> std::path::PathBuf {
    let path = server.dir().join(format!("auth-{secs}.ts"));
    if !path.exists() {
        make_ts(&path, TsCodecs::H264Aac, secs);
    }
    path
}

/// An RTMP player of `name` that must decode frames of the SRT publisher.
fn plays(server: &Server, name: &str, what: &str) {
    let mut player = Player::spawn(&server.url(name), &PlayOpts::default());
    assert!(
        player.wait_frames(25, 10, deadline_in(30.0)),
        "{what}: the RTMP player decoded nothing\n{}",
        player.proc().describe()
    );
}

/// The caller's output says the listener rejected it.
fn assert_caller_rejected(p: &e2e::proc::Proc, what: &str) {
    assert!(
        p.stderr
            .count(|l| l.to_ascii_lowercase().contains("reject"))
            > 0,
        "{what}: FFmpeg does not report a rejection\n{}",
        p.describe()
    );
}

/// No line of ingest-srt's or the hub's log, and no event, contains any of `secrets`.
fn assert_no_secrets(server: &Server, ingest: &SrtIngest, events: &LineLog, secrets: &[&str]) {
    e2e::log::assert_no_secrets(
        &[
            ("hub", server.log(Which::Hub)),
            ("ingest-srt", &ingest.proc.stderr),
            ("events", events),
        ],
        secrets,
    );
}

#[test]
fn token_mode_publish_and_play_in_the_stream_id() {
    let (server, events) = Server::start_with_events(ServerOpts::default());
    let ingest = SrtIngest::start(
        &server,
        &[
            "--publish-auth=token",
            "--publish-token=live/*=srtPub1",
            "--play-auth=token",
            "--play-token=live/*=srtPlay2",
        ],
    );
    let a = ingest.addr;
    let dir = server.dir();

    let p = ffmpeg_refused(dir, &url_with_stream_id(a, "#!::r=live/st,m=publish", ""));
    assert_caller_rejected(&p, "no token");
    let line = ingest.expect_log("(1401)", 10.0);
    assert!(line.contains("no token given"), "{line}");
    let p = ffmpeg_refused(
        dir,
        &url_with_stream_id(a, "#!::r=live/st,m=publish,s=wrongSrt3", ""),
    );
    assert_caller_rejected(&p, "wrong token");
    ingest.expect_log("invalid credentials", 10.0);
    wait_event(&events, "SRT publish denied", |l| {
        l.starts_with("auth_denied key=live/st")
            && l.contains("protocol=srt")
            && l.contains("action=publish")
            && l.contains("reason=invalid_token")
    });
    // The play secret does not publish.
    ffmpeg_refused(
        dir,
        &url_with_stream_id(a, "#!::r=live/st,m=publish,token=srtPlay2", ""),
    );
    // m=request is decided as play: the publish secret does not play.
    let p = ffmpeg_refused(
        dir,
        &url_with_stream_id(a, "#!::r=live/st,m=request,s=srtPub1", ""),
    );
    assert_caller_rejected(&p, "publish token used to play");
    wait_event(&events, "SRT play denied", |l| {
        l.starts_with("auth_denied key=live/st")
            && l.contains("protocol=srt")
            && l.contains("action=play")
    });

    // The token as the session id, and in the resource's query (as RTMP clients write it).
    let mut publisher = ffmpeg_send(
        &ts(&server, 30),
        &url_with_stream_id(a, "#!::r=live/st,m=publish,s=srtPub1", ""),
    );
    wait_event(&events, "SRT publish allowed", |l| {
        l.starts_with("auth_allowed key=live/st")
            && l.contains("protocol=srt")
            && l.contains("action=publish")
            && l.contains("mode=token")
    });
    plays(&server, "st", "token in s=");
    let mut second = ffmpeg_send(
        &ts(&server, 30),
        &url_with_stream_id(a, "live/st2?token=srtPub1", ""),
    );
    plays(&server, "st2", "token in the plain stream id's query");
    // The play secret is accepted for m=request (whether SRT play is served or not).
    let _srt_player = ffmpeg_send(
        &ts(&server, 30),
        &url_with_stream_id(a, "#!::r=live/st,m=request,token=srtPlay2", ""),
    );
    wait_event(&events, "SRT play allowed", |l| {
        l.starts_with("auth_allowed key=live/st")
            && l.contains("protocol=srt")
            && l.contains("action=play")
    });
    assert!(publisher.is_running(), "{}", publisher.describe());
    publisher.kill();
    second.kill();
    assert_no_secrets(
        &server,
        &ingest,
        &events,
        &["srtPub1", "srtPlay2", "wrongSrt3"],
    );
}

#[test]
fn file_mode_with_a_token_item() {
    let (server, events) = Server::start_with_events(ServerOpts::default());
    let file = server.dir().join("auth.toml");
    std::fs::write(&file, "[keys.\"live/f*\"]\npublish = \"fileSecret4\"\n").unwrap();
    let ingest = SrtIngest::start(
        &server,
        &[
            "--publish-auth=file",
            &format!("--auth-file={}", file.display()),
        ],
    );
    let a = ingest.addr;
    let p = ffmpeg_refused(
        server.dir(),
        &url_with_stream_id(a, "#!::r=live/fcam,m=publish,token=notIt5", ""),
    );
    assert_caller_rejected(&p, "wrong file secret");
    ingest.expect_log("(1401)", 10.0);
    let _publisher = ffmpeg_send(
        &ts(&server, 30),
        &url_with_stream_id(a, "#!::r=live/fcam,m=publish,token=fileSecret4,u=alice", ""),
    );
    wait_event(&events, "file mode allowed", |l| {
        l.starts_with("auth_allowed key=live/fcam") && l.contains("mode=file")
    });
    plays(&server, "fcam", "file mode");
    assert_no_secrets(&server, &ingest, &events, &["fileSecret4", "notIt5"]);
}

#[test]
fn callback_chooses_the_passphrase_and_a_stalled_one_blocks_nobody() {
    let stub = HttpStub::start(|_method, _path, body| {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        match v["params"]["token"].as_str().unwrap_or("") {
            "cbEnc6" => Some((
                200,
                r#"{"key": "live/secretcam", "passphrase": "cb-passphrase-789"}"#.into(),
            )),
            "cbStall" => None,
            _ => Some((403, "{}".into())),
        }
    });
    let (server, events) = Server::start_with_events(ServerOpts::default());
    let ingest = SrtIngest::start(
        &server,
        &[
            "--publish-auth=callback",
            &format!("--auth-callback={}", stub.url("/srt")),
            "--auth-callback-timeout=2s",
        ],
    );
    let a = ingest.addr;
    let id = "#!::r=live/cb,m=publish,u=bob,s=cbEnc6";

    // Allowed by the callback, but the stream needs the callback's passphrase.
    let p = ffmpeg_refused(server.dir(), &url_with_stream_id(a, id, ""));
    assert_caller_rejected(&p, "no passphrase");
    ingest.expect_log("UNSECURE (11)", 10.0);
    ffmpeg_refused(
        server.dir(),
        &url_with_stream_id(a, id, "&passphrase=not-the-passphrase"),
    );
    ingest.expect_log("BADSECRET (10)", 10.0);
    let p = ffmpeg_refused(
        server.dir(),
        &url_with_stream_id(a, "#!::r=live/cb,m=publish,s=cbNo7", ""),
    );
    assert_caller_rejected(&p, "callback 403");
    let line = ingest.expect_log("(1403)", 10.0);
    assert!(line.contains("callback answered HTTP 403"), "{line}");

    // A callback that never answers: the caller waits, and another caller meanwhile gets
    // in (the decision does not hold up the UDP loop); then the stalled one is refused.
    let marks = ingest.proc.stderr.len();
    let mut stalled = ffmpeg_send(
        &ts(&server, 30),
        &url_with_stream_id(a, "#!::r=live/stall,m=publish,s=cbStall", ""),
    );
    stub.requests
        .wait_for(0, deadline_in(10.0), |l| l.contains("cbStall"))
        .expect("the callback was asked about the stalled caller");
    let mut publisher = ffmpeg_send(
        &ts(&server, 30),
        &url_with_stream_id(a, id, "&passphrase=cb-passphrase-789"),
    );
    let log = &ingest.proc.stderr;
    let published = log
        .wait_for(marks, deadline_in(10.0), |l| {
            l.contains("publishing") && l.contains("live/secretcam")
        })
        .expect("the encrypted publisher got in");
    let stall_refused = log
        .wait_for(marks, deadline_in(10.0), |l| {
            l.contains("callback failed") && l.contains("(1403)")
        })
        .expect("the stalled caller was refused when the callback timed out");
    let lines = log.lines();
    let at = |needle: &str| lines.iter().position(|l| l == needle).unwrap();
    assert!(
        at(&published) < at(&stall_refused),
        "the publisher waited for the stalled callback\n{}",
        ingest.proc.describe()
    );
    let (status, _) = stalled.wait_or_kill(deadline_in(20.0));
    assert!(!status.success(), "{}", stalled.describe());

    // The callback renamed the stream; it plays under the new key.
    wait_event(&events, "callback allowed", |l| {
        l.starts_with("auth_allowed key=live/secretcam")
            && l.contains("requested_key=live/cb")
            && l.contains("mode=callback")
    });
    plays(
        &server,
        "secretcam",
        "encrypted with the callback's passphrase",
    );
    let posted = stub
        .requests
        .wait_for(0, deadline_in(5.0), |l| l.contains("cbEnc6"))
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(posted.splitn(3, ' ').nth(2).unwrap()).unwrap();
    assert_eq!(body["protocol"], "srt");
    assert_eq!(body["action"], "publish");
    assert_eq!(body["key"], "live/cb");
    assert_eq!(body["params"]["u"], "bob");
    assert_eq!(body["params"]["m"], "publish");
    publisher.kill();
    assert_no_secrets(
        &server,
        &ingest,
        &events,
        &["cbEnc6", "cb-passphrase-789", "cbNo7", "not-the-passphrase"],
    );
}

/// JWT in the stream id: RS256 and ES256 tokens of keys made in the test, from an RSA
/// public key file (`--jwt-key`, PEM) and a JWKS URL with an RSA and an EC key, for
/// publish (`m=publish`) and play (`m=request`); then the key file replaced by an EC key
/// and reloaded on SIGHUP. Expired tokens, tokens of a key the server does not have (also
/// one naming a JWKS key's id) and tokens for other keys are refused with a log line
/// saying why.
#[test]
fn jwt_rs256_and_es256_in_the_stream_id() {
    let (server, events) = Server::start_with_events(ServerOpts::default());
    let dir = server.dir();
    let file_key = SigningKey::rsa(dir, "file");
    let url_rsa = SigningKey::rsa(dir, "url").with_kid("rsa-1");
    let url_ec = SigningKey::ec().with_kid("ec-1");
    let stranger = SigningKey::rsa(dir, "stranger");
    let key_file = dir.join("jwt.pem");
    std::fs::write(&key_file, file_key.public_pem()).unwrap();
    let set = jwks(&[&url_rsa, &url_ec]);
    let stub = HttpStub::start(move |_, path, _| (path == "/jwks").then(|| (200, set.clone())));
    let mut ingest = SrtIngest::start(
        &server,
        &[
            "--publish-auth=jwt",
            "--play-auth=jwt",
            &format!("--jwt-key={}", key_file.display()),
            &format!("--jwt-jwks={}", stub.url("/jwks")),
            // Many refusals in a row here: no lockout.
            "--auth-max-failures=0",
        ],
    );
    let a = ingest.addr;
    // An RS256 token is about 450 bytes: within SRT's 512-byte stream id with short claims.
    let id = |name: &str, mode: &str, token: &str| {
        url_with_stream_id(a, &format!("#!::r=live/{name},m={mode},token={token}"), "")
    };
    let t = now();
    let publish_claims = serde_json::json!({"exp": t + 3600, "publish": "live/j*"});
    let log = ingest.proc.stderr.clone();
    let refused = |url: &str, what: &str, why: &str| {
        let marks = log.len();
        let p = ffmpeg_refused(dir, url);
        assert_caller_rejected(&p, what);
        log.wait_for(marks, deadline_in(10.0), |l| {
            l.contains("not authorized") && l.contains(why)
        })
        .unwrap_or_else(|| panic!("{what}: no refusal with {why:?}\n{}", log.tail(40)));
    };

    let expired = file_key.sign(&serde_json::json!({"exp": t - 3600, "publish": "live/*"}));
    refused(
        &id("jc", "publish", &expired),
        "expired RS256",
        "token expired",
    );
    let unknown = stranger.sign(&publish_claims);
    refused(
        &id("jc", "publish", &unknown),
        "RS256 of an unknown key",
        "token rejected",
    );
    let forged = stranger.sign_as("rsa-1", &publish_claims);
    refused(
        &id("jc", "publish", &forged),
        "RS256 naming the JWKS key's id, signed with another key",
        "token rejected",
    );
    let other_keys = file_key.sign(&serde_json::json!({"exp": t + 3600, "publish": "other/*"}));
    refused(
        &id("jc", "publish", &other_keys),
        "RS256 for other keys",
        "does not grant publish",
    );
    wait_event(&events, "SRT JWT denial", |l| {
        l.starts_with("auth_denied key=live/jc")
            && l.contains("protocol=srt")
            && l.contains("mode=jwt")
            && l.contains("reason=not_granted")
    });

    // RS256 from the key file publishes; RS256 and ES256 from the JWKS URL play over SRT.
    let good = file_key.sign(&publish_claims);
    let mut publisher = ffmpeg_send(&ts(&server, 60), &id("jc", "publish", &good));
    wait_event(&events, "SRT RS256 publish", |l| {
        l.starts_with("auth_allowed key=live/jc")
            && l.contains("protocol=srt")
            && l.contains("action=publish")
    });
    plays(&server, "jc", "RS256 publisher from the key file");
    let play_claims = serde_json::json!({"exp": t + 600, "play": "live/jc"});
    let rs_play = url_rsa.sign(&play_claims);
    let es_play = url_ec.sign(&play_claims);
    for (token, what) in [(&rs_play, "RS256"), (&es_play, "ES256")] {
        let mut player = Player::spawn(
            &format!("{}&connect_timeout=10000", id("jc", "request", token)),
            &PlayOpts::default(),
        );
        assert!(
            player.wait_frames(25, 10, deadline_in(30.0)),
            "{what} SRT player, key from the JWKS URL, decoded nothing\n{}\n{}",
            player.proc().describe(),
            ingest.proc.describe()
        );
    }
    refused(
        &id(
            "jc",
            "request",
            &url_rsa.sign(&serde_json::json!({"exp": t - 600, "play": "live/jc"})),
        ),
        "expired RS256 player",
        "token expired",
    );
    refused(
        &id(
            "jc",
            "request",
            &url_ec.sign(&serde_json::json!({"exp": t + 600, "play": "live/other"})),
        ),
        "ES256 player for another key",
        "does not grant play",
    );

    // The key file now holds an EC key: after SIGHUP, ES256 tokens of it publish and the
    // old RSA key's tokens are refused; the running publisher is not disturbed.
    let file_ec = SigningKey::ec();
    std::fs::write(&key_file, file_ec.public_pem()).unwrap();
    let marks = log.len();
    ingest.proc.signal(libc::SIGHUP);
    log.wait_for(marks, deadline_in(10.0), |l| {
        l.contains("JWT keys reloaded")
    })
    .unwrap_or_else(|| panic!("no reload after SIGHUP\n{}", log.tail(40)));
    refused(
        &id("je", "publish", &file_key.sign(&publish_claims)),
        "RS256 of the replaced key file",
        "token rejected",
    );
    let es_publish = file_ec.sign(&publish_claims);
    let mut second = ffmpeg_send(&ts(&server, 60), &id("je", "publish", &es_publish));
    plays(&server, "je", "ES256 publisher from the key file");
    assert!(publisher.is_running(), "{}", publisher.describe());
    publisher.kill();
    second.kill();
    assert_no_secrets(
        &server,
        &ingest,
        &events,
        &[
            &good,
            &expired,
            &unknown,
            &forged,
            &other_keys,
            &rs_play,
            &es_play,
            &es_publish,
        ],
    );
}
