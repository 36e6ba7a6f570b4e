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
    make_ts_gop(path, codecs, secs, 25)
}

/// [`make_ts`] with a keyframe every `gop` video frames (and at no scene change): with
/// `gop` above the frame count, the first frame is the only keyframe.
pub fn make_ts_gop(path: &Path, codecs: TsCodecs, secs: u32, gop: u32) -> Counts {
    let video: &[&str] = match codecs {
        TsCodecs::H264Aac => &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-x264-params",
            "scenecut=0",
        ],
        TsCodecs::HevcAac => &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error:scenecut=0",
        ],
    };
    let status = Command::new(ffmpeg_path())
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &(secs + 1).to_string(), "-pix_fmt", "yuv420p"])
        .args(video)
        .args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()])
        .args(["-c:a", "aac", "-b:a", "64k", "-ac", "2", "-f", "mpegts"])
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

/// `srt-live-transmit` sends a TS file to `srt_url` (a stream id for `key` on `ingest`),
/// fed in real time by FFmpeg through a pipe, so that every packet of the file reaches
/// ingest-srt. srt-live-transmit (libsrt 1.5.1) needs three things for that:
/// - It drops what it reads from its input while its connection is not up yet, so FFmpeg
///   starts only once ingest-srt has sent its handshake answer (it logs `publishing` for
///   the key after sending it).
/// - It reads its input in whole chunks and drops a partial last one, so it reads chunks
///   of 1316 bytes (7 TS packets) and the input ends with 7 null packets (PID 0x1FFF):
///   the file's last TS packets go out in a whole chunk, and what is dropped is padding.
/// - It does not end at the end of its input (it would keep the connection up until
///   killed, and ingest-srt would end the stream only at its idle timeout), so it is
///   interrupted (SIGINT, which it handles by closing its connection with a shutdown)
///   once it has read the whole input.
pub fn slt_send(file: &Path, srt_url: &str, ingest: &SrtIngest, key: &str) -> Proc {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let (input, mut feed) = std::io::pipe().expect("a pipe");
    let mut cmd = Command::new("srt-live-transmit");
    cmd.args(["-a:no", "-chunk:1316", "file://con", srt_url]);
    let slt = Proc::spawn_with_stdin("srt-live-transmit publish", &mut cmd, input.into());
    ingest
        .proc
        .stderr
        .wait_for(0, crate::deadline_in(20.0), |l| {
            l.contains("publishing") && l.contains(&format!("key={key} "))
        })
        .unwrap_or_else(|| {
            panic!(
                "ingest-srt never accepted srt-live-transmit\n{}\n{}",
                ingest.proc.describe(),
                slt.describe()
            )
        });
    let ffmpeg_out = feed.try_clone().expect("dup the pipe");
    let file = file.to_path_buf();
    let pid = slt.pid() as libc::pid_t;
    std::thread::spawn(move || {
        let status = Command::new(ffmpeg_path())
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-re",
                "-i",
            ])
            .arg(&file)
            .args(["-c", "copy", "-f", "mpegts", "-"])
            .stdin(std::process::Stdio::null())
            .stdout(ffmpeg_out)
            .status();
        eprintln!("FFmpeg feeding srt-live-transmit: {status:?}");
        let mut null = [0xFFu8; 188];
        null[..4].copy_from_slice(&[0x47, 0x1F, 0xFF, 0x10]);
        for _ in 0..7 {
            if feed.write_all(&null).is_err() {
                return; // srt-live-transmit is gone
            }
        }
        // Interrupted before it read everything, it would leave the rest unsent.
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let mut unread: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int; the descriptor is our open pipe.
            let r = unsafe { libc::ioctl(feed.as_raw_fd(), libc::FIONREAD, &mut unread) };
            if r != 0 || unread == 0 || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(feed);
        // SAFETY: kill takes plain integers; `pid` is the test's child, reaped only by
        // the test's Proc after it exits (this signal is what makes it exit).
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    });
    slt
}

/// The longest a proxy thread waits with nothing to do (how soon it notices it was
/// stopped).
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// Asks the kernel to stamp each datagram's arrival (SO_TIMESTAMPNS).
fn timestamp_arrivals(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
}

