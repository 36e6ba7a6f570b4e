//! `nullserver`: the physical limit a fan-out is measured against. It speaks just enough
//! RTMP for loadgen (`proto`'s server session for handshake and commands), serializes each
//! published frame into chunks once, and writes the same buffers to every player: the
//! publisher's task itself makes one non-blocking `writev` per player per frame, and only
//! a player whose socket would block gets its own task woken to finish the write. No
//! registry, no timestamps rewritten, no per-player policy. A new player gets the
//! sequence headers and the current GOP first, as from any live server.
//!
//! ```text
//! nullserver --listen 127.0.0.1:1936
//! ```

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use proto::rtmp::chunk::write_fmt0;
use proto::rtmp::session::{MediaKind, ServerSession, SessionConfig, SessionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Null RTMP fan-out server.
#[derive(Debug, Parser)]
#[command(name = "nullserver")]
struct Cli {
    /// TCP address to listen on.
    #[arg(long, default_value = "127.0.0.1:1936")]
    listen: SocketAddr,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

const CHUNK_SIZE: u32 = 4096;
/// Buffers per vectored write.
const MAX_IOV: usize = 64;
/// Bytes of recent frames kept for players that are behind (older ones are gone for
/// them): the hub's default `--player-queue-bytes`, so both hold the same.
const LOG_BYTES: usize = 4 << 20;

/// The one stream: headers, the current GOP and a log of recent frames, all pre-chunked.
#[derive(Default)]
struct Feed {
    /// Sequence headers: audio (0) and video (1).
    headers: [Option<Bytes>; 2],
    gop: Vec<Bytes>,
    log: VecDeque<Bytes>,
    /// Bytes in `log`.
    log_bytes: usize,
    /// Sequence number of `log[0]`.
    first: u64,
}

struct Shared {
    feed: Mutex<Feed>,
    /// Every player, rebuilt when one comes or goes so a frame walks it without a lock.
    players: Mutex<Arc<[Arc<Player>]>>,
}

/// One player: its socket and what is still to be written to it.
struct Player {
    sock: OwnedWriteHalf,
    out: Mutex<Out>,
    notify: Notify,
}

struct Out {
    /// Next sequence number of `Feed::log` to send.
    cursor: u64,
    queue: VecDeque<Bytes>,
}

fn main() {
    let cli = Cli::parse();
    let rt = e2e::load::runtime(cli.threads);
    rt.block_on(async move {
        let listener = TcpListener::bind(cli.listen).await.expect("bind");
        eprintln!(
            "listening on rtmp://{}",
            listener.local_addr().expect("addr")
        );
        let shared = Arc::new(Shared {
            feed: Mutex::new(Feed::default()),
            players: Mutex::new(Arc::new([])),
        });
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(serve(sock, shared.clone()));
        }
    });
}

async fn serve(mut sock: TcpStream, shared: Arc<Shared>) {
    let mut session = ServerSession::new(SessionConfig::default(), [3; 1528], 0);
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::new();
    loop {
        if session.handle_input(&mut inbuf).is_err() {
            return;
        }
        let mut play = false;
        while let Some(ev) = session.poll_event() {
            match ev {
                SessionEvent::PublishRequest(r) => session.accept_publish(r.stream_id),
                SessionEvent::PlayRequest(r) => {
                    session.accept_play(r.stream_id);
                    play = true;
                }
                SessionEvent::Media(m) => {
                    let video = m.kind == MediaKind::Video;
                    let (csid, type_id) = if video { (6, 9) } else { (4, 8) };
                    let mut b = BytesMut::new();
                    write_fmt0(
                        csid,
                        m.timestamp,
                        type_id,
                        1,
                        &m.payload,
                        CHUNK_SIZE,
                        &mut b,
                    );
                    push(&shared, b.freeze(), video, &m.payload);
                }
                _ => {}
            }
        }
        session.poll_transmit(&mut out);
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if play {
            return player(sock, shared).await;
        }
        match sock.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Appends a frame (sequence headers replace the stored ones, keyframes restart the GOP)
/// and offers it to every player.
fn push(shared: &Shared, chunks: Bytes, video: bool, body: &[u8]) {
    let header = match (video, body) {
        (true, [b0, 0, ..]) if b0 & 0x0f == 7 => true,
        (true, [b0, ..]) if b0 & 0x80 != 0 => b0 & 0x0f == 0,
        (false, [b0, 0, ..]) if b0 >> 4 == 10 => true,
        (false, [b0, ..]) if b0 >> 4 == 9 => b0 & 0x0f == 0,
        _ => false,
    };
    let keyframe = video && body.first().is_some_and(|b| (b >> 4) & 7 == 1);
    let mut f = shared.feed.lock().expect("feed");
    if header {
        f.headers[usize::from(video)] = Some(chunks.clone());
    } else {
        if keyframe {
            f.gop.clear();
        }
        if !f.gop.is_empty() || keyframe {
            f.gop.push(chunks.clone());
        }
    }
    f.log_bytes += chunks.len();
    f.log.push_back(chunks.clone());
    let seq = f.first + f.log.len() as u64 - 1;
    while f.log_bytes > LOG_BYTES && f.log.len() > 1 {
        let old = f.log.pop_front().expect("non-empty");
        f.log_bytes -= old.len();
        f.first += 1;
    }
    drop(f);
    let players = shared.players.lock().expect("players").clone();
    for p in players.iter() {
        p.offer(seq, &chunks);
    }
}

impl Player {
    /// A caught-up player with nothing pending takes the frame with one `writev`; any
    /// other is left to its task.
    fn offer(&self, seq: u64, chunks: &Bytes) {
        if let Ok(mut out) = self.out.try_lock() {
            if out.cursor == seq && out.queue.is_empty() {
                out.cursor += 1;
                match self.sock.try_write(chunks) {
                    Ok(n) if n == chunks.len() => return,
                    Ok(n) => out.queue.push_back(chunks.slice(n..)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        out.queue.push_back(chunks.clone())
                    }
                    Err(_) => {}
                }
            }
        }
        self.notify.notify_one();
    }

    /// Moves what the player has not had yet into its queue and writes until the queue is
    /// empty (false) or the socket would block (true).
    fn pass(&self, shared: &Shared) -> io::Result<bool> {
        let mut out = self.out.lock().expect("out");
        {
            let f = shared.feed.lock().expect("feed");
            let start = out.cursor.max(f.first);
            let end = f.first + f.log.len() as u64;
            for seq in start..end {
                out.queue.push_back(f.log[(seq - f.first) as usize].clone());
            }
            out.cursor = end;
        }
        while !out.queue.is_empty() {
            let n = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let used = proto::iov::fill(&out.queue, &mut iov);
                match self.sock.try_write_vectored(&iov[..used]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) => return Err(e),
                }
            };
            proto::iov::advance(&mut out.queue, n);
        }
        Ok(false)
    }
}

async fn player(sock: TcpStream, shared: Arc<Shared>) {
    let (mut rd, wr) = sock.into_split();
    // Acknowledgements and the like are read and dropped.
    tokio::spawn(async move {
        let mut sink = vec![0u8; 4096];
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let player = {
        let f = shared.feed.lock().expect("feed");
        let mut queue = VecDeque::new();
        queue.extend(f.headers.iter().flatten().cloned());
        queue.extend(f.gop.iter().cloned());
        let player = Arc::new(Player {
            sock: wr,
            out: Mutex::new(Out {
                cursor: f.first + f.log.len() as u64,
                queue,
            }),
            notify: Notify::new(),
        });
        // Registered while the feed is locked: no frame falls between cursor and list.
        let mut list = shared.players.lock().expect("players");
        *list = list.iter().cloned().chain([player.clone()]).collect();
        player
    };
    loop {
        match player.pass(&shared) {
            Ok(true) => {
                if player.sock.writable().await.is_err() {
                    break;
                }
            }
            Ok(false) => player.notify.notified().await,
            Err(_) => break,
        }
    }
    let mut list = shared.players.lock().expect("players");
    *list = list
        .iter()
        .filter(|p| !Arc::ptr_eq(p, &player))
        .cloned()
        .collect();
}
