//! Query strings and SRT stream ids as they may be logged: every value hidden, names kept.

/// The text a redacted value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// `a=1&token=x` becomes `a=<redacted>&token=<redacted>`: any parameter may carry a
/// credential (clients name them freely), so no value is shown, only which names were sent.
pub fn query(q: &str) -> String {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((name, _)) => format!("{name}={REDACTED}"),
            None => p.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A name with an optional `?query`, with the query redacted.
pub fn name_with_query(name: &str) -> String {
    match name.split_once('?') {
        Some((n, q)) => format!("{n}?{}", query(q)),
        None => name.to_owned(),
    }
}

/// Parameters as `name=<redacted>` pairs joined by `&` (for logs and events). Names are
/// decoded, so `%`, `=` and `&` in them are escaped again: a name that decoded to
/// `token=abc` must not read as a shown value.
pub fn params(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(n, _)| format!("{}={REDACTED}", escape_name(n)))
        .collect::<Vec<_>>()
        .join("&")
}

fn escape_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains(['%', '=', '&']) {
        return name.into();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '=' => out.push_str("%3D"),
            '&' => out.push_str("%26"),
            c => out.push(c),
        }
    }
    out.into()
}

/// serde's messages quote a string value of the wrong type (`invalid type: string
/// "..."`), which may be a secret in the wrong place: every double-quoted run (escaped
/// quotes inside it included) becomes `"<redacted>"`. Field names stay (in backticks).
pub(crate) fn hide_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in message.chars() {
        if quoted {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    quoted = false;
                    out.push_str(REDACTED);
                    out.push('"');
                }
                _ => escaped = false,
            }
        } else {
            out.push(c);
            quoted = c == '"';
        }
    }
    if quoted {
        out.push_str(REDACTED);
    }
    out
}

/// Parses `a=1&b=x%20y` into decoded (name, value) pairs; `+` is a space. Malformed
/// percent escapes are kept as they are.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(n), percent_decode(v))
        })
        .collect()
}

/// The parameters of several queries in order (an RTMP stream name's, then its app's).
pub fn parse_queries<'a>(queries: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    queries.into_iter().flat_map(parse_query).collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_values() {
        assert_eq!(
            query("token=abc&x=1&flag"),
            "token=<redacted>&x=<redacted>&flag"
        );
        assert_eq!(name_with_query("cam?token=abc"), "cam?token=<redacted>");
        assert_eq!(name_with_query("cam"), "cam");
    }

    #[test]
    fn decoded_names_are_escaped_again() {
        // "?%%3D", found by the auth_query fuzz target: the name decodes to "%=".
        let shown = params(&parse_query("%%3D"));
        assert_eq!(shown, "%25%3D=<redacted>");
        let shown = params(&parse_query("token%3Dabc%26x=1"));
        assert_eq!(shown, "token%3Dabc%26x=<redacted>");
        assert_eq!(params(&parse_query("token=abc")), "token=<redacted>");
    }

    #[test]
    fn parses() {
        assert_eq!(
            parse_query("token=a%2Fb&x=1+2&flag&bad=%zz&end=%4"),
            vec![
                ("token".into(), "a/b".into()),
                ("x".into(), "1 2".into()),
                ("flag".into(), "".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
    }

    /// Percent-encodes every byte but unreserved ones, as a client would.
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn redacted_never_contains_values(v in "[a-zA-Z0-9]{6,20}") {
            let q = format!("a=1&token={v}&b");
            proptest::prop_assert!(!query(&q).contains(&v));
            let _ = parse_query(&q);
        }

        /// Any names and values a client encodes come back decoded, in order, across a
        /// stream name's and an app's query; the redacted forms keep the names only.
        #[test]
        fn encoded_pairs_round_trip(
            name_pairs in proptest::collection::vec(("[^=&]{1,12}", "\\PC{0,24}"), 0..6),
            app_pairs in proptest::collection::vec(("[a-z]{1,8}", "\\PC{0,24}"), 0..3),
        ) {
            let join = |pairs: &[(String, String)]| {
                pairs.iter().map(|(n, v)| format!("{}={}", encode(n), encode(v))).collect::<Vec<_>>().join("&")
            };
            let (nq, aq) = (join(&name_pairs), join(&app_pairs));
            let all: Vec<_> = name_pairs.iter().chain(&app_pairs).cloned().collect();
            proptest::prop_assert_eq!(parse_queries([nq.as_str(), aq.as_str()]), all.clone());
            let shown = format!("{}&{}", query(&nq), params(&all));
            for part in shown.split('&').filter(|p| !p.is_empty()) {
                proptest::prop_assert!(part.ends_with(&format!("={REDACTED}")), "{}", part);
            }
            let named = name_with_query(&format!("cam?{nq}"));
            proptest::prop_assert!(named.starts_with("cam?"));
        }

        /// Arbitrary text never panics and yields one pair per non-empty `&` part.
        #[test]
        fn any_text_parses(q in "\\PC{0,64}") {
            let n = q.split('&').filter(|p| !p.is_empty()).count();
            proptest::prop_assert_eq!(parse_query(&q).len(), n);
        }
    }
}
