//! What an SRT caller offers, read from its stream id (the SRT access-control convention,
//! `#!::r=live/cam,m=publish,u=alice,s=TOKEN`).
//!
//! The credential (`token` for every mode) is, first found wins: a `token=` item, the
//! `token` of a query on the resource (`r=live/cam?token=T`, as RTMP clients write it), or
//! the session id `s=` (the convention's field for a credential negotiated elsewhere).
//! Every field goes to the callback under its own name (`r`, `m`, `u`, `h`, `s`, `t` and
//! any custom item).

use proto::srt::{StreamId, StreamMode};

use crate::redact::parse_query;

/// The resource without any `?query`, and the auth parameters of `id`.
pub fn params(id: &StreamId) -> (Option<String>, Vec<(String, String)>) {
    let mut out: Vec<(String, String)> = id.other.clone();
    let resource = id.resource.as_deref().map(|r| match r.split_once('?') {
        Some((path, query)) => {
            out.extend(parse_query(query));
            path.to_owned()
        }
        None => r.to_owned(),
    });
    if let Some(s) = &id.session {
        out.push(("s".into(), s.clone()));
        if !out.iter().any(|(n, _)| n == "token") {
            out.push(("token".into(), s.clone()));
        }
    }
    let named = [
        ("r", resource.as_ref()),
        ("u", id.user.as_ref()),
        ("h", id.host.as_ref()),
        ("t", id.kind.as_ref()),
    ];
    out.extend(
        named
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n.to_owned(), v.clone()))),
    );
    if let Some(m) = id.mode {
        let m = match m {
            StreamMode::Request => "request",
            StreamMode::Publish => "publish",
            StreamMode::Bidirectional => "bidirectional",
        };
        out.push(("m".into(), m.to_owned()));
    }
    (resource, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(p: &[(String, String)]) -> Option<&str> {
        p.iter()
            .find(|(n, _)| n == "token")
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn token_sources_in_order() {
        let id = StreamId::parse(b"#!::r=live/cam?token=fromR,s=fromS,token=item,u=al").unwrap();
        let (r, p) = params(&id);
        assert_eq!(r.as_deref(), Some("live/cam"));
        assert_eq!(token(&p), Some("item"));
        assert!(p.contains(&("u".into(), "al".into())));
        assert!(p.contains(&("r".into(), "live/cam".into())));

        let (_, p) = params(&StreamId::parse(b"#!::r=live/cam?token=fromR,s=fromS").unwrap());
        assert_eq!(token(&p), Some("fromR"));
        let (_, p) = params(&StreamId::parse(b"#!::r=live/cam,s=fromS,m=publish").unwrap());
        assert_eq!(token(&p), Some("fromS"));
        assert!(p.contains(&("m".into(), "publish".into())));
        let (r, p) = params(&StreamId::parse(b"live/cam?token=plain").unwrap());
        assert_eq!((r.as_deref(), token(&p)), (Some("live/cam"), Some("plain")));
        let (r, p) = params(&StreamId::parse(b"").unwrap());
        assert_eq!((r, p), (None, Vec::new()));
    }

    proptest::proptest! {
        #[test]
        fn fields_and_token(r in "[a-z]{1,8}/[a-z0-9]{1,8}", sid in "[A-Za-z0-9]{1,16}",
                            item in proptest::option::of("[A-Za-z0-9]{1,16}"),
                            garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut raw = format!("#!::r={r},s={sid}");
            if let Some(t) = &item {
                raw.push_str(&format!(",token={t}"));
            }
            let (res, p) = params(&StreamId::parse(raw.as_bytes()).unwrap());
            proptest::prop_assert_eq!(res.as_deref(), Some(r.as_str()));
            proptest::prop_assert_eq!(token(&p), Some(item.as_deref().unwrap_or(&sid)));
            // Anything that parses gives a resource without a query.
            if let Ok(id) = StreamId::parse(&garbage) {
                let (r, _) = params(&id);
                proptest::prop_assert!(r.is_none_or(|r| !r.contains('?')));
            }
        }
    }
}
