//! Byte sizes on command lines and in profiles: a whole number of bytes, or one with a
//! unit, `16MiB`, `512KiB`, `1GiB` (powers of 1024) or `2MB`, `500kB` (powers of 1000).
//! Units are case-insensitive and may follow a space; `B` alone means bytes.

/// Parses a byte size into `T` (for clap: `value_parser = runtime::size::bytes::<usize>`),
/// refusing values `T` cannot hold.
pub fn bytes<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let n = parse(text)?;
    T::try_from(n).map_err(|_| format!("{text} ({n} bytes) is too large here"))
}

/// Parses a byte size into a number of bytes.
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "expected a number of bytes, optionally with a unit (16MiB, 512KiB), got {text:?}"
        ));
    }
    let Some(scale) = unit_scale(unit.trim_start()) else {
        return Err(format!(
            "unknown unit {unit:?}: use B, KiB, MiB, GiB, TiB (1024) or kB, MB, GB, TB (1000), \
             with a whole number (1536MiB, not 1.5GiB)"
        ));
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text} is more bytes than this machine can count"))?;
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text} is more bytes than this machine can count"))
}

fn unit_scale(unit: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 10] = [
        ("kib", 1 << 10),
        ("mib", 1 << 20),
        ("gib", 1 << 30),
        ("tib", 1 << 40),
        ("kb", 1_000),
        ("mb", 1_000_000),
        ("gb", 1_000_000_000),
        ("tb", 1_000_000_000_000),
        ("b", 1),
        ("", 1),
    ];
    let unit = unit.to_ascii_lowercase();
    UNITS.iter().find(|(u, _)| *u == unit).map(|&(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("16MiB"), Ok(16 << 20));
        assert_eq!(parse("512KiB"), Ok(512 << 10));
        assert_eq!(parse("512 kib"), Ok(512 << 10));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("2TiB"), Ok(2 << 40));
        assert_eq!(parse("2MB"), Ok(2_000_000));
        assert_eq!(parse("500kB"), Ok(500_000));
        assert_eq!(parse("7B"), Ok(7));
        assert_eq!(parse(" 8 MiB "), Ok(8 << 20));
        assert_eq!(parse("0"), Ok(0));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "MiB",
            "1.5GiB",
            "-1",
            "16 Mebibytes",
            "16MiBs",
            "0x10",
            "16M",
            "1e3",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse("18446744073709551615").is_ok());
        assert!(parse("18446744073709551616").is_err());
        assert!(parse("16777216TiB").is_err());
        assert!(bytes::<u32>("4GiB").is_err());
        assert_eq!(bytes::<u32>("4095MiB"), Ok(4095 << 20));
        assert_eq!(bytes::<usize>("16MiB"), Ok(16 << 20));
    }
}
