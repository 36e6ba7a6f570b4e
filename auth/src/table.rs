//! Secrets per key pattern and action: `token` mode (from flags) and `file` mode (a TOML or
//! JSON file).
//!
//! ```toml
//! [keys."live/cam1"]
//! publish = "s3cret"            # one secret ...
//! play = ["viewer1", "viewer2"] # ... or several
//!
//! [keys."live/*"]
//! play = "everyone"
//! ```
//!
//! The same as JSON: `{"keys": {"live/cam1": {"publish": "s3cret", "play": ["viewer1"]}}}`.
//! For a key, the most specific pattern (most literal characters) that has a secret for the
//! action decides; a key no pattern covers is refused.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::redact::hide_strings;
use crate::request::{Action, Denial};
use crate::secret::Secret;
use proto::glob;

/// Why a table could not be built. Never contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// TOML syntax or shape.
    #[error("TOML: {0}")]
    Toml(String),
    /// JSON syntax or shape.
    #[error("JSON: {0}")]
    Json(String),
    /// A secret is empty.
    #[error("key pattern {pattern:?}: empty {action} secret")]
    EmptySecret {
        /// The pattern.
        pattern: String,
        /// Which action's secret.
        action: Action,
    },
    /// A pattern is empty.
    #[error("empty key pattern")]
    EmptyPattern,
    /// A `PATTERN=SECRET` flag without `=`.
    #[error("expected PATTERN=SECRET")]
    NoEquals,
}

#[derive(Debug, Clone)]
struct Entry {
    pattern: String,
    publish: Vec<Secret>,
    play: Vec<Secret>,
}

impl Entry {
    fn secrets(&self, action: Action) -> &[Secret] {
        match action {
            Action::Publish => &self.publish,
            Action::Play => &self.play,
        }
    }
}

/// Secrets by key pattern.
#[derive(Debug, Clone, Default)]
pub struct Table {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    publish: Option<OneOrMany>,
    play: Option<OneOrMany>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    keys: BTreeMap<String, FileEntry>,
}

fn secrets(v: Option<OneOrMany>, pattern: &str, action: Action) -> Result<Vec<Secret>, TableError> {
    let list = match v {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    };
    if list.iter().any(String::is_empty) {
        return Err(TableError::EmptySecret {
            pattern: pattern.to_owned(),
            action,
        });
    }
    Ok(list.into_iter().map(Secret::new).collect())
}

impl Table {
    /// Parses an auth file; `json` picks the syntax.
    pub fn parse_file(text: &str, json: bool) -> Result<Table, TableError> {
        let file: File = if json {
            serde_json::from_str(text)
                .map_err(|e| TableError::Json(hide_strings(&e.to_string())))?
        } else {
            toml::from_str(text).map_err(|e| TableError::Toml(toml_message(&e)))?
        };
        let mut entries = Vec::with_capacity(file.keys.len());
        for (pattern, e) in file.keys {
            if pattern.is_empty() {
                return Err(TableError::EmptyPattern);
            }
            entries.push(Entry {
                publish: secrets(e.publish, &pattern, Action::Publish)?,
                play: secrets(e.play, &pattern, Action::Play)?,
                pattern,
            });
        }
        Ok(Table { entries })
    }

    /// Adds one `PATTERN=SECRET` for `action` (the `--publish-token`/`--play-token` flags).
    pub fn add_flag(&mut self, action: Action, flag: &str) -> Result<(), TableError> {
        let (pattern, secret) = flag.split_once('=').ok_or(TableError::NoEquals)?;
        if pattern.is_empty() {
            return Err(TableError::EmptyPattern);
        }
        if secret.is_empty() {
            return Err(TableError::EmptySecret {
                pattern: pattern.to_owned(),
                action,
            });
        }
        let entry = match self.entries.iter_mut().find(|e| e.pattern == pattern) {
            Some(e) => e,
            None => {
                self.entries.push(Entry {
                    pattern: pattern.to_owned(),
                    publish: Vec::new(),
                    play: Vec::new(),
                });
                self.entries.last_mut().expect("just pushed")
            }
        };
        match action {
            Action::Publish => entry.publish.push(Secret::new(secret)),
            Action::Play => entry.play.push(Secret::new(secret)),
        }
        Ok(())
    }

