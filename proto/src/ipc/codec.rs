//! Length-prefixed framing: `u32le header_len, u32le payload_len, header, payload`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::header::{Header, PlayerProtocol, KNOWN_HEADERS};
use crate::media::{Frame, TrackKind};

/// Bytes before the header: the two little-endian lengths.
pub const PREFIX_LEN: usize = 8;
/// Default largest header accepted.
pub const DEFAULT_MAX_HEADER: u32 = 64 * 1024;
/// Default largest payload accepted (a frame of a very high bitrate stream).
pub const DEFAULT_MAX_PAYLOAD: u32 = 32 * 1024 * 1024;

/// A decoded message: its header and its payload, sliced out of the receive buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The payload (may be empty).
    pub payload: Bytes,
}

impl Message {
    /// The frame a `Frame` message carries, with its stream handle (the payload is
    /// shared, not copied); `None` for any other message.
    pub fn frame(&self) -> Option<(u32, Frame)> {
        match self.header {
            Header::Frame {
                stream,
                track,
                video,
                dts,
                cts,
                flags,
            } => Some((
                stream,
                Frame {
                    track,
                    kind: TrackKind::from_video(video),
                    dts,
                    cts,
                    flags,
                    payload: self.payload.clone(),
                },
            )),
            _ => None,
        }
    }
}

/// Errors of the framed format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// A length prefix above the configured limit.
    #[error("ipc {what} length {len} exceeds the limit {max}")]
    TooLarge {
        /// `header` or `payload`.
        what: &'static str,
        /// Declared length.
        len: u32,
        /// Limit.
        max: u32,
    },
    /// The header bytes are not a valid bincode `Header`.
    #[error("ipc header does not decode: {0}")]
    BadHeader(String),
    /// The header decoded but did not use all of its declared length.
    #[error("ipc header has {0} trailing bytes")]
    TrailingHeaderBytes(usize),
    /// The peer speaks another format version.
    #[error("ipc format version {got} is not {want}")]
    Version {
        /// Version received.
        got: u16,
        /// Version spoken here.
        want: u16,
    },
}

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::NoLimit,
>;

fn config() -> Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_little_endian()
}

/// Decodes a header with a bincode byte limit of at least `bytes.len()`. Without a limit,
/// bincode allocates a string's declared length before reading it, so a 20-byte header
/// declaring a 1 TiB string would abort the process. A valid header never reads more than
/// its own length; the buckets keep the limit within 16 times of it.
fn decode_header(bytes: &[u8]) -> Result<(Header, usize), bincode::error::DecodeError> {
    fn limited<const N: usize>(
        bytes: &[u8],
    ) -> Result<(Header, usize), bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(bytes, config().with_limit::<N>())
    }
    match bytes.len() {
        0..=0x1_0000 => limited::<0x1_0000>(bytes),
        0x1_0001..=0x10_0000 => limited::<0x10_0000>(bytes),
        0x10_0001..=0x100_0000 => limited::<0x100_0000>(bytes),
        0x100_0001..=0x1000_0000 => limited::<0x1000_0000>(bytes),
        _ => limited::<{ u32::MAX as usize }>(bytes),
    }
}

/// Appends one message (header and payload) to `out`.
pub fn encode(header: &Header, payload: &[u8], out: &mut BytesMut) {
    let start = out.len();
    out.put_u32_le(0);
    out.put_u32_le(payload.len() as u32);
    let mut w = out.writer();
    // Serializing into a growable buffer cannot fail for these plain types.
    let n = bincode::serde::encode_into_std_write(header, &mut w, config())
        .expect("bincode into BytesMut");
    let out = w.into_inner();
    out[start..start + 4].copy_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends one `Frame` message carrying `frame` on stream handle `stream`.
pub fn encode_frame(stream: u32, frame: &Frame, out: &mut BytesMut) {
    encode(&Header::frame(stream, frame), &frame.payload, out);
}

/// Appends only the prefix and header of a message whose `payload_len` payload bytes the
/// caller writes next (for vectored writes that chain a shared payload after the header).
pub fn encode_header(header: &Header, payload_len: usize, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32_le(0);
    out.put_u32_le(payload_len as u32);
    let mut w = out.writer();
    let n = bincode::serde::encode_into_std_write(header, &mut w, config())
        .expect("bincode into BytesMut");
    let out = w.into_inner();
    out[start..start + 4].copy_from_slice(&(n as u32).to_le_bytes());
}

/// Encodes a header alone (no prefix), as it appears on the wire.
pub fn header_bytes(header: &Header) -> Vec<u8> {
    bincode::serde::encode_to_vec(header, config()).expect("bincode into Vec")
}

/// Incremental decoder with limits; feed it the receive buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_header: u32,
    max_payload: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_HEADER, DEFAULT_MAX_PAYLOAD)
    }
}

