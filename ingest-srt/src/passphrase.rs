//! Passphrases per stream: `--passphrase` for every stream, or `--passphrase-file` with
//! `PATTERN PASSPHRASE` lines (first match wins), reloaded on SIGHUP. This is the point
//! where an auth policy can choose a stream's passphrase from the stream id instead.

use std::path::Path;

use proto::glob::Glob;
use proto::srt::crypto::Passphrase;

/// Patterns and their passphrases, in file order.
#[derive(Debug, Default)]
pub(crate) struct Book {
    entries: Vec<(Glob, Passphrase)>,
}

impl Book {
    /// Reads a passphrase file; the error names the line.
    pub(crate) fn load(path: &Path) -> Result<Book, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        Book::parse(&text)
    }

    fn parse(text: &str) -> Result<Book, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (pattern, pass) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("line {}: expected `PATTERN PASSPHRASE`", n + 1))?;
            let pass = Passphrase::new(pass.trim()).map_err(|e| format!("line {}: {e}", n + 1))?;
            entries.push((Glob::new(pattern), pass));
        }
        Ok(Book { entries })
    }

    /// The passphrase of `key`, if a pattern matches it.
    pub(crate) fn lookup(&self, key: &str) -> Option<&Passphrase> {
        self.entries
            .iter()
            .find(|(g, _)| g.matches(key))
            .map(|(_, p)| p)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins() {
        let b = Book::parse("# comment\nlive/cam* first-secret-1\n\n* catch-all-secret\n").unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b.lookup("live/cam1").unwrap().as_bytes(), b"first-secret-1");
        assert_eq!(b.lookup("other/x").unwrap().as_bytes(), b"catch-all-secret");
        assert!(Book::parse("live/x short").unwrap_err().contains("line 1"));
        assert!(Book::parse("lonely").unwrap_err().contains("line 1"));
    }
}
