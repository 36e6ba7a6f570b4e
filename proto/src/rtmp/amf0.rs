//! AMF0 values (Adobe AMF0 specification), every marker including the switch to AMF3.
//!
//! Decoding is bounded by [`AmfLimits`]: nesting depth, items per container and string
//! length are checked before anything is allocated, and one budget of items and bytes
//! covers a whole message ([`decode_all`]): every value in it, every AMF3 reference copy
//! and every AMF3 reference-table entry. A peer cannot make the decoder hold more than
//! that budget, whatever it sends. [`AmfLimits::command`] and [`AmfLimits::data`] are the
//! budgets for command messages (small) and data messages (metadata).
//!
//! Strings are decoded leniently: invalid UTF-8 is replaced (U+FFFD) rather than rejected,
//! because encoders in the field put Latin-1 into metadata and refusing the whole message
//! for it helps nobody.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use crate::rtmp::amf3::{self, Amf3Value};

/// Markers of the AMF0 type system (AMF0 spec section 2.1).
mod marker {
    pub(super) const NUMBER: u8 = 0x00;
    pub(super) const BOOLEAN: u8 = 0x01;
    pub(super) const STRING: u8 = 0x02;
    pub(super) const OBJECT: u8 = 0x03;
    pub(super) const MOVIECLIP: u8 = 0x04;
    pub(super) const NULL: u8 = 0x05;
    pub(super) const UNDEFINED: u8 = 0x06;
    pub(super) const REFERENCE: u8 = 0x07;
    pub(super) const ECMA_ARRAY: u8 = 0x08;
    pub(super) const OBJECT_END: u8 = 0x09;
    pub(super) const STRICT_ARRAY: u8 = 0x0A;
    pub(super) const DATE: u8 = 0x0B;
    pub(super) const LONG_STRING: u8 = 0x0C;
    pub(super) const UNSUPPORTED: u8 = 0x0D;
    pub(super) const RECORDSET: u8 = 0x0E;
    pub(super) const XML_DOCUMENT: u8 = 0x0F;
    pub(super) const TYPED_OBJECT: u8 = 0x10;
    pub(super) const AVMPLUS: u8 = 0x11;
}

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// IEEE 754 double (marker 0x00).
    Number(f64),
    /// Boolean (marker 0x01).
    Boolean(bool),
    /// UTF-8 string of at most 65535 bytes (marker 0x02). Longer strings are written as
    /// long strings by [`encode`].
    String(String),
    /// Anonymous object: ordered key/value pairs (marker 0x03).
    Object(Vec<(String, Amf0Value)>),
    /// Null (marker 0x05).
    Null,
    /// Undefined (marker 0x06).
    Undefined,
    /// Reference to an earlier complex value by index (marker 0x07); kept as the raw index.
    Reference(u16),
    /// ECMA (associative) array: ordered key/value pairs (marker 0x08).
    EcmaArray(Vec<(String, Amf0Value)>),
    /// Strict (dense) array (marker 0x0A).
    StrictArray(Vec<Amf0Value>),
    /// Date: milliseconds since the Unix epoch, and a time zone that the spec says must be 0.
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Time zone offset field (reserved, normally 0).
        tz: i16,
    },
    /// String whose length needs 32 bits (marker 0x0C).
    LongString(String),
    /// Unsupported marker (0x0D): a value the sender could not serialize.
    Unsupported,
    /// XML document as a long string (marker 0x0F).
    XmlDocument(String),
    /// Object with a registered class name (marker 0x10).
    TypedObject {
        /// Class alias.
        class: String,
        /// Ordered key/value pairs.
        props: Vec<(String, Amf0Value)>,
    },
    /// AMF3 value behind the avmplus-object marker (0x11).
    Avmplus(Amf3Value),
}

