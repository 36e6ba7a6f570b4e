//! The status page in a real browser: headless Chromium (Debian's `chromium`, driven
//! through `chromedriver` by tests/scripts/browser_check.py) opens `/` while FFmpeg
//! publishes, sees the stream listed with its codec and size, and its mpegts.js player
//! plays: the video's currentTime advances, decoded frames are reported, and the console
//! has no errors.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::ffmpeg::{self, Codecs, PublishOpts};
use e2e::proc::Proc;
use e2e::supervised::free_port;
use e2e::tools::{skip_without, which};
use e2e::{http, Server, ServerOpts};

#[test]
fn status_page_lists_the_stream_and_its_player_plays_in_chromium() {
    let present = which("chromium").is_some() && which("chromedriver").is_some();
    if skip_without(
        "chromium and chromium-driver (apt-get install chromium chromium-driver)",
        present,
    ) {
        return;
    }
    let mut server = Server::start(ServerOpts::default());
    let addr = server.http_addr();
    let _publisher = ffmpeg::publish(
        &server.url("web"),
        &PublishOpts::new(Codecs::H264Aac, Duration::from_secs(120)),
    );
    server.wait_live("web");
    let page = http::get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/static/mpegts.js"));
    assert_eq!(http::get(addr, "/static/mpegts.js").status, 200);
    assert!(http::get(addr, "/static/mpegts.js.LICENSE")
        .text()
        .contains("Apache License"));

    let port = free_port().port();
    let mut driver = Proc::spawn(
        "chromedriver",
        Command::new("chromedriver").arg(format!("--port={port}")),
    );
    assert!(
        driver
            .stdout
            .wait_for(0, Instant::now() + Duration::from_secs(20), |l| l
                .contains("started successfully"))
            .is_some(),
        "chromedriver did not start\n{}",
        driver.describe()
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/browser_check.py");
    let mut check = Proc::spawn(
        "browser_check.py",
        Command::new("python3").args([
            script,
            &format!("http://{addr}/"),
            "live/web",
            &port.to_string(),
        ]),
    );
    let (status, killed) = check.wait_or_kill(Instant::now() + Duration::from_secs(120));
    assert!(
        status.success() && !killed,
        "the browser check failed\n{}\n{}",
        check.describe(),
        server.describe()
    );
    let seen: serde_json::Value =
        serde_json::from_str(check.stdout.lines().last().expect("a result line")).expect("JSON");
    assert_eq!(seen["cells"][1], "h264", "{seen}");
    assert_eq!(seen["cells"][2], "320x240", "{seen}");
    assert!(seen["frames"].as_u64() >= Some(20), "{seen}");
    driver.kill();
    server.assert_alive();
}
