//! ingest-rtmp against a fake hub: a real FFmpeg publish becomes Announce, track configs,
//! metadata, frames and end of stream on the hub socket, with the `auth_allowed` event of
//! the token it was let in with (and no secret in it). Skipped when FFmpeg is missing.

use std::process::Stdio;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, FrameDecoder, Header, Role, FORMAT_VERSION};
use proto::media::Codec;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

#[tokio::test]
async fn ffmpeg_publish_reaches_the_hub() {
    let Some(ff) = testenv::require_ffmpeg() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ingest-fake-hub-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let sock = dir.join("hub.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();

    let mut ingest = tokio::process::Command::new(env!("CARGO_BIN_EXE_ingest-rtmp"))
        .args(["--listen", "127.0.0.1:0", "--publish-auth", "token"])
        .args(["--publish-token", "live/*=s3cret-token", "--hub"])
        .arg(&sock)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(ingest.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next_line().await.unwrap().expect("ingest log");
        if let Some(rest) = line.split("listening on rtmp://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut publisher = tokio::process::Command::new(ff)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc=size=320x240:rate=25")
        .args([
            "-f", "lavfi", "-i", "sine", "-c:v", "libx264", "-g", "25", "-c:a", "aac",
        ])
        .args(["-t", "2", "-f", "flv"])
        .arg(format!(
            "rtmp://127.0.0.1:{port}/live/test?token=s3cret-token"
        ))
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // ingest-rtmp opens one connection for its publishers' streams, one for its events and
    // one for its counter reports (proto/FORMAT.md section 9): every connection is served,
    // and the one that carried a stream to its end is examined.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(1);
    let reports = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = reports.clone();
    let (auth_tx, mut auth_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((hub, _)) = listener.accept().await {
            let sinks = (done_tx.clone(), counted.clone(), auth_tx.clone());
            tokio::spawn(serve(hub, sinks));
        }
    });
    let got = tokio::time::timeout(Duration::from_secs(30), done_rx.recv())
        .await
        .expect("stream ends")
        .expect("a connection carried the stream");
    let _ = publisher.wait().await;

    assert!(
        matches!(&got[1].header, Header::AnnounceClient { key, timescale: 1000, conn_id, .. } if key == "live/test" && *conn_id > 0),
        "{:?}",
        got[1]
    );
    let configs: Vec<Codec> = got
        .iter()
        .filter_map(|m| match m.header {
            Header::TrackConfig { codec, .. } => Some(codec),
            _ => None,
        })
        .collect();
    assert!(
        configs.contains(&Codec::H264) && configs.contains(&Codec::Aac),
        "{configs:?}"
    );
    assert!(got
        .iter()
        .any(|m| matches!(m.header, Header::Metadata { .. })
            && m.payload.starts_with(b"\x02\x00\x0aonMetaData")));
    let video: Vec<(i64, proto::media::FrameFlags)> = got
        .iter()
        .filter_map(|m| match m.header {
            Header::Frame {
                video: true,
                dts,
                flags,
                ..
            } => Some((dts, flags)),
            _ => None,
        })
        .collect();
    assert!(video.len() >= 40, "{} video frames", video.len());
    assert!(video[0].1.keyframe());
    assert!(video.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(got
        .iter()
        .any(|m| matches!(m.header, Header::Frame { video: false, .. })));
    assert!(matches!(
        got.last().unwrap().header,
        Header::EndOfStream { .. }
    ));
    assert!(
        reports.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "ingest-rtmp reported its counters"
    );
    let allowed = tokio::time::timeout(Duration::from_secs(10), auth_rx.recv())
        .await
        .expect("an auth event")
        .unwrap();
    assert_eq!(allowed.kind, "auth_allowed", "{allowed:?}");
    assert_eq!(allowed.key, "live/test");
    let field = |name: &str| {
        allowed
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("action"), Some("publish"));
    assert_eq!(field("protocol"), Some("rtmp"));
    assert_eq!(field("mode"), Some("token"));
    assert!(!format!("{allowed:?}").contains("s3cret"), "{allowed:?}");
    assert!(auth_rx.try_recv().is_err(), "one decision, one event");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where a fake hub connection reports: a stream's messages when it ends, the count of
/// counter reports, and each auth event.
type Sinks = (
    tokio::sync::mpsc::Sender<Vec<ipc::Message>>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::sync::mpsc::UnboundedSender<ipc::Event>,
);

/// Answers one connection like the hub; sends its messages on `done` when it ends a
/// stream, counts the counter reports it carries and passes auth events on.
async fn serve(mut hub: tokio::net::UnixStream, (done, reports, auth): Sinks) {
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    loop {
        while let Some(m) = decoder.decode(&mut buf).unwrap() {
            let answer = match &m.header {
                Header::Hello { role, .. } => {
                    assert_eq!(*role, Role::Publisher);
                    Some(Header::Hello {
                        version: FORMAT_VERSION,
                        role: Role::Hub,
                        name: "fake".into(),
                    })
                }
                Header::AnnounceClient { stream, .. } => Some(Header::AnnounceReply {
                    stream: *stream,
                    rejected: None,
                }),
                Header::Event(e) if e.kind.starts_with("auth_") => {
                    auth.send(e.clone()).unwrap();
                    None
                }
                Header::Event(e) if e.kind == proto::metrics::KIND => {
                    let report = proto::metrics::parse_report(e).expect("a valid report");
                    assert_eq!(report.component, "ingest-rtmp");
                    reports.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    None
                }
                // Connection events (connection_accepted/closed) are not this test's.
                _ => None,
            };
            if let Some(a) = answer {
                let mut out = BytesMut::new();
                ipc::encode(&a, &[], &mut out);
                hub.write_all(&out).await.unwrap();
            }
            let end = matches!(m.header, Header::EndOfStream { .. });
            got.push(m);
            if end {
                let _ = done.send(std::mem::take(&mut got)).await;
            }
        }
        if hub.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    }
}
