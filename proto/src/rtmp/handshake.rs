//! The RTMP handshake (RTMP 1.0 section 5.2), simple and digest ("complex") forms, sans-IO.
//!
//! ```text
//!  client                                   server
//!    C0 C1  ---------------------------->   handle_input (needs 1 + 1536 bytes)
//!           <----------------------------   poll_transmit: S0 S1 S2
//!    C2     ---------------------------->   handle_input -> Done (later bytes are chunks)
//! ```
//!
//! The digest form, which Flash Player, FFmpeg and many hardware encoders send, hides an
//! HMAC-SHA256 digest in C1 at an offset derived from four bytes at 8..12 (schema 0) or
//! 772..776 (schema 1). When C1 carries a valid digest the server answers with a digest
//! in S1 (same schema) and an S2 whose last 32 bytes are keyed by C1's digest, which
//! clients such as FFmpeg verify; otherwise it falls back to echoing C1 as S2.
//!
//! Only version 3 (plain RTMP) is accepted: 6 and 8 announce RTMPE encryption, which is
//! not implemented, and anything else is not RTMP. The server does not verify C2, since
//! clients in the field fill it inconsistently and it proves nothing the TCP connection
//! does not. Randomness and the epoch come from the caller, so runs are reproducible.

use bytes::{Buf, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// Size of C1, S1, C2 and S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// Size of the random part of C1 and S1 (after time and version).
pub const RANDOM_SIZE: usize = 1528;
/// The only RTMP version accepted.
pub const RTMP_VERSION: u8 = 3;

const DIGEST_LEN: usize = 32;

/// The 32 bytes Adobe appends to both key texts.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const FP_TEXT: &[u8] = b"Genuine Adobe Flash Player 001";
const FMS_TEXT: &[u8] = b"Genuine Adobe Flash Media Server 001";

/// Version field the server puts in a digest S1 (clients only check that it is non-zero).
const SERVER_VERSION: [u8; 4] = [0x0D, 0x0E, 0x0A, 0x0D];
/// Version field the client puts in a digest C1 (Flash Player 9.0.124.2, as FFmpeg does).
const CLIENT_VERSION: [u8; 4] = [0x09, 0x00, 0x7C, 0x02];

/// Why a handshake failed. Connection-scoped.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// C0/S0 announced a version other than 3.
    #[error("unsupported RTMP version {got} (only 3; 6 and 8 are RTMPE, not supported)")]
    UnsupportedVersion {
        /// The version byte received.
        got: u8,
    },
    /// The server's S1 announced a digest but it does not verify.
    #[error("server S1 digest does not verify")]
    BadServerDigest,
    /// The server's S2 does not answer our C1 digest.
    #[error("server S2 does not answer the C1 digest")]
    BadS2Digest,
}

/// Progress of a handshake after some input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeStatus {
    /// More bytes are needed.
    NeedMore,
    /// The handshake is complete; any further bytes are RTMP chunks.
    Done,
}

/// Which handshake the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Plain echo handshake.
    Simple,
    /// Digest handshake with the digest-offset block at 8..12 (schema 0) or 772..776
    /// (schema 1).
    Digest {
        /// 0 or 1.
        schema: u8,
    },
}

fn key(text: &[u8], full: bool) -> Vec<u8> {
    let mut k = text.to_vec();
    if full {
        k.extend_from_slice(&KEY_TAIL);
    }
    k
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; DIGEST_LEN];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Where the digest sits in a 1536-byte C1/S1 for `schema`.
fn digest_offset(block: &[u8; HANDSHAKE_SIZE], schema: u8) -> usize {
    let base = if schema == 0 { 8 } else { 772 };
    let sum: usize = block[base..base + 4].iter().map(|&b| usize::from(b)).sum();
    sum % 728 + base + 4
}