/// Receives one datagram (IPv4) with when it reached the socket: the kernel's stamp, so a
/// proxy thread that ran late does not move the datagram's due time (and its lateness
/// shows). Falls back to now when the stamp is missing.
fn recv_stamped(sock: &UdpSocket, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr, Instant)> {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed plain C structs; recvmsg writes within the lengths given, and the
    // control messages are walked with the CMSG macros within `control`.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, 0);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (now, wall) = (Instant::now(), std::time::SystemTime::now());
        let mut arrived = now;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                let stamp =
                    std::time::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
                if let Ok(age) = wall.duration_since(stamp) {
                    arrived = now.checked_sub(age).unwrap_or(now);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let from = SocketAddr::from((
            std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
            u16::from_be(addr.sin_port),
        ));
        Ok((n as usize, from, arrived))
    }
}

/// Datagrams a proxy direction holds: due time, trace index, bytes (earliest first).
type Queue = BinaryHeap<Reverse<(Instant, usize, Vec<u8>)>>;

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
    trace: Arc<std::sync::Mutex<Vec<Traced>>>,
}

/// What the proxy saw of one SRT datagram.
#[derive(Clone, Debug)]
enum Seen {
    Data { seq: u32, rexmit: bool, ts: u32 },
    Nak(Vec<(u32, u32)>),
    DropRequest(u32, u32),
    Other,
}

/// One datagram through the proxy: direction (0 caller to listener), when it arrived,
/// what it was, and when it was due and actually sent (`None`: the proxy lost it).
#[derive(Clone, Debug)]
struct Traced {
    dir: usize,
    arrived: Duration,
    seen: Seen,
    due: Option<Duration>,
    sent: Option<Duration>,
}

fn classify(d: &[u8]) -> Seen {
    use proto::srt::packet::{Control, Packet};
    match Packet::decode(bytes::Bytes::copy_from_slice(d)) {
        Ok(Packet::Data(p)) => Seen::Data {
            seq: p.seq.get(),
            rexmit: p.retransmitted,
            ts: p.timestamp,
        },
        Ok(Packet::Control(c)) => match c.control {
            Control::Nak(l) => Seen::Nak(l.0.iter().map(|(a, b)| (a.get(), b.get())).collect()),
            Control::DropRequest { first, last, .. } => Seen::DropRequest(first.get(), last.get()),
            _ => Seen::Other,
        },
        Err(_) => Seen::Other,
    }
}

