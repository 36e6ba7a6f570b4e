//! Stream key patterns (`--match live/*`): `*` stands for any run of characters (slashes
//! included), everything else matches itself.
//!
//! Matching is linear in the key whatever the pattern: the pattern is split at its stars
//! once; the first piece must be a prefix, the last a suffix, and each piece between them
//! is taken at its leftmost occurrence after the previous one. Leftmost is always right
//! for star-only patterns (a later occurrence leaves less key for the remaining pieces),
//! so nothing is ever retried and a hostile key or pattern cannot make it backtrack.

/// A compiled key pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// The pieces between the stars; one piece means no star at all.
    pieces: Vec<String>,
}

impl Glob {
    /// Compiles `pattern`. Every string is a valid pattern; the empty one matches only the
    /// empty key.
    pub fn new(pattern: &str) -> Glob {
        Glob {
            pieces: pattern.split('*').map(str::to_owned).collect(),
        }
    }

    /// Whether `key` matches the whole pattern.
    pub fn matches(&self, key: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return key.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return key == first;
        };
        if key.len() < first.len() + last.len() || !key.starts_with(first.as_str()) {
            return false;
        }
        if !key.ends_with(last.as_str()) {
            return false;
        }
        let mut inner = &key[first.len()..key.len() - last.len()];
        for piece in middle {
            match inner.find(piece.as_str()) {
                Some(at) => inner = &inner[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Whether `key` matches `pattern` (`*` = any run of characters).
pub fn matches(pattern: &str, key: &str) -> bool {
    Glob::new(pattern).matches(key)
}

/// Whether `key` is selected by `patterns`: an empty list selects every key, otherwise
/// any one pattern matching selects it.
pub fn any_matches(patterns: &[Glob], key: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(key))
}
