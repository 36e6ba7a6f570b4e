//! The key material message (draft 3.2.2): wrapped stream encrypting keys and their salt.

use bytes::{BufMut, Bytes, BytesMut};

use super::{be32, PacketError};

/// Which keys a key material message carries (its KK bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPresence {
    /// Only the even key.
    Even,
    /// Only the odd key.
    Odd,
    /// Both; the even key comes first in the wrap.
    Both,
}

impl KeyPresence {
    /// How many keys are wrapped.
    pub fn count(self) -> usize {
        if self == KeyPresence::Both {
            2
        } else {
            1
        }
    }

    fn bits(self) -> u8 {
        match self {
            KeyPresence::Even => 1,
            KeyPresence::Odd => 2,
            KeyPresence::Both => 3,
        }
    }
}

/// A key material message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Keys carried.
    pub keys: KeyPresence,
    /// Key encrypting key index; 0 is the stream's passphrase.
    pub keki: u32,
    /// 2 is AES-CTR (the only cipher implemented here).
    pub cipher: u8,
    /// Authentication: 0 (none) with AES-CTR.
    pub auth: u8,
    /// Stream encapsulation, 2 for MPEG-TS/SRT.
    pub stream_encapsulation: u8,
    /// The salt (16 bytes in practice).
    pub salt: Bytes,
    /// Length of one stream encrypting key: 16, 24 or 32.
    pub key_len: usize,
    /// The RFC 3394 wrap of the key(s): 8 + count * key_len bytes.
    pub wrapped: Bytes,
}

impl KeyMaterial {
    /// The cipher field value of AES-CTR.
    pub const CIPHER_AES_CTR: u8 = 2;

    /// Decodes a key material message (big-endian, as on the wire).
    pub fn decode(b: &Bytes) -> Result<Self, PacketError> {
        super::need("key material", 16, b.len())?;
        if b[0] != 0x12 {
            return Err(PacketError::BadKeyMaterial("not version 1, type 2"));
        }
        if b[1..3] != [0x20, 0x29] {
            return Err(PacketError::BadKeyMaterial("signature is not HAI"));
        }
        let keys = match b[3] & 3 {
            1 => KeyPresence::Even,
            2 => KeyPresence::Odd,
            3 => KeyPresence::Both,
            _ => return Err(PacketError::BadKeyMaterial("no key present")),
        };
        let salt_len = b[14] as usize * 4;
        let key_len = b[15] as usize * 4;
        if !matches!(key_len, 16 | 24 | 32) {
            return Err(PacketError::BadKeyMaterial(
                "key length is not 16, 24 or 32",
            ));
        }
        if salt_len != 16 {
            return Err(PacketError::BadKeyMaterial("salt is not 16 bytes"));
        }
        let wrap_len = 8 + keys.count() * key_len;
        let total = 16 + salt_len + wrap_len;
        super::need("key material", total, b.len())?;
        Ok(KeyMaterial {
            keys,
            keki: be32(b, 4),
            cipher: b[8],
            auth: b[9],
            stream_encapsulation: b[10],
            salt: b.slice(16..16 + salt_len),
            key_len,
            wrapped: b.slice(16 + salt_len..total),
        })
    }

    /// Encoded length in bytes (a multiple of 4).
    pub fn len(&self) -> usize {
        16 + self.salt.len() + self.wrapped.len()
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&[0x12, 0x20, 0x29, self.keys.bits()]);
        out.put_u32(self.keki);
        out.put_slice(&[self.cipher, self.auth, self.stream_encapsulation, 0, 0, 0]);
        out.put_u8((self.salt.len() / 4) as u8);
        out.put_u8((self.key_len / 4) as u8);
        out.put_slice(&self.salt);
        out.put_slice(&self.wrapped);
    }
}