impl Amf0Value {
    /// Property `key` of an object, ECMA array or typed object (first match).
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Amf0Value::Object(props)
            | Amf0Value::EcmaArray(props)
            | Amf0Value::TypedObject { props, .. } => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The text of a string, long string or AMF3 string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            Amf0Value::Avmplus(Amf3Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The value of a number (or an AMF3 integer or double).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            Amf0Value::Avmplus(Amf3Value::Double(n)) => Some(*n),
            Amf0Value::Avmplus(Amf3Value::Integer(n)) => Some(f64::from(*n)),
            _ => None,
        }
    }

    /// The value of a boolean (or an AMF3 boolean).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            Amf0Value::Avmplus(Amf3Value::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    /// Builds an anonymous object from `(key, value)` pairs, keeping their order.
    pub fn object<'a>(props: impl IntoIterator<Item = (&'a str, Amf0Value)>) -> Amf0Value {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

/// Bounds applied while decoding AMF0 and AMF3. The `max_total_*` fields are one budget
/// for everything decoded from one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmfLimits {
    /// Deepest nesting of containers (objects, arrays, ...).
    pub max_depth: usize,
    /// Most items (properties or elements) in one container, or values in one message.
    pub max_items: usize,
    /// Most values decoded from one message, counting everything nested, every copy made
    /// by resolving an AMF3 reference and every AMF3 reference-table entry.
    pub max_total_items: usize,
    /// Longest string, XML text or byte array, in bytes.
    pub max_string: usize,
    /// Most bytes of text and byte arrays decoded from one message, counting every copy
    /// made by resolving an AMF3 reference and every AMF3 reference-table entry.
    pub max_total_bytes: usize,
    /// Most decoding work (values plus bytes, as charged to the budget above) per byte of
    /// the message, with [`MIN_EXPANSION_BUDGET`] as a floor. An AMF3 reference of one or
    /// two bytes copies what it points to, so without this a 4 KiB message could make the
    /// decoder copy the whole 16 MiB budget: a hostile peer would spend a core of CPU
    /// with a trickle of bytes.
    pub max_expansion: usize,
}

/// The decoding work every message may cost whatever its size (see
/// [`AmfLimits::max_expansion`]): small messages with a few references stay valid.
pub const MIN_EXPANSION_BUDGET: usize = 4096;

impl AmfLimits {
    /// The budget for a command message (types 17 and 20): a `connect`, `publish` or
    /// `play` is a few hundred bytes, so depth 8, 64 items per container, 1024 values,
    /// 16 KiB per string, 64 KiB in all and at most 64 units of work per message byte.
    pub fn command() -> Self {
        AmfLimits {
            max_depth: 8,
            max_items: 64,
            max_total_items: 1024,
            max_string: 16 << 10,
            max_total_bytes: 64 << 10,
            max_expansion: 64,
        }
    }

    /// The budget for a data message (types 15 and 18, e.g. `onMetaData`): depth 32,
    /// 4096 items per container, 65536 values, 1 MiB per string, 16 MiB in all and at
    /// most 64 units of work per message byte.
    pub fn data() -> Self {
        AmfLimits {
            max_depth: 32,
            max_items: 4096,
            max_total_items: 65536,
            max_string: 1 << 20,
            max_total_bytes: 16 << 20,
            max_expansion: 64,
        }
    }
}

impl Default for AmfLimits {
    /// The same as [`AmfLimits::data`].
    fn default() -> Self {
        AmfLimits::data()
    }
}

/// What one message has used of its [`AmfLimits`] budget so far.
#[derive(Debug)]
pub(crate) struct Budget {
    items: usize,
    bytes: usize,
    /// Length of the message being decoded, which sets the expansion bound.
    input: usize,
}

impl Budget {
    /// The budget of a message of `input` bytes.
    pub(crate) fn for_input(input: usize) -> Self {
        Budget {
            items: 0,
            bytes: 0,
            input,
        }
    }

