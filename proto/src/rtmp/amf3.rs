//! AMF3 values (Adobe AMF3 specification), as carried behind the AMF0 avmplus marker
//! (0x11) in type 15 and 17 messages.
//!
//! The decoder resolves string, object and traits references into owned copies. Because a
//! reference can copy a large value many times, every copy is charged to the message's
//! budget ([`AmfLimits::max_total_items`], [`AmfLimits::max_total_bytes`]), and so is
//! every entry the reference tables keep (they hold a copy of each string, traits and
//! complex value); a reference to an object still being decoded (a cycle) is an error. The
//! encoder never emits references: that is always valid AMF3.
//!
//! Externalizable objects carry a class-private format; only the Flex
//! `ArrayCollection`, `ArrayList` and `ObjectProxy` classes, which wrap one AMF3 value,
//! are understood.

use bytes::{BufMut, BytesMut};

use crate::rtmp::amf0::{read_f64, read_u8, take, Amf0Value, Budget};
pub use crate::rtmp::amf0::{AmfError, AmfLimits};

mod marker {
    pub(super) const UNDEFINED: u8 = 0x00;
    pub(super) const NULL: u8 = 0x01;
    pub(super) const FALSE: u8 = 0x02;
    pub(super) const TRUE: u8 = 0x03;
    pub(super) const INTEGER: u8 = 0x04;
    pub(super) const DOUBLE: u8 = 0x05;
    pub(super) const STRING: u8 = 0x06;
    pub(super) const XML_DOC: u8 = 0x07;
    pub(super) const DATE: u8 = 0x08;
    pub(super) const ARRAY: u8 = 0x09;
    pub(super) const OBJECT: u8 = 0x0A;
    pub(super) const XML: u8 = 0x0B;
    pub(super) const BYTE_ARRAY: u8 = 0x0C;
    pub(super) const VECTOR_INT: u8 = 0x0D;
    pub(super) const VECTOR_UINT: u8 = 0x0E;
    pub(super) const VECTOR_DOUBLE: u8 = 0x0F;
    pub(super) const VECTOR_OBJECT: u8 = 0x10;
    pub(super) const DICTIONARY: u8 = 0x11;
}

/// Externalizable classes whose body is exactly one AMF3 value.
const KNOWN_EXTERNALIZABLE: [&str; 3] = [
    "flex.messaging.io.ArrayCollection",
    "flex.messaging.io.ArrayList",
    "flex.messaging.io.ObjectProxy",
];

/// Largest integer an AMF3 integer (29-bit signed) can hold.
pub const INTEGER_MAX: i32 = (1 << 28) - 1;
/// Smallest integer an AMF3 integer (29-bit signed) can hold.
pub const INTEGER_MIN: i32 = -(1 << 28);

/// One AMF3 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    /// undefined (0x00).
    Undefined,
    /// null (0x01).
    Null,
    /// false (0x02) or true (0x03).
    Boolean(bool),
    /// 29-bit signed integer (0x04). [`encode`] writes values outside
    /// [`INTEGER_MIN`]..=[`INTEGER_MAX`] as doubles.
    Integer(i32),
    /// IEEE 754 double (0x05).
    Double(f64),
    /// UTF-8 string (0x06).
    String(String),
    /// Legacy XMLDocument (0x07).
    XmlDocument(String),
    /// Date in milliseconds since the Unix epoch, UTC (0x08).
    Date(f64),
    /// Array (0x09): associative part then dense part.
    Array {
        /// Named entries, in order.
        assoc: Vec<(String, Amf3Value)>,
        /// Dense (indexed) entries.
        dense: Vec<Amf3Value>,
    },
    /// Object (0x0A) with sealed members and, if its traits are dynamic, dynamic members.
    Object {
        /// Class alias; empty for anonymous objects.
        class: String,
        /// Whether the traits are dynamic.
        dynamic: bool,
        /// Sealed members, in traits order.
        sealed: Vec<(String, Amf3Value)>,
        /// Dynamic members, in wire order (empty unless `dynamic`).
        dynamic_props: Vec<(String, Amf3Value)>,
    },
    /// Externalizable object of a known wrapper class: its one wrapped value.
    Externalizable {
        /// Class alias (one of the known Flex wrappers).
        class: String,
        /// The wrapped value.
        value: Box<Amf3Value>,
    },
    /// E4X XML (0x0B).
    Xml(String),
    /// ByteArray (0x0C).
    ByteArray(Vec<u8>),
    /// Vector.&lt;int&gt; (0x0D).
    VectorInt {
        /// Fixed-length flag.
        fixed: bool,
        /// Elements.
        items: Vec<i32>,
    },
    /// Vector.&lt;uint&gt; (0x0E).
    VectorUint {
        /// Fixed-length flag.
        fixed: bool,
        /// Elements.
        items: Vec<u32>,
    },
    /// Vector.&lt;Number&gt; (0x0F).
    VectorDouble {
        /// Fixed-length flag.
        fixed: bool,
        /// Elements.
        items: Vec<f64>,
    },
    /// Vector.&lt;Object&gt; (0x10).
    VectorObject {
        /// Fixed-length flag.
        fixed: bool,
        /// Element type name ("*" for any).
        class: String,
        /// Elements.
        items: Vec<Amf3Value>,
    },
    /// Dictionary (0x11).
    Dictionary {
        /// Weak-keys flag.
        weak_keys: bool,
        /// Key/value entries.
        entries: Vec<(Amf3Value, Amf3Value)>,
    },
}

