//! Chunk serialization: messages in, chunk bytes out.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::{DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_CHUNK_SIZE, MAX_CSID, MIN_CSID};
use crate::iov::Outbox;

/// The last header written on one chunk stream.
#[derive(Debug, Clone, Copy)]
struct Last {
    timestamp: u32,
    /// Last timestamp field (absolute after FMT 0, delta after FMT 1/2).
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

/// Writes messages as chunks, compressing headers per chunk stream (FMT 0 to 3).
///
/// Changing the chunk size here does not tell the peer: send a SetChunkSize message
/// first, then call [`ChunkEncoder::set_chunk_size`].
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
    last: BTreeMap<u32, Last>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder at the start of a connection (chunk size 128).
    pub fn new() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            last: BTreeMap::new(),
        }
    }

    /// The chunk size used for output.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Sets the output chunk size, clamped to 1..=0x7FFF_FFFF.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Appends `payload` as one message on chunk stream `csid` (clamped to 2..=65599),
    /// choosing the smallest header the previous message on that chunk stream allows.
    /// Payloads longer than 2^24 - 1 bytes cannot be expressed and are cut to that length.
    pub fn write(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        let csid = csid.clamp(MIN_CSID, MAX_CSID);
        let payload = &payload[..payload.len().min(0xFF_FFFF)];
        let extended = self.header(csid, timestamp, type_id, stream_id, payload.len(), out);
        put_continuations(csid, &[], payload, self.chunk_size, extended, out);
    }

    /// Queues one message whose body is `head` followed by `payload` (an FLV tag header
    /// and a frame shared by every destination) on `out`: the chunk headers and `head`
    /// are written into the outbox's own buffer, `payload` is queued as slices of itself,
    /// never copied. The bytes are those [`ChunkEncoder::write`] gives for the
    /// concatenated body.
    pub fn write_shared(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        (head, payload): (&[u8], &Bytes),
        out: &mut Outbox,
    ) {
        let csid = csid.clamp(MIN_CSID, MAX_CSID);
        let head = &head[..head.len().min(0xFF_FFFF)];
        let payload = payload.slice(..payload.len().min(0xFF_FFFF - head.len()));
        let len = head.len() + payload.len();
        let chunk = self.chunk_size as usize;
        let mut extended = None;
        out.append(|b| extended = self.header(csid, timestamp, type_id, stream_id, len, b));
        // Walk the body in chunk-sized pieces; `at` counts body bytes already placed.
        let mut at = 0;
        while at < len {
            let end = (at + chunk).min(len);
            out.append(|b| {
                if at > 0 {
                    write_continuation_header(csid, extended, b);
                }
                if at < head.len() {
                    b.put_slice(&head[at..end.min(head.len())]);
                }
            });
            if end > head.len() {
                let from = at.max(head.len()) - head.len();
                out.push(payload.slice(from..end - head.len()));
            }
            at = end;
        }
    }

    /// Appends the header of a `length`-byte message, choosing the format from the last
    /// header on `csid`, and records it; returns the extended timestamp continuation
    /// chunks repeat, if any.
    fn header(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        length: usize,
        out: &mut BytesMut,
    ) -> Option<u32> {
        let length = length as u32;
        let prev = self.last.get(&csid).copied();
        // Backwards timestamps cannot be a delta, so they need a full header.
        let delta = prev
            .filter(|p| p.stream_id == stream_id && timestamp >= p.timestamp)
            .map(|p| (p, timestamp - p.timestamp));
        let (fmt, field) = match delta {
            None => (0u8, timestamp),
            Some((p, d)) if p.length != length || p.type_id != type_id => (1, d),
            Some((p, d)) if p.delta != d => (2, d),
            Some((_, d)) => (3, d),
        };
        let extended = (field >= EXTENDED_TIMESTAMP).then_some(field);
        match fmt {
            0 => {
                write_fmt0_header(csid, timestamp, type_id, stream_id, length as usize, out);
            }
            // A header that repeats everything is a continuation header to the byte.
            3 => write_continuation_header(csid, extended, out),
            _ => {
                put_basic_header(fmt, csid, out);
                put_u24(field.min(EXTENDED_TIMESTAMP), out);
                if fmt == 1 {
                    put_u24(length, out);
                    out.put_u8(type_id);
                }
                if let Some(ts) = extended {
                    out.put_u32(ts);
                }
            }
        }
        self.last.insert(
            csid,
            Last {
                timestamp,
                delta: field,
                length,
                type_id,
                stream_id,
            },
        );
        extended
    }
}

