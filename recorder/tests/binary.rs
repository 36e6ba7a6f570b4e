//! The real `recorder` binary against a scripted hub on a private socket: subscription
//! handshake, recording, `Dropped`, events back to the hub, reconnection, and kill -9.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use proto::ipc::{self, Event, FrameDecoder, Header, Message, Role, FORMAT_VERSION};

const DEADLINE: Duration = Duration::from_secs(20);

struct Recorder(Child);

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(sock: &Path, dir: &Path, extra: &[&str]) -> Recorder {
    let child = Command::new(env!("CARGO_BIN_EXE_recorder"))
        .arg("--hub")
        .arg(sock)
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Recorder(child)
}

struct Conn {
    s: UnixStream,
    buf: BytesMut,
    dec: FrameDecoder,
    /// A message decoded before the caller asked for it (the hello that told the
    /// subscriber connection from the counter reporter's).
    first: Option<Message>,
}

/// The recorder's counter-report connections (proto/FORMAT.md section 9), kept open so it
/// does not come back on every accept.
static REPORTERS: std::sync::Mutex<Vec<UnixStream>> = std::sync::Mutex::new(Vec::new());

impl Conn {
    fn accept(l: &UnixListener) -> Conn {
        l.set_nonblocking(true).unwrap();
        let end = Instant::now() + DEADLINE;
        loop {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(DEADLINE)).unwrap();
                    let mut c = Conn {
                        s,
                        buf: BytesMut::new(),
                        dec: FrameDecoder::default(),
                        first: None,
                    };
                    let hello = c.recv();
                    if matches!(
                        hello.header,
                        Header::Hello {
                            role: Role::Publisher,
                            ..
                        }
                    ) {
                        REPORTERS
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(c.s);
                        continue;
                    }
                    c.first = Some(hello);
                    return c;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                    // Readiness poll for the child to connect, bounded by DEADLINE.
                    std::thread::yield_now();
                }
                Err(e) => panic!("recorder did not connect: {e}"),
            }
        }
    }

    fn recv(&mut self) -> Message {
        if let Some(m) = self.first.take() {
            return m;
        }
        loop {
            if let Some(m) = self.dec.decode(&mut self.buf).unwrap() {
                return m;
            }
            let mut tmp = [0u8; 4096];
            let n = self.s.read(&mut tmp).expect("read from recorder");
            assert!(n > 0, "recorder closed the connection");
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    fn send(&mut self, h: Header, payload: &[u8]) {
        let mut out = BytesMut::new();
        ipc::encode(&h, payload, &mut out);
        self.s.write_all(&out).unwrap();
    }

    fn handshake(&mut self) {
        let hello = self.recv();
        assert!(
            matches!(
                hello.header,
                Header::Hello {
                    role: Role::Subscriber,
                    version: FORMAT_VERSION,
                    ..
                }
            ),
            "{hello:?}"
        );
        let sub = self.recv();
        assert!(
            matches!(sub.header, Header::Subscribe { media: true, .. }),
            "{sub:?}"
        );
        self.send(
            Header::Hello {
                version: FORMAT_VERSION,
                role: Role::Hub,
                name: "test-hub".into(),
            },
            &[],
        );
    }

    fn send_msgs(&mut self, stream: u32, msgs: &[Msg]) {
        for m in msgs {
            match m {
                Msg::Config { codec, data } => self.send(
                    Header::TrackConfig {
                        stream,
                        track: 0,
                        codec: *codec,
                    },
                    data,
                ),
                Msg::Metadata(b) => self.send(Header::Metadata { stream }, b),
                Msg::Frame {
                    video,
                    dts,
                    cts,
                    key,
                    data,
                } => self.send(
                    Header::Frame {
                        stream,
                        track: 0,
                        video: *video,
                        dts: *dts,
                        cts: *cts,
                        flags: proto::media::FrameFlags::new(*key, false),
                    },
                    data,
                ),
            }
        }
    }

    fn event(&mut self) -> Event {
        loop {
            if let Header::Event(e) = self.recv().header {
                return e;
            }
        }
    }
}

fn field<'a>(e: &'a Event, name: &str) -> &'a str {
    e.fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn split_at_ms(msgs: &[Msg], ms: i64) -> (Vec<Msg>, Vec<Msg>) {
    let i = msgs
        .iter()
        .position(|m| matches!(m, Msg::Frame { dts, .. } if *dts >= ms))
        .unwrap();
    (msgs[..i].to_vec(), msgs[i..].to_vec())
}

fn setup(name: &str, codec_args: &[&str], secs: &str) -> Option<(PathBuf, PathBuf, Vec<Msg>)> {
    let ff = ffmpeg()?;
    let dir = temp_dir(name);
    let src = dir.join("in.flv");
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        secs,
        "-g",
        "25",
    ];
    args.extend_from_slice(codec_args);
    args.extend_from_slice(&["-f", "flv", src.to_str().unwrap()]);
    make(&ff, &args);
    let msgs = read_flv(&src);
    Some((ff, dir, msgs))
}