impl Amf3Value {
    /// The equivalent AMF0 value where AMF0 has one (scalars, strings, anonymous objects,
    /// arrays); otherwise the value wrapped in [`Amf0Value::Avmplus`]. Lets command handlers
    /// treat type 17 and type 20 commands alike.
    pub fn to_amf0(&self) -> Amf0Value {
        let props = |p: &[(String, Amf3Value)]| -> Vec<(String, Amf0Value)> {
            p.iter().map(|(k, v)| (k.clone(), v.to_amf0())).collect()
        };
        match self {
            Amf3Value::Undefined => Amf0Value::Undefined,
            Amf3Value::Null => Amf0Value::Null,
            Amf3Value::Boolean(b) => Amf0Value::Boolean(*b),
            Amf3Value::Integer(i) => Amf0Value::Number(f64::from(*i)),
            Amf3Value::Double(d) => Amf0Value::Number(*d),
            Amf3Value::String(s) => Amf0Value::String(s.clone()),
            Amf3Value::XmlDocument(s) => Amf0Value::XmlDocument(s.clone()),
            Amf3Value::Date(d) => Amf0Value::Date { millis: *d, tz: 0 },
            Amf3Value::Array { assoc, dense } if assoc.is_empty() => {
                Amf0Value::StrictArray(dense.iter().map(Amf3Value::to_amf0).collect())
            }
            Amf3Value::Array { assoc, dense } if dense.is_empty() => {
                Amf0Value::EcmaArray(props(assoc))
            }
            Amf3Value::Object {
                class,
                sealed,
                dynamic_props,
                ..
            } => {
                let mut all = props(sealed);
                all.extend(props(dynamic_props));
                if class.is_empty() {
                    Amf0Value::Object(all)
                } else {
                    Amf0Value::TypedObject {
                        class: class.clone(),
                        props: all,
                    }
                }
            }
            other => Amf0Value::Avmplus(other.clone()),
        }
    }
}

/// Decodes one AMF3 value from the front of `input`, advancing it past the value. The
/// value has the whole budget of `limits` to itself.
pub fn decode(input: &mut &[u8], limits: &AmfLimits) -> Result<Amf3Value, AmfError> {
    decode_in(input, limits, 0, &mut Budget::for_input(input.len()))
}

/// Decodes one AMF3 value nested `depth` deep in a message, charging `budget`.
pub(crate) fn decode_in(
    input: &mut &[u8],
    limits: &AmfLimits,
    depth: usize,
    budget: &mut Budget,
) -> Result<Amf3Value, AmfError> {
    Decoder {
        limits,
        depth,
        budget,
        items: 0,
        bytes: 0,
        strings: Vec::new(),
        objects: Vec::new(),
        traits: Vec::new(),
    }
    .value(input)
}

#[derive(Clone)]
struct Traits {
    class: String,
    dynamic: bool,
    externalizable: bool,
    names: Vec<String>,
}

/// A decoded complex value with what it cost, so a reference can charge the copy.
struct Stored {
    value: Amf3Value,
    items: usize,
    bytes: usize,
}

struct Decoder<'l, 'b> {
    limits: &'l AmfLimits,
    depth: usize,
    /// The message's budget: values, copies and table entries.
    budget: &'b mut Budget,
    /// Size of the values produced so far (what a reference to them copies).
    items: usize,
    bytes: usize,
    strings: Vec<String>,
    /// `None` while the object at that index is still being decoded.
    objects: Vec<Option<Stored>>,
    traits: Vec<Traits>,
}

