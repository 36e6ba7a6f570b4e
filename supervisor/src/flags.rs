//! A profile section written as TOML, turned into the component's command-line flags.
//!
//! `listen = "x"` becomes `--listen=x`, `true` becomes `--flag`, `false` is left out,
//! integers and floats become their text, arrays repeat the flag once per item. The
//! `--key=value` form keeps values that start with `-` from being read as flags.

use thiserror::Error;

/// Why a key of a component section cannot become a flag.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FlagError {
    /// The key is not a flag name.
    #[error("not a flag name: use lowercase letters, digits and '-'")]
    InvalidName,
    /// The key uses `_` where flags use `-`.
    #[error("flag names use '-', not '_' (did you mean '{suggestion}'?)")]
    Underscore {
        /// The key with `_` replaced by `-`.
        suggestion: String,
    },
    /// The value has a TOML type no flag can carry.
    #[error("a {kind} cannot be written as a command-line flag")]
    UnsupportedValue {
        /// The TOML type found.
        kind: &'static str,
    },
    /// An array item has a TOML type no flag value can carry.
    #[error("array item {index} is a {kind}; items must be strings, integers or floats")]
    UnsupportedItem {
        /// Position of the item in the array.
        index: usize,
        /// The TOML type found.
        kind: &'static str,
    },
}

/// The flags for one section, in key order, or the first key that cannot be mapped.
pub fn section_flags(table: &toml::Table) -> Result<Vec<String>, (String, FlagError)> {
    let mut flags = Vec::new();
    for (key, value) in table {
        key_flags(key, value, &mut flags).map_err(|e| (key.clone(), e))?;
    }
    Ok(flags)
}

/// Appends the flags for `key = value` to `out`.
pub fn key_flags(key: &str, value: &toml::Value, out: &mut Vec<String>) -> Result<(), FlagError> {
    check_name(key)?;
    match value {
        toml::Value::Boolean(true) => out.push(format!("--{key}")),
        toml::Value::Boolean(false) => {}
        toml::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let text = scalar_text(item).ok_or(FlagError::UnsupportedItem {
                    index,
                    kind: type_name(item),
                })?;
                out.push(format!("--{key}={text}"));
            }
        }
        other => {
            let text = scalar_text(other).ok_or(FlagError::UnsupportedValue {
                kind: type_name(other),
            })?;
            out.push(format!("--{key}={text}"));
        }
    }
    Ok(())
}

fn check_name(key: &str) -> Result<(), FlagError> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let starts_well = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if starts_well && key.chars().all(valid_char) {
        return Ok(());
    }
    let dashed = key.replace('_', "-");
    if key.contains('_') && dashed.chars().all(valid_char) && !dashed.starts_with('-') {
        return Err(FlagError::Underscore { suggestion: dashed });
    }
    Err(FlagError::InvalidName)
}

fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "string",
        toml::Value::Integer(_) => "integer",
        toml::Value::Float(_) => "float",
        toml::Value::Boolean(_) => "boolean",
        toml::Value::Datetime(_) => "datetime",
        toml::Value::Array(_) => "array",
        toml::Value::Table(_) => "table",
    }
}
