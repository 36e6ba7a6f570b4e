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

/// Parameters as `name=<redacted>` pairs joined by `&` (for logs and events).
pub fn params(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(n, _)| format!("{n}={REDACTED}"))
        .collect::<Vec<_>>()
        .join("&")
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

    proptest::proptest! {
        #[test]
        fn redacted_never_contains_values(v in "[a-zA-Z0-9]{6,20}") {
            let q = format!("a=1&token={v}&b");
            proptest::prop_assert!(!query(&q).contains(&v));
            let _ = parse_query(&q);
        }
    }
}
