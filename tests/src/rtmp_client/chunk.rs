//! RTMP chunk stream for the test client: an encoder that always writes FMT 0 + FMT 3 (plus
//! raw header builders for malformed input) and a decoder for what the server sends.
//! Independent of `proto::rtmp::chunk` on purpose.

use std::collections::HashMap;

/// A reassembled RTMP message.
#[derive(Clone, Debug)]
pub struct Message {
    /// Chunk stream id it arrived on.
    pub csid: u32,
    /// Message type id (1 SetChunkSize, 4 user control, 8 audio, 9 video, 18 data, 20 command ...).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// Absolute timestamp in milliseconds.
    pub timestamp: u32,
    /// Message body.
    pub payload: Vec<u8>,
}

/// Appends a chunk basic header for `fmt` and `csid` (1, 2 or 3 bytes as the id requires).
pub fn basic_header(fmt: u8, csid: u32, out: &mut Vec<u8>) {
    let fmt = fmt << 6;
    match csid {
        2..=63 => out.push(fmt | csid as u8),
        64..=319 => out.extend([fmt, (csid - 64) as u8]),
        _ => {
            let id = csid - 64;
            out.extend([fmt | 1, (id & 0xff) as u8, (id >> 8) as u8]);
        }
    }
}

fn u24(v: u32) -> [u8; 3] {
    let b = v.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// Appends a FMT 0 message header with an explicit `length` (which need not match the
/// payload that follows: malformed input uses that).
pub fn fmt0_header(
    csid: u32,
    type_id: u8,
    stream_id: u32,
    timestamp: u32,
    length: u32,
    out: &mut Vec<u8>,
) {
    basic_header(0, csid, out);
    out.extend(u24(timestamp.min(0xff_ffff)));
    out.extend(u24(length));
    out.push(type_id);
    out.extend(stream_id.to_le_bytes());
    if timestamp >= 0xff_ffff {
        out.extend(timestamp.to_be_bytes());
    }
}

/// Appends `payload` as one message: a FMT 0 chunk, then FMT 3 continuation chunks of at most
/// `chunk_size` bytes, repeating the extended timestamp in each when it is used.
pub fn encode_message(
    msg: (u32, u8, u32, u32),
    payload: &[u8],
    chunk_size: usize,
    out: &mut Vec<u8>,
) {
    let (csid, type_id, stream_id, timestamp) = msg;
    fmt0_header(
        csid,
        type_id,
        stream_id,
        timestamp,
        payload.len() as u32,
        out,
    );
    let mut chunks = payload.chunks(chunk_size.max(1));
    if let Some(first) = chunks.next() {
        out.extend(first);
    }
    for chunk in chunks {
        basic_header(3, csid, out);
        if timestamp >= 0xff_ffff {
            out.extend(timestamp.to_be_bytes());
        }
        out.extend(chunk);
    }
}

#[derive(Default)]
struct ChunkState {
    timestamp: u32,
    delta: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    seen: bool,
    payload: Vec<u8>,
}

/// Reassembles messages from the server's chunk stream.
pub struct Decoder {
    /// The server's outbound chunk size (updated by its SetChunkSize).
    pub chunk_size: usize,
    max_message: usize,
    streams: HashMap<u32, ChunkState>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            chunk_size: 128,
            max_message: 64 << 20,
            streams: HashMap::new(),
        }
    }
}

impl Decoder {
    /// Consumes one chunk from the front of `buf` if it is complete; returns the message it
    /// completed, if any. `Ok(None)` with `buf` unchanged means more bytes are needed.
    pub fn decode(&mut self, buf: &mut Vec<u8>) -> Result<Option<Message>, String> {
        loop {
            let Some((consumed, message)) = self.decode_chunk(buf)? else {
                return Ok(None);
            };
            buf.drain(..consumed);
            if let Some(message) = message {
                if message.type_id == 1 && message.payload.len() >= 4 {
                    let size = u32::from_be_bytes(message.payload[..4].try_into().expect("4"));
                    self.chunk_size = (size & 0x7fff_ffff).max(1) as usize;
                }
                return Ok(Some(message));
            }
        }
    }

