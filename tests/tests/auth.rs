//! Who may publish and play, end to end: FFmpeg 9 and GStreamer against the real hub and
//! ingest-rtmp in every auth mode (token, file with reload, callback with a server in the
//! test, JWT from a secret file and from a JWKS URL), the events the decisions produce,
//! failed-attempt limiting, and that no secret reaches a log line or an event.

use std::time::Duration;

use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use e2e::gst;
use e2e::http_stub::HttpStub;
use e2e::hub_events::wait_event;
use e2e::jwt::{jwks, now, SigningKey};
use e2e::log::LineLog;
use e2e::proc::Proc;
use e2e::server::Which;
use e2e::tools::skip_without;
use e2e::{http, Server, ServerOpts};

/// Publishes for `secs` seconds.
fn publish(url: &str, secs: u64) -> Proc {
    ffmpeg::publish(
        url,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(secs)),
    )
}

/// Waits for an FFmpeg client to fail on its own with the server's description.
fn assert_refused(mut p: Proc, what: &str, description: &str) {
    let (status, killed) = p.wait_or_kill(deadline_in(30.0));
    assert!(
        !killed,
        "{what}: still running; it was not refused\n{}",
        p.describe()
    );
    assert!(!status.success(), "{what}: exited 0\n{}", p.describe());
    assert!(
        p.stderr.count(|l| l.contains(description)) > 0,
        "{what}: no `{description}` from the server in FFmpeg's output\n{}",
        p.describe()
    );
}

/// A player that must be refused.
fn play_refused(url: &str, what: &str) {
    let mut player = Player::spawn(url, &PlayOpts::default());
    let p = player.proc();
    let (status, killed) = p.wait_or_kill(deadline_in(30.0));
    assert!(
        !killed && !status.success(),
        "{what}: not refused\n{}",
        p.describe()
    );
    assert!(
        p.stderr.count(|l| l.contains("not authorized")) > 0,
        "{what}: no `not authorized` in FFmpeg's output\n{}",
        p.describe()
    );
}

/// A player that must decode `min` video frames.
fn play_ok(url: &str, what: &str) {
    Player::spawn(
        url,
        &PlayOpts {
            duration: Some(Duration::from_secs(1)),
            ..PlayOpts::default()
        },
    )
    .finish(deadline_in(30.0))
    .assert_decoded(what, 15, 15);
}

/// No line of either process's log, and no event, contains any of `secrets`.
fn assert_no_secrets(server: &Server, events: &LineLog, secrets: &[&str]) {
    e2e::log::assert_no_secrets(
        &[
            ("hub", server.log(Which::Hub)),
            ("ingest-rtmp", server.log(Which::Ingest)),
            ("events", events),
        ],
        secrets,
    );
}

#[test]
fn token_mode_ffmpeg_publish_and_play() {
    let (server, events) = Server::start_with_events(ServerOpts::default().ingest(&[
        "--publish-auth=token",
        "--publish-token=live/*=pubSecret1",
        "--play-auth=token",
        "--play-token=live/cam=viewSecret2",
    ]));
    let url = |q: &str| format!("{}{q}", server.url("cam"));

    assert_refused(
        publish(&url("?token=wrongGuess3"), 5),
        "wrong publish token",
        "not authorized: invalid credentials",
    );
    assert_refused(
        publish(&url(""), 5),
        "no publish token",
        "not authorized: no token given",
    );
    // The play secret does not publish.
    assert_refused(
        publish(&url("?token=viewSecret2"), 5),
        "play token used to publish",
        "not authorized",
    );
    wait_event(&events, "auth_denied", |l| {
        l.starts_with("auth_denied key=live/cam")
            && l.contains("action=publish")
            && l.contains("reason=invalid_token")
    });

    let mut publisher = publish(&url("?token=pubSecret1"), 20);
    wait_event(&events, "auth_allowed", |l| {
        l.starts_with("auth_allowed key=live/cam")
            && l.contains("action=publish")
            && l.contains("mode=token")
    });
    play_refused(&url("?token=pubSecret1"), "publish token used to play");
    play_refused(&url(""), "player without token");
    play_ok(&url("?token=viewSecret2"), "player with the play token");

    // A second publisher without the secret cannot take the key over: the first one goes on.
    let mut player = Player::spawn(&url("?token=viewSecret2"), &PlayOpts::default());
    assert!(
        player.wait_frames(10, 10, deadline_in(20.0)),
        "{}",
        player.proc().describe()
    );
    assert_refused(
        publish(&url("?token=takeoverGuess4"), 5),
        "takeover without the secret",
        "not authorized",
    );
    let before = player.counts().video;
    assert!(
        player.wait_frames(before + 20, 0, deadline_in(20.0)),
        "the player stopped after a refused takeover\n{}",
        player.proc().describe()
    );
    assert!(publisher.is_running(), "{}", publisher.describe());

    let denied = server
        .log(Which::Ingest)
        .wait_for(0, deadline_in(5.0), |l| {
            l.contains("auth denied") && l.contains("token=<redacted>")
        })
        .expect("a denial log line with the redacted token");
    assert!(denied.contains("live/cam"), "{denied}");
    assert_no_secrets(
        &server,
        &events,
        &["pubSecret1", "viewSecret2", "wrongGuess3", "takeoverGuess4"],
    );
}