/// Reads a U29: up to four bytes, seven bits each except all eight of the fourth.
fn read_u29(input: &mut &[u8]) -> Result<u32, AmfError> {
    let mut v: u32 = 0;
    for i in 0..4 {
        let b = read_u8(input)?;
        if i == 3 {
            return Ok((v << 8) | u32::from(b));
        }
        v = (v << 7) | u32::from(b & 0x7F);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Ok(v)
}

/// Where a U29 header points: an earlier table entry, or an inline value with a payload
/// (the header shifted right by one).
enum Header {
    Ref(usize),
    Inline(u32),
}

fn read_header(input: &mut &[u8]) -> Result<Header, AmfError> {
    let h = read_u29(input)?;
    Ok(if h & 1 == 0 {
        Header::Ref((h >> 1) as usize)
    } else {
        Header::Inline(h >> 1)
    })
}

impl Decoder<'_, '_> {
    /// Charges part of the value being produced.
    fn charge(&mut self, items: usize, bytes: usize) -> Result<(), AmfError> {
        self.items = self.items.saturating_add(items);
        self.bytes = self.bytes.saturating_add(bytes);
        self.budget.charge(self.limits, items, bytes)
    }

    /// Charges a copy kept in a reference table.
    fn charge_table(&mut self, items: usize, bytes: usize) -> Result<(), AmfError> {
        self.budget.charge(self.limits, items, bytes)
    }

    fn check_len(&self, len: usize) -> Result<(), AmfError> {
        if len > self.limits.max_string {
            return Err(AmfError::StringTooLong {
                got: len,
                max: self.limits.max_string,
            });
        }
        Ok(())
    }

    fn check_count(
        &self,
        count: usize,
        min_bytes_each: usize,
        input: &[u8],
    ) -> Result<(), AmfError> {
        if count > self.limits.max_items {
            return Err(AmfError::TooManyItems {
                max: self.limits.max_items,
            });
        }
        if count.saturating_mul(min_bytes_each) > input.len() {
            return Err(AmfError::Truncated);
        }
        Ok(())
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

    fn raw_text(&mut self, input: &mut &[u8], len: usize) -> Result<String, AmfError> {
        self.check_len(len)?;
        let raw = take(input, len)?;
        self.charge(0, len)?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    /// A UTF-8-vr: string-table reference or inline text; non-empty inline strings are
    /// added to the string table.
    fn string(&mut self, input: &mut &[u8]) -> Result<String, AmfError> {
        match read_header(input)? {
            Header::Ref(i) => {
                let s = self.strings.get(i).cloned().ok_or(AmfError::BadReference {
                    table: "string",
                    index: i,
                })?;
                self.charge(0, s.len())?;
                Ok(s)
            }
            Header::Inline(len) => {
                let s = self.raw_text(input, len as usize)?;
                if !s.is_empty() {
                    self.charge_table(1, s.len())?;
                    self.strings.push(s.clone());
                }
                Ok(s)
            }
        }
    }

    fn object_ref(&mut self, index: usize) -> Result<Amf3Value, AmfError> {
        let (value, items, bytes) = match self.objects.get(index) {
            None => {
                return Err(AmfError::BadReference {
                    table: "object",
                    index,
                })
            }
            Some(None) => return Err(AmfError::CyclicReference { index }),
            Some(Some(s)) => (s.value.clone(), s.items, s.bytes),
        };
        self.charge(items, bytes)?;
        Ok(value)
    }

    /// Decodes a complex value whose header was inline: reserves its object-table slot
    /// first (the spec numbers objects in the order they begin), then fills it.
    fn complex(
        &mut self,
        input: &mut &[u8],
        body: impl FnOnce(&mut Self, &mut &[u8]) -> Result<Amf3Value, AmfError>,
    ) -> Result<Amf3Value, AmfError> {
        self.charge_table(1, 0)?;
        let slot = self.objects.len();
        self.objects.push(None);
        let (items0, bytes0) = (self.items, self.bytes);
        self.enter()?;
        let v = body(self, input)?;
        self.depth -= 1;
        let (items, bytes) = (self.items - items0, self.bytes - bytes0);
        // The table keeps its own copy of the value.
        self.charge_table(items, bytes)?;
        self.objects[slot] = Some(Stored {
            value: v.clone(),
            items,
            bytes,
        });
        Ok(v)
    }

    fn value(&mut self, input: &mut &[u8]) -> Result<Amf3Value, AmfError> {
        self.charge(1, 0)?;
        let m = read_u8(input)?;
        match m {
            marker::UNDEFINED => Ok(Amf3Value::Undefined),
            marker::NULL => Ok(Amf3Value::Null),
            marker::FALSE => Ok(Amf3Value::Boolean(false)),
            marker::TRUE => Ok(Amf3Value::Boolean(true)),
            marker::INTEGER => {
                let u = read_u29(input)?;
                // Sign-extend from 29 bits.
                Ok(Amf3Value::Integer(((u << 3) as i32) >> 3))
            }
            marker::DOUBLE => Ok(Amf3Value::Double(read_f64(input)?)),
            marker::STRING => Ok(Amf3Value::String(self.string(input)?)),
            marker::XML_DOC | marker::XML | marker::BYTE_ARRAY | marker::DATE => {
                match read_header(input)? {
                    Header::Ref(i) => self.object_ref(i),
                    Header::Inline(len) => self.complex(input, |d, input| {
                        Ok(match m {
                            marker::XML_DOC => {
                                Amf3Value::XmlDocument(d.raw_text(input, len as usize)?)
                            }
                            marker::XML => Amf3Value::Xml(d.raw_text(input, len as usize)?),
                            marker::BYTE_ARRAY => {
                                d.check_len(len as usize)?;
                                let raw = take(input, len as usize)?;
                                d.charge(0, raw.len())?;
                                Amf3Value::ByteArray(raw.to_vec())
                            }
                            _ => Amf3Value::Date(read_f64(input)?),
                        })
                    }),
                }
            }
            marker::ARRAY => match read_header(input)? {
                Header::Ref(i) => self.object_ref(i),
                Header::Inline(dense_len) => self.complex(input, |d, input| {
                    let mut assoc = Vec::new();
                    loop {
                        let key = d.string(input)?;
                        if key.is_empty() {
                            break;
                        }
                        if assoc.len() >= d.limits.max_items {
                            return Err(AmfError::TooManyItems {
                                max: d.limits.max_items,
                            });
                        }
                        let v = d.value(input)?;
                        assoc.push((key, v));
                    }
                    let n = dense_len as usize;
                    d.check_count(n, 1, input)?;
                    let mut dense = Vec::with_capacity(n);
                    for _ in 0..n {
                        dense.push(d.value(input)?);
                    }
                    Ok(Amf3Value::Array { assoc, dense })
                }),
            },
            marker::OBJECT => self.object(input),
            marker::VECTOR_INT | marker::VECTOR_UINT | marker::VECTOR_DOUBLE => {
                match read_header(input)? {
                    Header::Ref(i) => self.object_ref(i),
                    Header::Inline(count) => self.complex(input, |d, input| {
                        let n = count as usize;
                        let fixed = read_u8(input)? != 0;
                        let width = if m == marker::VECTOR_DOUBLE { 8 } else { 4 };
                        d.check_count(n, width, input)?;
                        d.charge(n, 0)?;
                        let raw = take(input, n * width)?;
                        Ok(match m {
                            marker::VECTOR_INT => Amf3Value::VectorInt {
                                fixed,
                                items: raw
                                    .chunks_exact(4)
                                    .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                                    .collect(),
                            },
                            marker::VECTOR_UINT => Amf3Value::VectorUint {
                                fixed,
                                items: raw
                                    .chunks_exact(4)
                                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                                    .collect(),
                            },
                            _ => Amf3Value::VectorDouble {
                                fixed,
                                items: raw
                                    .chunks_exact(8)
                                    .map(|c| {
                                        let mut a = [0u8; 8];
                                        a.copy_from_slice(c);
                                        f64::from_be_bytes(a)
                                    })
                                    .collect(),
                            },
                        })
                    }),
                }
            }
            marker::VECTOR_OBJECT => match read_header(input)? {
                Header::Ref(i) => self.object_ref(i),
                Header::Inline(count) => self.complex(input, |d, input| {
                    let n = count as usize;
                    let fixed = read_u8(input)? != 0;
                    let class = d.string(input)?;
                    d.check_count(n, 1, input)?;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(d.value(input)?);
                    }
                    Ok(Amf3Value::VectorObject {
                        fixed,
                        class,
                        items,
                    })
                }),
            },
            marker::DICTIONARY => match read_header(input)? {
                Header::Ref(i) => self.object_ref(i),
                Header::Inline(count) => self.complex(input, |d, input| {
                    let n = count as usize;
                    let weak_keys = read_u8(input)? != 0;
                    d.check_count(n, 2, input)?;
                    let mut entries = Vec::with_capacity(n);
                    for _ in 0..n {
                        let k = d.value(input)?;
                        let v = d.value(input)?;
                        entries.push((k, v));
                    }
                    Ok(Amf3Value::Dictionary { weak_keys, entries })
                }),
            },
            other => Err(AmfError::UnknownMarker(other)),
        }
    }

    fn object(&mut self, input: &mut &[u8]) -> Result<Amf3Value, AmfError> {
        let h = read_u29(input)?;
        if h & 1 == 0 {
            return self.object_ref((h >> 1) as usize);
        }
        self.complex(input, |d, input| {
            let traits = if h & 2 == 0 {
                let i = (h >> 2) as usize;
                let t = d.traits.get(i).cloned().ok_or(AmfError::BadReference {
                    table: "traits",
                    index: i,
                })?;
                // The object copies the class and member names out of the table.
                let names_len: usize = t.names.iter().map(String::len).sum();
                d.charge(t.names.len(), t.class.len() + names_len)?;
                t
            } else {
                let externalizable = h & 4 != 0;
                let dynamic = h & 8 != 0;
                let count = (h >> 4) as usize;
                let class = d.string(input)?;
                // Each sealed name takes at least one byte.
                d.check_count(count, 1, input)?;
                let mut names = Vec::with_capacity(count);
                for _ in 0..count {
                    names.push(d.string(input)?);
                }
                let t = Traits {
                    class,
                    dynamic,
                    externalizable,
                    names,
                };
                let names_len: usize = t.names.iter().map(String::len).sum();
                d.charge_table(1 + t.names.len(), t.class.len() + names_len)?;
                d.traits.push(t.clone());
                t
            };
            if traits.externalizable {
                if KNOWN_EXTERNALIZABLE.contains(&traits.class.as_str()) {
                    let v = d.value(input)?;
                    return Ok(Amf3Value::Externalizable {
                        class: traits.class,
                        value: Box::new(v),
                    });
                }
                return Err(AmfError::Externalizable {
                    class: traits.class,
                });
            }
            let mut sealed = Vec::with_capacity(traits.names.len());
            for name in &traits.names {
                let v = d.value(input)?;
                sealed.push((name.clone(), v));
            }
            let mut dynamic_props = Vec::new();
            if traits.dynamic {
                loop {
                    let key = d.string(input)?;
                    if key.is_empty() {
                        break;
                    }
                    if dynamic_props.len() >= d.limits.max_items {
                        return Err(AmfError::TooManyItems {
                            max: d.limits.max_items,
                        });
                    }
                    let v = d.value(input)?;
                    dynamic_props.push((key, v));
                }
            }
            Ok(Amf3Value::Object {
                class: traits.class,
                dynamic: traits.dynamic,
                sealed,
                dynamic_props,
            })
        })
    }
}

/// Appends a U29 (values above 2^29 - 1 are masked to 29 bits).
fn put_u29(v: u32, out: &mut BytesMut) {
    let v = v & 0x1FFF_FFFF;
    if v < 0x80 {
        out.put_u8(v as u8);
    } else if v < 0x4000 {
        out.put_u8(((v >> 7) | 0x80) as u8);
        out.put_u8((v & 0x7F) as u8);
    } else if v < 0x20_0000 {
        out.put_u8(((v >> 14) | 0x80) as u8);
        out.put_u8((((v >> 7) & 0x7F) | 0x80) as u8);
        out.put_u8((v & 0x7F) as u8);
    } else {
        out.put_u8(((v >> 22) | 0x80) as u8);
        out.put_u8((((v >> 15) & 0x7F) | 0x80) as u8);
        out.put_u8((((v >> 8) & 0x7F) | 0x80) as u8);
        out.put_u8((v & 0xFF) as u8);
    }
}

/// Inline header carrying `n` (lengths and counts are limited to 28 bits by the format).
fn put_inline(n: usize, out: &mut BytesMut) {
    let n = u32::try_from(n).unwrap_or(u32::MAX).min(0x0FFF_FFFF);
    put_u29((n << 1) | 1, out);
}

fn put_string(s: &str, out: &mut BytesMut) {
    let len = s.len().min(0x0FFF_FFFF);
    put_inline(len, out);
    out.put_slice(&s.as_bytes()[..len]);
}

/// Appends the AMF3 encoding of `value` to `out`, with every string and object inline.
pub fn encode(value: &Amf3Value, out: &mut BytesMut) {
    match value {
        Amf3Value::Undefined => out.put_u8(marker::UNDEFINED),
        Amf3Value::Null => out.put_u8(marker::NULL),
        Amf3Value::Boolean(false) => out.put_u8(marker::FALSE),
        Amf3Value::Boolean(true) => out.put_u8(marker::TRUE),
        Amf3Value::Integer(i) => {
            if (INTEGER_MIN..=INTEGER_MAX).contains(i) {
                out.put_u8(marker::INTEGER);
                put_u29(*i as u32, out);
            } else {
                out.put_u8(marker::DOUBLE);
                out.put_f64(f64::from(*i));
            }
        }
        Amf3Value::Double(d) => {
            out.put_u8(marker::DOUBLE);
            out.put_f64(*d);
        }
        Amf3Value::String(s) => {
            out.put_u8(marker::STRING);
            put_string(s, out);
        }
        Amf3Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOC);
            put_string(s, out);
        }
        Amf3Value::Xml(s) => {
            out.put_u8(marker::XML);
            put_string(s, out);
        }
        Amf3Value::Date(d) => {
            out.put_u8(marker::DATE);
            put_u29(1, out);
            out.put_f64(*d);
        }
        Amf3Value::Array { assoc, dense } => {
            out.put_u8(marker::ARRAY);
            put_inline(dense.len(), out);
            for (k, v) in assoc.iter().filter(|(k, _)| !k.is_empty()) {
                put_string(k, out);
                encode(v, out);
            }
            put_string("", out);
            for v in dense {
                encode(v, out);
            }
        }
        Amf3Value::Object {
            class,
            dynamic,
            sealed,
            dynamic_props,
        } => {
            out.put_u8(marker::OBJECT);
            let count = u32::try_from(sealed.len())
                .unwrap_or(u32::MAX)
                .min(0x00FF_FFFF);
            let flags = 0b011 | if *dynamic { 0b1000 } else { 0 };
            put_u29((count << 4) | flags, out);
            put_string(class, out);
            for (k, _) in sealed.iter().take(count as usize) {
                put_string(k, out);
            }
            for (_, v) in sealed.iter().take(count as usize) {
                encode(v, out);
            }
            if *dynamic {
                for (k, v) in dynamic_props.iter().filter(|(k, _)| !k.is_empty()) {
                    put_string(k, out);
                    encode(v, out);
                }
                put_string("", out);
            }
        }
        Amf3Value::Externalizable { class, value } => {
            out.put_u8(marker::OBJECT);
            put_u29(0b0111, out);
            put_string(class, out);
            encode(value, out);
        }
        Amf3Value::ByteArray(b) => {
            out.put_u8(marker::BYTE_ARRAY);
            let len = b.len().min(0x0FFF_FFFF);
            put_inline(len, out);
            out.put_slice(&b[..len]);
        }
        Amf3Value::VectorInt { fixed, items } => {
            out.put_u8(marker::VECTOR_INT);
            put_inline(items.len(), out);
            out.put_u8(u8::from(*fixed));
            for i in items {
                out.put_i32(*i);
            }
        }
        Amf3Value::VectorUint { fixed, items } => {
            out.put_u8(marker::VECTOR_UINT);
            put_inline(items.len(), out);
            out.put_u8(u8::from(*fixed));
            for i in items {
                out.put_u32(*i);
            }
        }
        Amf3Value::VectorDouble { fixed, items } => {
            out.put_u8(marker::VECTOR_DOUBLE);
            put_inline(items.len(), out);
            out.put_u8(u8::from(*fixed));
            for d in items {
                out.put_f64(*d);
            }
        }
        Amf3Value::VectorObject {
            fixed,
            class,
            items,
        } => {
            out.put_u8(marker::VECTOR_OBJECT);
            put_inline(items.len(), out);
            out.put_u8(u8::from(*fixed));
            put_string(class, out);
            for v in items {
                encode(v, out);
            }
        }
        Amf3Value::Dictionary { weak_keys, entries } => {
            out.put_u8(marker::DICTIONARY);
            put_inline(entries.len(), out);
            out.put_u8(u8::from(*weak_keys));
            for (k, v) in entries {
                encode(k, out);
                encode(v, out);
            }
        }
    }
}