    fn decode_chunk(&mut self, buf: &[u8]) -> Result<Option<(usize, Option<Message>)>, String> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 if buf.len() >= 2 => (64 + buf[1] as u32, 2),
            1 if buf.len() >= 3 => (64 + buf[1] as u32 + ((buf[2] as u32) << 8), 3),
            0 | 1 => return Ok(None),
            id => (id as u32, 1),
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        if buf.len() < pos + header_len {
            return Ok(None);
        }
        let h = &buf[pos..pos + header_len];
        pos += header_len;
        let state = self.streams.entry(csid).or_default();
        if fmt != 0 && !state.seen {
            return Err(format!(
                "server sent FMT {fmt} on csid {csid} with no prior header"
            ));
        }
        let read24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
        let mut new = state.clone_header();
        if fmt <= 2 {
            new.extended = read24(h) == 0xff_ffff;
        }
        if fmt <= 1 {
            new.length = read24(&h[3..]) as usize;
            new.type_id = h[6];
        }
        if fmt == 0 {
            new.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
        }
        let ext = if new.extended {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let v = u32::from_be_bytes(buf[pos..pos + 4].try_into().expect("4"));
            pos += 4;
            Some(v)
        } else {
            None
        };
        let starting = state.payload.is_empty();
        let field = |v: u32| ext.unwrap_or(v);
        match fmt {
            0 => {
                new.timestamp = field(read24(h));
                new.delta = 0;
            }
            1 | 2 => {
                new.delta = field(read24(h));
                new.timestamp = state.timestamp.wrapping_add(new.delta);
            }
            _ if starting => new.timestamp = state.timestamp.wrapping_add(state.delta),
            _ => {}
        }
        if new.length > self.max_message {
            return Err(format!("server message of {} bytes", new.length));
        }
        let want = (new.length - state.payload.len().min(new.length)).min(self.chunk_size);
        if buf.len() < pos + want {
            return Ok(None);
        }
        // Commit the header only now that the whole chunk is here.
        state.timestamp = new.timestamp;
        state.delta = new.delta;
        state.length = new.length;
        state.type_id = new.type_id;
        state.stream_id = new.stream_id;
        state.extended = new.extended;
        state.seen = true;
        state.payload.extend_from_slice(&buf[pos..pos + want]);
        pos += want;
        if state.payload.len() < state.length {
            return Ok(Some((pos, None)));
        }
        let payload = std::mem::take(&mut state.payload);
        Ok(Some((
            pos,
            Some(Message {
                csid,
                type_id: state.type_id,
                stream_id: state.stream_id,
                timestamp: state.timestamp,
                payload,
            }),
        )))
    }
}

impl ChunkState {
    fn clone_header(&self) -> ChunkState {
        ChunkState {
            timestamp: self.timestamp,
            delta: self.delta,
            length: self.length,
            type_id: self.type_id,
            stream_id: self.stream_id,
            extended: self.extended,
            seen: self.seen,
            payload: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_fmt0_then_fmt3() {
        let mut out = Vec::new();
        encode_message((3, 20, 0, 0), &[0xaa; 130], 128, &mut out);
        let mut want = vec![0x03, 0, 0, 0, 0, 0, 130, 20, 0, 0, 0, 0];
        want.extend([0xaa; 128]);
        want.push(0xc3);
        want.extend([0xaa; 2]);
        assert_eq!(out, want);
    }

    #[test]
    fn extended_timestamp_repeats_in_fmt3() {
        let mut out = Vec::new();
        encode_message((6, 9, 1, 0x0100_0000), &[1; 5], 4, &mut out);
        assert_eq!(&out[1..4], &[0xff, 0xff, 0xff]);
        assert_eq!(&out[12..16], &[1, 0, 0, 0]);
        assert_eq!(&out[20..25], &[0xc6, 1, 0, 0, 0]);
    }

    #[test]
    fn decodes_split_at_every_offset() {
        let mut wire = Vec::new();
        encode_message((6, 9, 1, 0x0100_0000), &[7; 300], 128, &mut wire);
        encode_message((4, 8, 1, 40), &[8; 10], 128, &mut wire);
        for split in 0..wire.len() {
            let mut dec = Decoder::default();
            let mut buf = wire[..split].to_vec();
            let mut got = Vec::new();
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                got.push(m);
            }
            buf.extend(&wire[split..]);
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                got.push(m);
            }
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!((got[0].timestamp, got[0].payload.len()), (0x0100_0000, 300));
            assert_eq!((got[1].timestamp, got[1].type_id, got[1].csid), (40, 8, 4));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn basic_header_sizes() {
        let mut out = Vec::new();
        basic_header(1, 10, &mut out);
        basic_header(3, 64, &mut out);
        basic_header(0, 320, &mut out);
        assert_eq!(out, [0x4a, 0xc0, 0x00, 0x01, 0x00, 0x01]);
    }
}