    /// Charges `items` values and `bytes` bytes, failing once the budget is exceeded.
    pub(crate) fn charge(
        &mut self,
        limits: &AmfLimits,
        items: usize,
        bytes: usize,
    ) -> Result<(), AmfError> {
        self.items = self.items.saturating_add(items);
        if self.items > limits.max_total_items {
            return Err(AmfError::TooManyItems {
                max: limits.max_total_items,
            });
        }
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > limits.max_total_bytes {
            return Err(AmfError::BudgetExceeded {
                got: self.bytes,
                max: limits.max_total_bytes,
            });
        }
        let max = limits
            .max_expansion
            .saturating_mul(self.input)
            .max(MIN_EXPANSION_BUDGET);
        if self.items.saturating_add(self.bytes) > max {
            return Err(AmfError::ExpansionExceeded {
                input: self.input,
                max,
            });
        }
        Ok(())
    }
}

/// Why AMF bytes could not be decoded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AmfError {
    /// The input ended inside a value.
    #[error("AMF input truncated")]
    Truncated,
    /// A type marker that the spec does not define.
    #[error("unknown AMF marker {0:#04x}")]
    UnknownMarker(u8),
    /// A marker the spec reserves and forbids on the wire (movieclip, recordset).
    #[error("reserved AMF0 marker {0:#04x}")]
    ReservedMarker(u8),
    /// An object-end marker where a value was expected.
    #[error("unexpected AMF0 object-end marker")]
    UnexpectedObjectEnd,
    /// Containers nested deeper than the limit.
    #[error("AMF nesting deeper than {max}")]
    DepthExceeded {
        /// The configured limit.
        max: usize,
    },
    /// A container, or the whole value, has more items than allowed.
    #[error("AMF value has more than {max} items")]
    TooManyItems {
        /// The configured limit.
        max: usize,
    },
    /// A string, XML text or byte array is longer than allowed.
    #[error("AMF string of {got} bytes exceeds {max}")]
    StringTooLong {
        /// Declared length.
        got: usize,
        /// The configured limit.
        max: usize,
    },
    /// An AMF3 reference to an entry that does not exist (yet).
    #[error("AMF3 {table} reference {index} out of range")]
    BadReference {
        /// Which table: "string", "object" or "traits".
        table: &'static str,
        /// The index referred to.
        index: usize,
    },
    /// An AMF3 reference to an object that is still being decoded (a cycle), which a
    /// tree of owned values cannot represent.
    #[error("AMF3 cyclic object reference {index}")]
    CyclicReference {
        /// The index referred to.
        index: usize,
    },
    /// An AMF3 externalizable object of a class whose private format is unknown.
    #[error("AMF3 externalizable class {class:?} is not supported")]
    Externalizable {
        /// The class name.
        class: String,
    },
    /// The bytes decoded from one message (text, byte arrays, reference copies and
    /// reference tables) exceed the budget.
    #[error("AMF message decodes to {got} bytes, more than the budget of {max}")]
    BudgetExceeded {
        /// Bytes charged when the budget ran out.
        got: usize,
        /// The configured budget.
        max: usize,
    },
    /// The message costs more decoding work (values plus bytes, references copied) than its
    /// size allows ([`AmfLimits::max_expansion`]).
    #[error("AMF message of {input} bytes expands past its budget of {max} values and bytes")]
    ExpansionExceeded {
        /// Length of the message.
        input: usize,
        /// The work allowed for it.
        max: usize,
    },
    /// A declared AMF3 vector or sealed-member count cannot be right.
    #[error("AMF3 invalid length {got}")]
    InvalidLength {
        /// The declared count.
        got: usize,
    },
}

/// Decodes one AMF0 value from the front of `input`, advancing it past the value. The
/// value has the whole budget of `limits` to itself.
pub fn decode(input: &mut &[u8], limits: &AmfLimits) -> Result<Amf0Value, AmfError> {
    let mut budget = Budget::for_input(input.len());
    Decoder {
        limits,
        depth: 0,
        budget: &mut budget,
    }
    .value(input)
}

