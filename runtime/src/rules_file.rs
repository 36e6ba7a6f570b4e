//! Rules files: the rules a component reloads in place on SIGHUP (the relayer's push
//! rules, hookd's webhook and program rules), written as TOML whose keys are the flag
//! names, exactly as in a profile section: `push = ["live/*=rtmp://cdn.example/{name}"]`.
//! A key may hold one string or an array of strings; keys the component does not reload
//! are an error, so a typo is not silently ignored.

use std::path::Path;

/// Why a rules file cannot be used (the component then keeps the rules it has).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesFileError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{path}: not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's complaint (with line and column).
        message: String,
    },
    /// A key the component does not take from a rules file.
    #[error("{path}: unknown key {key:?} (a rules file holds {expected})")]
    UnknownKey {
        /// The file.
        path: String,
        /// The key found.
        key: String,
        /// The keys allowed, for the message.
        expected: String,
    },
    /// A value that is neither a string nor an array of strings.
    #[error("{path}: {key} must be a string or an array of strings")]
    NotStrings {
        /// The file.
        path: String,
        /// The key.
        key: String,
    },
}

/// Reads `path` and returns, for each of `keys` in order, its values in file order (none
/// when the key is absent).
pub fn read(path: &Path, keys: &[&str]) -> Result<Vec<Vec<String>>, RulesFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RulesFileError::Io {
        path: shown.clone(),
        source,
    })?;
    parse(&shown, &text, keys)
}

/// [`read`] on text already read; `path` is only for messages.
pub fn parse(path: &str, text: &str, keys: &[&str]) -> Result<Vec<Vec<String>>, RulesFileError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| RulesFileError::Syntax {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
    let mut out = vec![Vec::new(); keys.len()];
    for (key, value) in &table {
        let Some(i) = keys.iter().position(|k| k == key) else {
            return Err(RulesFileError::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                expected: keys.join(", "),
            });
        };
        let not_strings = || RulesFileError::NotStrings {
            path: path.to_owned(),
            key: key.clone(),
        };
        match value {
            toml::Value::String(s) => out[i].push(s.clone()),
            toml::Value::Array(items) => {
                for item in items {
                    out[i].push(item.as_str().ok_or_else(not_strings)?.to_owned());
                }
            }
            _ => return Err(not_strings()),
        }
    }
    Ok(out)
}

/// The text of a rules file holding `entries` (key, values): what the supervisor writes
/// for a profile section's reloadable keys.
pub fn render(entries: &[(&str, &[String])]) -> String {
    let mut table = toml::Table::new();
    for (key, values) in entries {
        if !values.is_empty() {
            let items = values.iter().cloned().map(toml::Value::String).collect();
            table.insert((*key).to_owned(), toml::Value::Array(items));
        }
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_and_arrays_and_refuses_the_rest() {
        let v = parse(
            "f",
            "webhook = \"publish=http://h/x\"\nexec = [\"a=b\", \"c=d\"]\n",
            &["webhook", "exec"],
        )
        .unwrap();
        assert_eq!(v, [vec!["publish=http://h/x"], vec!["a=b", "c=d"]]);
        assert_eq!(parse("f", "", &["push"]).unwrap(), [Vec::<String>::new()]);
        for bad in ["push = 1", "push = [1]", "psuh = []", "push = ["] {
            assert!(parse("f", bad, &["push"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn render_reads_back() {
        let rules = vec!["live/*=rtmp://h/a/{name} rtmp://\"q\"/b".to_owned()];
        let text = render(&[("push", &rules), ("other", &[])]);
        assert_eq!(parse("f", &text, &["push"]).unwrap(), [rules]);
    }
}
