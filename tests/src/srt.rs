//! SRT end-to-end support: `ingest-srt` next to a [`crate::Server`], MPEG-TS test files
//! with their frame counts, FFmpeg and srt-live-transmit as SRT callers, and a seeded UDP
//! impairment proxy (loss, bursts, delay, jitter, reordering) between caller and listener.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::bins::bin;
use crate::ffmpeg::{ffmpeg_path, Counts};
use crate::proc::Proc;
use crate::Server;

/// A running `ingest-srt` pointed at a server's hub.
pub struct SrtIngest {
    /// The process.
    pub proc: Proc,
    /// The UDP address it bound.
    pub addr: SocketAddr,
}

impl SrtIngest {
    /// Starts `ingest-srt --listen 127.0.0.1:0 --hub <server's socket> args...` and waits
    /// for `listening on srt://IP:PORT`.
    pub fn start(server: &Server, args: &[&str]) -> SrtIngest {
        let mut cmd = Command::new(bin("ingest-srt"));
        cmd.args(["--listen", "127.0.0.1:0", "--hub"])
            .arg(server.socket())
            .args(args)
            .env("NO_COLOR", "1");
        let mut proc = Proc::spawn("ingest-srt", &mut cmd);
        let line = proc.stderr.wait_for(0, crate::deadline_in(20.0), |l| {
            l.contains("listening on srt://")
        });
        let addr = line
            .as_deref()
            .and_then(|l| l.split("srt://").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            proc.kill();
            panic!("ingest-srt did not report its address\n{}", proc.describe());
        };
        SrtIngest { proc, addr }
    }

    /// Waits for a log line containing `needle`; panics with the log when none comes.
    pub fn expect_log(&self, needle: &str, secs: f64) -> String {
        self.proc
            .stderr
            .wait_for(0, crate::deadline_in(secs), |l| l.contains(needle))
            .unwrap_or_else(|| {
                panic!(
                    "ingest-srt never logged {needle:?}\n{}",
                    self.proc.describe()
                )
            })
    }
}

impl Drop for SrtIngest {
    fn drop(&mut self) {
        self.proc.kill();
    }
}

/// The video and audio codecs of a test TS file.
#[derive(Clone, Copy, Debug)]
pub enum TsCodecs {
    /// H.264 + AAC.
    H264Aac,
    /// HEVC + AAC.
    HevcAac,
}

/// Frames per media type of framecrc/framemd5 output whose presentation time, counted from
/// the stream's first frame, is before `secs`.
pub fn counts_before(lines: &[String], secs: f64) -> Counts {
    let header = |prefix: &str, idx: &str| -> Option<String> {
        lines.iter().find_map(|l| {
            let (i, v) = l.strip_prefix(prefix)?.split_once(':')?;
            (i.trim() == idx).then(|| v.trim().to_string())
        })
    };
    let mut counts = Counts::default();
    for idx in ["0", "1"] {
        let Some(kind) = header("#media_type ", idx) else {
            continue;
        };
        let tb = header("#tb ", idx)
            .and_then(|t| {
                let (n, d) = t.split_once('/')?;
                Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?)
            })
            .unwrap_or(0.0);
        let pts: Vec<i64> = lines
            .iter()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').map(str::trim).collect();
                (f.len() > 3 && f[0] == idx)
                    .then(|| f[2].parse().ok())
                    .flatten()
            })
            .collect();
        let Some(&first) = pts.iter().min() else {
            continue;
        };
        let n = pts
            .iter()
            .filter(|&&p| ((p - first) as f64) * tb < secs - 1e-6)
            .count();
        if kind == "video" {
            counts.video = n;
        } else {
            counts.audio = n;
        }
    }
    counts
}

/// Encodes `secs` + 1 seconds of 320x240 25 fps video (a keyframe a second) and 48 kHz
/// stereo AAC into an MPEG-TS file, and returns how many video and audio packets (one
/// decoded frame each) fall in its first `secs` seconds. The extra second is slack for
/// the sender: FFmpeg's SRT output does not always send the last payloads of a stream
/// before it closes.
pub fn make_ts(path: &Path, codecs: TsCodecs, secs: u32) -> Counts {
    let video: &[&str] = match codecs {
        TsCodecs::H264Aac => &["-c:v", "libx264", "-preset", "ultrafast", "-bf", "0"],
        TsCodecs::HevcAac => &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
        ],
    };
    let status = Command::new(ffmpeg_path())
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &(secs + 1).to_string(), "-pix_fmt", "yuv420p"])
        .args(video)
        .args([
            "-g", "25", "-c:a", "aac", "-b:a", "64k", "-ac", "2", "-f", "mpegts",
        ])
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "encoding {} failed", path.display());
    let out = Command::new(ffmpeg_path())
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-c", "copy", "-f", "framecrc", "-"])
        .output()
        .expect("run ffmpeg");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let counts = counts_before(&lines, f64::from(secs));
    assert!(counts.video > 0 && counts.audio > 0, "{counts:?}");
    counts
}

/// FFmpeg sends a TS file in real time to `srt_url` (stream copy; `linger` makes libsrt
/// deliver its send buffer before closing, so every packet of the file is sent).
pub fn ffmpeg_send(file: &Path, srt_url: &str) -> Proc {
    let mut cmd = Command::new(ffmpeg_path());
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "level+error",
        "-re",
        "-i",
    ])
    .arg(file)
    .args(["-c", "copy", "-f", "mpegts", srt_url]);
    Proc::spawn("ffmpeg srt publish", &mut cmd)
}

