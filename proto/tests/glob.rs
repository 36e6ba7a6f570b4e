//! Stream key patterns: golden cases, agreement with a textbook matcher on arbitrary
//! inputs, and inputs that make backtracking matchers take exponential time.

use proptest::prelude::*;
use proto::glob::{any_matches, matches, Glob};

/// Dynamic-programming matcher over chars: slow but obviously right.
fn reference(pattern: &str, key: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let k: Vec<char> = key.chars().collect();
    // m[j] = pattern prefix of length i matches key prefix of length j.
    let mut m = vec![false; k.len() + 1];
    m[0] = true;
    for &pc in &p {
        let mut next = vec![false; k.len() + 1];
        if pc == '*' {
            let mut seen = false;
            for j in 0..=k.len() {
                seen |= m[j];
                next[j] = seen;
            }
        } else {
            for j in 1..=k.len() {
                next[j] = m[j - 1] && k[j - 1] == pc;
            }
        }
        m = next;
    }
    m[k.len()]
}

#[test]
fn golden() {
    let yes = [
        ("live/*", "live/a"),
        ("live/*", "live/"),
        ("*", ""),
        ("*", "x/y"),
        ("*/a*c", "live/abbc"),
        ("*/cam*", "x/cam1"),
        ("a*b*c", "abbc"),
        ("live/x", "live/x"),
        ("", ""),
        ("**", "anything"),
        ("a*a", "aa"),
        ("é*ü", "éxü"),
    ];
    let no = [
        ("live/*", "other/a"),
        ("live/a", "live/ab"),
        ("a*b*c", "ac"),
        ("ab*ba", "aba"),
        ("a*a", "a"),
        ("", "x"),
        ("x", ""),
        ("*.flv", "a.flvx"),
    ];
    for (p, k) in yes {
        assert!(matches(p, k), "{p:?} should match {k:?}");
        assert!(reference(p, k), "reference disagrees on {p:?} {k:?}");
    }
    for (p, k) in no {
        assert!(!matches(p, k), "{p:?} should not match {k:?}");
        assert!(!reference(p, k), "reference disagrees on {p:?} {k:?}");
    }
}

#[test]
fn empty_list_selects_everything() {
    assert!(any_matches(&[], "any/key"));
    let list = [Glob::new("a/*"), Glob::new("b/*")];
    assert!(any_matches(&list, "b/1"));
    assert!(!any_matches(&list, "c/1"));
}

/// Patterns such as `*a*a*a…*b` against `aaaa…` take exponential time in a matcher that
/// retries every split point; here each piece is searched once, left to right.
#[test]
fn adversarial_inputs_finish() {
    let pattern = format!("{}b", "*a".repeat(40));
    let key = "a".repeat(100_000);
    assert!(!matches(&pattern, &key));
    let key = format!("{key}b");
    assert!(matches(&pattern, &key));
    let stars = "*".repeat(10_000);
    assert!(matches(&stars, &key));
}

proptest! {
    #[test]
    fn agrees_with_reference(
        pattern in "[ab*/é]{0,12}",
        key in "[ab/é]{0,16}",
    ) {
        prop_assert_eq!(matches(&pattern, &key), reference(&pattern, &key));
    }

    #[test]
    fn a_key_matches_itself_and_a_star(key in "[^*]{0,20}") {
        prop_assert!(matches(&key, &key));
        prop_assert!(matches("*", &key));
    }
}
