//! One SRT publisher's media path, off the endpoint task: TS payloads in order from the
//! connection, through `proto::ts::FrameReader` into hub frames on the publisher's link.
//!
//! ```text
//!  endpoint --Msg::Payloads (bounded)--> FrameReader --TrackConfig/Frame--> Link --> hub
//!           --Msg::Stats-------------------------------> Event srt_stats --^
//! ```

use bytes::Bytes;
use ingest_link::link::{Link, LinkEvent};
use ingest_link::STREAM;
use proto::ipc::{Event, Header};
use proto::media::StreamKey;
use proto::srt::Stats;
use proto::ts::{FrameReader, ReaderOptions, TsEvent};
use tokio::sync::mpsc;

use crate::metrics::Role;

/// Batches queued from the endpoint before they are dropped (a batch is what one wake-up
/// of the endpoint released: usually a few payloads of 1316 bytes).
pub(crate) const QUEUE: usize = 1024;

/// What the endpoint sends a publisher.
#[derive(Debug)]
pub(crate) enum Msg {
    /// TS payloads released by TSBPD, in order.
    Payloads(Vec<Bytes>),
    /// Connection statistics; `last` on close.
    Stats { stats: Stats, last: bool },
}

/// How the endpoint and the logs know a publisher.
pub(crate) struct Ident {
    pub(crate) key: StreamKey,
    pub(crate) conn_id: u64,
    /// The caller's address.
    pub(crate) remote: String,
    /// The endpoint's id of the connection (sent back through `closed`).
    pub(crate) local_id: u32,
}

/// Runs until the endpoint drops its sender (the SRT connection ended) or the hub takes
/// the key away; then tells the endpoint through `closed`. `ts_errors` counts the TS
/// damage contained.
pub(crate) async fn run(
    mut link: Link,
    mut rx: mpsc::Receiver<Msg>,
    ident: Ident,
    closed: mpsc::Sender<u32>,
    ts_errors: telemetry::Counter,
) {
    let Ident {
        key,
        conn_id,
        remote,
        local_id,
    } = ident;
    let mut reader = FrameReader::new(ReaderOptions::default());
    let mut errors = 0u64;
    let mut warned_unsupported = Vec::new();
    let reason = loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Payloads(batch)) => {
                    for b in &batch {
                        reader.handle_input(b);
                        drain(&mut reader, &mut link, &mut errors, &mut warned_unsupported, &ts_errors);
                    }
                    // The batch's frames share one write toward the hub.
                    link.flush();
                }
                Some(Msg::Stats { stats, last }) => {
                    link.send(Header::Event(stats_event(&stats, Role::Publisher, &key, conn_id, &remote)), Bytes::new());
                    if last {
                        log_stats(&stats, &key, errors);
                    }
                }
                None => break "disconnect",
            },
            ev = link.event() => {
                match ev {
                    LinkEvent::Revoked(why) => tracing::info!(%key, reason = %why, "the hub gave the key to another publisher"),
                    LinkEvent::Rejected(r) => tracing::warn!(%key, reason = ?r, "the hub refused the stream after a reconnect"),
                    LinkEvent::Reconnect { .. } => {
                        // SRT has no way to ask a caller to reconnect.
                        tracing::debug!(%key, "reconnect request ignored: not an RTMP client");
                        continue;
                    }
                }
                let _ = closed.send(local_id).await;
                // Keep taking what the endpoint still sends until it lets go.
                while let Some(msg) = rx.recv().await {
                    if let Msg::Stats { stats, last: true } = msg {
                        log_stats(&stats, &key, errors);
                    }
                }
                return;
            }
        }
    };
    // Where the caller stopped is unknown: a frame it was sending when it went away (or
    // whose last payloads it never sent: FFmpeg's SRT output may close before sending
    // them) would reach players truncated, so frames still being assembled are dropped.
    let partial = reader.abandon();
    if partial > 0 {
        tracing::debug!(%key, partial, "unfinished frames at the end of the stream dropped");
    }
    drain(
        &mut reader,
        &mut link,
        &mut errors,
        &mut warned_unsupported,
        &ts_errors,
    );
    link.send(
        Header::EndOfStream {
            stream: STREAM,
            reason: reason.into(),
        },
        Bytes::new(),
    );
    tracing::info!(%key, "publisher disconnected");
}

/// Queues what the reader has for the hub; the caller flushes.
fn drain(
    reader: &mut FrameReader,
    link: &mut Link,
    errors: &mut u64,
    unsupported: &mut Vec<u16>,
    ts_errors: &telemetry::Counter,
) {
    while let Some(ev) = reader.poll_event() {
        match ev {
            TsEvent::Config {
                track,
                codec,
                config,
            } => link.queue(
                Header::TrackConfig {
                    stream: STREAM,
                    track,
                    codec,
                },
                config,
            ),
            TsEvent::Frame(f) => link.queue(
                Header::Frame {
                    stream: STREAM,
                    track: f.track,
                    video: f.is_video(),
                    dts: f.dts,
                    cts: f.cts,
                    flags: f.flags,
                },
                f.payload,
            ),
            TsEvent::Unsupported { pid, stream_type } => {
                if !unsupported.contains(&pid) {
                    unsupported.push(pid);
                    tracing::warn!(
                        pid,
                        stream_type,
                        "unsupported stream type in the TS, ignored"
                    );
                }
            }
            TsEvent::Error(e) => {
                *errors += 1;
                ts_errors.inc();
                tracing::debug!(error = %e, "TS damage contained");
            }
        }
    }
}

/// The `srt_stats` event of a connection (proto/FORMAT.md section 3.1).
pub(crate) fn stats_event(
    s: &Stats,
    role: Role,
    key: &StreamKey,
    conn_id: u64,
    remote: &str,
) -> Event {
    let numbers = [
        ("rtt_us", u64::from(s.rtt_us)),
        ("recv_packets", s.recv_packets),
        ("recv_bytes", s.recv_bytes),
        ("recv_lost", s.recv_lost),
        ("recv_retransmitted", s.recv_retransmitted),
        ("recv_dropped", s.recv_dropped),
        ("recv_undecrypted", s.recv_undecrypted),
        ("recv_rate_bps", u64::from(s.recv_rate_bps)),
        ("link_capacity_pps", u64::from(s.link_capacity_pps)),
        ("recv_buffer_packets", u64::from(s.recv_buffer_packets)),
        ("recv_buffer_ms", u64::from(s.recv_buffer_ms)),
        ("naks_sent", s.naks_sent),
        ("sent_packets", s.sent_packets),
        ("sent_bytes", s.sent_bytes),
        ("sent_retransmitted", s.sent_retransmitted),
        ("sent_dropped", s.sent_dropped),
        ("naks_received", s.naks_received),
        ("send_buffer_packets", u64::from(s.send_buffer_packets)),
    ];
    let mut fields = vec![("role".to_string(), role.as_str().to_string())];
    fields.extend(numbers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Event {
        kind: "srt_stats".into(),
        key: key.to_string(),
        conn_id,
        remote: remote.to_string(),
        fields,
    }
}

fn log_stats(s: &Stats, key: &StreamKey, ts_errors: u64) {
    tracing::info!(
        %key,
        rtt_ms = f64::from(s.rtt_us) / 1000.0,
        packets = s.recv_packets,
        bytes = s.recv_bytes,
        lost = s.recv_lost,
        retransmitted = s.recv_retransmitted,
        dropped = s.recv_dropped,
        undecrypted = s.recv_undecrypted,
        rate_kbps = u64::from(s.recv_rate_bps) * 8 / 1000,
        ts_errors,
        "connection statistics"
    );
}
