//! The E-RTMP `colorInfo` object (video Metadata packet, AMF0) as MP4 needs it: colour
//! description (`colr`), mastering display (`mdcv`) and content light level (`clli`).

use proto::rtmp::amf0::{self, Amf0Value, AmfLimits};

/// Mastering display colour volume, in the units of the `mdcv` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mastering {
    /// Display primaries (x, y) in units of 0.00002, in the order green, blue, red.
    pub primaries: [(u16, u16); 3],
    /// White point (x, y) in units of 0.00002.
    pub white: (u16, u16),
    /// Maximum luminance in units of 0.0001 cd/m2.
    pub max_luminance: u32,
    /// Minimum luminance in units of 0.0001 cd/m2.
    pub min_luminance: u32,
}

/// What a `colorInfo` says, as ISO/IEC 23091-2 code points and box units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColorInfo {
    /// `colorPrimaries`, `transferCharacteristics`, `matrixCoefficients` (2 = unspecified
    /// for any the publisher left out).
    pub nclx: Option<(u16, u16, u16)>,
    /// `hdrMdcv`.
    pub mastering: Option<Mastering>,
    /// `hdrCll`: (maxCLL, maxFALL) in cd/m2.
    pub light_level: Option<(u16, u16)>,
}

impl ColorInfo {
    /// Whether nothing is described (the publisher reset the colour state).
    pub fn is_empty(&self) -> bool {
        self.nclx.is_none() && self.mastering.is_none() && self.light_level.is_none()
    }
}

/// Reads the AMF0 values of a video Metadata packet: `"colorInfo"` then its object. `None`
/// when it is not a `colorInfo` or is unreadable; an empty [`ColorInfo`] when it resets
/// the colour (Undefined or an empty object).
pub fn parse(payload: &[u8]) -> Option<ColorInfo> {
    let values = amf0::decode_all(payload, &AmfLimits::data()).ok()?;
    let mut it = values.iter();
    if it.next()?.as_str()? != "colorInfo" {
        return None;
    }
    let Some(obj) = it.next() else {
        return Some(ColorInfo::default());
    };
    let num = |o: Option<&Amf0Value>, k: &str| {
        o.and_then(|o| o.get(k))
            .and_then(Amf0Value::as_f64)
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let cfg = obj.get("colorConfig");
    let code = |k: &str| num(cfg, k).filter(|v| *v <= 255.0).map(|v| v as u16);
    let (p, t, m) = (
        code("colorPrimaries"),
        code("transferCharacteristics"),
        code("matrixCoefficients"),
    );
    let nclx = (p.is_some() || t.is_some() || m.is_some())
        .then(|| (p.unwrap_or(2), t.unwrap_or(2), m.unwrap_or(2)));
    let cll = obj.get("hdrCll");
    let nits = |k: &str| num(cll, k).map(|v| v.round().min(65535.0) as u16);
    let light_level = match (nits("maxCLL"), nits("maxFall")) {
        (None, None) => None,
        (c, f) => Some((c.unwrap_or(0), f.unwrap_or(0))),
    };
    let mdcv = obj.get("hdrMdcv");
    let xy = |k: &str| num(mdcv, k).map(|v| (v / 0.00002).round().min(65535.0) as u16);
    let lum = |k: &str| num(mdcv, k).map(|v| (v * 10000.0).round().min(f64::from(u32::MAX)) as u32);
    let pair = |x: &str, y: &str| Some((xy(x)?, xy(y)?));
    let mastering = (|| {
        Some(Mastering {
            primaries: [
                pair("greenX", "greenY")?,
                pair("blueX", "blueY")?,
                pair("redX", "redY")?,
            ],
            white: pair("whitePointX", "whitePointY")?,
            max_luminance: lum("maxLuminance")?,
            min_luminance: lum("minLuminance")?,
        })
    })();
    Some(ColorInfo {
        nclx,
        mastering,
        light_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn obj(props: &[(&str, Amf0Value)]) -> Amf0Value {
        Amf0Value::Object(
            props
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect(),
        )
    }

    fn encode(values: &[Amf0Value]) -> Vec<u8> {
        let mut b = BytesMut::new();
        for v in values {
            amf0::encode(v, &mut b);
        }
        b.to_vec()
    }

    #[test]
    fn reads_every_part() {
        let n = Amf0Value::Number;
        let payload = encode(&[
            Amf0Value::String("colorInfo".into()),
            obj(&[
                (
                    "colorConfig",
                    obj(&[
                        ("bitDepth", n(10.0)),
                        ("colorPrimaries", n(9.0)),
                        ("transferCharacteristics", n(16.0)),
                        ("matrixCoefficients", n(9.0)),
                    ]),
                ),
                (
                    "hdrCll",
                    obj(&[("maxFall", n(400.0)), ("maxCLL", n(1000.0))]),
                ),
                (
                    "hdrMdcv",
                    obj(&[
                        ("redX", n(0.708)),
                        ("redY", n(0.292)),
                        ("greenX", n(0.17)),
                        ("greenY", n(0.797)),
                        ("blueX", n(0.131)),
                        ("blueY", n(0.046)),
                        ("whitePointX", n(0.3127)),
                        ("whitePointY", n(0.329)),
                        ("maxLuminance", n(1000.0)),
                        ("minLuminance", n(0.0001)),
                    ]),
                ),
            ]),
        ]);
        let c = parse(&payload).unwrap();
        assert_eq!(c.nclx, Some((9, 16, 9)));
        assert_eq!(c.light_level, Some((1000, 400)));
        let m = c.mastering.unwrap();
        assert_eq!(m.primaries, [(8500, 39850), (6550, 2300), (35400, 14600)]);
        assert_eq!(m.white, (15635, 16450));
        assert_eq!((m.max_luminance, m.min_luminance), (10_000_000, 1));
    }

    #[test]
    fn resets_and_other_names() {
        let reset = encode(&[Amf0Value::String("colorInfo".into()), Amf0Value::Undefined]);
        assert!(parse(&reset).unwrap().is_empty());
        let empty = encode(&[Amf0Value::String("colorInfo".into()), obj(&[])]);
        assert!(parse(&empty).unwrap().is_empty());
        let other = encode(&[Amf0Value::String("other".into()), obj(&[])]);
        assert_eq!(parse(&other), None);
        assert_eq!(parse(b"\x02\x00"), None);
    }
}
