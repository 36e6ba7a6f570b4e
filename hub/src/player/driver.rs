//! The task of one handed-over RTMP player: a thin shell that moves bytes and time
//! between the socket and the player's state. The protocol is
//! `proto::rtmp::session::PlayerSession`; what to send from the ring is
//! [`super::output::Player`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use proto::media::StreamKey;
use proto::rtmp::session::{
    PlayerCaps, PlayerConfig, PlayerError, PlayerHandoff, PlayerSession, CAPS_EX_RECONNECT,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::output::{Output, Pass, Player, PlayerEnd, Start};
use crate::config::Config;
use crate::conns::ConnKind;
use crate::deadline::Timer;
use crate::events::{player_event, stop_fields};
use crate::registry::Registry;
use crate::rtmp_out::SHARED_STREAM_ID;
use crate::stats::Protocol;
use crate::stream::Reader;
use crate::write::{write_all, PlayerSock, SockWrite};

/// Largest message a player may send (commands are small).
const MAX_PLAYER_MESSAGE: u32 = 64 * 1024;
/// Room kept for each read from the player. A player sends little (acknowledgements,
/// pongs, a few commands), and the buffer lives as long as the player, so it is small:
/// a larger message simply takes several reads.
const READ_ROOM: usize = 512;

/// Why the task stopped, beyond what [`PlayerEnd`] says.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("{0}")]
    End(#[from] PlayerEnd),
    #[error("read: {0}")]
    Read(std::io::Error),
    #[error("eof")]
    Eof,
    #[error("{0}")]
    Protocol(#[from] PlayerError),
    #[error("kicked through the API")]
    Kicked,
}

/// The protocol settings of players.
pub fn player_config(cfg: &Config) -> PlayerConfig {
    PlayerConfig {
        chunk_size: cfg.chunk_size,
        media_stream_id: SHARED_STREAM_ID,
        max_message_size: MAX_PLAYER_MESSAGE,
        ping_interval: cfg.player_ping_interval,
        ping_timeout: cfg.player_ping_timeout,
        ..PlayerConfig::default()
    }
}

/// Serves one player until it leaves or must be closed.
pub async fn run<S: PlayerSock>(sock: S, h: PlayerHandoff, registry: Arc<Registry>) {
    let cfg = registry.config().clone();
    let conn_id = h.conn_id;
    // Before the player is listed, so that no request counted for it is missed.
    let mut orders = registry.reconnect_orders();
    let mut session = PlayerSession::new(&h, player_config(&cfg), Instant::now());
    let caps = PlayerCaps::new(h.caps_ex, h.announced.clone());
    let mut buf = BytesMut::from(&h.pending_input[..]);
    let (mut rd, mut wr) = sock.split();
    let refused = match StreamKey::parse(&h.key) {
        Err(e) => Err((
            "NetStream.Play.StreamNotFound",
            "Invalid stream key.",
            e.to_string(),
        )),
        Ok(key) => registry
            .attach_player(&key)
            .map_err(|e| ("NetStream.Play.Failed", "", e.to_string())),
    };
    let stream = match refused {
        Ok(stream) => stream,
        Err((code, description, error)) => {
            let description = if description.is_empty() {
                &error
            } else {
                description
            };
            session.reject(code, description);
            flush(&mut wr, &mut session, cfg.player_write_timeout).await;
            tracing::warn!(conn_id, layer = "player", %error, "closing connection");
            return;
        }
    };
    session.accept();
    let reader_id = registry.reader_id();
    let output = {
        let mut st = stream.lock();
        let start = if st.is_live() {
            let join = st.ring.join_point();
            let ms = join
                .and_then(|j| st.ring.get(j))
                .map_or_else(|| st.timeline.to_ms(st.timeline.last_out()), |e| e.out_ms);
            let mut headers = Vec::new();
            st.headers_for(ms, session.stream_id(), &caps, &mut headers);
            for b in headers {
                session.queue_bytes(b);
            }
            Start {
                cursor: join.unwrap_or(st.ring.head()),
                live: true,
                waiting_key: join.is_none(),
            }
        } else {
            Start {
                cursor: st.ring.head(),
                live: false,
                waiting_key: true,
            }
        };
        if start.live {
            tracing::info!(conn_id, remote = %h.remote, "player started");
        } else {
            // Not a success yet: say what the player waits for, and for how long.
            tracing::info!(
                conn_id,
                remote = %h.remote,
                "player waiting for a publisher of {} (up to {})",
                h.key,
                humantime::format_duration(cfg.publisher_wait)
            );
        }
        let player = Player::new(
            stream.clone(),
            conn_id,
            &cfg,
            session,
            caps,
            start,
            Instant::now(),
            registry.stats().clone(),
        );
        // Registered under the same lock that fixed the cursor: no entry falls between.
        let output = Output::new(wr, player);
        st.add_reader(reader_id, output.clone());
        output
    };
    let stats = registry.stats().players(Protocol::Rtmp);
    stats.started.inc();
    let _connected = stats.connected.track();
    let listed = registry.conns().register(
        conn_id,
        ConnKind::Player,
        Protocol::Rtmp.as_str(),
        &h.remote,
        &h.key,
    );
    if h.caps_ex & CAPS_EX_RECONNECT != 0 {
        listed.set_reconnect();
    }
    let since = Instant::now();
    play_event(&registry, "play", &h, Vec::new());
    let stop = tokio::select! {
        stop = drive(&output, &mut rd, &mut buf) => stop,
        _ = listed.kicked() => Stop::Kicked,
        never = reconnect_requests(&output, &mut orders, &h.key, conn_id) => match never {},
    };
    let reason = match &stop {
        Stop::Eof => "eof".to_owned(),
        Stop::Read(e) | Stop::End(PlayerEnd::Io(e)) if is_hang_up(e) => "closed".to_owned(),
        other => other.to_string(),
    };
    let bytes = output.lock().session.outbox().written();
    play_event(&registry, "stop", &h, stop_fields(reason, bytes, since));
    match &stop {
        Stop::End(PlayerEnd::TooSlow { .. }) => stats.too_slow.inc(),
        Stop::End(PlayerEnd::Stalled(_)) => stats.stalled.inc(),
        Stop::End(PlayerEnd::QueueFull { .. }) => stats.queue_full.inc(),
        Stop::Kicked => stats.kicked.inc(),
        _ => {}
    }
    match stop {
        Stop::Kicked => tracing::info!(conn_id, "player kicked through the API"),
        Stop::Eof => tracing::info!(conn_id, why = "eof", "player left"),
        Stop::Read(e) | Stop::End(PlayerEnd::Io(e)) if is_hang_up(&e) => {
            tracing::info!(conn_id, why = "connection closed", "player left")
        }
        Stop::Read(e) | Stop::End(PlayerEnd::Io(e)) => {
            tracing::info!(conn_id, error = %e, "player left")
        }
        Stop::End(e @ PlayerEnd::NotFound(_)) => tracing::info!(conn_id, "closing player: {e}"),
        Stop::End(PlayerEnd::Session(why)) => tracing::info!(conn_id, why, "player left"),
        Stop::Protocol(e) => {
            tracing::warn!(conn_id, layer = e.layer(), error = %e, "closing connection")
        }
        Stop::End(
            e @ (PlayerEnd::TooSlow { .. }
            | PlayerEnd::Stalled(_)
            | PlayerEnd::Idle(_)
            | PlayerEnd::QueueFull { .. }),
        ) => {
            tracing::warn!(conn_id, key = %h.key, layer = "player", error = %e, "closing connection")
        }
        Stop::End(e) => tracing::info!(conn_id, reason = %e, "player closed"),
    }
    stream.lock().remove_reader(reader_id);
    registry.detach_player(&stream);
}

/// Sends the player every reconnect request that applies to its key (when it announced
/// the capability), and wakes its task to write it. Runs as long as the player.
async fn reconnect_requests<W: SockWrite>(
    output: &Output<W>,
    orders: &mut crate::reconnect::Receiver,
    key: &str,
    conn_id: u64,
) -> std::convert::Infallible {
    loop {
        let order = orders.next().await;
        if !order.applies_to(key) {
            continue;
        }
        let sent = output
            .lock()
            .session
            .request_reconnect(order.tc_url.as_deref(), Some(&order.description));
        if sent {
            tracing::info!(conn_id, key, "reconnect request sent to the player");
            output.wake();
        } else {
            tracing::debug!(
                conn_id,
                key,
                "player did not announce Reconnect; left alone"
            );
        }
    }
}

/// A `play` or `stop` event of this RTMP player.
fn play_event(registry: &Registry, kind: &str, h: &PlayerHandoff, fields: Vec<(String, String)>) {
    registry.publish_event(player_event(
        kind, &h.key, h.conn_id, &h.remote, "rtmp", fields,
    ));
}

/// Moves bytes and time until the player ends; what is still queued for a player that
/// ends in order is written first.
async fn drive<W: SockWrite>(
    output: &Output<W>,
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> Stop {
    // Bytes ingest read past `play` come first.
    if let Err(stop) = input(output, buf) {
        return finish(output, stop).await;
    }
    // One timer for the player's life: most wakes (a frame, a write) leave the deadline
    // where it was.
    let mut timer = Timer::new();
    loop {
        let pass = output.pass(Instant::now());
        let pass = match pass {
            Ok(p) => p,
            Err(end) => return finish(output, end.into()).await,
        };
        if pass.more {
            // Catching up on a backlog: let other tasks run between batches.
            tokio::task::yield_now().await;
            continue;
        }
        let Pass { blocked, .. } = pass;
        timer.set(output.lock().next_deadline());
        buf.reserve(READ_ROOM);
        tokio::select! {
            r = rd.read_buf(buf) => match r {
                Ok(0) => return Stop::Eof,
                Ok(_) => {
                    if let Err(stop) = input(output, buf) {
                        return finish(output, stop).await;
                    }
                }
                Err(e) => return Stop::Read(e),
            },
            r = output.sock().ready(), if blocked => {
                if let Err(e) = r {
                    return Stop::End(PlayerEnd::Io(e));
                }
            }
            _ = output.notified(), if !blocked => {}
            _ = timer.wait() => {
                let due = output.lock().handle_timeout(Instant::now());
                if let Err(end) = due {
                    return finish(output, end.into()).await;
                }
            }
        }
    }
}

/// Feeds what the player sent to its session and acts on its requests.
fn input<W: SockWrite>(output: &Output<W>, buf: &mut BytesMut) -> Result<(), Stop> {
    let mut p = output.lock();
    p.session.handle_input(buf, Instant::now())?;
    p.apply_events()?;
    // Replies to what it sent count against its queue bound at once.
    p.check_queue()?;
    Ok(())
}

/// Writes what is still queued (a closing status, the last frames) to a player that
/// ends in order, bounded by the write timeout, then reports `stop`.
async fn finish<W: SockWrite>(output: &Output<W>, stop: Stop) -> Stop {
    let orderly = match &stop {
        Stop::End(end) => end.flushes(),
        Stop::Protocol(_) => true,
        Stop::Read(_) | Stop::Eof | Stop::Kicked => false,
    };
    if orderly {
        let timeout = output.lock().stall_timeout();
        let _ = tokio::time::timeout(timeout, async {
            loop {
                let blocked = output.lock().write(output.sock(), Instant::now());
                if !matches!(blocked, Ok(true)) || output.sock().ready().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }
    stop
}

/// Writes a refused player's session output (its error status), bounded by `timeout`.
async fn flush<W: SockWrite>(wr: &mut W, session: &mut PlayerSession, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, write_all(wr, session.outbox())).await;
}

/// Whether a socket error is just the player going away (a reset or a closed pipe is how
/// most players end a session), not a failure worth an error field.
fn is_hang_up(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::UnexpectedEof
    )
}