    /// How many patterns have a secret for `action`.
    pub fn len(&self, action: Action) -> usize {
        self.entries
            .iter()
            .filter(|e| !e.secrets(action).is_empty())
            .count()
    }

    /// Whether no pattern has any secret.
    pub fn is_empty(&self) -> bool {
        self.len(Action::Publish) + self.len(Action::Play) == 0
    }

    /// Decides `action` on `key` with the offered `token`.
    pub fn check(&self, action: Action, key: &str, token: Option<&str>) -> Result<(), Denial> {
        let entry = self
            .entries
            .iter()
            .filter(|e| !e.secrets(action).is_empty() && glob::matches(&e.pattern, key))
            .max_by_key(|e| specificity(&e.pattern));
        let token = token.ok_or(Denial::MissingToken)?;
        let Some(entry) = entry else {
            return Err(Denial::InvalidToken);
        };
        // Every secret is compared, so the time does not tell which one matched.
        let mut ok = false;
        for s in entry.secrets(action) {
            ok |= s.matches(token);
        }
        if ok {
            Ok(())
        } else {
            Err(Denial::InvalidToken)
        }
    }
}

/// How specific a pattern is: more literal characters win when several match.
fn specificity(pattern: &str) -> usize {
    pattern.bytes().filter(|&c| c != b'*').count()
}

