//! A ring entry's RTMP chunks, built once and queued for every player without a copy.
//!
//! A message that fits one chunk is one buffer, and the frame the ring keeps for HTTP
//! players and subscribers is a slice of it. A longer message (most video frames at the
//! default chunk size) is not copied at all: the ring holds the frame's payload once, and
//! the chunks are its slices between shared chunk headers. So a stream holds its GOP once,
//! not once as frames and again as serialized chunks.

use bytes::{Bytes, BytesMut};
use proto::rtmp::chunk::{write_continuation_header, write_fmt0_header, write_fmt0_parts};

/// The largest message body RTMP's 24-bit length field can announce.
const MAX_MESSAGE: usize = 0xFF_FFFF;

/// Room a scratch buffer is grown by: messages are split off it, so it is reallocated
/// once per this many bytes of headers and one-chunk messages rather than per message.
/// What it pins is released with the ring entries, which go in order.
const SCRATCH_ROOM: usize = 16 * 1024;

/// One message's chunks for the shared message stream, as buffers to queue in order.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    /// The first chunk's header and the first bytes of the body (the whole message when
    /// `rest` is empty).
    first: Bytes,
    /// The body's bytes after `first`, where they already were (a frame's payload).
    rest: Bytes,
    /// The header of each further chunk (FMT 3, and the extended timestamp if any).
    cont: Bytes,
    /// Bytes of `rest` in the first chunk.
    room: usize,
    /// The chunk size.
    chunk: usize,
}

/// A message's wire form and the frame payload the ring keeps beside it.
#[derive(Debug)]
pub struct Built {
    /// The chunks.
    pub wire: Wire,
    /// The payload to keep: a slice of the wire bytes when they hold it whole, else the
    /// payload as it came (which the wire then slices).
    pub payload: Bytes,
}

impl Wire {
    /// A message already serialized into one buffer.
    pub fn one(bytes: Bytes) -> Wire {
        Wire {
            first: bytes,
            ..Wire::default()
        }
    }

    /// Serializes the message whose body is `head` followed by `payload[skip..]` at
    /// `chunk_size` (see [`write_fmt0_parts`]): copied into one buffer when it fits one
    /// chunk, else left in `payload` behind shared chunk headers.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        (csid, ts, type_id, stream_id): (u32, u32, u8, u32),
        head: &[u8],
        payload: &Bytes,
        skip: usize,
        chunk_size: u32,
        scratch: &mut BytesMut,
    ) -> Built {
        let chunk = chunk_size.max(1) as usize;
        let head = &head[..head.len().min(MAX_MESSAGE)];
        let body = payload.slice(skip.min(payload.len())..);
        let body = body.slice(..body.len().min(MAX_MESSAGE - head.len()));
        let len = head.len() + body.len();
        if len <= chunk || head.len() >= chunk {
            let out = room(scratch, len + 16 + (len / chunk) * 5);
            write_fmt0_parts(csid, ts, type_id, stream_id, head, &body, chunk_size, out);
            let first = out.split().freeze();
            // One chunk: the payload is the end of the buffer (unless bytes were skipped
            // into the header or cut by the length field).
            let payload = if len <= chunk && skip == 0 && body.len() == payload.len() {
                first.slice(first.len() - body.len()..)
            } else {
                payload.clone()
            };
            return Built {
                wire: Wire::one(first),
                payload,
            };
        }
        let out = room(scratch, head.len() + 32);
        let extended = write_fmt0_header(csid, ts, type_id, stream_id, len, out);
        out.extend_from_slice(head);
        let first_len = out.len();
        write_continuation_header(csid, extended, out);
        let heads = out.split().freeze();
        Built {
            wire: Wire {
                first: heads.slice(..first_len),
                cont: heads.slice(first_len..),
                rest: body,
                room: chunk - head.len(),
                chunk,
            },
            payload: payload.clone(),
        }
    }

    /// Whether there is nothing to write (entries that are not messages).
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.first.len() + self.rest.len() + self.cont.len() * self.continuations()
    }

    /// Bytes held for this message alone (what is not a slice of the payload).
    pub fn own_bytes(&self) -> usize {
        self.first.len() + self.cont.len()
    }

    fn continuations(&self) -> usize {
        self.rest
            .len()
            .saturating_sub(self.room)
            .div_ceil(self.chunk.max(1))
    }

    /// The first buffer: the FMT 0 header comes first (a player on another message stream
    /// id rewrites it).
    pub fn first(&self) -> &Bytes {
        &self.first
    }

    /// Hands the buffers after [`Wire::first`] to `f`, in order (reference counts, no
    /// copies).
    pub fn for_each_rest(&self, mut f: impl FnMut(Bytes)) {
        let len = self.rest.len();
        if len == 0 {
            return;
        }
        let mut at = self.room.min(len);
        if at > 0 {
            f(self.rest.slice(..at));
        }
        while at < len {
            let end = (at + self.chunk).min(len);
            f(self.cont.clone());
            f(self.rest.slice(at..end));
            at = end;
        }
    }

    /// The whole message in one buffer (tests and rare per-player copies).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = self.first.to_vec();
        self.for_each_rest(|b| v.extend_from_slice(&b));
        v
    }
}