/// The digest of `block` with the digest bytes themselves left out.
fn block_digest(block: &[u8; HANDSHAKE_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac(key, &[&block[..offset], &block[offset + DIGEST_LEN..]])
}

/// Finds the schema whose digest verifies under `key`, with the digest.
fn find_digest(block: &[u8; HANDSHAKE_SIZE], key: &[u8]) -> Option<(u8, [u8; DIGEST_LEN])> {
    [1u8, 0].into_iter().find_map(|schema| {
        let off = digest_offset(block, schema);
        let d = block_digest(block, off, key);
        (block[off..off + DIGEST_LEN] == d).then_some((schema, d))
    })
}

/// Builds a digest C1/S1: time, version, random, with the digest written at `schema`.
fn digest_block(
    epoch: u32,
    version: [u8; 4],
    random: &[u8; RANDOM_SIZE],
    schema: u8,
    key: &[u8],
) -> ([u8; HANDSHAKE_SIZE], [u8; DIGEST_LEN]) {
    let mut b = [0u8; HANDSHAKE_SIZE];
    b[..4].copy_from_slice(&epoch.to_be_bytes());
    b[4..8].copy_from_slice(&version);
    b[8..].copy_from_slice(random);
    let off = digest_offset(&b, schema);
    let d = block_digest(&b, off, key);
    b[off..off + DIGEST_LEN].copy_from_slice(&d);
    (b, d)
}

/// A C2/S2 answering the peer's digest `peer_digest`: filler whose last 32 bytes are an
/// HMAC keyed by HMAC(full key, peer digest).
fn digest_response(
    filler: &[u8; HANDSHAKE_SIZE],
    peer_digest: &[u8; DIGEST_LEN],
    full_key: &[u8],
) -> [u8; HANDSHAKE_SIZE] {
    let mut b = *filler;
    let k = hmac(full_key, &[peer_digest]);
    let split = HANDSHAKE_SIZE - DIGEST_LEN;
    let sig = hmac(&k, &[&b[..split]]);
    b[split..].copy_from_slice(&sig);
    b
}

fn plain_block(epoch: u32, random: &[u8; RANDOM_SIZE]) -> [u8; HANDSHAKE_SIZE] {
    let mut b = [0u8; HANDSHAKE_SIZE];
    b[..4].copy_from_slice(&epoch.to_be_bytes());
    b[8..].copy_from_slice(random);
    b
}

fn take_block(buf: &mut BytesMut) -> [u8; HANDSHAKE_SIZE] {
    let mut b = [0u8; HANDSHAKE_SIZE];
    buf.copy_to_slice(&mut b);
    b
}

#[derive(Debug)]
enum ServerPhase {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// The server side of the handshake.
///
/// Feed input with [`ServerHandshake::handle_input`], then drain output with
/// [`ServerHandshake::poll_transmit`] after every call.
#[derive(Debug)]
pub struct ServerHandshake {
    random: [u8; RANDOM_SIZE],
    epoch: u32,
    phase: ServerPhase,
    kind: Option<HandshakeKind>,
    pending: Vec<u8>,
}

impl ServerHandshake {
    /// A server handshake that will use `random` for S1/S2 and `epoch` as its time field.
    pub fn new(random: [u8; RANDOM_SIZE], epoch: u32) -> Self {
        ServerHandshake {
            random,
            epoch,
            phase: ServerPhase::AwaitC0C1,
            kind: None,
            pending: Vec::new(),
        }
    }

    /// Consumes handshake bytes from `buf`; any bytes after C2 are left in `buf` (they are
    /// RTMP chunks).
    pub fn handle_input(&mut self, buf: &mut BytesMut) -> Result<HandshakeStatus, HandshakeError> {
        if let ServerPhase::AwaitC0C1 = self.phase {
            if let Some(&v) = buf.first() {
                if v != RTMP_VERSION {
                    return Err(HandshakeError::UnsupportedVersion { got: v });
                }
            }
            if buf.len() < 1 + HANDSHAKE_SIZE {
                return Ok(HandshakeStatus::NeedMore);
            }
            buf.advance(1);
            let c1 = take_block(buf);
            self.answer(&c1);
            self.phase = ServerPhase::AwaitC2;
        }
        if let ServerPhase::AwaitC2 = self.phase {
            if buf.len() < HANDSHAKE_SIZE {
                return Ok(HandshakeStatus::NeedMore);
            }
            buf.advance(HANDSHAKE_SIZE);
            self.phase = ServerPhase::Done;
        }
        Ok(HandshakeStatus::Done)
    }

    fn answer(&mut self, c1: &[u8; HANDSHAKE_SIZE]) {
        self.pending.push(RTMP_VERSION);
        match find_digest(c1, &key(FP_TEXT, false)) {
            Some((schema, c1_digest)) => {
                self.kind = Some(HandshakeKind::Digest { schema });
                let (s1, _) = digest_block(
                    self.epoch,
                    SERVER_VERSION,
                    &self.random,
                    schema,
                    &key(FMS_TEXT, false),
                );
                self.pending.extend_from_slice(&s1);
                let mut filler = [0u8; HANDSHAKE_SIZE];
                filler[..4].copy_from_slice(&self.epoch.to_be_bytes());
                filler[4..8].copy_from_slice(&c1[..4]);
                filler[8..].copy_from_slice(&self.random);
                let s2 = digest_response(&filler, &c1_digest, &key(FMS_TEXT, true));
                self.pending.extend_from_slice(&s2);
            }
            None => {
                self.kind = Some(HandshakeKind::Simple);
                self.pending
                    .extend_from_slice(&plain_block(self.epoch, &self.random));
                self.pending.extend_from_slice(c1);
            }
        }
    }

    /// Appends S0+S1+S2 to `out` once C0C1 is in (and nothing at other times).
    pub fn poll_transmit(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(&self.pending);
        self.pending = Vec::new();
    }

    /// Which handshake the client used, once C1 has been read.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.kind
    }
}

#[derive(Debug)]
enum ClientPhase {
    Start,
    AwaitS0S1S2,
    Done,
}

/// The client side of the handshake (for test clients and relays).
///
/// Call [`ClientHandshake::poll_transmit`] first to get C0C1, then feed the server's bytes
/// to [`ClientHandshake::handle_input`] and poll again for C2.
#[derive(Debug)]
pub struct ClientHandshake {
    random: [u8; RANDOM_SIZE],
    epoch: u32,
    digest: bool,
    c1_digest: Option<[u8; DIGEST_LEN]>,
    phase: ClientPhase,
    pending: Vec<u8>,
}

impl ClientHandshake {
    /// A client handshake using `random` and `epoch`; `digest` selects the digest form
    /// (schema 0, as FFmpeg sends it) over the simple one.
    pub fn new(random: [u8; RANDOM_SIZE], epoch: u32, digest: bool) -> Self {
        let mut c = ClientHandshake {
            random,
            epoch,
            digest,
            c1_digest: None,
            phase: ClientPhase::Start,
            pending: vec![RTMP_VERSION],
        };
        if digest {
            let (c1, d) = digest_block(epoch, CLIENT_VERSION, &random, 0, &key(FP_TEXT, false));
            c.c1_digest = Some(d);
            c.pending.extend_from_slice(&c1);
        } else {
            c.pending.extend_from_slice(&plain_block(epoch, &random));
        }
        c
    }

    /// Consumes S0+S1+S2 from `buf`; later bytes are left in `buf`.
    pub fn handle_input(&mut self, buf: &mut BytesMut) -> Result<HandshakeStatus, HandshakeError> {
        match self.phase {
            ClientPhase::Done => return Ok(HandshakeStatus::Done),
            ClientPhase::Start | ClientPhase::AwaitS0S1S2 => {}
        }
        if let Some(&v) = buf.first() {
            if v != RTMP_VERSION {
                return Err(HandshakeError::UnsupportedVersion { got: v });
            }
        }
        if buf.len() < 1 + 2 * HANDSHAKE_SIZE {
            return Ok(HandshakeStatus::NeedMore);
        }
        buf.advance(1);
        let s1 = take_block(buf);
        let s2 = take_block(buf);
        let server_digest = if s1[4..8] != [0; 4] {
            find_digest(&s1, &key(FMS_TEXT, false)).map(|(_, d)| d)
        } else {
            None
        };
        let c2 = match (self.c1_digest, server_digest) {
            (Some(c1_digest), Some(s1_digest)) => {
                let mut filler = s2;
                let expected = digest_response(&filler, &c1_digest, &key(FMS_TEXT, true));
                if expected != s2 {
                    return Err(HandshakeError::BadS2Digest);
                }
                filler[..4].copy_from_slice(&self.epoch.to_be_bytes());
                filler[4..8].copy_from_slice(&s1[..4]);
                filler[8..].copy_from_slice(&self.random);
                digest_response(&filler, &s1_digest, &key(FP_TEXT, true))
            }
            (Some(_), None) if self.digest && s1[4..8] != [0; 4] => {
                return Err(HandshakeError::BadServerDigest)
            }
            _ => s1,
        };
        self.pending.extend_from_slice(&c2);
        self.phase = ClientPhase::Done;
        Ok(HandshakeStatus::Done)
    }

    /// Appends what is due: C0C1 at first, C2 once the server's answer is in.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) {
        if let ClientPhase::Start = self.phase {
            self.phase = ClientPhase::AwaitS0S1S2;
        }
        out.extend_from_slice(&self.pending);
        self.pending = Vec::new();
    }
}
