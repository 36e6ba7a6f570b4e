//! Which events a sink takes: `KINDS[@KEYGLOB]=TARGET`, KINDS a comma-separated list of
//! event kinds or `*`, KEYGLOB a glob on the stream key (default: every key).

use proto::glob::Glob;
use proto::ipc::Event;

/// A parsed rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Kinds taken; empty = every kind.
    pub kinds: Vec<String>,
    /// Key pattern; `None` = every key (also events without a key).
    pub key: Option<Glob>,
    /// The URL or program.
    pub target: String,
    /// The rule as written (what a reload compares).
    pub text: String,
}

/// Why a rule did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    /// No `=` or an empty side.
    #[error("expected KINDS[@KEYGLOB]=TARGET (KINDS e.g. publish,unpublish or *)")]
    Shape,
}

impl Rule {
    /// Parses `KINDS[@KEYGLOB]=TARGET`.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let (sel, target) = text.split_once('=').ok_or(RuleError::Shape)?;
        let (kinds, key) = match sel.split_once('@') {
            Some((k, g)) => (k, Some(g)),
            None => (sel, None),
        };
        if kinds.is_empty() || target.is_empty() || key.is_some_and(str::is_empty) {
            return Err(RuleError::Shape);
        }
        let kinds = if kinds == "*" {
            Vec::new()
        } else {
            kinds.split(',').map(|k| k.trim().to_owned()).collect()
        };
        Ok(Rule {
            kinds,
            key: key.map(Glob::new),
            target: target.to_owned(),
            text: text.to_owned(),
        })
    }

    /// Whether `event` goes to this rule's target.
    pub fn matches(&self, event: &Event) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&event.kind))
            && self.key.as_ref().is_none_or(|g| g.matches(&event.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, key: &str) -> Event {
        Event {
            kind: kind.into(),
            key: key.into(),
            conn_id: 0,
            remote: String::new(),
            fields: vec![],
        }
    }

    #[test]
    fn kinds_and_keys() {
        let r = Rule::parse("publish,unpublish@live/*=http://h/x?a=b").unwrap();
        assert_eq!(r.target, "http://h/x?a=b");
        assert!(r.matches(&ev("publish", "live/a")));
        assert!(!r.matches(&ev("publish", "other/a")));
        assert!(!r.matches(&ev("play", "live/a")));
        let all = Rule::parse("*=/bin/true").unwrap();
        assert!(all.matches(&ev("relay", "")));
        for bad in ["", "=x", "*=", "publish", "a@=x"] {
            assert_eq!(Rule::parse(bad).unwrap_err(), RuleError::Shape, "{bad}");
        }
    }
}
