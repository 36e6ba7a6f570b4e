//! SRT payload encryption (draft section 6): AES-CTR with a stream encrypting key (SEK)
//! that travels wrapped (RFC 3394) under a key encrypting key (KEK) derived from the
//! passphrase with PBKDF2-HMAC-SHA1; even and odd keys let the sender rotate without a gap.
//!
//! ```text
//!  passphrase + KM salt --PBKDF2--> KEK --unwrap--> even/odd SEK --AES-CTR(salt, seq)--> payload
//! ```

mod cipher;
mod keys;

pub use cipher::{derive_kek, unwrap_keys, wrap_keys, Sek, PBKDF2_ITERATIONS};
pub use keys::{RxKeys, TxKeys};

/// A passphrase: 10 to 80 bytes, as libsrt requires.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    /// Validates the length.
    pub fn new(s: impl Into<String>) -> Result<Self, CryptoError> {
        let s = s.into();
        if !(10..=80).contains(&s.len()) {
            return Err(CryptoError::PassphraseLength(s.len()));
        }
        Ok(Passphrase(s))
    }

    /// The bytes fed to PBKDF2.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// Length of a stream encrypting key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLength {
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl KeyLength {
    /// From a length in bytes (16, 24, 32).
    pub fn from_bytes(n: usize) -> Option<Self> {
        match n {
            16 => Some(KeyLength::Aes128),
            24 => Some(KeyLength::Aes192),
            32 => Some(KeyLength::Aes256),
            _ => None,
        }
    }

    /// Length in bytes.
    pub fn bytes(self) -> usize {
        match self {
            KeyLength::Aes128 => 16,
            KeyLength::Aes192 => 24,
            KeyLength::Aes256 => 32,
        }
    }

    /// The handshake's encryption field value (2, 3, 4).
    pub fn handshake_field(self) -> u16 {
        match self {
            KeyLength::Aes128 => 2,
            KeyLength::Aes192 => 3,
            KeyLength::Aes256 => 4,
        }
    }
}

/// Why keys could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The passphrase is shorter than 10 or longer than 80 bytes.
    #[error("passphrase must be 10 to 80 bytes, got {0}")]
    PassphraseLength(usize),
    /// The key wrap's integrity check failed: the passphrase is wrong.
    #[error("the passphrase does not unwrap the stream key (wrong passphrase)")]
    BadSecret,
    /// The key material asks for something other than AES-CTR.
    #[error("unsupported cipher {0} (only AES-CTR is implemented)")]
    UnsupportedCipher(u8),
    /// The key material is inconsistent.
    #[error("malformed key material: {0}")]
    Malformed(&'static str),
}
