//! SIGHUP to the real supervisor while a stream is live, played and recorded: a profile
//! that does not validate changes nothing (and the log says why); a valid one restarts only
//! the component whose flags changed, forwards SIGHUP to the hub and ingest-rtmp (which
//! reload in place), and the player and the publisher never notice. Relay rules and hook
//! targets are reloaded in place: relays that stay and hookd are never restarted.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::deadline_in;
use e2e::ffmpeg::{self, Codecs, PublishOpts};
use e2e::http_stub::HttpStub;
use e2e::hub_events;
use e2e::rtmp_client::RtmpClient;
use e2e::scenario::{is_coded_video, raw_publisher, send_h264_aac, wait_media_time};
use e2e::supervised::Supervised;
use e2e::{Server, ServerOpts};

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

/// A raw player in a thread of its own (so that it never lags and the server never skips
/// frames for it): every coded video timestamp and status it receives, until `stop`.
struct Watcher {
    seen: Arc<Mutex<(Vec<u32>, Vec<String>)>>,
    stop: Arc<AtomicBool>,
    /// Closes the player's connection: a stream that ended sends nothing more, and the
    /// thread must not sit out its read deadline to notice `stop`.
    closer: TcpStream,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(addr: std::net::SocketAddr, app: &str, name: &str) -> Watcher {
        let (mut player, sid) = RtmpClient::open(addr, app).expect("player connects");
        player.play(sid, name).expect("play");
        let closer = player
            .closer()
            .expect("a second handle on the player's socket");
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok(m) = player.next_message(deadline_in(30.0)) else {
                    return;
                };
                let mut seen = s.lock().unwrap();
                if is_coded_video(&m) {
                    seen.0.push(m.timestamp);
                } else if let Some(status) = m.status() {
                    seen.1.push(status.code);
                }
            }
        });
        Watcher {
            seen,
            stop,
            closer,
            thread: Some(thread),
        }
    }

    fn frames(&self) -> usize {
        self.seen.lock().unwrap().0.len()
    }

    /// Waits until `n` more coded video frames arrived than `from`.
    fn wait_frames(&self, from: usize, n: usize, what: &str) {
        let deadline = deadline_in(30.0);
        while self.frames() < from + n {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: {} frames, wanted {}",
                self.frames(),
                from + n
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the player; returns its video timestamps and statuses.
    fn finish(mut self) -> (Vec<u32>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.closer.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// SIGHUP with changed relay rules and hook targets: the supervisor rewrites the rules
/// files and sends SIGHUP instead of restarting; the relayer starts the added relays
/// (also for a stream the old rules did not subscribe to) while the relay that stayed
/// goes on over the same connection, and stops the removed one; hookd sends the next
/// event to the new target; a broken rules file keeps the rules in force.
#[test]
fn sighup_reloads_relay_rules_and_hook_targets_in_place() {
    let second = Server::start_second(ServerOpts::default());
    let dest = hub_events::subscribe(second.socket());
    let hooks_a = HttpStub::start(|_, _, _| Some((200, String::new())));
    let hooks_b = HttpStub::start(|_, _, _| Some((200, String::new())));
    let to = second.addr();
    let s = Supervised::start(&format!(
        "[relayer]\npush = [\"live/*=rtmp://{to}/live/{{name}}\"]\n\
         [hookd]\nwebhook = [\"publish=http://{}/a\"]\n",
        hooks_a.url("").trim_start_matches("http://"),
    ));
    let relayer = s.child_pid("relayer", 1);
    let hookd = s.child_pid("hookd", 1);
    let opts = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(120));
    let _cam = ffmpeg::publish(&s.url("cam"), &opts);
    let _other = ffmpeg::publish(&format!("rtmp://{}/other/x", s.addr()), &opts);
    hub_events::wait_event(&dest, "relayed publish", |l| {
        l.starts_with("publish key=live/cam ")
    });
    hooks_a
        .requests
        .wait_for(0, deadline_in(30.0), |l| l.contains("\"key\":\"live/cam\""))
        .unwrap_or_else(|| panic!("hook A got no publish\n{}", s.describe()));
    let watcher = Watcher::start(to, "live", "cam");
    watcher.wait_frames(0, 20, "relayed stream at the second server");

    // New rules: live/cam also goes to copy/cam, other/* (not subscribed so far) to the
    // second server too; publish events go to hook B instead of A.
    let before = watcher.frames();
    let mark = reload(&s, |p| {
        p.replace(
            "push = [",
            &format!(
                "push = [\"live/*=rtmp://{to}/copy/{{name}}\", \"other/*=rtmp://{to}/other/{{name}}\", "
            ),
        )
        .replace("/a\"]", "/b\"]")
        .replace(
            &hooks_a.url("").trim_start_matches("http://").to_string(),
            hooks_b.url("").trim_start_matches("http://"),
        )
    });
    let done = wait(&s, mark, "SIGHUP: profile reloaded");
    for expected in [
        "relayer rules changed (reloaded in place, sent SIGHUP)",
        "hookd rules changed (reloaded in place, sent SIGHUP)",
        "hub unchanged (sent SIGHUP)",
    ] {
        assert!(done.contains(expected), "{expected:?} not in {done}");
    }
    let said = wait(&s, mark, "SIGHUP: push rules reloaded");
    assert!(said.contains("unchanged=1"), "{said}");
    hub_events::wait_event(&dest, "added relay", |l| {
        l.starts_with("publish key=copy/cam ")
    });
    hub_events::wait_event(&dest, "newly subscribed relay", |l| {
        l.starts_with("publish key=other/x ")
    });
    let copy = Watcher::start(to, "copy", "cam");
    copy.wait_frames(0, 20, "the added relay");
    // hookd: the next publish goes to B only.
    // (`publish` is sent when the first frame shows the stream flowing.)
    let (mut late, sid) = raw_publisher(s.addr(), "hooked");
    send_h264_aac(&mut late, sid, 0, 5, 40, 5).expect("late publisher sends");
    hooks_b
        .requests
        .wait_for(0, deadline_in(30.0), |l| {
            l.contains("\"key\":\"live/hooked\"")
        })
        .unwrap_or_else(|| panic!("hook B got no publish\n{}", s.describe()));
    drop(late);

    // A rules file that does not parse: the relayer says so and keeps its rules.
    let rules = s.path("run").join("relayer.rules.toml");
    let good = std::fs::read_to_string(&rules).expect("the relayer's rules file");
    std::fs::write(&rules, "push = [").expect("break the rules file");
    let mark = s.mark();
    Supervised::send(relayer, libc::SIGHUP);
    wait(&s, mark, "the rules file was not reloaded");
    std::fs::write(&rules, good).expect("restore the rules file");

    // Removing the copy rule stops that relay only.
    let mark = reload(&s, |p| {
        p.replace(&format!("\"live/*=rtmp://{to}/copy/{{name}}\", "), "")
    });
    wait(&s, mark, "relayer rules changed (reloaded in place");
    hub_events::wait_event(&dest, "removed relay's end", |l| {
        l.starts_with("unpublish key=copy/cam ")
    });
    let (copy_frames, _) = copy.finish();
    assert!(!copy_frames.is_empty());
    watcher.wait_frames(before, 60, "the kept relay after the reloads");

    // The kept relay never reconnected: one publish at the destination, a player there
    // that saw no unpublish and no gap between consecutive frames (20 fps: 50 ms).
    let (ts, statuses) = watcher.finish();
    let publishes = dest.count(|l| l.starts_with("publish key=live/cam "));
    assert_eq!(
        publishes, 1,
        "live/cam was published again at the destination"
    );
    assert!(
        !statuses.iter().any(|c| c.contains("Unpublish")),
        "{statuses:?}"
    );
    let worst = ts
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]))
        .max()
        .unwrap_or(0);
    assert!(worst <= 100, "a gap of {worst} ms in {} frames", ts.len());
    assert_eq!(hooks_a.requests.count(|l| l.contains("live/hooked")), 0);
    // Nothing restarted.
    assert!(alive(relayer) && alive(hookd), "{}", s.describe());
    let lines = s.sup.stderr.lines();
    for name in ["relayer", "hookd"] {
        assert!(
            !lines
                .iter()
                .any(|l| l.contains(&format!("started {name} (pid")) && !l.contains(", run 1)")),
            "{name} was restarted\n{}",
            lines.join("\n")
        );
    }
}