/// `srt-live-transmit` sends a TS file to `srt_url`, fed in real time by FFmpeg through a
/// pipe. The pipe stays open two seconds after FFmpeg is done: srt-live-transmit closes
/// its connection as soon as its input ends, so this lets it send (and have
/// acknowledged) everything first.
pub fn slt_send(file: &Path, srt_url: &str) -> Proc {
    let script = format!(
        "('{}' -hide_banner -nostdin -loglevel error -re -i '{}' -c copy -f mpegts -; sleep 2) | srt-live-transmit -a:no file://con '{}'",
        ffmpeg_path().display(),
        file.display(),
        srt_url
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    Proc::spawn("srt-live-transmit publish", &mut cmd)
}

/// The longest a proxy thread waits for a datagram with nothing queued (how soon it
/// notices it was stopped).
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// One direction's impairments.
#[derive(Clone, Copy, Debug, Default)]
pub struct Impairment {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a loss burst starts (then 2-10 datagrams in a row are lost).
    pub burst: f64,
    /// Fixed delay.
    pub delay: Duration,
    /// Uniform extra delay up to this (reorders datagrams).
    pub jitter: Duration,
    /// Losses (random and bursts) only this long after the first datagram; `None`: all
    /// along. A sender that closes at the end of its file stops retransmitting (FFmpeg's
    /// libsrt in non-blocking mode does not linger), so loss in its last round trips is
    /// beyond any receiver's repair; this keeps the sender's close out of a test of the
    /// receiver.
    pub loss_for: Option<Duration>,
}

/// A UDP proxy with seeded impairments: callers connect to [`ImpairProxy::addr`], the
/// proxy forwards to `target`. Stops when dropped.
pub struct ImpairProxy {
    /// Where callers send.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Datagrams dropped by the proxy, both directions.
    pub dropped: Arc<AtomicU64>,
}

impl ImpairProxy {
    /// Starts the proxy; `up` applies caller to listener, `down` the other way.
    pub fn start(target: SocketAddr, up: Impairment, down: Impairment, seed: u64) -> ImpairProxy {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind proxy");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind proxy");
        back.connect(target).expect("connect proxy");
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        for (i, imp) in [up, down].into_iter().enumerate() {
            let front = front.try_clone().unwrap();
            let back = back.try_clone().unwrap();
            let stop = stop.clone();
            let dropped = dropped.clone();
            let client = client.clone();
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
            std::thread::spawn(move || {
                let (src, _) = if i == 0 {
                    (&front, &back)
                } else {
                    (&back, &front)
                };
                let mut queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
                let mut n = 0u64;
                let mut burst_left = 0u32;
                let mut buf = [0u8; 2048];
                let mut first: Option<Instant> = None;
                while !stop.load(Ordering::Relaxed) {
                    // Delivery happens when each datagram is due, not on a polling tick:
                    // the receive waits exactly until the earliest one (bounded so a
                    // stop is noticed).
                    let now = Instant::now();
                    while let Some(Reverse((t, ..))) = queue.peek() {
                        if *t > now {
                            break;
                        }
                        let Reverse((_, _, d)) = queue.pop().unwrap();
                        if i == 0 {
                            let _ = back.send(&d);
                        } else if let Some(c) = *client.lock().unwrap() {
                            let _ = front.send_to(&d, c);
                        }
                    }
                    let wait = queue
                        .peek()
                        .map_or(IDLE_WAIT, |Reverse((t, ..))| {
                            t.saturating_duration_since(now)
                        })
                        .clamp(Duration::from_micros(50), IDLE_WAIT);
                    src.set_read_timeout(Some(wait)).unwrap();
                    let Ok((len, from)) = src.recv_from(&mut buf) else {
                        continue;
                    };
                    if i == 0 {
                        *client.lock().unwrap() = Some(from);
                    }
                    let since = first.get_or_insert_with(Instant::now).elapsed();
                    let lossy = imp.loss_for.is_none_or(|d| since < d);
                    let lost = if !lossy {
                        false
                    } else if burst_left > 0 {
                        burst_left -= 1;
                        true
                    } else if imp.burst > 0.0 && rng.gen_bool(imp.burst) {
                        burst_left = rng.gen_range(1..10);
                        true
                    } else {
                        imp.loss > 0.0 && rng.gen_bool(imp.loss)
                    };
                    if lost {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let jitter = if imp.jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        Duration::from_micros(rng.gen_range(0..imp.jitter.as_micros() as u64))
                    };
                    n += 1;
                    queue.push(Reverse((
                        Instant::now() + imp.delay + jitter,
                        n,
                        buf[..len].to_vec(),
                    )));
                }
            });
        }
        ImpairProxy {
            addr,
            stop,
            dropped,
        }
    }
}

impl Drop for ImpairProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An SRT URL to `addr` with `stream_id` percent-encoded (the `#!::` form holds `#`, `:`,
/// `,` and `=`) and further URL parameters `params` (`&passphrase=...`).
pub fn url_with_stream_id(addr: SocketAddr, stream_id: &str, params: &str) -> String {
    let encoded: String = stream_id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("srt://{addr}?streamid={encoded}{params}")
}

/// FFmpeg as an SRT caller of `url` sending a one-second file, which must be refused:
/// returns the caller once it gave up (panics when it connected).
pub fn ffmpeg_refused(dir: &Path, url: &str) -> Proc {
    let file = dir.join("refused-1s.ts");
    if !file.exists() {
        make_ts(&file, TsCodecs::H264Aac, 1);
    }
    let mut p = ffmpeg_send(&file, url);
    let (status, _) = p.wait_or_kill(crate::deadline_in(20.0));
    assert!(
        !status.success(),
        "ffmpeg connected to {url}\n{}",
        p.describe()
    );
    p
}
