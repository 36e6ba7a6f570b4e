//! The stream id: the access-control syntax `#!::r=live/cam1,m=publish,u=alice` or a plain
//! string, which is taken as the resource name.

/// What the caller wants to do (the `m` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamMode {
    /// `m=request` (the default in the access-control syntax): play.
    Request,
    /// `m=publish`: send a stream.
    Publish,
    /// `m=bidirectional`.
    Bidirectional,
}

/// A parsed stream id.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StreamId {
    /// `r`: the resource (for a plain stream id, the whole string).
    pub resource: Option<String>,
    /// `m`: the mode; `None` when not given.
    pub mode: Option<StreamMode>,
    /// `u`: user name.
    pub user: Option<String>,
    /// `h`: host name.
    pub host: Option<String>,
    /// `s`: session id (a token, for auth).
    pub session: Option<String>,
    /// `t`: type (`stream`, `file`, `auth`).
    pub kind: Option<String>,
    /// Every other key, in order.
    pub other: Vec<(String, String)>,
}

/// Why a stream id was refused (answered with BAD_REQUEST or BAD_MODE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamIdError {
    /// Not UTF-8.
    #[error("stream id is not UTF-8")]
    NotUtf8,
    /// A `#!::` item without `=`.
    #[error("stream id item {0:?} has no '='")]
    NoEquals(String),
    /// A key appears twice.
    #[error("stream id key {0:?} appears twice")]
    Duplicate(String),
    /// `m=` with an unknown value.
    #[error("unknown stream id mode {0:?}")]
    BadMode(String),
    /// The nested `#!:{...}` form, which nobody sends and this server does not read.
    #[error("nested stream id syntax is not supported")]
    Nested,
}

impl StreamId {
    /// Parses the bytes of the stream id extension.
    pub fn parse(raw: &[u8]) -> Result<Self, StreamIdError> {
        let s = std::str::from_utf8(raw).map_err(|_| StreamIdError::NotUtf8)?;
        let Some(body) = s.strip_prefix("#!:") else {
            return Ok(StreamId {
                resource: (!s.is_empty()).then(|| s.to_string()),
                ..StreamId::default()
            });
        };
        let Some(items) = body.strip_prefix(':') else {
            return Err(StreamIdError::Nested);
        };
        let mut id = StreamId::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in items.split(',').filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| StreamIdError::NoEquals(item.to_string()))?;
            if seen.contains(&k) {
                return Err(StreamIdError::Duplicate(k.to_string()));
            }
            seen.push(k);
            let v = v.to_string();
            match k {
                "r" => id.resource = Some(v),
                "u" => id.user = Some(v),
                "h" => id.host = Some(v),
                "s" => id.session = Some(v),
                "t" => id.kind = Some(v),
                "m" => {
                    id.mode = Some(match v.as_str() {
                        "request" => StreamMode::Request,
                        "publish" => StreamMode::Publish,
                        "bidirectional" => StreamMode::Bidirectional,
                        _ => return Err(StreamIdError::BadMode(v)),
                    })
                }
                _ => id.other.push((k.to_string(), v)),
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_control_syntax() {
        let id = StreamId::parse(b"#!::r=live/cam1,m=publish,u=alice,t=stream,x_a=1").unwrap();
        assert_eq!(id.resource.as_deref(), Some("live/cam1"));
        assert_eq!(id.mode, Some(StreamMode::Publish));
        assert_eq!(id.user.as_deref(), Some("alice"));
        assert_eq!(id.kind.as_deref(), Some("stream"));
        assert_eq!(id.other, vec![("x_a".into(), "1".into())]);
    }

    #[test]
    fn plain_and_errors() {
        let id = StreamId::parse(b"live/cam1").unwrap();
        assert_eq!(id.resource.as_deref(), Some("live/cam1"));
        assert_eq!(id.mode, None);
        assert_eq!(StreamId::parse(b"").unwrap(), StreamId::default());
        assert!(matches!(
            StreamId::parse(b"#!::r"),
            Err(StreamIdError::NoEquals(_))
        ));
        assert!(matches!(
            StreamId::parse(b"#!::m=x"),
            Err(StreamIdError::BadMode(_))
        ));
        assert!(matches!(
            StreamId::parse(b"#!::r=a,r=b"),
            Err(StreamIdError::Duplicate(_))
        ));
        assert_eq!(StreamId::parse(b"#!:{r=a}"), Err(StreamIdError::Nested));
        assert_eq!(StreamId::parse(&[0xff]), Err(StreamIdError::NotUtf8));
    }
}