#[test]
fn records_dropped_gaps_events_and_reconnects() {
    let Some((ff, dir, msgs)) = setup("bin-record", &["-c:v", "libx264", "-c:a", "aac"], "4")
    else {
        return;
    };
    let sock = dir.join("hub.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let rec_dir = dir.join("rec");
    let _rec = start(&sock, &rec_dir, &["--match", "live/*"]);
    let mut c = Conn::accept(&l);
    c.handshake();
    // A stream the --match filter excludes is ignored even if the hub sends it.
    c.send(
        Header::Announce {
            stream: 9,
            key: "other/x".into(),
            timescale: 1000,
        },
        &[],
    );
    c.send(
        Header::Announce {
            stream: 1,
            key: "live/cam".into(),
            timescale: 1000,
        },
        &[],
    );
    let (head, rest) = split_at_ms(&msgs, 1500);
    c.send_msgs(9, &head);
    c.send_msgs(1, &head);
    // The hub falls behind for us until the keyframe at 2 s.
    let (_, after) = split_at_ms(&rest, 2000);
    c.send(
        Header::Dropped {
            stream: 1,
            frames: 12,
            bytes: 30000,
        },
        &[],
    );
    c.send_msgs(1, &after);
    c.send(
        Header::EndOfStream {
            stream: 1,
            reason: "unpublish".into(),
        },
        &[],
    );
    c.send(
        Header::EndOfStream {
            stream: 9,
            reason: "unpublish".into(),
        },
        &[],
    );

    let mut started = Vec::new();
    let mut done = Vec::new();
    while done.len() < 2 {
        let e = c.event();
        assert_eq!(e.key, "live/cam");
        match e.kind.as_str() {
            "record_start" => started.push(field(&e, "path").to_owned()),
            "record_done" => done.push((
                field(&e, "path").to_owned(),
                field(&e, "reason").to_owned(),
                field(&e, "bytes").parse::<u64>().unwrap(),
                field(&e, "duration").parse::<f64>().unwrap(),
            )),
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(done[0].1, "dropped");
    assert_eq!(done[1].1, "unpublish");
    assert!((done[0].3 - 1.5).abs() < 0.2, "{done:?}");
    assert!((done[1].3 - 2.0).abs() < 0.2, "{done:?}");
    for (path, _, bytes, secs) in &done {
        let p = PathBuf::from(path);
        assert!(p.starts_with(&rec_dir));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), *bytes);
        assert_plays(&ff, &p, &["video", "audio"], *secs);
    }
    assert_eq!(std::fs::read_dir(&rec_dir).unwrap().count(), 2);

    // The hub goes away: the recorder comes back and subscribes again.
    drop(c);
    let mut c = Conn::accept(&l);
    c.handshake();
    drop(c);
    cleanup(&dir);
}

#[test]
fn kill_9_leaves_a_playable_file() {
    let Some((ff, dir, msgs)) = setup(
        "bin-kill",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-c:a",
            "aac",
        ],
        "5",
    ) else {
        return;
    };
    let sock = dir.join("hub.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let rec_dir = dir.join("rec");
    let mut rec = start(&sock, &rec_dir, &[]);
    let mut c = Conn::accept(&l);
    c.handshake();
    c.send(
        Header::Announce {
            stream: 3,
            key: "live/hevc".into(),
            timescale: 1000,
        },
        &[],
    );
    let (head, _) = split_at_ms(&msgs, 3500);
    c.send_msgs(3, &head);
    let start = c.event();
    assert_eq!(start.kind, "record_start");
    let path = PathBuf::from(field(&start, "path"));
    // Wait (bounded) until three fragments are on disk, then kill without warning.
    let end = Instant::now() + DEADLINE;
    loop {
        let data = std::fs::read(&path).unwrap();
        let moofs = data.windows(4).filter(|w| w == b"moof").count();
        if moofs >= 3 {
            break;
        }
        assert!(Instant::now() < end, "only {moofs} fragments written");
        std::thread::yield_now();
    }
    rec.0.kill().unwrap();
    rec.0.wait().unwrap();
    let d = decode(&ff, &path);
    assert!(d.errors.trim().is_empty(), "{}", d.errors);
    assert_eq!(d.streams.len(), 2, "{d:?}");
    for s in &d.streams {
        assert!(s.2 >= 2.0, "{} decodes only to {}", s.0, s.2);
    }
    cleanup(&dir);
}

#[test]
fn write_errors_end_the_file_and_recording_resumes() {
    let Some((_ff, dir, msgs)) = setup("bin-enospc", &["-c:v", "libx264", "-c:a", "aac"], "6")
    else {
        return;
    };
    let sock = dir.join("hub.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let rec_dir = dir.join("rec");
    // A file size limit makes writes fail (EFBIG) the way a full disk does (ENOSPC);
    // SIGXFSZ is ignored so the write returns the error instead of killing the process.
    let child = Command::new("bash")
        .arg("-c")
        .arg(r#"trap "" XFSZ; ulimit -f 180; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_recorder"))
        .arg("--hub")
        .arg(&sock)
        .arg("--dir")
        .arg(&rec_dir)
        .args(["--retry-after", "0s"])
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _rec = Recorder(child);
    let mut c = Conn::accept(&l);
    c.handshake();
    c.send(
        Header::Announce {
            stream: 1,
            key: "live/full".into(),
            timescale: 1000,
        },
        &[],
    );
    // The source is about 48 KB/s: the first file fails near 3.7 s (180 KiB), within the
    // first 5 s, and what is left after that fits in a new file.
    let (head, tail) = split_at_ms(&msgs, 5000);
    c.send_msgs(1, &head);
    let mut reasons = Vec::new();
    let mut starts = 0;
    let mut tail = Some(tail);
    loop {
        let e = c.event();
        match e.kind.as_str() {
            "record_start" => starts += 1,
            "record_done" => {
                let r = field(&e, "reason").to_owned();
                if let Some(t) = tail.take() {
                    // Writing failed; the rest of the stream must land in a new file.
                    c.send_msgs(1, &t);
                    c.send(
                        Header::EndOfStream {
                            stream: 1,
                            reason: "unpublish".into(),
                        },
                        &[],
                    );
                }
                let last = r == "unpublish";
                reasons.push(r);
                if last {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(reasons[0].starts_with("write_error"), "{reasons:?}");
    assert!(starts >= 2, "recording resumed in a new file: {reasons:?}");
    assert_eq!(starts, reasons.len());
    cleanup(&dir);
}

#[test]
fn sigterm_closes_files_properly() {
    let Some((ff, dir, msgs)) = setup("bin-term", &["-c:v", "libx264", "-c:a", "aac"], "3") else {
        return;
    };
    let sock = dir.join("hub.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let mut rec = start(&sock, &dir.join("rec"), &[]);
    let mut c = Conn::accept(&l);
    c.handshake();
    c.send(
        Header::Announce {
            stream: 1,
            key: "live/term".into(),
            timescale: 1000,
        },
        &[],
    );
    let (head, _) = split_at_ms(&msgs, 2000);
    c.send_msgs(1, &head);
    assert_eq!(c.event().kind, "record_start");
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(rec.0.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let done = c.event();
    assert_eq!(done.kind, "record_done");
    assert_eq!(field(&done, "reason"), "shutdown");
    let path = PathBuf::from(field(&done, "path"));
    assert!(rec.0.wait().unwrap().success());
    // The FLV's onMetaData duration was patched in place at close.
    let data = std::fs::read(&path).unwrap();
    let at = data.windows(8).position(|w| w == b"duration").unwrap() + 9;
    let secs = f64::from_be_bytes(data[at..at + 8].try_into().unwrap());
    assert!((secs - 2.0).abs() < 0.2, "duration {secs}");
    assert_plays(&ff, &path, &["video", "audio"], 2.0);
    cleanup(&dir);
}

/// Below the --min-free floor no file is started, and the record_done event says why;
/// files that are started get --file-mode.
#[test]
fn free_space_floor_and_file_mode() {
    let Some((_ff, dir, msgs)) = setup("bin-floor", &["-c:v", "libx264", "-c:a", "aac"], "2")
    else {
        return;
    };
    for (extra, refused) in [
        (&["--min-free", "100000000G"][..], true),
        (&["--min-free", "0", "--file-mode", "600"][..], false),
    ] {
        let sock = dir.join("hub.sock");
        let _ = std::fs::remove_file(&sock);
        let l = UnixListener::bind(&sock).unwrap();
        let rec_dir = dir.join(if refused { "full" } else { "mode" });
        let _rec = start(&sock, &rec_dir, extra);
        let mut c = Conn::accept(&l);
        c.handshake();
        c.send(
            Header::Announce {
                stream: 1,
                key: "live/floor".into(),
                timescale: 1000,
            },
            &[],
        );
        c.send_msgs(1, &msgs);
        let e = c.event();
        if refused {
            assert_eq!(e.kind, "record_done", "{e:?}");
            let reason = field(&e, "reason");
            assert!(reason.contains("--min-free"), "{reason}");
            let files: Vec<_> = std::fs::read_dir(&rec_dir)
                .map(|d| d.flatten().collect())
                .unwrap_or_default();
            assert!(files.is_empty(), "{files:?}");
        } else {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(e.kind, "record_start", "{e:?}");
            let mode = std::fs::metadata(field(&e, "path"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    cleanup(&dir);
}