/// Writes `payload` as one FMT 0 chunk then FMT 3 continuation chunks, carrying the
/// extended timestamp on every chunk when `timestamp >= 0xFFFFFF`. The bytes depend only
/// on the arguments, so a frame serialized once can be sent to every player.
pub fn write_fmt0(
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
    chunk_size: u32,
    out: &mut BytesMut,
) {
    write_fmt0_parts(
        csid,
        timestamp,
        type_id,
        stream_id,
        &[],
        payload,
        chunk_size,
        out,
    );
}

/// As [`write_fmt0`] for the payload `head` followed by `body` (a tag header built for
/// the message and the frame's bytes): the chunks are filled from both parts directly, so
/// the frame is copied once, not joined to its header first.
#[allow(clippy::too_many_arguments)]
pub fn write_fmt0_parts(
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    head: &[u8],
    body: &[u8],
    chunk_size: u32,
    out: &mut BytesMut,
) {
    let csid = csid.clamp(MIN_CSID, MAX_CSID);
    let head = &head[..head.len().min(0xFF_FFFF)];
    let body = &body[..body.len().min(0xFF_FFFF - head.len())];
    let len = head.len() + body.len();
    let extended = write_fmt0_header(csid, timestamp, type_id, stream_id, len, out);
    put_continuations(
        csid,
        head,
        body,
        chunk_size.clamp(1, MAX_CHUNK_SIZE),
        extended,
        out,
    );
}

/// Appends the FMT 0 header of a `length`-byte message (capped at the 24-bit field) and
/// returns the extended timestamp that every continuation header of the message repeats
/// ([`write_continuation_header`]), if the timestamp needs one. With them a message's
/// chunks can be written around a payload that stays where it is.
pub fn write_fmt0_header(
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    length: usize,
    out: &mut BytesMut,
) -> Option<u32> {
    let csid = csid.clamp(MIN_CSID, MAX_CSID);
    let extended = timestamp >= EXTENDED_TIMESTAMP;
    put_basic_header(0, csid, out);
    put_u24(timestamp.min(EXTENDED_TIMESTAMP), out);
    put_u24(length.min(0xFF_FFFF) as u32, out);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
    }
    extended.then_some(timestamp)
}

/// Appends the header of a message's next chunk (FMT 3 on `csid`, then `extended`, what
/// [`write_fmt0_header`] returned).
pub fn write_continuation_header(csid: u32, extended: Option<u32>, out: &mut BytesMut) {
    put_basic_header(3, csid.clamp(MIN_CSID, MAX_CSID), out);
    if let Some(ts) = extended {
        out.put_u32(ts);
    }
}

/// Copies the FMT 0 header that starts `shared` (a message from [`write_fmt0`]) into
/// `hdr` with its message stream id replaced by `stream_id`, and returns the rest of
/// `shared`, sliced, not copied. Bytes built once for one message stream id thus serve a
/// reader on another: continuation chunks do not carry the id. `None` when `shared` does
/// not start with a whole FMT 0 header.
pub fn rewrite_fmt0_stream_id(shared: &Bytes, stream_id: u32, hdr: &mut BytesMut) -> Option<Bytes> {
    let first = *shared.first()?;
    if first >> 6 != 0 {
        return None;
    }
    let basic = match first & 0x3F {
        0 => 2,
        1 => 3,
        _ => 1,
    };
    // Basic header, timestamp (3), length (3), type id (1), then the stream id (4).
    let id_at = basic + 7;
    let head = shared.get(..id_at + 4)?;
    hdr.extend_from_slice(&head[..id_at]);
    hdr.put_u32_le(stream_id);
    Some(shared.slice(id_at + 4..))
}