impl ImpairProxy {
    /// Starts the proxy; `up` applies caller to listener, `down` the other way.
    ///
    /// Each direction has a receiving thread, which takes each datagram with the kernel's
    /// arrival stamp, decides its fate and queues it with its due time, and a forwarding
    /// thread, which sends each when due. The forwarder waits on a condition variable (a futex with a
    /// high-resolution deadline): a socket receive timeout, which the kernel counts in
    /// jiffies, made datagrams 4 ms late at the median (15 ms at worst) and added 10 ms to
    /// a 14 ms round trip.
    pub fn start(target: SocketAddr, up: Impairment, down: Impairment, seed: u64) -> ImpairProxy {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind proxy");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind proxy");
        back.connect(target).expect("connect proxy");
        // A stopped proxy's receivers notice within this.
        for s in [&front, &back] {
            s.set_read_timeout(Some(IDLE_WAIT)).unwrap();
            timestamp_arrivals(s);
        }
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let trace: Arc<std::sync::Mutex<Vec<Traced>>> = Arc::default();
        let t0 = Instant::now();
        for (i, imp) in [up, down].into_iter().enumerate() {
            // Due time, trace index, datagram.
            let queue: Arc<(std::sync::Mutex<Queue>, std::sync::Condvar)> = Arc::default();
            {
                let (front, back) = (front.try_clone().unwrap(), back.try_clone().unwrap());
                let (stop, client, trace, queue) =
                    (stop.clone(), client.clone(), trace.clone(), queue.clone());
                std::thread::spawn(move || {
                    let (lock, ready) = &*queue;
                    let mut q = lock.lock().unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        match q.peek() {
                            Some(Reverse((due, ..))) if *due <= now => {
                                let Reverse((_, idx, d)) = q.pop().unwrap();
                                drop(q);
                                if i == 0 {
                                    let _ = back.send(&d);
                                } else if let Some(c) = *client.lock().unwrap() {
                                    let _ = front.send_to(&d, c);
                                }
                                trace.lock().unwrap()[idx].sent = Some(t0.elapsed());
                                q = lock.lock().unwrap();
                            }
                            Some(Reverse((due, ..))) => {
                                let wait = *due - now;
                                q = ready.wait_timeout(q, wait.min(IDLE_WAIT)).unwrap().0;
                            }
                            None => q = ready.wait_timeout(q, IDLE_WAIT).unwrap().0,
                        }
                    }
                });
            }
            let src = if i == 0 {
                front.try_clone().unwrap()
            } else {
                back.try_clone().unwrap()
            };
            let (stop, dropped, client, trace) =
                (stop.clone(), dropped.clone(), client.clone(), trace.clone());
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
            std::thread::spawn(move || {
                let mut burst_left = 0u32;
                let mut buf = [0u8; 2048];
                let mut first: Option<Instant> = None;
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, from, arrived)) = recv_stamped(&src, &mut buf) else {
                        continue;
                    };
                    if i == 0 {
                        *client.lock().unwrap() = Some(from);
                    }
                    let since = arrived - *first.get_or_insert(arrived);
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
                    let mut traced = Traced {
                        dir: i,
                        arrived: arrived - t0,
                        seen: classify(&buf[..len]),
                        due: None,
                        sent: None,
                    };
                    if lost {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        trace.lock().unwrap().push(traced);
                        continue;
                    }
                    let jitter = if imp.jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        Duration::from_micros(rng.gen_range(0..imp.jitter.as_micros() as u64))
                    };
                    // Due from when the datagram arrived, however late this thread runs.
                    let due = arrived + imp.delay + jitter;
                    traced.due = Some(due - t0);
                    let idx = {
                        let mut t = trace.lock().unwrap();
                        t.push(traced);
                        t.len() - 1
                    };
                    let (lock, ready) = &*queue;
                    lock.lock()
                        .unwrap()
                        .push(Reverse((due, idx, buf[..len].to_vec())));
                    ready.notify_one();
                }
            });
        }
        ImpairProxy {
            addr,
            stop,
            dropped,
            trace,
        }
    }

    /// How late the proxy forwarded datagrams past their due time (its own scheduling on
    /// a loaded machine): the median, the 99th percentile and the worst, and how many
    /// were more than 5 ms late.
    pub fn lateness(&self) -> (Duration, Duration, Duration, usize) {
        let trace = self.trace.lock().unwrap();
        let mut late: Vec<Duration> = trace
            .iter()
            .filter_map(|t| Some(t.sent?.saturating_sub(t.due?)))
            .collect();
        late.sort();
        if late.is_empty() {
            return Default::default();
        }
        let at = |q: f64| late[((late.len() - 1) as f64 * q) as usize];
        let over = late
            .iter()
            .filter(|l| **l > Duration::from_millis(5))
            .count();
        (at(0.5), at(0.99), late[late.len() - 1], over)
    }

    /// The story of data packet `seq` at the proxy, one line per event: each copy the
    /// caller sent (original or retransmission, lost or forwarded with its due and actual
    /// send time), and each NAK from the listener that asked for it, in milliseconds
    /// since the proxy started.
    pub fn story(&self, seq: u32) -> String {
        let trace = self.trace.lock().unwrap();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut out = String::new();
        for t in trace.iter() {
            let fate = match (t.due, t.sent) {
                (None, _) => "LOST by the proxy".to_string(),
                (Some(due), Some(sent)) => format!("due {:.1} sent {:.1}", ms(due), ms(sent)),
                (Some(due), None) => format!("due {:.1}, never sent", ms(due)),
            };
            let what = match &t.seen {
                Seen::Data { seq: s, rexmit, .. } if *s == seq => if *rexmit {
                    "retransmission"
                } else {
                    "original"
                }
                .to_string(),
                Seen::Nak(ranges) if ranges.iter().any(|(a, b)| (*a..=*b).contains(&seq)) => {
                    format!("NAK {ranges:?}")
                }
                Seen::DropRequest(a, b) if (*a..=*b).contains(&seq) => {
                    format!("drop request {a}..={b}")
                }
                _ => continue,
            };
            let dir = if t.dir == 0 {
                "caller->listener"
            } else {
                "listener->caller"
            };
            out += &format!("  {:9.1} ms {dir} {what}: {fate}\n", ms(t.arrived));
        }
        out
    }

    /// How much the machine delayed data packet `seq` (from the caller) beyond the path's
    /// impairments: the most the proxy forwarded any copy of it or any NAK for it past its
    /// due time, or how much later than the caller's other packets its original reached
    /// the proxy for its timestamp (the caller's process ran late). A drop of a packet
    /// with no such delay is the receiver's own.
    pub fn stall(&self, seq: u32) -> Duration {
        let trace = self.trace.lock().unwrap();
        // Arrival minus sender timestamp: the smallest is the path with no waiting.
        let offset = |t: &Traced| match t.seen {
            Seen::Data {
                ts, rexmit: false, ..
            } if t.dir == 0 => Some(t.arrived.as_micros() as i64 - i64::from(ts)),
            _ => None,
        };
        let base = trace.iter().filter_map(offset).min().unwrap_or(0);
        let mut worst = Duration::ZERO;
        for t in trace.iter() {
            let mine = match &t.seen {
                Seen::Data { seq: s, .. } => *s == seq && t.dir == 0,
                Seen::Nak(ranges) => ranges.iter().any(|(a, b)| (*a..=*b).contains(&seq)),
                _ => false,
            };
            if !mine {
                continue;
            }
            if let (Some(due), Some(sent)) = (t.due, t.sent) {
                worst = worst.max(sent.saturating_sub(due));
            }
            if let Some(o) = offset(t) {
                worst = worst.max(Duration::from_micros((o - base).max(0) as u64));
            }
        }
        worst
    }

    /// Data packets sent in direction `dir` (0: caller to listener) that never got
    /// through, and those whose first copy to get through was forwarded more than `late`
    /// after the first copy reached the proxy (with that delay), in sequence order.
    pub fn unrecovered(&self, dir: usize, late: Duration) -> (Vec<u32>, Vec<(u32, Duration)>) {
        let trace = self.trace.lock().unwrap();
        // Sequence number: (first seen, first forwarded).
        let mut fate: std::collections::BTreeMap<u32, (Duration, Option<Duration>)> =
            Default::default();
        for t in trace.iter().filter(|t| t.dir == dir) {
            if let Seen::Data { seq, .. } = t.seen {
                let e = fate.entry(seq).or_insert((t.arrived, None));
                if let Some(sent) = t.sent {
                    e.1 = Some(e.1.map_or(sent, |s: Duration| s.min(sent)));
                }
            }
        }
        let never = fate
            .iter()
            .filter(|(_, (_, sent))| sent.is_none())
            .map(|(seq, _)| *seq)
            .collect();
        let slow = fate
            .iter()
            .filter_map(|(seq, (seen, sent))| Some((*seq, sent.as_ref()?.saturating_sub(*seen))))
            .filter(|(_, d)| *d > late)
            .collect();
        (never, slow)
    }

    /// The longest gap between two consecutive data packets from the caller, and how
    /// many gaps were longer than 40 ms (a frame interval): how bursty the sender is, hence
    /// how long a loss at a burst's end can go unnoticed.
    pub fn data_gaps(&self) -> (Duration, usize) {
        let trace = self.trace.lock().unwrap();
        let times: Vec<Duration> = trace
            .iter()
            .filter(|t| t.dir == 0 && matches!(t.seen, Seen::Data { .. }))
            .map(|t| t.arrived)
            .collect();
        // Arrival stamps are the kernel's; the trace is in the order packets were handled,
        // which a retransmission can put before a later-stamped original.
        let gaps = times.windows(2).map(|w| w[1].saturating_sub(w[0]));
        let long = gaps
            .clone()
            .filter(|g| *g > Duration::from_millis(40))
            .count();
        (gaps.max().unwrap_or_default(), long)
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