/// Decodes every AMF0 value in `input` (a command or data message body), all of them
/// under one budget.
pub fn decode_all(input: &[u8], limits: &AmfLimits) -> Result<Vec<Amf0Value>, AmfError> {
    let mut rest = input;
    let mut out = Vec::new();
    let mut budget = Budget::for_input(input.len());
    while !rest.is_empty() {
        if out.len() >= limits.max_items {
            return Err(AmfError::TooManyItems {
                max: limits.max_items,
            });
        }
        let mut dec = Decoder {
            limits,
            depth: 0,
            budget: &mut budget,
        };
        out.push(dec.value(&mut rest)?);
    }
    Ok(out)
}

/// Reads `n` bytes off the front of `input`.
pub(crate) fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], AmfError> {
    if input.len() < n {
        return Err(AmfError::Truncated);
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

pub(crate) fn read_u8(input: &mut &[u8]) -> Result<u8, AmfError> {
    Ok(take(input, 1)?[0])
}

fn read_u16(input: &mut &[u8]) -> Result<u16, AmfError> {
    let b = take(input, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn read_u32(input: &mut &[u8]) -> Result<u32, AmfError> {
    let b = take(input, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn read_f64(input: &mut &[u8]) -> Result<f64, AmfError> {
    let b = take(input, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(f64::from_be_bytes(a))
}

struct Decoder<'l, 'b> {
    limits: &'l AmfLimits,
    depth: usize,
    budget: &'b mut Budget,
}

impl Decoder<'_, '_> {
    fn text(&mut self, input: &mut &[u8], len: usize) -> Result<String, AmfError> {
        if len > self.limits.max_string {
            return Err(AmfError::StringTooLong {
                got: len,
                max: self.limits.max_string,
            });
        }
        let raw = take(input, len)?;
        self.budget.charge(self.limits, 0, len)?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    fn short_string(&mut self, input: &mut &[u8]) -> Result<String, AmfError> {
        let len = usize::from(read_u16(input)?);
        self.text(input, len)
    }

    fn long_string(&mut self, input: &mut &[u8]) -> Result<String, AmfError> {
        let len = read_u32(input)? as usize;
        self.text(input, len)
    }

    fn enter(&mut self) -> Result<(), AmfError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(AmfError::DepthExceeded {
                max: self.limits.max_depth,
            });
        }
        Ok(())
    }

    fn value(&mut self, input: &mut &[u8]) -> Result<Amf0Value, AmfError> {
        self.budget.charge(self.limits, 1, 0)?;
        let m = read_u8(input)?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(read_f64(input)?),
            marker::BOOLEAN => Amf0Value::Boolean(read_u8(input)? != 0),
            marker::STRING => Amf0Value::String(self.short_string(input)?),
            marker::OBJECT => Amf0Value::Object(self.properties(input, None)?),
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED => Amf0Value::Undefined,
            marker::REFERENCE => Amf0Value::Reference(read_u16(input)?),
            marker::ECMA_ARRAY => {
                let declared = read_u32(input)?;
                Amf0Value::EcmaArray(self.properties(input, Some(declared))?)
            }
            marker::OBJECT_END => return Err(AmfError::UnexpectedObjectEnd),
            marker::STRICT_ARRAY => {
                let count = read_u32(input)? as usize;
                if count > self.limits.max_items {
                    return Err(AmfError::TooManyItems {
                        max: self.limits.max_items,
                    });
                }
                // Every element takes at least one byte, so a count beyond the input is a lie.
                if count > input.len() {
                    return Err(AmfError::Truncated);
                }
                self.enter()?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(input)?);
                }
                self.depth -= 1;
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = read_f64(input)?;
                let tz = read_u16(input)? as i16;
                Amf0Value::Date { millis, tz }
            }
            marker::LONG_STRING => Amf0Value::LongString(self.long_string(input)?),
            marker::UNSUPPORTED => Amf0Value::Unsupported,
            marker::XML_DOCUMENT => Amf0Value::XmlDocument(self.long_string(input)?),
            marker::TYPED_OBJECT => {
                let class = self.short_string(input)?;
                let props = self.properties(input, None)?;
                Amf0Value::TypedObject { class, props }
            }
            // The AMF3 value shares the message's depth and budget.
            marker::AVMPLUS => Amf0Value::Avmplus(amf3::decode_in(
                input,
                self.limits,
                self.depth,
                self.budget,
            )?),
            marker::MOVIECLIP | marker::RECORDSET => return Err(AmfError::ReservedMarker(m)),
            other => return Err(AmfError::UnknownMarker(other)),
        })
    }

    /// Reads key/value pairs up to the empty-key + object-end terminator.
    ///
    /// `ecma_count` is the advisory count of an ECMA array: it is never used to allocate,
    /// and an array that ends with the input right after that many pairs is accepted
    /// without the terminator, as some encoders omit it.
    fn properties(
        &mut self,
        input: &mut &[u8],
        ecma_count: Option<u32>,
    ) -> Result<Vec<(String, Amf0Value)>, AmfError> {
        self.enter()?;
        let mut props = Vec::new();
        loop {
            if input.is_empty() {
                if let Some(n) = ecma_count {
                    if props.len() >= n as usize {
                        break;
                    }
                }
                return Err(AmfError::Truncated);
            }
            let key = self.short_string(input)?;
            if key.is_empty() && input.first() == Some(&marker::OBJECT_END) {
                *input = &input[1..];
                break;
            }
            if props.len() >= self.limits.max_items {
                return Err(AmfError::TooManyItems {
                    max: self.limits.max_items,
                });
            }
            let v = self.value(input)?;
            props.push((key, v));
        }
        self.depth -= 1;
        Ok(props)
    }
}

/// Appends the AMF0 encoding of `value` to `out`.
///
/// Strings longer than 65535 bytes are written as long strings, and property names
/// longer than that are cut at 65535 bytes, since the format cannot carry them.
pub fn encode(value: &Amf0Value, out: &mut BytesMut) {
    match value {
        Amf0Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) => {
            if s.len() > usize::from(u16::MAX) {
                out.put_u8(marker::LONG_STRING);
                put_long_string(s, out);
            } else {
                out.put_u8(marker::STRING);
                put_short_string(s, out);
            }
        }
        Amf0Value::Object(props) => {
            out.put_u8(marker::OBJECT);
            put_properties(props, out);
        }
        Amf0Value::Null => out.put_u8(marker::NULL),
        Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
        Amf0Value::Reference(i) => {
            out.put_u8(marker::REFERENCE);
            out.put_u16(*i);
        }
        Amf0Value::EcmaArray(props) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
            put_properties(props, out);
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for v in items {
                encode(v, out);
            }
        }
        Amf0Value::Date { millis, tz } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*tz);
        }
        Amf0Value::LongString(s) => {
            out.put_u8(marker::LONG_STRING);
            put_long_string(s, out);
        }
        Amf0Value::Unsupported => out.put_u8(marker::UNSUPPORTED),
        Amf0Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOCUMENT);
            put_long_string(s, out);
        }
        Amf0Value::TypedObject { class, props } => {
            out.put_u8(marker::TYPED_OBJECT);
            put_short_string(class, out);
            put_properties(props, out);
        }
        Amf0Value::Avmplus(v) => {
            out.put_u8(marker::AVMPLUS);
            amf3::encode(v, out);
        }
    }
}

fn put_short_string(s: &str, out: &mut BytesMut) {
    let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

fn put_long_string(s: &str, out: &mut BytesMut) {
    out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
    out.put_slice(s.as_bytes());
}

fn put_properties(props: &[(String, Amf0Value)], out: &mut BytesMut) {
    for (k, v) in props {
        put_short_string(k, out);
        encode(v, out);
    }
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}