#[test]
fn file_mode_reloads_on_sighup_without_dropping_anyone() {
    let dir = tempfile::tempdir().unwrap();
    // No extension: the format is told by the first character (TOML now, JSON after reload).
    let file = dir.path().join("auth");
    std::fs::write(
        &file,
        "[keys.\"live/*\"]\npublish = \"firstSecret1\"\nplay = [\"watch1\", \"watch2\"]\n",
    )
    .unwrap();
    let (mut server, events) = Server::start_with_events(ServerOpts::default().ingest(&[
        "--publish-auth=file",
        "--play-auth=file",
        &format!("--auth-file={}", file.display()),
    ]));
    let base = server.url("filecam");
    let url = |q: &str| format!("{base}{q}");

    let mut publisher = publish(&url("?token=firstSecret1"), 30);
    let mut player = Player::spawn(&url("?token=watch2"), &PlayOpts::default());
    assert!(
        player.wait_frames(10, 10, deadline_in(20.0)),
        "{}",
        player.proc().describe()
    );

    std::fs::write(
        &file,
        r#"{"keys": {"live/filecam": {"publish": "secondSecret2", "play": "watch3"}}}"#,
    )
    .unwrap();
    server.hangup_ingest("auth file reloaded");
    // The publisher and the player admitted under the old file stay.
    let before = player.counts().video;
    assert!(
        player.wait_frames(before + 20, 0, deadline_in(20.0)),
        "{}",
        player.proc().describe()
    );
    assert!(publisher.is_running(), "{}", publisher.describe());
    play_refused(&url("?token=watch2"), "old play secret after reload");
    play_ok(&url("?token=watch3"), "new play secret after reload");

    // A broken file keeps the previous one, and says why.
    std::fs::write(
        &file,
        "{\"keys\": {\"live/x\": {\"publish\": \"brokenSecret5\",}}}",
    )
    .unwrap();
    let line = server.hangup_ingest("auth file not reloaded");
    assert!(line.contains("JSON"), "{line}");
    play_ok(&url("?token=watch3"), "secret of the kept file");
    drop(player);
    publisher.kill();
    assert_refused(
        publish(&url("?token=firstSecret1"), 5),
        "old publish secret",
        "not authorized",
    );
    wait_event(&events, "auth_denied for the old secret", |l| {
        l.starts_with("auth_denied key=live/filecam")
            && l.contains("action=publish")
            && l.contains("mode=file")
    });
    assert_no_secrets(
        &server,
        &events,
        &[
            "firstSecret1",
            "secondSecret2",
            "watch1",
            "watch2",
            "watch3",
            "brokenSecret5",
        ],
    );
}

