//! AMF0 and AMF3: golden vectors for every marker, negative vectors, limits and proptest
//! round trips.

use bytes::BytesMut;
use proptest::prelude::*;
use proto::rtmp::amf0::{self, Amf0Value, AmfError, AmfLimits};
use proto::rtmp::amf3::{self, Amf3Value};

fn enc0(v: &Amf0Value) -> Vec<u8> {
    let mut b = BytesMut::new();
    amf0::encode(v, &mut b);
    b.to_vec()
}

fn enc3(v: &Amf3Value) -> Vec<u8> {
    let mut b = BytesMut::new();
    amf3::encode(v, &mut b);
    b.to_vec()
}

fn dec0(b: &[u8]) -> Result<Amf0Value, AmfError> {
    let mut input = b;
    let v = amf0::decode(&mut input, &AmfLimits::default())?;
    assert!(input.is_empty(), "trailing bytes");
    Ok(v)
}

fn dec3(b: &[u8]) -> Result<Amf3Value, AmfError> {
    let mut input = b;
    let v = amf3::decode(&mut input, &AmfLimits::default())?;
    assert!(input.is_empty(), "trailing bytes");
    Ok(v)
}

fn s(x: &str) -> Amf0Value {
    Amf0Value::String(x.into())
}

/// Both directions: `bytes` decodes to `value` and `value` encodes to `bytes`.
fn golden0(value: Amf0Value, bytes: &[u8]) {
    assert_eq!(dec0(bytes).unwrap(), value, "decode {bytes:02x?}");
    assert_eq!(enc0(&value), bytes, "encode {value:?}");
}

fn golden3(value: Amf3Value, bytes: &[u8]) {
    assert_eq!(dec3(bytes).unwrap(), value, "decode {bytes:02x?}");
    assert_eq!(enc3(&value), bytes, "encode {value:?}");
}

#[test]
fn amf0_golden_every_marker() {
    golden0(
        Amf0Value::Number(1.0),
        &[0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0],
    );
    golden0(Amf0Value::Boolean(true), &[0x01, 0x01]);
    golden0(s("ab"), &[0x02, 0x00, 0x02, b'a', b'b']);
    golden0(
        Amf0Value::object([("a", Amf0Value::Null)]),
        &[0x03, 0x00, 0x01, b'a', 0x05, 0x00, 0x00, 0x09],
    );
    golden0(Amf0Value::Null, &[0x05]);
    golden0(Amf0Value::Undefined, &[0x06]);
    golden0(Amf0Value::Reference(0x0102), &[0x07, 0x01, 0x02]);
    golden0(
        Amf0Value::EcmaArray(vec![("d".into(), Amf0Value::Boolean(false))]),
        &[
            0x08, 0, 0, 0, 1, 0x00, 0x01, b'd', 0x01, 0x00, 0x00, 0x00, 0x09,
        ],
    );
    golden0(
        Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Undefined]),
        &[0x0A, 0, 0, 0, 2, 0x05, 0x06],
    );
    golden0(
        Amf0Value::Date {
            millis: 0.0,
            tz: -60,
        },
        &[0x0B, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xC4],
    );
    golden0(Amf0Value::LongString("x".into()), &[0x0C, 0, 0, 0, 1, b'x']);
    golden0(Amf0Value::Unsupported, &[0x0D]);
    golden0(
        Amf0Value::XmlDocument("<a/>".into()),
        &[0x0F, 0, 0, 0, 4, b'<', b'a', b'/', b'>'],
    );
    golden0(
        Amf0Value::TypedObject {
            class: "C".into(),
            props: vec![("n".into(), Amf0Value::Number(0.0))],
        },
        &[
            0x10, 0x00, 0x01, b'C', 0x00, 0x01, b'n', 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00,
            0x09,
        ],
    );
    golden0(
        Amf0Value::Avmplus(Amf3Value::Integer(5)),
        &[0x11, 0x04, 0x05],
    );
}

#[test]
fn amf0_long_string_value_is_written_as_long_string() {
    let big = "z".repeat(70_000);
    let b = enc0(&Amf0Value::String(big.clone()));
    assert_eq!(&b[..5], &[0x0C, 0x00, 0x01, 0x11, 0x70]);
    assert_eq!(dec0(&b).unwrap(), Amf0Value::LongString(big));
}

