//! A player on another message stream id than the one the shared media bytes were built
//! for gets them without an allocation per frame: only the FMT 0 header is rewritten, in a
//! buffer the session reuses once what it queued earlier was written.
//!
//! Its own test binary: the counting allocator sees every allocation of the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use proto::rtmp::chunk::write_fmt0;
use proto::rtmp::message::types;
use proto::rtmp::session::{PlayerConfig, PlayerHandoff, PlayerSession};

/// Counts the allocations made on a thread while its `COUNTING` flag is set.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn handoff(stream_id: u32) -> PlayerHandoff {
    PlayerHandoff::for_tests(1, "live/cam", stream_id)
}

/// Writes everything queued into `sink` (cleared first), as a socket that takes it all
/// would, in vectored writes of up to 8 buffers.
fn write_out(s: &mut PlayerSession, sink: &mut Vec<u8>) {
    let out = s.outbox();
    sink.clear();
    while !out.is_empty() {
        let mut iov = [IoSlice::new(&[]); 8];
        let n = out.fill(&mut iov);
        let len: usize = iov[..n].iter().map(|b| b.len()).sum();
        for b in &iov[..n] {
            sink.extend_from_slice(b);
        }
        out.advance(len);
    }
}

#[test]
fn frames_for_another_stream_id_allocate_nothing_per_frame() {
    const FRAMES: usize = 1000;
    let cfg = PlayerConfig {
        media_stream_id: 1,
        ping_interval: None,
        ..PlayerConfig::default()
    };
    let mut s = PlayerSession::new(&handoff(3), cfg, Instant::now());
    s.accept();
    let mut sink = Vec::with_capacity(64 * 1024);
    write_out(&mut s, &mut sink);
    // Frames built once for message stream 1, as the hub builds them for every player.
    let frames: Vec<Bytes> = (0..FRAMES as u32)
        .map(|i| {
            let mut b = BytesMut::new();
            write_fmt0(6, i * 40, types::VIDEO, 1, &[0x27; 300], 4096, &mut b);
            let frame = b.freeze();
            // Already handed to other players: its first clone made it shared.
            drop(frame.clone());
            frame
        })
        .collect();
    // A pass of the hub queues what the ring holds for the player (here 8 frames), then
    // writes. Warm-up: the session's buffers reach their working size.
    for batch in frames[..40].chunks(8) {
        for f in batch {
            s.queue_media(f);
        }
        write_out(&mut s, &mut sink);
    }
    let n = allocations(|| {
        for batch in frames.chunks(8) {
            for f in batch {
                s.queue_media(f);
            }
            write_out(&mut s, &mut sink);
        }
    });
    assert_eq!(n, 0, "allocations for {FRAMES} frames on stream id 3");
    // The last frame went out whole, on stream id 3 (little endian, after the basic
    // header, timestamp, length and type).
    let last = frames.last().expect("frames");
    let sink = &sink[sink.len() - last.len()..];
    assert_eq!(&sink[8..12], &3u32.to_le_bytes());
    assert_eq!(&sink[12..], &last[12..]);
    assert_eq!(&sink[..8], &last[..8]);
}