/// `scratch`, emptied by the last split, with room for `n` bytes.
fn room(scratch: &mut BytesMut, n: usize) -> &mut BytesMut {
    if scratch.capacity() - scratch.len() < n {
        scratch.reserve(n.max(SCRATCH_ROOM));
    }
    scratch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contiguous(head: &[u8], body: &[u8], chunk: u32, ts: u32) -> Vec<u8> {
        let mut out = BytesMut::new();
        write_fmt0_parts(6, ts, 9, 1, head, body, chunk, &mut out);
        out.to_vec()
    }

    #[test]
    fn pieces_are_the_contiguous_chunks() {
        let payload = Bytes::from((0..=255u8).cycle().take(1000).collect::<Vec<u8>>());
        for (chunk, ts) in [
            (128, 0),
            (128, 0x0100_0000),
            (995, 7),
            (996, 7),
            (1005, 7),
            (4096, 1),
        ] {
            let built = Wire::build(
                (6, ts, 9, 1),
                &[0x27, 1, 0, 0, 0],
                &payload,
                0,
                chunk,
                &mut BytesMut::new(),
            );
            assert_eq!(
                built.wire.to_vec(),
                contiguous(&[0x27, 1, 0, 0, 0], &payload, chunk, ts),
                "chunk {chunk} ts {ts}"
            );
            assert_eq!(built.wire.len(), built.wire.to_vec().len());
            assert_eq!(built.payload, payload);
        }
    }

    #[test]
    fn the_payload_is_held_once() {
        let payload = Bytes::from(vec![7u8; 1000]);
        // Several chunks: the wire slices the payload and holds only headers.
        let b = Wire::build(
            (6, 0, 9, 1),
            &[0x27, 1, 0, 0, 0],
            &payload,
            0,
            128,
            &mut BytesMut::new(),
        );
        assert_eq!(b.wire.own_bytes(), 12 + 5 + 1);
        assert_eq!(b.payload.as_ptr(), payload.as_ptr());
        // One chunk: the payload kept is a slice of the wire bytes.
        let b = Wire::build(
            (6, 0, 9, 1),
            &[0x27, 1, 0, 0, 0],
            &payload,
            0,
            4096,
            &mut BytesMut::new(),
        );
        let first = b.wire.first();
        assert_eq!(b.payload, payload);
        assert_eq!(b.payload.as_ptr(), first[first.len() - 1000..].as_ptr());
        // A payload whose first byte went into the header is kept as it came.
        let b = Wire::build(
            (6, 0, 9, 1),
            &[0x90],
            &payload,
            1,
            4096,
            &mut BytesMut::new(),
        );
        assert_eq!(b.payload.as_ptr(), payload.as_ptr());
        assert_eq!(b.wire.len(), 12 + 1 + 999);
    }

    #[test]
    fn messages_built_on_one_scratch_stay_apart() {
        let mut scratch = BytesMut::new();
        let mut built = Vec::new();
        // Enough one-chunk and many-chunk messages to outgrow the scratch several times.
        for i in 0..200u32 {
            let len = [10, 1000, 5000][i as usize % 3];
            let payload = Bytes::from(vec![i as u8; len]);
            let head = [0x27, 1, 0, 0, i as u8];
            let b = Wire::build((6, i, 9, 1), &head, &payload, 0, 4096, &mut scratch);
            built.push((b, head, payload));
        }
        for (i, (b, head, payload)) in built.iter().enumerate() {
            assert_eq!(
                b.wire.to_vec(),
                contiguous(head, payload, 4096, i as u32),
                "message {i}"
            );
            assert_eq!(&b.payload, payload);
        }
    }
}
