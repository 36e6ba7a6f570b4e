//! A small AMF0 encoder/decoder for the test client, independent of `proto::rtmp::amf0` so
//! that a shared misreading of the spec cannot hide in both sides.

/// An AMF0 value.
#[derive(Clone, Debug, PartialEq)]
pub enum Amf0 {
    /// Number (marker 0x00).
    Number(f64),
    /// Boolean (0x01).
    Bool(bool),
    /// String (0x02) or long string (0x0C) when decoded.
    String(String),
    /// Anonymous object (0x03).
    Object(Vec<(String, Amf0)>),
    /// Null (0x05).
    Null,
    /// Undefined (0x06).
    Undefined,
    /// ECMA array (0x08).
    EcmaArray(Vec<(String, Amf0)>),
    /// Strict array (0x0A).
    StrictArray(Vec<Amf0>),
    /// Date (0x0B): milliseconds, timezone ignored.
    Date(f64),
}

impl Amf0 {
    /// An object from string keys.
    pub fn object(props: &[(&str, Amf0)]) -> Amf0 {
        Amf0::Object(
            props
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    /// A string value.
    pub fn str(s: &str) -> Amf0 {
        Amf0::String(s.to_string())
    }

    /// The string inside, if any.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside, if any.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Property `key` of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Amf0> {
        match self {
            Amf0::Object(props) | Amf0::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

/// Appends the encoding of `value`.
pub fn encode(value: &Amf0, out: &mut Vec<u8>) {
    match value {
        Amf0::Number(n) => {
            out.push(0x00);
            out.extend(n.to_be_bytes());
        }
        Amf0::Bool(b) => out.extend([0x01, u8::from(*b)]),
        Amf0::String(s) if s.len() > 0xffff => {
            out.push(0x0c);
            out.extend((s.len() as u32).to_be_bytes());
            out.extend(s.as_bytes());
        }
        Amf0::String(s) => {
            out.push(0x02);
            put_key(s, out);
        }
        Amf0::Object(props) => {
            out.push(0x03);
            put_props(props, out);
        }
        Amf0::Null => out.push(0x05),
        Amf0::Undefined => out.push(0x06),
        Amf0::EcmaArray(props) => {
            out.push(0x08);
            out.extend((props.len() as u32).to_be_bytes());
            put_props(props, out);
        }
        Amf0::StrictArray(items) => {
            out.push(0x0a);
            out.extend((items.len() as u32).to_be_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Amf0::Date(ms) => {
            out.push(0x0b);
            out.extend(ms.to_be_bytes());
            out.extend([0, 0]);
        }
    }
}

fn put_key(s: &str, out: &mut Vec<u8>) {
    out.extend((s.len() as u16).to_be_bytes());
    out.extend(s.as_bytes());
}

fn put_props(props: &[(String, Amf0)], out: &mut Vec<u8>) {
    for (k, v) in props {
        put_key(k, out);
        encode(v, out);
    }
    out.extend([0x00, 0x00, 0x09]);
}

/// Encodes a sequence of values (a command message body).
pub fn encode_all(values: &[Amf0]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode(v, &mut out);
    }
    out
}

const MAX_DEPTH: usize = 64;

/// Decodes every value in `data`.
pub fn decode_all(mut data: &[u8]) -> Result<Vec<Amf0>, String> {
    let mut values = Vec::new();
    while !data.is_empty() {
        values.push(decode(&mut data, 0)?);
    }
    Ok(values)
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if data.len() < n {
        return Err(format!(
            "truncated AMF0: need {n} bytes, have {}",
            data.len()
        ));
    }
    let (head, tail) = data.split_at(n);
    *data = tail;
    Ok(head)
}

fn read_u16(data: &mut &[u8]) -> Result<usize, String> {
    let b = take(data, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
}

fn read_u32(data: &mut &[u8]) -> Result<usize, String> {
    let b = take(data, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn read_f64(data: &mut &[u8]) -> Result<f64, String> {
    let b = take(data, 8)?;
    Ok(f64::from_be_bytes(b.try_into().expect("8 bytes")))
}

fn read_string(data: &mut &[u8], len: usize) -> Result<String, String> {
    Ok(String::from_utf8_lossy(take(data, len)?).into_owned())
}

fn read_props(data: &mut &[u8], depth: usize) -> Result<Vec<(String, Amf0)>, String> {
    let mut props = Vec::new();
    loop {
        let len = read_u16(data)?;
        if len == 0 && data.first() == Some(&0x09) {
            *data = &data[1..];
            return Ok(props);
        }
        let key = read_string(data, len)?;
        props.push((key, decode(data, depth + 1)?));
    }
}

fn decode(data: &mut &[u8], depth: usize) -> Result<Amf0, String> {
    if depth > MAX_DEPTH {
        return Err("AMF0 nesting too deep".into());
    }
    let marker = take(data, 1)?[0];
    Ok(match marker {
        0x00 => Amf0::Number(read_f64(data)?),
        0x01 => Amf0::Bool(take(data, 1)?[0] != 0),
        0x02 => {
            let len = read_u16(data)?;
            Amf0::String(read_string(data, len)?)
        }
        0x03 => Amf0::Object(read_props(data, depth)?),
        0x05 => Amf0::Null,
        0x06 => Amf0::Undefined,
        0x08 => {
            let _count = read_u32(data)?;
            Amf0::EcmaArray(read_props(data, depth)?)
        }
        0x0a => {
            let count = read_u32(data)?;
            // Each item takes at least one byte: bound the count by what is left.
            if count > data.len() {
                return Err(format!(
                    "strict array of {count} items in {} bytes",
                    data.len()
                ));
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(decode(data, depth + 1)?);
            }
            Amf0::StrictArray(items)
        }
        0x0b => {
            let ms = read_f64(data)?;
            take(data, 2)?;
            Amf0::Date(ms)
        }
        0x0c => {
            let len = read_u32(data)?;
            Amf0::String(read_string(data, len)?)
        }
        other => return Err(format!("unsupported AMF0 marker {other:#04x}")),
    })
}

/// The body of a command whose first argument is an object nested `depth` levels deep:
/// `"connect", 1, {a: {a: {... null ...}}}`. Built iteratively, so the test itself does not
/// recurse.
pub fn deeply_nested_command(name: &str, depth: usize) -> Vec<u8> {
    let mut out = encode_all(&[Amf0::str(name), Amf0::Number(1.0)]);
    for _ in 0..depth {
        out.push(0x03);
        put_key("a", &mut out);
    }
    out.push(0x05);
    for _ in 0..depth {
        out.extend([0x00, 0x00, 0x09]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let values = vec![
            Amf0::str("connect"),
            Amf0::Number(1.0),
            Amf0::object(&[("app", Amf0::str("live")), ("n", Amf0::Null)]),
            Amf0::EcmaArray(vec![("w".into(), Amf0::Number(320.0))]),
            Amf0::StrictArray(vec![Amf0::Bool(true), Amf0::Undefined]),
        ];
        assert_eq!(decode_all(&encode_all(&values)).unwrap(), values);
    }

    #[test]
    fn golden_string_and_object() {
        assert_eq!(encode_all(&[Amf0::str("ab")]), b"\x02\x00\x02ab");
        assert_eq!(
            encode_all(&[Amf0::object(&[("k", Amf0::Bool(true))])]),
            b"\x03\x00\x01k\x01\x01\x00\x00\x09"
        );
    }

    #[test]
    fn nested_command_shape() {
        let body = deeply_nested_command("connect", 2);
        let prefix = encode_all(&[Amf0::str("connect"), Amf0::Number(1.0)]);
        assert_eq!(
            &body[prefix.len()..],
            b"\x03\x00\x01a\x03\x00\x01a\x05\x00\x00\x09\x00\x00\x09"
        );
        assert!(decode_all(&deeply_nested_command("connect", 3)).is_ok());
        assert!(decode_all(&deeply_nested_command("connect", 1000)).is_err());
    }
}