#[test]
fn callback_mode_allows_denies_renames_and_times_out() {
    let stub = HttpStub::start(|_method, _path, body| {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        match v["params"]["token"].as_str().unwrap_or("") {
            "letMeIn1" => Some((200, String::new())),
            "renameMe2" => Some((200, r#"{"key": "live/renamed"}"#.into())),
            "stall" => None,
            _ => Some((403, "{}".into())),
        }
    });
    let (server, events) = Server::start_with_events(ServerOpts::default().ingest(&[
        "--publish-auth=callback",
        "--play-auth=callback",
        &format!("--auth-callback={}", stub.url("/auth")),
        "--auth-callback-timeout=1s",
    ]));

    assert_refused(
        publish(&format!("{}?token=nope3", server.url("cb")), 5),
        "403",
        "callback answered HTTP 403",
    );
    assert_refused(
        publish(&format!("{}?token=stall", server.url("cb")), 5),
        "timeout",
        "no answer within 1s",
    );
    let _publisher = publish(&format!("{}?token=renameMe2", server.url("cb")), 20);
    wait_event(&events, "renamed publish", |l| {
        l.starts_with("auth_allowed key=live/renamed")
            && l.contains("requested_key=live/cb")
            && l.contains("mode=callback")
    });
    // The stream lives under the callback's key.
    play_ok(
        &format!("{}?token=letMeIn1", server.url("renamed")),
        "player of the renamed key",
    );
    play_refused(
        &format!("{}?token=bad", server.url("renamed")),
        "player the callback refuses",
    );

    let posted = stub
        .requests
        .wait_for(0, deadline_in(5.0), |l| l.contains("renameMe2"))
        .expect("callback saw the rename request");
    assert!(posted.starts_with("POST /auth "), "{posted}");
    let body: serde_json::Value =
        serde_json::from_str(posted.splitn(3, ' ').nth(2).unwrap()).unwrap();
    assert_eq!(body["action"], "publish");
    assert_eq!(body["protocol"], "rtmp");
    assert_eq!(body["key"], "live/cb");
    assert!(
        body["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{body}"
    );
    assert!(body["conn_id"].as_u64().unwrap() > 0, "{body}");
    assert_no_secrets(&server, &events, &["renameMe2", "letMeIn1", "nope3"]);
}

fn hs256(claims: serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[test]
fn jwt_mode_secret_file_and_jwks_url() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hs256.key");
    std::fs::write(&secret_file, "jwt-shared-secret\n").unwrap();
    // An ES256 key served as a JWK set by the test's HTTP server.
    let ec = SigningKey::ec().with_kid("k1");
    let jwks = jwks(&[&ec]);
    let stub =
        HttpStub::start(move |_, path, _| (path == "/jwks.json").then(|| (200, jwks.clone())));
    let (server, events) = Server::start_with_events(ServerOpts::default().ingest(&[
        "--publish-auth=jwt",
        "--play-auth=jwt",
        &format!("--jwt-secret-file={}", secret_file.display()),
        &format!("--jwt-jwks={}", stub.url("/jwks.json")),
    ]));
    let url = |t: &str| format!("{}?token={t}", server.url("jwtcam"));
    let t = now();

    let expired = hs256(
        serde_json::json!({"exp": t - 3600, "publish": "live/*"}),
        b"jwt-shared-secret",
    );
    assert_refused(publish(&url(&expired), 5), "expired", "token expired");
    let wrong_key = hs256(
        serde_json::json!({"exp": t + 3600, "publish": "live/*"}),
        b"another-secret",
    );
    assert_refused(publish(&url(&wrong_key), 5), "wrong key", "token rejected");
    let wrong_pattern = hs256(
        serde_json::json!({"exp": t + 3600, "publish": "other/*", "play": "live/*"}),
        b"jwt-shared-secret",
    );
    assert_refused(
        publish(&url(&wrong_pattern), 5),
        "wrong pattern",
        "does not grant publish",
    );
    let early = hs256(
        serde_json::json!({"nbf": t + 3600, "publish": "live/*"}),
        b"jwt-shared-secret",
    );
    assert_refused(publish(&url(&early), 5), "not yet valid", "not valid yet");

    let good = hs256(
        serde_json::json!({"exp": t + 3600, "publish": ["live/jwt*"]}),
        b"jwt-shared-secret",
    );
    let _publisher = publish(&url(&good), 20);
    wait_event(&events, "jwt publish", |l| {
        l.starts_with("auth_allowed key=live/jwtcam") && l.contains("mode=jwt")
    });
    // Players with an ES256 token whose key comes from the JWKS URL.
    let es = |claims: serde_json::Value| ec.sign(&claims);
    play_ok(
        &url(&es(serde_json::json!({"exp": t + 600, "play": "live/*"}))),
        "ES256 player",
    );
    play_refused(
        &url(&es(
            serde_json::json!({"exp": t + 600, "publish": "live/*"}),
        )),
        "ES256 token without play",
    );
    // A play claim in an HS256 token signed with the wrong key.
    play_refused(
        &url(&hs256(serde_json::json!({"play": "*"}), b"nope")),
        "HS256 wrong key player",
    );
    assert_no_secrets(
        &server,
        &events,
        &[&good, &expired, &wrong_key, "jwt-shared-secret"],
    );
}

#[test]
fn failed_attempts_lock_the_address_out_at_connect() {
    let (server, events) = Server::start_with_events(ServerOpts::default().ingest(&[
        "--publish-auth=token",
        "--publish-token=live/*=rightOne1",
        "--auth-max-failures=2",
        "--auth-failure-window=1m",
    ]));
    let url = |q: &str| format!("{}{q}", server.url("limited"));
    assert_refused(
        publish(&url("?token=a"), 5),
        "first failure",
        "invalid credentials",
    );
    assert_refused(
        publish(&url("?token=b"), 5),
        "second failure",
        "invalid credentials",
    );
    // Even the right secret is refused now, at connect, with NetConnection.Connect.Rejected.
    assert_refused(
        publish(&url("?token=rightOne1"), 5),
        "locked out",
        "too many failed authentication attempts",
    );
    server
        .log(Which::Ingest)
        .wait_for(0, deadline_in(5.0), |l| l.contains("connect refused"))
        .expect("connect refusal logged");
    wait_event(&events, "lockout refusal", |l| {
        l.starts_with("auth_denied ")
            && l.contains("action=connect")
            && l.contains("reason=lockout")
            && l.contains("protocol=rtmp")
    });
    assert_no_secrets(&server, &events, &["rightOne1"]);
}

#[test]
fn token_in_the_app_part_like_obs() {
    // OBS puts the server URL's query on the app: `rtmp://host/live?token=X` with stream
    // key `appcam` connects to app `live?token=X`; FFmpeg does the same for this URL.
    let (server, events) = Server::start_with_events(ServerOpts::default().ingest(&[
        "--publish-auth=token",
        "--publish-token=live/appcam=appSecret7",
        "--play-auth=token",
        "--play-token=live/appcam=appView8",
    ]));
    let at = |token: &str| format!("rtmp://{}/live?token={token}/appcam", server.addr());
    assert_refused(
        publish(&at("wrongApp9"), 5),
        "wrong token in the app",
        "not authorized: invalid credentials",
    );
    let _publisher = publish(&at("appSecret7"), 20);
    wait_event(&events, "publish with the token in the app", |l| {
        l.starts_with("auth_allowed key=live/appcam") && l.contains("action=publish")
    });
    play_ok(&at("appView8"), "player with the token in the app");
    play_refused(&at("appSecret7"), "publish token in the app used to play");
    assert_no_secrets(&server, &events, &["appSecret7", "appView8", "wrongApp9"]);
}

#[test]
fn http_flv_players_need_the_play_token() {
    let play = [
        "--play-auth=token",
        "--play-token=live/*=httpView1",
        "--auth-max-failures=3",
    ];
    let (server, events) =
        Server::start_with_events(ServerOpts::default().hub(&play).ingest(&play));
    let _publisher = publish(&server.url("hcam"), 30);
    server.wait_live("hcam");
    let addr = server.http_addr();

    play_ok(
        &server.http_url("/live/hcam.flv?token=httpView1"),
        "HTTP-FLV player with the play token",
    );
    wait_event(&events, "HTTP player allowed", |l| {
        l.starts_with("auth_allowed key=live/hcam")
            && l.contains("protocol=http-flv")
            && l.contains("mode=token")
    });
    let none = http::get(addr, "/live/hcam.flv");
    assert_eq!(none.status, 401, "{}", none.text());
    assert!(none.json()["error"]
        .as_str()
        .unwrap()
        .contains("not authorized: no token given"));
    let wrong = http::get(addr, "/live/hcam.flv?token=httpWrong2");
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert!(
        wrong.text().contains("invalid credentials"),
        "{}",
        wrong.text()
    );
    wait_event(&events, "HTTP player denied", |l| {
        l.starts_with("auth_denied key=live/hcam")
            && l.contains("protocol=http-flv")
            && l.contains("reason=invalid_token")
    });
    // FFmpeg sees the refusal.
    let mut refused = Player::spawn(
        &server.http_url("/live/hcam.flv?token=httpWrong3"),
        &PlayOpts::default(),
    );
    let p = refused.proc();
    let (status, killed) = p.wait_or_kill(deadline_in(30.0));
    assert!(!killed && !status.success(), "{}", p.describe());
    assert!(
        p.stderr.count(|l| l.contains("403")) > 0,
        "{}",
        p.describe()
    );
    // Three failures: the address is locked out, even with the right token.
    let locked = http::get(addr, "/live/hcam.flv?token=httpView1");
    assert_eq!(locked.status, 429, "{}", locked.text());
    wait_event(&events, "HTTP lockout", |l| {
        l.starts_with("auth_denied key=live/hcam")
            && l.contains("protocol=http-flv")
            && l.contains("reason=lockout")
    });
    let denied = server
        .log(Which::Hub)
        .wait_for(0, deadline_in(5.0), |l| {
            l.contains("auth denied") && l.contains("token=<redacted>")
        })
        .expect("the hub logs the denial with the token redacted");
    assert!(denied.contains("live/hcam"), "{denied}");
    assert_no_secrets(&server, &events, &["httpView1", "httpWrong2", "httpWrong3"]);
}

#[test]
fn gstreamer_publish_and_play_with_tokens() {
    if skip_without("GStreamer rtmp2sink/rtmp2src/flvmux", gst::available()) {
        return;
    }
    let server = Server::start(ServerOpts::default().ingest(&[
        "--publish-auth=token",
        "--publish-token=live/gst=gstPub1",
        "--play-auth=token",
        "--play-token=live/gst=gstPlay2",
    ]));
    let source = server.dir().join("source.flv");
    ffmpeg::encode_file(
        &source,
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(30)),
    );
    let gst_publish = |token: &str| {
        gst::rtmp2sink(
            &source,
            &format!("{}?token={token}", server.url("gst")),
            &[],
        )
    };
    let mut denied = gst_publish("wrongGst3");
    let (status, killed) = denied.wait_or_kill(deadline_in(30.0));
    assert!(
        !killed && !status.success(),
        "rtmp2sink with a wrong token was not refused\n{}",
        denied.describe()
    );
    server
        .log(Which::Ingest)
        .wait_for(0, deadline_in(5.0), |l| {
            l.contains("auth denied") && l.contains("live/gst")
        })
        .expect("denial logged");

    let _publisher = gst_publish("gstPub1");
    play_ok(
        &format!("{}?token=gstPlay2", server.url("gst")),
        "FFmpeg player of the GStreamer publisher",
    );
    let mut refused = gst::rtmp2src(
        &format!("{}?token=wrongGst4", server.url("gst")),
        &[],
        &server.dir().join("refused.flv"),
    );
    let (status, killed) = refused.wait_or_kill(deadline_in(30.0));
    assert!(
        !killed && !status.success(),
        "rtmp2src with a wrong token was not refused\n{}",
        refused.describe()
    );
    gst::rtmp2src_records(
        &format!("{}?token=gstPlay2", server.url("gst")),
        &[],
        &server.dir().join("allowed.flv"),
        40,
        "rtmp2src with the play token",
    );
}

/// RS256 and ES256 tokens of keys made in the test: an RSA public key file (`--jwt-key`,
/// PEM) and a JWKS URL with an RSA and an EC key, then the key file replaced by an EC key
/// and reloaded on SIGHUP. Expired tokens, tokens of a key the server does not have (also
/// one that names a JWKS key's id) and tokens for other keys are refused.
#[test]
fn jwt_rs256_and_es256_from_key_file_and_jwks_url() {
    let dir = tempfile::tempdir().unwrap();
    let file_key = SigningKey::rsa(dir.path(), "file");
    let url_rsa = SigningKey::rsa(dir.path(), "url").with_kid("rsa-1");
    let url_ec = SigningKey::ec().with_kid("ec-1");
    let stranger = SigningKey::rsa(dir.path(), "stranger");
    let key_file = dir.path().join("jwt.pem");
    std::fs::write(&key_file, file_key.public_pem()).unwrap();
    let set = jwks(&[&url_rsa, &url_ec]);
    let stub = HttpStub::start(move |_, path, _| (path == "/jwks").then(|| (200, set.clone())));
    let (mut server, events) = Server::start_with_events(ServerOpts::default().ingest(&[
        "--publish-auth=jwt",
        "--play-auth=jwt",
        &format!("--jwt-key={}", key_file.display()),
        &format!("--jwt-jwks={}", stub.url("/jwks")),
        // Many refusals in a row here: no lockout.
        "--auth-max-failures=0",
    ]));
    let base = server.url("rs");
    let url = |t: &str| format!("{base}?token={t}");
    let t = now();
    let publish_claims = serde_json::json!({"exp": t + 3600, "publish": "live/r*"});

    let expired = file_key.sign(&serde_json::json!({"exp": t - 3600, "publish": "live/*"}));
    assert_refused(publish(&url(&expired), 5), "expired RS256", "token expired");
    let unknown = stranger.sign(&publish_claims);
    assert_refused(
        publish(&url(&unknown), 5),
        "RS256 of an unknown key",
        "token rejected",
    );
    let forged = stranger.sign_as("rsa-1", &publish_claims);
    assert_refused(
        publish(&url(&forged), 5),
        "RS256 naming the JWKS key's id, signed with another key",
        "token rejected",
    );
    let other_keys =
        file_key.sign(&serde_json::json!({"exp": t + 3600, "publish": "other/*", "play": "*"}));
    assert_refused(
        publish(&url(&other_keys), 5),
        "RS256 for other keys",
        "does not grant publish",
    );
    wait_event(&events, "RS256 denial", |l| {
        l.starts_with("auth_denied key=live/rs")
            && l.contains("mode=jwt")
            && l.contains("reason=not_granted")
    });

    // Allowed: RS256 from the key file publishes, RS256 and ES256 from the JWKS URL play.
    let good = file_key.sign(&publish_claims);
    let _publisher = publish(&url(&good), 60);
    wait_event(&events, "RS256 publish", |l| {
        l.starts_with("auth_allowed key=live/rs")
            && l.contains("action=publish")
            && l.contains("mode=jwt")
    });
    let play_claims = serde_json::json!({"exp": t + 600, "play": "live/rs"});
    let rs_play = url_rsa.sign(&play_claims);
    play_ok(&url(&rs_play), "RS256 player, key from the JWKS URL");
    play_ok(
        &url(&url_ec.sign(&play_claims)),
        "ES256 player, key from the JWKS URL",
    );
    play_refused(
        &url(&url_rsa.sign(&serde_json::json!({"exp": t - 600, "play": "live/rs"}))),
        "expired RS256 player",
    );
    play_refused(
        &url(&url_rsa.sign(&serde_json::json!({"exp": t + 600, "play": "live/other"}))),
        "RS256 player for another key",
    );
    play_refused(
        &url(&stranger.sign_as("ec-1", &play_claims)),
        "a token naming the EC key's id, signed with an RSA key",
    );

    // The key file now holds an EC key: reloaded on SIGHUP, ES256 tokens of it play and
    // the old RSA key's tokens no longer do; the publisher is not disturbed.
    let file_ec = SigningKey::ec();
    std::fs::write(&key_file, file_ec.public_pem()).unwrap();
    server.hangup_ingest("JWT keys reloaded");
    play_ok(
        &url(&file_ec.sign(&play_claims)),
        "ES256 player, key from the key file",
    );
    play_refused(
        &url(&file_key.sign(&play_claims)),
        "RS256 of the replaced key file",
    );
    play_ok(&url(&rs_play), "RS256 player after the reload");
    assert_no_secrets(
        &server,
        &events,
        &[&good, &expired, &unknown, &forged, &other_keys, &rs_play],
    );
}