/// `connect` as FFmpeg (Lavf) sends it when publishing, byte by byte.
fn ffmpeg_connect() -> Vec<u8> {
    let mut v = Vec::new();
    let str_ = |v: &mut Vec<u8>, t: &str| {
        v.extend_from_slice(&(t.len() as u16).to_be_bytes());
        v.extend_from_slice(t.as_bytes());
    };
    v.push(0x02);
    str_(&mut v, "connect");
    v.extend_from_slice(&[0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
    v.push(0x03);
    for (k, val) in [
        ("app", "live"),
        ("type", "nonprivate"),
        ("flashVer", "FMLE/3.0 (compatible; Lavf61.7.100)"),
        ("tcUrl", "rtmp://127.0.0.1:1935/live"),
    ] {
        str_(&mut v, k);
        v.push(0x02);
        str_(&mut v, val);
    }
    v.extend_from_slice(&[0x00, 0x00, 0x09]);
    v
}

#[test]
fn amf0_ffmpeg_connect() {
    let bytes = ffmpeg_connect();
    let values = amf0::decode_all(&bytes, &AmfLimits::default()).unwrap();
    assert_eq!(values.len(), 3);
    assert_eq!(values[0].as_str(), Some("connect"));
    assert_eq!(values[1].as_f64(), Some(1.0));
    assert_eq!(
        values[2].get("app").and_then(Amf0Value::as_str),
        Some("live")
    );
    assert_eq!(
        values[2].get("tcUrl").and_then(Amf0Value::as_str),
        Some("rtmp://127.0.0.1:1935/live")
    );
    assert_eq!(values[2].get("missing"), None);
    let mut again = BytesMut::new();
    for v in &values {
        amf0::encode(v, &mut again);
    }
    assert_eq!(&again[..], &bytes[..]);
}

#[test]
fn amf0_ecma_array_count_is_advisory() {
    // Count says 5 but one pair follows, then the terminator.
    let b = [0x08, 0, 0, 0, 5, 0x00, 0x01, b'd', 0x05, 0x00, 0x00, 0x09];
    assert_eq!(
        dec0(&b).unwrap(),
        Amf0Value::EcmaArray(vec![("d".into(), Amf0Value::Null)])
    );
    // Terminator missing, input ends right after the announced pairs.
    let b = [0x08, 0, 0, 0, 1, 0x00, 0x01, b'd', 0x05];
    assert_eq!(
        dec0(&b).unwrap(),
        Amf0Value::EcmaArray(vec![("d".into(), Amf0Value::Null)])
    );
}

#[test]
fn amf0_invalid_utf8_is_replaced() {
    assert_eq!(dec0(&[0x02, 0x00, 0x01, 0xE9]).unwrap(), s("\u{FFFD}"));
}

#[test]
fn amf0_negative_vectors() {
    let cases: &[(&[u8], AmfError)] = &[
        (&[], AmfError::Truncated),
        (&[0x00, 0x3F], AmfError::Truncated),
        (&[0x02, 0x00, 0x05, b'a'], AmfError::Truncated),
        (&[0x03, 0x00, 0x01, b'a', 0x05], AmfError::Truncated),
        (
            &[0x0A, 0xFF, 0xFF, 0xFF, 0xFF],
            AmfError::TooManyItems { max: 4096 },
        ),
        (&[0x0A, 0, 0, 0, 9, 0x05], AmfError::Truncated),
        (&[0x04], AmfError::ReservedMarker(0x04)),
        (&[0x0E], AmfError::ReservedMarker(0x0E)),
        (&[0x09], AmfError::UnexpectedObjectEnd),
        (&[0x12], AmfError::UnknownMarker(0x12)),
        (&[0xFF], AmfError::UnknownMarker(0xFF)),
        (
            &[0x0C, 0x7F, 0xFF, 0xFF, 0xFF],
            AmfError::StringTooLong {
                got: 0x7FFF_FFFF,
                max: 1 << 20,
            },
        ),
        (&[0x11, 0x0C], AmfError::Truncated),
    ];
    for (bytes, err) in cases {
        assert_eq!(dec0(bytes).as_ref(), Err(err), "{bytes:02x?}");
    }
}

#[test]
fn amf0_depth_limit() {
    let limits = AmfLimits {
        max_depth: 4,
        ..AmfLimits::default()
    };
    let nest = |n: usize| {
        let mut v = Amf0Value::Null;
        for _ in 0..n {
            v = Amf0Value::StrictArray(vec![v]);
        }
        enc0(&v)
    };
    assert!(amf0::decode(&mut &nest(4)[..], &limits).is_ok());
    assert_eq!(
        amf0::decode(&mut &nest(5)[..], &limits),
        Err(AmfError::DepthExceeded { max: 4 })
    );
    // 100k nested objects from a tiny buffer must not overflow the stack.
    let deep = [0x03u8, 0x00, 0x01, b'a'].repeat(100_000);
    assert_eq!(
        amf0::decode(&mut &deep[..], &AmfLimits::default()),
        Err(AmfError::DepthExceeded { max: 32 })
    );
    // The AMF3 part shares the depth budget.
    let mut v = Amf3Value::Null;
    for _ in 0..4 {
        v = Amf3Value::Array {
            assoc: vec![],
            dense: vec![v],
        };
    }
    let b = enc0(&Amf0Value::StrictArray(vec![Amf0Value::Avmplus(v)]));
    assert_eq!(
        amf0::decode(&mut &b[..], &limits),
        Err(AmfError::DepthExceeded { max: 4 })
    );
}

#[test]
fn amf0_item_limits() {
    let limits = AmfLimits {
        max_items: 3,
        max_total_items: 10,
        ..AmfLimits::default()
    };
    let obj = |n: usize| {
        enc0(&Amf0Value::Object(
            (0..n).map(|i| (format!("k{i}"), Amf0Value::Null)).collect(),
        ))
    };
    assert!(amf0::decode(&mut &obj(3)[..], &limits).is_ok());
    assert_eq!(
        amf0::decode(&mut &obj(4)[..], &limits),
        Err(AmfError::TooManyItems { max: 3 })
    );
    let nested = enc0(&Amf0Value::StrictArray(vec![
        Amf0Value::StrictArray(vec![Amf0Value::Null; 3]),
        Amf0Value::StrictArray(vec![Amf0Value::Null; 3]),
        Amf0Value::StrictArray(vec![Amf0Value::Null; 3]),
    ]));
    assert_eq!(
        amf0::decode(&mut &nested[..], &limits),
        Err(AmfError::TooManyItems { max: 10 })
    );
}

#[test]
fn amf3_golden_every_marker() {
    golden3(Amf3Value::Undefined, &[0x00]);
    golden3(Amf3Value::Null, &[0x01]);
    golden3(Amf3Value::Boolean(false), &[0x02]);
    golden3(Amf3Value::Boolean(true), &[0x03]);
    golden3(Amf3Value::Integer(0x7F), &[0x04, 0x7F]);
    golden3(Amf3Value::Integer(0x80), &[0x04, 0x81, 0x00]);
    golden3(Amf3Value::Integer(0x3FFF), &[0x04, 0xFF, 0x7F]);
    golden3(Amf3Value::Integer(0x4000), &[0x04, 0x81, 0x80, 0x00]);
    golden3(
        Amf3Value::Integer(0x20_0000),
        &[0x04, 0x80, 0xC0, 0x80, 0x00],
    );
    golden3(
        Amf3Value::Integer(0x0FFF_FFFF),
        &[0x04, 0xBF, 0xFF, 0xFF, 0xFF],
    );
    golden3(Amf3Value::Integer(-1), &[0x04, 0xFF, 0xFF, 0xFF, 0xFF]);
    golden3(
        Amf3Value::Integer(-0x1000_0000),
        &[0x04, 0xC0, 0x80, 0x80, 0x00],
    );
    golden3(
        Amf3Value::Double(1.0),
        &[0x05, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0],
    );
    golden3(Amf3Value::String("hi".into()), &[0x06, 0x05, b'h', b'i']);
    golden3(Amf3Value::String(String::new()), &[0x06, 0x01]);
    golden3(
        Amf3Value::XmlDocument("<a/>".into()),
        &[0x07, 0x09, b'<', b'a', b'/', b'>'],
    );
    golden3(Amf3Value::Date(0.0), &[0x08, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
    golden3(
        Amf3Value::Array {
            assoc: vec![("k".into(), Amf3Value::Null)],
            dense: vec![Amf3Value::Boolean(true)],
        },
        &[0x09, 0x03, 0x03, b'k', 0x01, 0x01, 0x03],
    );
    golden3(
        Amf3Value::Object {
            class: String::new(),
            dynamic: true,
            sealed: vec![],
            dynamic_props: vec![("a".into(), Amf3Value::Integer(1))],
        },
        &[0x0A, 0x0B, 0x01, 0x03, b'a', 0x04, 0x01, 0x01],
    );
    golden3(
        Amf3Value::Object {
            class: "P".into(),
            dynamic: false,
            sealed: vec![
                ("x".into(), Amf3Value::Integer(2)),
                ("y".into(), Amf3Value::Null),
            ],
            dynamic_props: vec![],
        },
        &[
            0x0A, 0x23, 0x03, b'P', 0x03, b'x', 0x03, b'y', 0x04, 0x02, 0x01,
        ],
    );
    golden3(
        Amf3Value::Xml("<b/>".into()),
        &[0x0B, 0x09, b'<', b'b', b'/', b'>'],
    );
    golden3(Amf3Value::ByteArray(vec![1, 2, 3]), &[0x0C, 0x07, 1, 2, 3]);
    golden3(
        Amf3Value::VectorInt {
            fixed: true,
            items: vec![-1, 2],
        },
        &[0x0D, 0x05, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2],
    );
    golden3(
        Amf3Value::VectorUint {
            fixed: false,
            items: vec![0xFFFF_FFFF],
        },
        &[0x0E, 0x03, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
    );
    golden3(
        Amf3Value::VectorDouble {
            fixed: false,
            items: vec![1.0],
        },
        &[0x0F, 0x03, 0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0],
    );
    golden3(
        Amf3Value::VectorObject {
            fixed: false,
            class: "*".into(),
            items: vec![Amf3Value::Null],
        },
        &[0x10, 0x03, 0x00, 0x03, b'*', 0x01],
    );
    golden3(
        Amf3Value::Dictionary {
            weak_keys: true,
            entries: vec![(Amf3Value::Integer(1), Amf3Value::String("v".into()))],
        },
        &[0x11, 0x03, 0x01, 0x04, 0x01, 0x06, 0x03, b'v'],
    );
    golden3(
        Amf3Value::Externalizable {
            class: "flex.messaging.io.ArrayCollection".into(),
            value: Box::new(Amf3Value::Array {
                assoc: vec![],
                dense: vec![],
            }),
        },
        &[
            &[0x0A, 0x07, 0x43][..],
            b"flex.messaging.io.ArrayCollection",
            &[0x09, 0x01, 0x01],
        ]
        .concat(),
    );
}

#[test]
fn amf3_integer_out_of_range_is_written_as_double() {
    assert_eq!(
        enc3(&Amf3Value::Integer(1 << 28)),
        [&[0x05][..], &f64::from(1 << 28).to_be_bytes()].concat()
    );
}

#[test]
fn amf3_references() {
    // [ "a", ref string 0, {dyn}, ref object 1, traits ref 0 object ]
    let b = [
        0x09, 0x0B, 0x01, // array, 5 dense, no assoc
        0x06, 0x03, b'a', // "a"
        0x06, 0x00, // string ref 0 -> "a"
        0x0A, 0x1B, 0x01, 0x00, 0x04, 0x07,
        0x01, // object: traits inline, dynamic, 1 sealed ("a" by ref), a=7
        0x0A, 0x02, // object ref 1 (index 0 is the array)
        0x0A, 0x01, 0x04, 0x08, 0x01, // traits ref 0, a=8, end of dynamic members
    ];
    let obj = |n| Amf3Value::Object {
        class: String::new(),
        dynamic: true,
        sealed: vec![("a".into(), Amf3Value::Integer(n))],
        dynamic_props: vec![],
    };
    assert_eq!(
        dec3(&b).unwrap(),
        Amf3Value::Array {
            assoc: vec![],
            dense: vec![
                Amf3Value::String("a".into()),
                Amf3Value::String("a".into()),
                obj(7),
                obj(7),
                obj(8),
            ],
        }
    );
}

#[test]
fn amf3_negative_vectors() {
    let cases: &[(&[u8], AmfError)] = &[
        (&[], AmfError::Truncated),
        (&[0x04, 0x80], AmfError::Truncated),
        (
            &[0x06, 0x02],
            AmfError::BadReference {
                table: "string",
                index: 1,
            },
        ),
        (
            &[0x0A, 0x02],
            AmfError::BadReference {
                table: "object",
                index: 1,
            },
        ),
        (
            &[0x0A, 0x05],
            AmfError::BadReference {
                table: "traits",
                index: 1,
            },
        ),
        // An array containing a reference to itself.
        (
            &[0x09, 0x03, 0x01, 0x09, 0x00],
            AmfError::CyclicReference { index: 0 },
        ),
        (
            &[0x0A, 0x07, 0x03, b'X', 0x01],
            AmfError::Externalizable { class: "X".into() },
        ),
        (&[0x12], AmfError::UnknownMarker(0x12)),
        (
            &[0x0D, 0xFF, 0xFF, 0xFF, 0x7F, 0x00],
            AmfError::TooManyItems { max: 4096 },
        ),
        (&[0x0D, 0x05, 0x00, 0, 0, 0, 1], AmfError::Truncated),
        (
            &[0x0C, 0xFF, 0xFF, 0xFF, 0xFF],
            AmfError::StringTooLong {
                got: 0x0FFF_FFFF,
                max: 1 << 20,
            },
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(dec3(bytes).as_ref(), Err(err), "{bytes:02x?}");
    }
}

#[test]
fn amf3_reference_amplification_is_bounded() {
    // One 1000-byte string, then an array of 4000 references to it: 4 MB of output
    // from 8 KB of input, over a 16 KiB byte budget. The string counts twice (the value
    // and its string-table entry), then 1000 bytes per reference.
    let limits = AmfLimits {
        max_total_bytes: 16 * 1024,
        ..AmfLimits::default()
    };
    // Array of 4000 (U29 8001), no assoc, then the string (U29 2001) and 3999 refs.
    let mut b = vec![0x09, 0xBE, 0x41, 0x01, 0x06, 0x8F, 0x51];
    b.extend_from_slice("q".repeat(1000).as_bytes());
    for _ in 1..4000 {
        b.extend_from_slice(&[0x06, 0x00]);
    }
    assert_eq!(
        amf3::decode(&mut &b[..], &limits),
        Err(AmfError::BudgetExceeded {
            got: 17_000,
            max: 16 * 1024
        })
    );
}

/// An AMF3 array of `n` (2..=8191) elements: one 1000-byte string, then `n - 1`
/// references to it.
fn string_and_references(n: usize) -> Vec<u8> {
    let header = (n << 1) | 1;
    let mut b = vec![
        0x09,
        0x80 | (header >> 7) as u8,
        (header & 0x7F) as u8,
        0x01,
    ];
    b.extend_from_slice(&[0x06, 0x8F, 0x51]);
    b.extend_from_slice("q".repeat(1000).as_bytes());
    for _ in 1..n {
        b.extend_from_slice(&[0x06, 0x00]);
    }
    b
}

#[test]
fn amf3_reference_expansion_is_bounded_by_message_size() {
    // At the production data limits 4000 references to a 1000-byte string (4 MB from
    // 9 KB) fit the 16 MiB budget, but not 64 units of work per message byte.
    let limits = AmfLimits::data();
    let b = string_and_references(4000);
    assert_eq!(b.len(), 9005);
    assert_eq!(
        amf3::decode(&mut &b[..], &limits),
        Err(AmfError::ExpansionExceeded {
            input: 9005,
            max: 64 * 9005
        })
    );
    // 25 references in a 1057-byte message are fine: 27 KB decoded, 54 KB of work with
    // the array's object-table copy.
    let b = string_and_references(26);
    assert_eq!(b.len(), 1057);
    let Ok(Amf3Value::Array { dense, .. }) = amf3::decode(&mut &b[..], &limits) else {
        panic!("25 references refused");
    };
    assert_eq!(dense.len(), 26);
    // It applies to the whole message, AMF3 switched to inside AMF0 included.
    let mut msg = enc0(&Amf0Value::String("onData".into()));
    msg.push(0x11); // avmplus: the next value is AMF3
    msg.extend(string_and_references(4000));
    assert!(matches!(
        amf0::decode_all(&msg, &limits),
        Err(AmfError::ExpansionExceeded { .. })
    ));
}

#[test]
fn amf3_reference_tables_are_charged() {
    // Three nested arrays around one 100-byte string: 100 bytes of value, 100 for the
    // string-table entry and 100 for each array's object-table copy.
    let mut v = Amf3Value::String("s".repeat(100));
    for _ in 0..3 {
        v = Amf3Value::Array {
            assoc: vec![],
            dense: vec![v],
        };
    }
    let b = enc3(&v);
    let budget = |max_total_bytes| AmfLimits {
        max_total_bytes,
        ..AmfLimits::default()
    };
    assert_eq!(amf3::decode(&mut &b[..], &budget(500)), Ok(v));
    assert_eq!(
        amf3::decode(&mut &b[..], &budget(499)),
        Err(AmfError::BudgetExceeded { got: 500, max: 499 })
    );
    // Traits referenced by later objects copy their member names into each object.
    // An object with one 200-byte sealed member name, then 10 objects by traits reference.
    let name = "n".repeat(200);
    let mut b = vec![0x09, 0x17, 0x01]; // array of 11 dense, no assoc
    b.extend([0x0A, 0x13, 0x01]); // inline traits, 1 sealed member, anonymous
    b.push(0x83); // name: inline string of 200 bytes (U29 401)
    b.push(0x11);
    b.extend(name.as_bytes());
    b.push(0x01); // member value: null
    for _ in 0..10 {
        b.extend([0x0A, 0x01, 0x01]); // traits reference 0, member value null
    }
    assert!(amf3::decode(&mut &b[..], &budget(1 << 20)).is_ok());
    assert!(matches!(
        amf3::decode(&mut &b[..], &budget(2000)),
        Err(AmfError::BudgetExceeded { .. })
    ));
}

#[test]
fn one_budget_per_message() {
    // 64 values of 1000 bytes each: every one fits a 16 KiB budget, the message does not.
    let one = enc0(&Amf0Value::String("x".repeat(1000)));
    let body = one.repeat(64);
    let limits = AmfLimits {
        max_total_bytes: 16 * 1024,
        ..AmfLimits::default()
    };
    assert!(amf0::decode(&mut &one[..], &limits).is_ok());
    assert_eq!(
        amf0::decode_all(&body, &limits),
        Err(AmfError::BudgetExceeded {
            got: 17_000,
            max: 16 * 1024
        })
    );
    // The item budget is per message too.
    let limits = AmfLimits {
        max_total_items: 100,
        ..AmfLimits::default()
    };
    let arr = enc0(&Amf0Value::StrictArray(vec![Amf0Value::Null; 40]));
    assert!(amf0::decode_all(&arr.repeat(2), &limits).is_ok());
    assert_eq!(
        amf0::decode_all(&arr.repeat(3), &limits),
        Err(AmfError::TooManyItems { max: 100 })
    );
}

#[test]
fn command_budget_is_small() {
    let c = AmfLimits::command();
    let d = AmfLimits::data();
    assert!(c.max_total_bytes < d.max_total_bytes && c.max_total_items < d.max_total_items);
    // A connect command with a 1 MiB string is a data-sized value, not a command.
    let body = [
        enc0(&Amf0Value::String("connect".into())),
        enc0(&Amf0Value::Number(1.0)),
        enc0(&Amf0Value::LongString("a".repeat(1 << 20))),
    ]
    .concat();
    assert!(amf0::decode_all(&body, &d).is_ok());
    assert_eq!(
        amf0::decode_all(&body, &c),
        Err(AmfError::StringTooLong {
            got: 1 << 20,
            max: c.max_string
        })
    );
}

fn amf3_value() -> impl Strategy<Value = Amf3Value> {
    let key = "[a-z]{1,6}";
    let leaf = prop_oneof![
        Just(Amf3Value::Undefined),
        Just(Amf3Value::Null),
        any::<bool>().prop_map(Amf3Value::Boolean),
        (amf3::INTEGER_MIN..=amf3::INTEGER_MAX).prop_map(Amf3Value::Integer),
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(Amf3Value::Double),
        ".{0,12}".prop_map(Amf3Value::String),
        ".{0,12}".prop_map(Amf3Value::Xml),
        ".{0,12}".prop_map(Amf3Value::XmlDocument),
        (-1e13f64..1e13).prop_map(Amf3Value::Date),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Amf3Value::ByteArray),
        (any::<bool>(), prop::collection::vec(any::<i32>(), 0..5))
            .prop_map(|(fixed, items)| Amf3Value::VectorInt { fixed, items }),
        (any::<bool>(), prop::collection::vec(any::<u32>(), 0..5))
            .prop_map(|(fixed, items)| Amf3Value::VectorUint { fixed, items }),
        (any::<bool>(), prop::collection::vec(-1e9f64..1e9, 0..5))
            .prop_map(|(fixed, items)| Amf3Value::VectorDouble { fixed, items }),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            (
                prop::collection::vec((key, inner.clone()), 0..4),
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(assoc, dense)| Amf3Value::Array { assoc, dense }),
            (
                "[A-Za-z]{0,5}",
                any::<bool>(),
                prop::collection::vec((key, inner.clone()), 0..4),
                prop::collection::vec((key, inner.clone()), 0..4)
            )
                .prop_map(|(class, dynamic, sealed, dynamic_props)| {
                    Amf3Value::Object {
                        class,
                        dynamic,
                        sealed,
                        dynamic_props: if dynamic { dynamic_props } else { vec![] },
                    }
                }),
            (
                any::<bool>(),
                "[A-Za-z*]{0,5}",
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(fixed, class, items)| Amf3Value::VectorObject {
                    fixed,
                    class,
                    items
                }),
            (
                any::<bool>(),
                prop::collection::vec((inner.clone(), inner.clone()), 0..3)
            )
                .prop_map(|(weak_keys, entries)| Amf3Value::Dictionary { weak_keys, entries }),
            inner.prop_map(|v| Amf3Value::Externalizable {
                class: "flex.messaging.io.ObjectProxy".into(),
                value: Box::new(v),
            }),
        ]
    })
}

fn amf0_value() -> impl Strategy<Value = Amf0Value> {
    let key = ".{0,8}";
    let leaf = prop_oneof![
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(Amf0Value::Number),
        any::<bool>().prop_map(Amf0Value::Boolean),
        ".{0,16}".prop_map(Amf0Value::String),
        Just(Amf0Value::Null),
        Just(Amf0Value::Undefined),
        any::<u16>().prop_map(Amf0Value::Reference),
        (-1e13f64..1e13, any::<i16>()).prop_map(|(millis, tz)| Amf0Value::Date { millis, tz }),
        ".{0,16}".prop_map(Amf0Value::LongString),
        Just(Amf0Value::Unsupported),
        ".{0,16}".prop_map(Amf0Value::XmlDocument),
        amf3_value().prop_map(Amf0Value::Avmplus),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec((key, inner.clone()), 0..5).prop_map(Amf0Value::Object),
            prop::collection::vec((key, inner.clone()), 0..5).prop_map(Amf0Value::EcmaArray),
            prop::collection::vec(inner.clone(), 0..5).prop_map(Amf0Value::StrictArray),
            (".{0,8}", prop::collection::vec((key, inner.clone()), 0..5))
                .prop_map(|(class, props)| Amf0Value::TypedObject { class, props }),
        ]
    })
}

proptest! {
    #[test]
    fn amf0_round_trip(v in amf0_value()) {
        let b = enc0(&v);
        prop_assert_eq!(dec0(&b).unwrap(), v);
    }

    #[test]
    fn amf3_round_trip(v in amf3_value()) {
        let b = enc3(&v);
        prop_assert_eq!(dec3(&b).unwrap(), v);
    }

    #[test]
    fn amf0_truncation_is_an_error(v in amf0_value(), cut in any::<prop::sample::Index>()) {
        let b = enc0(&v);
        let n = cut.index(b.len());
        let mut input = &b[..n];
        // A prefix fails as truncated, except an ECMA array cut right before its
        // terminator, which is accepted on purpose.
        if let Err(e) = amf0::decode(&mut input, &AmfLimits::default()) {
            prop_assert_eq!(e, AmfError::Truncated);
        }
    }
}
