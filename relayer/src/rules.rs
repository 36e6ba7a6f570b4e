//! Push rules: which stream keys go to which destinations. A rule is written
//! `PATTERN=URL[ URL...]` (in flags and profiles), where PATTERN is a stream key glob and
//! each URL a template: `{key}` (app/name), `{app}` and `{name}` are replaced by the
//! stream's values.

use proto::glob::Glob;
use proto::rtmp::session::{ClientMode, RtmpUrl};
use thiserror::Error;

/// Why a rule or a destination URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    /// No `=` between the pattern and the URLs.
    #[error("expected PATTERN=URL[ URL...], got {0:?}")]
    Syntax(String),
    /// A URL template that cannot give an RTMP URL.
    #[error("{url:?}: {why}")]
    BadUrl {
        /// The template or URL.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// One push rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The pattern as written.
    pub pattern: String,
    glob: Glob,
    /// Destination URL templates.
    pub templates: Vec<String>,
}

/// Placeholders a template may use.
const PLACEHOLDERS: [&str; 3] = ["{key}", "{app}", "{name}"];

impl Rule {
    /// Parses `PATTERN=URL[ URL...]` (URLs separated by spaces or commas).
    pub fn parse(s: &str) -> Result<Rule, RuleError> {
        let (pattern, urls) = s
            .split_once('=')
            .filter(|(p, _)| !p.is_empty())
            .ok_or_else(|| RuleError::Syntax(s.to_owned()))?;
        let templates: Vec<String> = urls
            .split([' ', ','])
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        if templates.is_empty() {
            return Err(RuleError::Syntax(s.to_owned()));
        }
        for t in &templates {
            check_template(t)?;
        }
        Ok(Rule {
            pattern: pattern.to_owned(),
            glob: Glob::new(pattern),
            templates,
        })
    }

    /// Whether the rule applies to `key`.
    pub fn matches(&self, key: &str) -> bool {
        self.glob.matches(key)
    }
}

/// Checks that a template expands to a usable URL (with a sample key).
pub fn check_template(t: &str) -> Result<(), RuleError> {
    let bad = |why| RuleError::BadUrl {
        url: t.to_owned(),
        why,
    };
    if t.starts_with("srt://") {
        check_placeholders(t)?;
        return crate::srt_conn::SrtUrl::parse(&expand(t, "app/name"))
            .map(|_| ())
            .ok_or(bad(
                "not srt://host:port[?streamid=..&passphrase=(10-79 chars)&latency=ms]",
            ));
    }
    if !t.starts_with("rtmp://") && !t.starts_with("rtmps://") {
        return Err(bad(
            "only rtmp://, rtmps:// and srt:// destinations are supported",
        ));
    }
    check_placeholders(t)?;
    let sample = expand(t, "app/name");
    RtmpUrl::parse(&sample, ClientMode::Publish)
        .map(|_| ())
        .ok_or(bad("not rtmp[s]://host[:port]/app/name"))
}

fn check_placeholders(t: &str) -> Result<(), RuleError> {
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        if !PLACEHOLDERS.iter().any(|p| tail.starts_with(p)) {
            return Err(RuleError::BadUrl {
                url: t.to_owned(),
                why: "unknown placeholder (use {key}, {app} or {name})",
            });
        }
        rest = &tail[1..];
    }
    Ok(())
}

/// Fills a template's placeholders for the stream `key` (`app/name`).
pub fn expand(template: &str, key: &str) -> String {
    let (app, name) = key.split_once('/').unwrap_or(("", key));
    template
        .replace("{key}", key)
        .replace("{app}", app)
        .replace("{name}", name)
}

/// Every destination URL the rules give `key`, without duplicates, in rule order.
pub fn destinations(rules: &[Rule], key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rules.iter().filter(|r| r.matches(key)) {
        for t in &r.templates {
            let url = expand(t, key);
            if !out.contains(&url) {
                out.push(url);
            }
        }
    }
    out
}

/// A URL fit for logs and events: the stream name (often a secret stream key at a CDN)
/// and any query are replaced by `***`.
pub fn redact(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    match base.rfind('/') {
        Some(i) if i + 1 < base.len() && base[..i].contains("//") => {
            format!("{}/***", &base[..i])
        }
        _ => base.to_owned(),
    }
}

/// A rule fit for logs: each URL [`redact`]ed.
pub fn redact_rule(rule: &str) -> String {
    match rule.split_once('=') {
        Some((pattern, urls)) => {
            let urls: Vec<String> = urls
                .split([' ', ','])
                .filter(|u| !u.is_empty())
                .map(redact)
                .collect();
            format!("{pattern}={}", urls.join(" "))
        }
        None => rule.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_expands() {
        let r = Rule::parse("live/*=rtmp://a.example/live/{name} rtmp://b:1936/x/{app}-{name}")
            .unwrap();
        assert!(r.matches("live/cam") && !r.matches("other/cam"));
        assert_eq!(
            destinations(&[r.clone(), r], "live/cam"),
            ["rtmp://a.example/live/cam", "rtmp://b:1936/x/live-cam"]
        );
        let r = Rule::parse("live/*=rtmps://h:4443/live/{name}").unwrap();
        assert_eq!(destinations(&[r], "live/cam"), ["rtmps://h:4443/live/cam"]);
        let r = Rule::parse("*=rtmp://h/app/{key}").unwrap();
        assert_eq!(destinations(&[r], "a/b"), ["rtmp://h/app/a/b"]);
    }

    #[test]
    fn refuses_bad_rules() {
        for bad in [
            "rtmp://h/a/b",
            "=rtmp://h/a/b",
            "live/*=",
            "live/*=http://h/a/b",
            "live/*=rtmp://h/a/{nam}",
            "live/*=rtmp://h/{name}",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redacts_the_stream_key() {
        assert_eq!(redact("rtmp://a/live2/secret?x=1"), "rtmp://a/live2/***");
        assert_eq!(redact("rtmp://a"), "rtmp://a");
        assert_eq!(
            redact_rule("live/*=rtmp://a/live2/k1 rtmp://b/x/{name}"),
            "live/*=rtmp://a/live2/*** rtmp://b/x/***"
        );
    }
}
