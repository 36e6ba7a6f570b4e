//! ingest-srt's statistics at the hub's `/metrics` (read by `prometheus_client`'s parser)
//! and `/debug/vars`: FFmpeg 9 publishes over SRT and another FFmpeg plays the key over
//! SRT; each connection has its own series (labelled by key, role and conn id) with
//! plausible values while it lasts, they are gone once it ended, and the process totals
//! keep what the connections counted. A refused caller is counted by its reason.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e::ffmpeg::{PlayOpts, Player};
use e2e::prom::{self, Scrape};
use e2e::srt::{ffmpeg_refused, ffmpeg_send, make_ts, SrtIngest, TsCodecs};
use e2e::tools::skip_without;
use e2e::{deadline_in, http, Server, ServerOpts};

fn scrape(addr: SocketAddr) -> Scrape {
    let r = http::get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    prom::parse(&r.text())
}

/// Scrapes until `pred` holds (ingest-srt takes its connections' statistics and reports
/// them every second), or panics with the last scrape and the processes' logs.
fn wait_for(
    addr: SocketAddr,
    what: &str,
    describe: impl Fn() -> String,
    pred: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(addr);
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within 30 s\n{:#?}\n{}",
            s.samples,
            describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of the per-connection series `name` of the connection playing `role` on
/// `live/cam` (there is one of each in this test).
fn conn(s: &Scrape, name: &str, role: &str) -> Option<f64> {
    let prefix = format!("mediaserver_srt_connection_{name}{{");
    let role = format!("role=\"{role}\"");
    s.samples
        .iter()
        .find(|(k, _)| {
            k.starts_with(&prefix) && k.contains(&role) && k.contains("key=\"live/cam\"")
        })
        .map(|(_, v)| *v)
}

fn per_connection_series(s: &Scrape) -> Vec<&String> {
    s.samples
        .keys()
        .filter(|k| k.starts_with("mediaserver_srt_connection_"))
        .collect()
}

#[test]
fn srt_connection_statistics_are_served_while_connections_last() {
    if skip_without(
        "prometheus_client (pip install prometheus_client)",
        prom::parser_available(),
    ) {
        return;
    }
    // The stream ends a second after its publisher leaves, which ends the SRT player.
    let server = Server::start(ServerOpts::default().hub(&["--unpublish-timeout", "1s"]));
    let ingest = SrtIngest::start(&server, &["--play-wait", "8s"]);
    let http_addr = server.http_addr();
    let describe = || format!("{}\n{}", server.describe(), ingest.proc.describe());
    let before = wait_for(http_addr, "ingest-srt reporting", describe, |s| {
        s.get("mediaserver_component_reporting{component=\"ingest-srt\"}") == 1.0
    });
    assert_eq!(before.get("mediaserver_srt_connections_open"), 0.0);
    assert!(per_connection_series(&before).is_empty());

    // A caller asking for a mode ingest-srt does not serve is refused and counted.
    let a = ingest.addr;
    ffmpeg_refused(
        server.dir(),
        &format!("srt://{a}?streamid=%23%21%3A%3Ar%3Dlive%2Fx%2Cm%3Dbidirectional"),
    );

    let ts = server.dir().join("cam.ts");
    make_ts(&ts, TsCodecs::H264Aac, 10);
    let mut publisher = ffmpeg_send(
        &ts,
        &format!("srt://{a}?streamid=%23%21%3A%3Ar%3Dlive%2Fcam%2Cm%3Dpublish&latency=120000"),
    );
    ingest.expect_log("publishing", 20.0);
    let mut player = Player::spawn(
        &format!(
            "srt://{a}?streamid=%23%21%3A%3Ar%3Dlive%2Fcam%2Cm%3Drequest&connect_timeout=10000"
        ),
        &PlayOpts::default(),
    );

    let live = wait_for(
        http_addr,
        "both connections' series with traffic",
        describe,
        |s| {
            let p = |n| conn(s, n, "publisher").unwrap_or(0.0);
            let q = |n| conn(s, n, "player").unwrap_or(0.0);
            p("packets_received_total") > 50.0
                && p("rtt_microseconds") > 0.0
                && p("receive_buffer_packets") > 0.0
                && p("bandwidth_bits_per_second") > 0.0
                && q("packets_sent_total") > 50.0
                && q("rtt_microseconds") > 0.0
        },
    );
    let p = |n| conn(&live, n, "publisher").expect(n);
    let q = |n| conn(&live, n, "player").expect(n);
    // Plausible: payloads between one and eight TS packets (FFmpeg sends seven), a
    // loopback round trip well under a second, a buffer within the latency, and no
    // loss on loopback.
    let (packets, bytes) = (p("packets_received_total"), p("bytes_received_total"));
    assert!(
        bytes >= packets * 188.0 && bytes <= packets * 1456.0,
        "{packets} packets, {bytes} bytes"
    );
    let (sent, sent_bytes) = (q("packets_sent_total"), q("bytes_sent_total"));
    assert!(
        sent_bytes >= sent * 188.0 && sent_bytes <= sent * 1456.0,
        "{sent} packets, {sent_bytes} bytes"
    );
    for (role, rtt) in [
        ("publisher", p("rtt_microseconds")),
        ("player", q("rtt_microseconds")),
    ] {
        assert!(rtt > 0.0 && rtt < 1e6, "{role} rtt {rtt} us");
    }
    assert!(
        p("receive_buffer_milliseconds") <= 1000.0,
        "{}",
        p("receive_buffer_milliseconds")
    );
    assert_eq!(p("packets_dropped_total"), 0.0);
    assert_eq!(p("packets_undecrypted_total"), 0.0);
    // The bandwidth estimate comes from packet pairs one microsecond apart at the least.
    let bandwidth = p("bandwidth_bits_per_second");
    assert!(bandwidth <= 1e6 * 1456.0 * 8.0, "{bandwidth}");
    assert_eq!(
        live.types["mediaserver_srt_connection_packets_received"],
        "counter"
    );
    assert_eq!(
        live.types["mediaserver_srt_connection_rtt_microseconds"],
        "gauge"
    );
    assert_eq!(live.get("mediaserver_srt_connections_open"), 2.0);
    assert_eq!(live.get("mediaserver_srt_publishers"), 1.0);
    assert_eq!(live.get("mediaserver_srt_players"), 1.0);
    // At least once: a caller that repeats its conclusion before the answer arrives is
    // refused (and counted) again.
    assert!(live.get("mediaserver_srt_connections_refused_total{reason=\"bad_mode\"}") >= 1.0);
    // The totals hold at least what the open connections counted.
    assert!(live.get("mediaserver_srt_packets_in_total") >= packets);
    assert!(live.get("mediaserver_srt_packets_out_total") >= sent);

    // The same numbers as JSON at /debug/vars.
    let vars = http::get(http_addr, "/debug/vars").json();
    let by_labels = vars["mediaserver_srt_connection_packets_received_total"]
        .as_object()
        .unwrap_or_else(|| panic!("no SRT connection series in /debug/vars: {vars:#}"));
    assert!(
        by_labels.iter().any(|(k, v)| k.contains("key=live/cam")
            && k.contains("role=publisher")
            && v.as_f64() > Some(0.0)),
        "{by_labels:?}"
    );

    // The publisher's file ends; the stream ends a second later and takes the player.
    let (status, killed) = publisher.wait_or_kill(deadline_in(60.0));
    assert!(status.success() && !killed, "{}", publisher.describe());
    let (_, killed) = player.proc().wait_or_kill(deadline_in(60.0));
    assert!(
        !killed,
        "the SRT player did not end with the stream\n{}",
        describe()
    );
    let after = wait_for(http_addr, "the connections' series gone", describe, |s| {
        per_connection_series(s).is_empty() && s.get("mediaserver_srt_connections_open") == 0.0
    });
    // What they counted stays in the totals.
    assert!(after.get("mediaserver_srt_packets_in_total") >= packets);
    assert!(after.get("mediaserver_srt_bytes_in_total") >= bytes);
    assert!(after.get("mediaserver_srt_packets_out_total") >= sent);
    assert_eq!(after.get("mediaserver_srt_connections_total"), 2.0);
    assert_eq!(after.get("mediaserver_srt_publishes_total"), 1.0);
    assert_eq!(after.get("mediaserver_srt_publishers"), 0.0);
    assert_eq!(after.get("mediaserver_srt_players"), 0.0);
}