/// toml's error display quotes the offending line, which may hold a secret: keep only the
/// message and the position.
fn toml_message(e: &toml::de::Error) -> String {
    let message = hide_strings(e.message());
    match e.span() {
        Some(span) => format!("{message} (at byte {})", span.start),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[keys."live/cam1"]
publish = "pub1"
play = ["v1", "v2"]

[keys."live/*"]
play = "everyone"
publish = "wild"
"#;

    #[test]
    fn most_specific_pattern_decides() {
        let t = Table::parse_file(TOML, false).unwrap();
        assert_eq!(t.check(Action::Publish, "live/cam1", Some("pub1")), Ok(()));
        // The wildcard's secret does not open a key that has its own.
        assert_eq!(
            t.check(Action::Publish, "live/cam1", Some("wild")),
            Err(Denial::InvalidToken)
        );
        assert_eq!(t.check(Action::Play, "live/cam1", Some("v2")), Ok(()));
        assert_eq!(t.check(Action::Publish, "live/other", Some("wild")), Ok(()));
        assert_eq!(
            t.check(Action::Play, "other/x", Some("everyone")),
            Err(Denial::InvalidToken)
        );
        assert_eq!(
            t.check(Action::Play, "live/x", None),
            Err(Denial::MissingToken)
        );
    }

    #[test]
    fn json_and_errors_without_secrets() {
        let t = Table::parse_file(r#"{"keys":{"a/b":{"publish":"x"}}}"#, true).unwrap();
        assert_eq!(t.check(Action::Publish, "a/b", Some("x")), Ok(()));
        assert_eq!(t.len(Action::Play), 0);
        let e = Table::parse_file("[keys.\"a/b\"]\npublish = \"topsecret\"\nplya = 1\n", false)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains("plya"), "{e}");
        let e = Table::parse_file("[keys.\"a/b\"]\npublish = \"\"\n", false).unwrap_err();
        assert!(matches!(e, TableError::EmptySecret { .. }));
        let e = Table::parse_file(r#"{"keys":{"a/b":{"publish":"topsecret",}}}"#, true)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("topsecret"), "{e}");
    }

    proptest::proptest! {
        /// The same table written as TOML and as JSON parses to the same decisions, which
        /// follow the rule: the most specific pattern with a secret for the action decides.
        #[test]
        fn toml_and_json_decide_alike(
            entries in proptest::collection::btree_map(
                "[a-c*]{1,3}/[a-c*]{1,3}",
                (proptest::collection::vec("[ -~]{1,6}", 0..3), proptest::collection::vec("[ -~]{1,6}", 0..3)),
                1..5,
            ),
            key in "[a-c]{1,2}/[a-c]{1,2}",
            token in proptest::option::of("[ -~]{1,6}"),
        ) {
            let doc: serde_json::Map<String, serde_json::Value> = entries
                .iter()
                .map(|(pat, (publish, play))| (pat.clone(), serde_json::json!({"publish": publish, "play": play})))
                .collect();
            let doc = serde_json::json!({"keys": doc});
            let json = Table::parse_file(&doc.to_string(), true).unwrap();
            let toml = Table::parse_file(&toml::to_string(&doc).unwrap(), false).unwrap();
            for action in [Action::Publish, Action::Play] {
                let secrets = |(publish, play): &(Vec<String>, Vec<String>)| match action {
                    Action::Publish => publish.clone(),
                    Action::Play => play.clone(),
                };
                let best = entries
                    .iter()
                    .filter(|(p, e)| !secrets(e).is_empty() && glob::matches(p, &key))
                    .max_by_key(|(p, _)| specificity(p));
                let expected = match (&token, best) {
                    (None, _) => Err(Denial::MissingToken),
                    (Some(t), Some((_, e))) if secrets(e).contains(t) => Ok(()),
                    _ => Err(Denial::InvalidToken),
                };
                let (j, t) = (json.check(action, &key, token.as_deref()), toml.check(action, &key, token.as_deref()));
                proptest::prop_assert_eq!(&j, &t);
                // Equally specific patterns may tie: then only "some secret of a best one" holds.
                let tie = entries.iter().filter(|(p, e)| {
                    !secrets(e).is_empty() && glob::matches(p, &key) && best.is_some_and(|(b, _)| specificity(p) == specificity(b))
                }).count() > 1;
                if !tie {
                    proptest::prop_assert_eq!(j, expected);
                }
            }
        }

        /// A malformed file's error names where and what, never a value in it (a value
        /// may be a secret in the wrong place).
        #[test]
        fn errors_hide_values(secret in "[a-zA-Z0-9]{8,16}", shape in 0usize..6, json in proptest::bool::ANY) {
            let json_shapes = [
                r#"{"keys":{"a/b":"S"}}"#,
                r#"{"keys":{"a/b":{"publish":"S","play":1}}}"#,
                r#"{"keys":{"a/b":{"publish":["S",2]}}}"#,
                r#"{"keys":"S"}"#,
                r#"{"keys":{"a/b":{"publish":"S"}}"#,
                r#"{"keys":{"a/b":{"publish":"S",}}}"#,
            ];
            let toml_shapes = [
                "keys = \"S\"",
                "[keys]\n\"a/b\" = \"S\"",
                "[keys.\"a/b\"]\npublish = \"S\"\nplay = 1",
                "[keys.\"a/b\"]\npublish = [\"S\", 2]",
                "[keys.\"a/b\"]\npublish = \"S\"\nplay = { x = 1 }",
                "[keys.\"a/b\"]\npublish = \"S",
            ];
            let shapes = if json { json_shapes } else { toml_shapes };
            let text = shapes[shape].replace('S', &secret);
            let e = Table::parse_file(&text, json).expect_err("malformed").to_string();
            proptest::prop_assert!(!e.contains(&secret), "{}", e);
        }

        /// Any text, read as TOML or JSON, gives a table or an error, never a panic.
        #[test]
        fn any_file_text(text in "\\PC{0,160}", json in proptest::bool::ANY) {
            let _ = Table::parse_file(&text, json);
        }
    }

    #[test]
    fn flags() {
        let mut t = Table::default();
        t.add_flag(Action::Publish, "live/*=a=b").unwrap();
        assert_eq!(t.check(Action::Publish, "live/x", Some("a=b")), Ok(()));
        assert_eq!(
            t.check(Action::Play, "live/x", Some("a=b")),
            Err(Denial::InvalidToken)
        );
        assert!(t.add_flag(Action::Play, "nothing").is_err());
        assert!(t.add_flag(Action::Play, "x=").is_err());
    }
}