/// Writes the payload `head` then `body` after a message header: the first piece
/// directly, then each further `chunk_size` bytes behind a FMT 3 basic header (and the
/// extended timestamp if any).
fn put_continuations(
    csid: u32,
    head: &[u8],
    body: &[u8],
    chunk_size: u32,
    extended: Option<u32>,
    out: &mut BytesMut,
) {
    let len = head.len() + body.len();
    let size = chunk_size as usize;
    out.reserve(len + (len / size) * 8);
    let mut at = 0;
    while at < len {
        if at > 0 {
            write_continuation_header(csid, extended, out);
        }
        let end = (at + size).min(len);
        if at < head.len() {
            out.put_slice(&head[at..end.min(head.len())]);
        }
        if end > head.len() {
            out.put_slice(&body[at.max(head.len()) - head.len()..end - head.len()]);
        }
        at = end;
    }
}

fn put_u24(v: u32, out: &mut BytesMut) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

/// The 1-, 2- or 3-byte basic header (RTMP 1.0 section 5.3.1.1).
pub(crate) fn put_basic_header(fmt: u8, csid: u32, out: &mut BytesMut) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let v = csid - 64;
            out.put_u8(fmt | 1);
            out.put_u8((v & 0xFF) as u8);
            out.put_u8((v >> 8) as u8);
        }
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    /// The outbox's bytes, in order.
    fn drain(out: &mut Outbox) -> Vec<u8> {
        let mut all = Vec::new();
        while !out.is_empty() {
            let before = all.len();
            let mut iov = [std::io::IoSlice::new(&[]); 64];
            let n = out.fill(&mut iov);
            for s in &iov[..n] {
                all.extend_from_slice(s);
            }
            out.advance(all.len() - before);
        }
        all
    }

    #[test]
    fn shared_payloads_give_the_same_bytes_as_copies() {
        let payload = Bytes::from((0..700u32).map(|i| i as u8).collect::<Vec<u8>>());
        for chunk in [1, 2, 5, 128, 300, 4096] {
            for (head_len, len) in [(0, 0), (5, 0), (5, 700), (0, 700), (2, 1), (130, 128)] {
                let head: Vec<u8> = (0..head_len).map(|i| 0xf0 ^ i as u8).collect();
                let body = payload.slice(..len);
                let (mut copy, mut shared) = (ChunkEncoder::new(), ChunkEncoder::new());
                copy.set_chunk_size(chunk);
                shared.set_chunk_size(chunk);
                let mut want = BytesMut::new();
                let mut out = Outbox::new();
                // Three messages: FMT 0, then compressed headers, then an extended one.
                for ts in [10, 50, 0x0100_0000] {
                    let whole = [&head[..], &body[..]].concat();
                    copy.write(6, ts, 9, 1, &whole, &mut want);
                    shared.write_shared(6, ts, 9, 1, (&head, &body), &mut out);
                }
                assert_eq!(
                    drain(&mut out),
                    &want[..],
                    "chunk {chunk} head {head_len} len {len}"
                );
            }
        }
    }

    #[test]
    fn payload_is_sliced_not_copied() {
        let payload = Bytes::from(vec![7u8; 1000]);
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(4096);
        let mut out = Outbox::new();
        enc.write_shared(6, 0, 9, 1, (&[0x17, 1, 0, 0, 0], &payload), &mut out);
        let mut iov = [std::io::IoSlice::new(&[]); 4];
        let n = out.fill(&mut iov);
        assert_eq!(n, 2, "header buffer, then the payload itself");
        assert_eq!(iov[1].as_ptr(), payload.as_ptr());
    }
}
