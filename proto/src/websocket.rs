//! WebSocket (RFC 6455) for a server that streams binary data to its client and only
//! listens for control frames: the opening handshake's accept value, the headers of the
//! frames the server sends (unmasked), and a decoder for what the client sends (masked).
//!
//! The decoder never buffers a data frame: its payload is skipped as it arrives (the
//! server has no use for it), so a client cannot make the server hold more than one
//! control frame ([`MAX_CONTROL_PAYLOAD`] bytes) plus one frame header.

use bytes::{Buf, Bytes, BytesMut};
use sha1::{Digest, Sha1};

/// The value the handshake appends to the client's key (section 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The only version of the protocol (`Sec-WebSocket-Version`).
pub const VERSION: &str = "13";
/// Longest frame header the server writes (2 bytes, then a 64-bit length).
pub const MAX_HEADER: usize = 10;
/// Longest control-frame payload (section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Frame opcodes (section 5.2).
pub mod opcode {
    /// A continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// The closing handshake.
    pub const CLOSE: u8 = 0x8;
    /// A ping (to be answered with a pong carrying the same payload).
    pub const PING: u8 = 0x9;
    /// A pong.
    pub const PONG: u8 = 0xa;
}

/// Close status codes the server sends (section 7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (the stream ended, the player was kicked).
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
}

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key`: base64 of the SHA-1 of the
/// key followed by the protocol's GUID.
pub fn accept_key(client_key: &[u8]) -> String {
    use base64::Engine;
    let mut h = Sha1::new();
    h.update(client_key);
    h.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Whether `key` is a valid `Sec-WebSocket-Key`: base64 of 16 bytes (section 4.1).
pub fn valid_client_key(key: &[u8]) -> bool {
    use base64::Engine;
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16)
}

/// Writes the header of an unmasked, final frame of `opcode` carrying `len` payload bytes
/// into the front of `out`; returns its length (2, 4 or 10).
pub fn frame_header(opcode: u8, len: u64, out: &mut [u8; MAX_HEADER]) -> usize {
    out[0] = 0x80 | (opcode & 0x0f);
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= u64::from(u16::MAX) {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len & (u64::MAX >> 1)).to_be_bytes());
        10
    }
}

/// A close frame (unmasked) with `code` and no reason.
pub fn close_frame(code: u16) -> [u8; 4] {
    let c = code.to_be_bytes();
    [0x80 | opcode::CLOSE, 2, c[0], c[1]]
}

/// What the client sent, as far as the server cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// A ping: answer with a pong carrying this payload.
    Ping(Bytes),
    /// A pong (unsolicited or not): nothing to do.
    Pong,
    /// The client starts the closing handshake, with its status code if it gave one.
    Close(Option<u16>),
    /// A data frame (text, binary or continuation) of `len` bytes; its payload is skipped.
    Data {
        /// The frame's opcode.
        opcode: u8,
        /// Its payload length.
        len: u64,
    },
}

/// Why the client's bytes are not WebSocket; the connection is to be closed with
/// [`close_code::PROTOCOL_ERROR`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// Client frames must be masked (section 5.1).
    #[error("websocket: unmasked frame from the client")]
    Unmasked,
    /// RSV bits set without a negotiated extension.
    #[error("websocket: reserved bits set ({0:#x})")]
    Reserved(u8),
    /// An opcode RFC 6455 does not define.
    #[error("websocket: unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame longer than 125 bytes or fragmented.
    #[error("websocket: control frame {opcode:#x} of {len} bytes, or not final")]
    BadControl {
        /// The opcode.
        opcode: u8,
        /// The announced length.
        len: u64,
    },
    /// A 64-bit length with its most significant bit set, or one not in minimal form.
    #[error("websocket: invalid payload length")]
    BadLength,
    /// A close frame with a one-byte payload.
    #[error("websocket: close frame with a one-byte payload")]
    BadClose,
}

/// Decodes the client's frames from a byte stream. Feed it what the socket gave with
/// [`Decoder::decode`] until it returns `None`.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Payload bytes of the current data frame still to be skipped.
    skip: u64,
}

impl Decoder {
    /// The next frame whose header (and, for a control frame, payload) is complete in
    /// `buf`, consuming it; `Ok(None)` when more bytes are needed. Data payloads are
    /// consumed and dropped as they come, so `buf` never holds one.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ClientFrame>, WsError> {
        if self.skip > 0 {
            let n = self.skip.min(buf.len() as u64) as usize;
            buf.advance(n);
            self.skip -= n as u64;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let fin = b0 & 0x80 != 0;
        let rsv = b0 & 0x70;
        let op = b0 & 0x0f;
        if rsv != 0 {
            return Err(WsError::Reserved(rsv));
        }
        if b1 & 0x80 == 0 {
            return Err(WsError::Unmasked);
        }
        let (len, at) = match b1 & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                let len = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
                if len < 126 {
                    return Err(WsError::BadLength);
                }
                (len, 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut l = [0; 8];
                l.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(l);
                if len >> 63 != 0 || len <= u64::from(u16::MAX) {
                    return Err(WsError::BadLength);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let control = match op {
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => false,
            opcode::CLOSE | opcode::PING | opcode::PONG => true,
            other => return Err(WsError::UnknownOpcode(other)),
        };
        if control && (!fin || len > MAX_CONTROL_PAYLOAD as u64) {
            return Err(WsError::BadControl { opcode: op, len });
        }
        let header = at + 4;
        if !control {
            if buf.len() < header {
                return Ok(None);
            }
            buf.advance(header);
            let n = len.min(buf.len() as u64) as usize;
            buf.advance(n);
            self.skip = len - n as u64;
            return Ok(Some(ClientFrame::Data { opcode: op, len }));
        }
        let total = header + len as usize;
        if buf.len() < total {
            return Ok(None);
        }
        let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        let mut frame = buf.split_to(total);
        frame.advance(header);
        for (i, b) in frame.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        Ok(Some(match op {
            opcode::PING => ClientFrame::Ping(frame.freeze()),
            opcode::PONG => ClientFrame::Pong,
            _ => match frame.len() {
                0 => ClientFrame::Close(None),
                1 => return Err(WsError::BadClose),
                _ => ClientFrame::Close(Some(u16::from_be_bytes([frame[0], frame[1]]))),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_of_the_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(valid_client_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!valid_client_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!valid_client_key(b"not base64 at all, 24 ch"));
    }

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        let mut h = [0; MAX_HEADER];
        assert_eq!(frame_header(opcode::BINARY, 125, &mut h), 2);
        assert_eq!(h[..2], [0x82, 125]);
        assert_eq!(frame_header(opcode::BINARY, 126, &mut h), 4);
        assert_eq!(h[..4], [0x82, 126, 0, 126]);
        assert_eq!(frame_header(opcode::BINARY, 65_536, &mut h), 10);
        assert_eq!(h, [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(close_frame(1001), [0x88, 2, 0x03, 0xe9]);
    }

    /// RFC 6455 section 5.7: a masked "Hello" ping, a masked close with 1000, and a
    /// binary frame whose payload is skipped.
    #[test]
    fn decodes_masked_control_frames_and_skips_data() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(
            &[
                0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, // ping
                0x82, 0x83, 1, 2, 3, 4, 9, 9, 9, // binary, 3 bytes
                0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8, // close 1000
            ][..],
        );
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(ClientFrame::Ping(Bytes::from_static(b"Hello"))))
        );
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(ClientFrame::Data {
                opcode: opcode::BINARY,
                len: 3
            }))
        );
        assert_eq!(d.decode(&mut buf), Ok(Some(ClientFrame::Close(Some(1000)))));
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn data_payload_is_skipped_across_reads() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&[0x82, 0xfe, 0x01, 0x00, 0, 0, 0, 0, 1, 2][..]);
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(ClientFrame::Data {
                opcode: opcode::BINARY,
                len: 256
            }))
        );
        assert!(buf.is_empty());
        buf.extend_from_slice(&[0; 254]);
        buf.extend_from_slice(&[0x8a, 0x80, 0, 0, 0, 0]);
        assert_eq!(d.decode(&mut buf), Ok(Some(ClientFrame::Pong)));
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_what_rfc_6455_forbids() {
        let cases: &[(&[u8], WsError)] = &[
            (&[0x82, 0x01, 0], WsError::Unmasked),
            (&[0xc2, 0x80, 0, 0, 0, 0], WsError::Reserved(0x40)),
            (&[0x83, 0x80, 0, 0, 0, 0], WsError::UnknownOpcode(3)),
            (
                &[0x89, 0xfe, 0, 126],
                WsError::BadControl {
                    opcode: opcode::PING,
                    len: 126,
                },
            ),
            (
                &[0x09, 0x80, 0, 0, 0, 0],
                WsError::BadControl {
                    opcode: opcode::PING,
                    len: 0,
                },
            ),
            (&[0x82, 0xfe, 0, 5], WsError::BadLength),
            (&[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0], WsError::BadLength),
            (&[0x88, 0x81, 0, 0, 0, 0, 3], WsError::BadClose),
        ];
        for (bytes, want) in cases {
            let mut buf = BytesMut::from(*bytes);
            assert_eq!(
                Decoder::default().decode(&mut buf),
                Err(want.clone()),
                "{bytes:x?}"
            );
        }
    }
}