impl FrameDecoder {
    /// A decoder refusing headers above `max_header` and payloads above `max_payload` bytes.
    pub fn new(max_header: u32, max_payload: u32) -> Self {
        FrameDecoder {
            max_header,
            max_payload,
        }
    }

    /// Takes one whole message off the front of `buf`, or returns `Ok(None)` when more bytes
    /// are needed. The payload is split off `buf` without copying. Whole messages of a
    /// header variant this version does not know (index [`KNOWN_HEADERS`] or above: a
    /// newer sender's) are dropped on the way, as FORMAT.md section 3 tells readers to.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Message>, IpcError> {
        loop {
            match self.decode_one(buf)? {
                Decoded::Message(m) => return Ok(Some(m)),
                Decoded::Partial => return Ok(None),
                Decoded::Skipped => {}
            }
        }
    }

    fn decode_one(&self, buf: &mut BytesMut) -> Result<Decoded, IpcError> {
        if buf.len() < PREFIX_LEN {
            return Ok(Decoded::Partial);
        }
        let hlen = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
        let plen = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
        if hlen > self.max_header {
            return Err(IpcError::TooLarge {
                what: "header",
                len: hlen,
                max: self.max_header,
            });
        }
        if plen > self.max_payload {
            return Err(IpcError::TooLarge {
                what: "payload",
                len: plen,
                max: self.max_payload,
            });
        }
        let total = PREFIX_LEN + hlen as usize + plen as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(Decoded::Partial);
        }
        let header_bytes = &buf[PREFIX_LEN..PREFIX_LEN + hlen as usize];
        if let Some(index) = header_bytes.get(..4) {
            if u32::from_le_bytes(index.try_into().expect("4 bytes")) >= KNOWN_HEADERS {
                buf.advance(total);
                return Ok(Decoded::Skipped);
            }
        }
        let (header, used) =
            decode_header(header_bytes).map_err(|e| IpcError::BadHeader(e.to_string()))?;
        if used != hlen as usize {
            return Err(IpcError::TrailingHeaderBytes(hlen as usize - used));
        }
        buf.advance(PREFIX_LEN + hlen as usize);
        let payload = buf.split_to(plen as usize).freeze();
        Ok(Decoded::Message(Message { header, payload }))
    }
}

/// What one step of [`FrameDecoder::decode`] found at the front of the buffer.
enum Decoded {
    Message(Message),
    /// A whole message of an unknown header variant, now dropped.
    Skipped,
    /// Not a whole message yet.
    Partial,
}

/// Checks a received hello against this side's version.
pub fn check_hello(header: &Header) -> Result<super::header::Role, IpcError> {
    match header {
        Header::Hello { version, role, .. } if *version == super::header::FORMAT_VERSION => {
            Ok(*role)
        }
        Header::Hello { version, .. } => Err(IpcError::Version {
            got: *version,
            want: super::header::FORMAT_VERSION,
        }),
        other => Err(IpcError::BadHeader(format!(
            "expected Hello, got {other:?}"
        ))),
    }
}

/// Appends a subscriber's opening: `Hello` (role `Subscriber`, `name`) and its
/// `Subscribe` (FORMAT.md section 7, step 3).
pub fn encode_subscription(
    name: String,
    patterns: Vec<String>,
    media: bool,
    events: bool,
    out: &mut BytesMut,
) {
    encode_subscriber_hello(name, out);
    encode_subscribe(patterns, media, events, out);
}

/// Appends the opening of a subscription that serves one player of `key` (FORMAT.md
/// section 7, step 3): `Hello` (role `Subscriber`, `name`), [`Header::Player`], and a
/// `Subscribe` to the media of `key` alone.
pub fn encode_player_subscription(
    name: String,
    key: String,
    protocol: PlayerProtocol,
    conn_id: u64,
    remote: String,
    out: &mut BytesMut,
) {
    encode_subscriber_hello(name, out);
    let patterns = vec![key.clone()];
    let player = Header::Player {
        key,
        protocol,
        conn_id,
        remote,
    };
    encode(&player, &[], out);
    encode_subscribe(patterns, true, false, out);
}

fn encode_subscriber_hello(name: String, out: &mut BytesMut) {
    let hello = Header::Hello {
        version: super::header::FORMAT_VERSION,
        role: super::header::Role::Subscriber,
        name,
    };
    encode(&hello, &[], out);
}

fn encode_subscribe(patterns: Vec<String>, media: bool, events: bool, out: &mut BytesMut) {
    let subscribe = Header::Subscribe {
        patterns,
        media,
        events,
    };
    encode(&subscribe, &[], out);
}
