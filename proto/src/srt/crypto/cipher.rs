//! The primitives: KEK derivation, key wrap, and the per-packet AES-CTR keystream.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::{Aes128, Aes192, Aes256};
use ctr::cipher::StreamCipherCoreWrapper as Ctr;
use ctr::flavors::Ctr128BE;
use ctr::CtrCore;

use super::{CryptoError, KeyLength, Passphrase};

/// PBKDF2 iteration count fixed by the protocol.
pub const PBKDF2_ITERATIONS: u32 = 2048;

/// The KEK for `salt` (the KM salt; PBKDF2 takes its last 8 bytes).
pub fn derive_kek(passphrase: &Passphrase, salt: &[u8], len: KeyLength) -> Vec<u8> {
    let mut kek = vec![0u8; len.bytes()];
    let pbkdf2_salt = &salt[salt.len().saturating_sub(8)..];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(
        passphrase.as_bytes(),
        pbkdf2_salt,
        PBKDF2_ITERATIONS,
        &mut kek,
    );
    kek
}

fn kw_error(_: aes_kw::Error) -> CryptoError {
    CryptoError::BadSecret
}

/// Wraps `keys` (one or two SEKs concatenated) under `kek` (RFC 3394).
pub fn wrap_keys(kek: &[u8], keys: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; keys.len() + 8];
    match kek.len() {
        16 => aes_kw::KekAes128::try_from(kek)
            .map_err(kw_error)?
            .wrap(keys, &mut out),
        24 => aes_kw::KekAes192::try_from(kek)
            .map_err(kw_error)?
            .wrap(keys, &mut out),
        32 => aes_kw::KekAes256::try_from(kek)
            .map_err(kw_error)?
            .wrap(keys, &mut out),
        _ => return Err(CryptoError::Malformed("KEK length")),
    }
    .map_err(|_| CryptoError::Malformed("key length for wrapping"))?;
    Ok(out)
}

/// Unwraps; [`CryptoError::BadSecret`] when the integrity check fails.
pub fn unwrap_keys(kek: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if wrapped.len() < 24 || wrapped.len() & 7 != 0 {
        return Err(CryptoError::Malformed("wrap length"));
    }
    let mut out = vec![0u8; wrapped.len() - 8];
    match kek.len() {
        16 => aes_kw::KekAes128::try_from(kek)
            .map_err(kw_error)?
            .unwrap(wrapped, &mut out),
        24 => aes_kw::KekAes192::try_from(kek)
            .map_err(kw_error)?
            .unwrap(wrapped, &mut out),
        32 => aes_kw::KekAes256::try_from(kek)
            .map_err(kw_error)?
            .unwrap(wrapped, &mut out),
        _ => return Err(CryptoError::Malformed("KEK length")),
    }
    .map_err(kw_error)?;
    Ok(out)
}

/// A stream encrypting key with its expanded AES key schedule and the KM salt.
#[derive(Clone)]
pub struct Sek {
    cipher: AnyAes,
    raw: Vec<u8>,
    salt: [u8; 16],
}

#[derive(Clone)]
enum AnyAes {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl std::fmt::Debug for Sek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sek({} bytes)", self.raw.len())
    }
}

impl Sek {
    /// A key from raw bytes (16, 24 or 32) and the salt it is used with.
    pub fn new(raw: &[u8], salt: [u8; 16]) -> Result<Self, CryptoError> {
        let cipher = match KeyLength::from_bytes(raw.len()) {
            Some(KeyLength::Aes128) => AnyAes::A128(Aes128::new_from_slice(raw).expect("16")),
            Some(KeyLength::Aes192) => AnyAes::A192(Aes192::new_from_slice(raw).expect("24")),
            Some(KeyLength::Aes256) => AnyAes::A256(Aes256::new_from_slice(raw).expect("32")),
            None => return Err(CryptoError::Malformed("key length")),
        };
        Ok(Sek {
            cipher,
            raw: raw.to_vec(),
            salt,
        })
    }

    /// The raw key bytes (for wrapping).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The KM salt this key is used with.
    pub fn salt(&self) -> [u8; 16] {
        self.salt
    }

    /// Encrypts or decrypts (the same operation) the payload of packet `seq` in place.
    pub fn apply(&self, seq: u32, payload: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt[..14]);
        for (b, s) in iv[10..14].iter_mut().zip(seq.to_be_bytes()) {
            *b ^= s;
        }
        // The key schedule is expanded once per key; each packet only clones it.
        match &self.cipher {
            AnyAes::A128(c) => Ctr::from_core(CtrCore::<Aes128, Ctr128BE>::inner_iv_init(
                c.clone(),
                (&iv).into(),
            ))
            .apply_keystream(payload),
            AnyAes::A192(c) => Ctr::from_core(CtrCore::<Aes192, Ctr128BE>::inner_iv_init(
                c.clone(),
                (&iv).into(),
            ))
            .apply_keystream(payload),
            AnyAes::A256(c) => Ctr::from_core(CtrCore::<Aes256, Ctr128BE>::inner_iv_init(
                c.clone(),
                (&iv).into(),
            ))
            .apply_keystream(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3394_vector() {
        // RFC 3394 section 4.1: 128-bit key data with a 128-bit KEK.
        let kek = hex("000102030405060708090A0B0C0D0E0F");
        let key = hex("00112233445566778899AABBCCDDEEFF");
        let wrapped = hex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5");
        assert_eq!(wrap_keys(&kek, &key).unwrap(), wrapped);
        assert_eq!(unwrap_keys(&kek, &wrapped).unwrap(), key);
        let mut bad = wrapped.clone();
        bad[3] ^= 1;
        assert_eq!(unwrap_keys(&kek, &bad), Err(CryptoError::BadSecret));
    }

    #[test]
    fn pbkdf2_sha1_vector() {
        // RFC 6070 test 2 ("password", "salt", 2 iterations) checks the primitive; the SRT
        // iteration count and salt slicing are checked against libsrt captures.
        let mut out = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(b"password", b"salt", 2, &mut out);
        assert_eq!(
            out.to_vec(),
            hex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
