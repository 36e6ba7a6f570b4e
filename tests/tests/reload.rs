//! SIGHUP to the real supervisor while a stream is live, played and recorded: a profile
//! that does not validate changes nothing (and the log says why); a valid one restarts only
//! the component whose flags changed, forwards SIGHUP to the hub and ingest-rtmp (which
//! reload in place), and the player and the publisher never notice.

use std::time::Duration;

use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PublishOpts};
use e2e::rtmp_client::RtmpClient;
use e2e::scenario::{is_coded_video, wait_media_time};
use e2e::supervised::Supervised;

/// Rewrites the running profile with `edit` and sends the supervisor SIGHUP; returns the
/// log mark from before the signal.
fn reload(s: &Supervised, edit: impl FnOnce(String) -> String) -> usize {
    let path = s.path("profile.toml");
    let profile = std::fs::read_to_string(&path).expect("read profile");
    std::fs::write(&path, edit(profile)).expect("write profile");
    let mark = s.mark();
    s.signal_supervisor(libc::SIGHUP);
    mark
}

fn wait(s: &Supervised, from: usize, what: &str) -> String {
    s.wait_line(from, Duration::from_secs(30), |l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?}\n{}", s.describe()))
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; the pid is one of ours.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn sighup_reloads_the_profile_and_restarts_only_what_changed() {
    let rec = tempfile::tempdir().expect("temp dir");
    let s = Supervised::start(&format!(
        "[recorder]\ndir = \"{}\"\nsegment = \"1h\"\n",
        rec.path().display()
    ));
    let hub = s.child_pid("hub", 1);
    let ingest = s.child_pid("ingest-rtmp", 1);
    let recorder = s.child_pid("recorder", 1);
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(120));
    let _publisher = ffmpeg::publish(&s.url("cam"), &opts);
    wait(&s, 0, "recording started");
    let (mut player, sid) = RtmpClient::open(s.addr(), "live").expect("player connects");
    player.play(sid, "cam").expect("play");
    player
        .wait_message(deadline_in(30.0), is_coded_video)
        .unwrap_or_else(|e| panic!("stream never live: {e}\n{}", s.describe()));

    // A profile that does not validate: the component says which key, nothing changes.
    let mark = reload(&s, |p| p.replace("segment = \"1h\"", "segment = \"soon\""));
    let why = wait(&s, mark, "reload: ");
    assert!(why.contains("[recorder] segment"), "{why}");
    wait(&s, mark, "the profile was not reloaded");
    // Not TOML at all: the same.
    let mark = reload(&s, |p| p.replace("segment = \"soon\"", "segment = "));
    let why = wait(&s, mark, "reload: ");
    assert!(why.contains("not valid TOML"), "{why}");
    wait(&s, mark, "the profile was not reloaded");
    wait_media_time(&mut player, 1000, deadline_in(30.0));

    // A valid change of the recorder's flags: the recorder alone restarts.
    let mark = reload(&s, |p| p.replace("segment = ", "segment = \"30m\""));
    let done = wait(&s, mark, "SIGHUP: profile reloaded");
    for expected in [
        "hub unchanged (sent SIGHUP)",
        "ingest-rtmp unchanged (sent SIGHUP)",
        "recorder changed (restarting)",
    ] {
        assert!(done.contains(expected), "{expected:?} not in {done}");
    }
    let new_recorder = s.child_pid("recorder", 2);
    assert_ne!(new_recorder, recorder);
    // The restarted recorder records the live stream again.
    s.wait_line(mark, Duration::from_secs(30), |l| {
        l.starts_with("[recorder]") && l.contains("recording started")
    })
    .unwrap_or_else(|| panic!("the new recorder records nothing\n{}", s.describe()));
    // Hub and ingest-rtmp reloaded in place: same processes, and they said so.
    s.wait_line(mark, Duration::from_secs(30), |l| {
        l.starts_with("[hub]") && l.contains("SIGHUP: nothing to reload")
    })
    .unwrap_or_else(|| panic!("the hub did not get SIGHUP\n{}", s.describe()));
    s.wait_line(mark, Duration::from_secs(30), |l| {
        l.starts_with("[ingest-rtmp]") && l.contains("SIGHUP: reloading")
    })
    .unwrap_or_else(|| panic!("ingest-rtmp did not get SIGHUP\n{}", s.describe()));
    assert!(alive(hub) && alive(ingest), "{}", s.describe());
    let lines = s.sup.stderr.lines();
    for name in ["hub", "ingest-rtmp"] {
        assert!(
            !lines[mark..]
                .iter()
                .any(|l| l.contains(&format!("started {name} "))),
            "{name} was restarted\n{}",
            lines.join("\n")
        );
    }
    // The player played on through all of it, on the same connection.
    wait_media_time(&mut player, 2000, deadline_in(30.0));
}
