//! Secrets (tokens, passwords, passphrases) that never print and compare in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret value. `Debug` and `Display` print `<redacted>`, so a secret inside a
/// logged structure or an error stays hidden.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the few places that must send it on (a callback body, an
    /// SRT key derivation).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `offered` equals this secret. Both sides are hashed first and the digests
    /// compared in constant time, so neither the content nor the length of the secret
    /// shows in the time taken.
    pub fn matches(&self, offered: &str) -> bool {
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(offered.as_bytes());
        a.ct_eq(&b).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_and_hides() {
        let s = Secret::new("s3cret");
        assert!(s.matches("s3cret"));
        assert!(!s.matches("s3cre"));
        assert!(!s.matches("s3cret "));
        assert!(!s.matches(""));
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    }
}
