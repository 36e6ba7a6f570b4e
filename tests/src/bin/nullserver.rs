//! `nullserver`: the physical limit a fan-out is measured against. It speaks just enough
//! RTMP for loadgen (`proto`'s server session for handshake and commands), serializes each
//! published frame into chunks once, and writes the same buffers to every player with
//! vectored writes: no registry, no timestamps rewritten, no per-player policy. A new
//! player gets the sequence headers and the current GOP first, as from any live server.
//!
//! ```text
//! nullserver --listen 127.0.0.1:1936
//! ```

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use proto::rtmp::chunk::write_fmt0;
use proto::rtmp::session::{MediaKind, ServerSession, SessionConfig, SessionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
/// Frames kept for players that are behind; older ones are gone for them.
const LOG_FRAMES: usize = 4096;

/// The one stream: headers, the current GOP and a log of recent frames, all pre-chunked.
#[derive(Default)]
struct Feed {
    /// Sequence headers: audio (0) and video (1).
    headers: [Option<Bytes>; 2],
    gop: Vec<Bytes>,
    log: VecDeque<Bytes>,
    /// Sequence number of `log[0]`.
    first: u64,
}

struct Shared {
    feed: Mutex<Feed>,
    notify: Notify,
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
            notify: Notify::new(),
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

/// Appends a frame; sequence headers replace the stored ones, keyframes restart the GOP.
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
    f.log.push_back(chunks);
    if f.log.len() > LOG_FRAMES {
        f.log.pop_front();
        f.first += 1;
    }
    drop(f);
    shared.notify.notify_waiters();
}

async fn player(sock: TcpStream, shared: Arc<Shared>) {
    let (mut rd, mut wr) = sock.into_split();
    // Acknowledgements and the like are read and dropped.
    tokio::spawn(async move {
        let mut sink = vec![0u8; 4096];
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let mut queue: VecDeque<Bytes> = VecDeque::new();
    let mut cursor = {
        let f = shared.feed.lock().expect("feed");
        queue.extend(f.headers.iter().flatten().cloned());
        queue.extend(f.gop.iter().cloned());
        f.first + f.log.len() as u64
    };
    loop {
        let notified = shared.notify.notified();
        {
            let f = shared.feed.lock().expect("feed");
            let start = cursor.max(f.first);
            let end = f.first + f.log.len() as u64;
            for seq in start..end {
                queue.push_back(f.log[(seq - f.first) as usize].clone());
            }
            cursor = end;
        }
        while !queue.is_empty() {
            let n = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let used = proto::iov::fill(&queue, &mut iov);
                match wr.write_vectored(&iov[..used]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                }
            };
            proto::iov::advance(&mut queue, n);
        }
        notified.await;
    }
}
