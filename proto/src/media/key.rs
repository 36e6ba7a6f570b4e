//! Stream keys: the `app/name` a stream is registered under.

use std::fmt;

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// Why a string is not a valid stream key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The app or the stream name is empty.
    #[error("stream key has an empty app or name")]
    Empty,
    /// Longer than [`MAX_KEY_LEN`].
    #[error("stream key is {len} bytes, more than {max}")]
    TooLong {
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Contains a control character, a backslash, or a `..`/`.` path segment.
    #[error("stream key contains a forbidden character or path segment")]
    Forbidden,
}

/// A validated `app/name` stream key.
///
/// The app may contain `/` (as in `live/sub`); neither part may be empty, contain control
/// characters or backslashes, or have `.`/`..` segments, so a key is always safe to use in a
/// file name under a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey(String);

impl StreamKey {
    /// Builds a key from the RTMP app and the stream name (without its `?query`).
    pub fn new(app: &str, name: &str) -> Result<Self, KeyError> {
        let app = app.trim_matches('/');
        let name = name.trim_matches('/');
        if app.is_empty() || name.is_empty() {
            return Err(KeyError::Empty);
        }
        Self::parse(&format!("{app}/{name}"))
    }

    /// Parses `app/name`.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong {
                len: s.len(),
                max: MAX_KEY_LEN,
            });
        }
        let Some((app, name)) = s.rsplit_once('/') else {
            return Err(KeyError::Empty);
        };
        if app.is_empty() || name.is_empty() {
            return Err(KeyError::Empty);
        }
        if s.chars().any(|c| c.is_control() || c == '\\')
            || s.split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(KeyError::Forbidden);
        }
        Ok(StreamKey(s.to_owned()))
    }

    /// The whole key, `app/name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The app part (everything before the last `/`).
    pub fn app(&self) -> &str {
        self.0.rsplit_once('/').map(|(a, _)| a).unwrap_or("")
    }

    /// The stream name (after the last `/`).
    pub fn name(&self) -> &str {
        self.0.rsplit_once('/').map(|(_, n)| n).unwrap_or("")
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let k = StreamKey::new("live", "abc").unwrap();
        assert_eq!(k.as_str(), "live/abc");
        assert_eq!(k.app(), "live");
        assert_eq!(k.name(), "abc");
        assert_eq!(StreamKey::new("a/b", "c").unwrap().app(), "a/b");
        assert_eq!(StreamKey::new("", "c"), Err(KeyError::Empty));
        assert_eq!(StreamKey::new("live", ".."), Err(KeyError::Forbidden));
        assert_eq!(StreamKey::new("live", "a\nb"), Err(KeyError::Forbidden));
        assert_eq!(StreamKey::parse("live//x"), Err(KeyError::Forbidden));
        assert!(matches!(
            StreamKey::new("live", &"x".repeat(600)),
            Err(KeyError::TooLong { .. })
        ));
    }
}
