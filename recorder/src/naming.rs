//! File names of recordings: a pattern with placeholders, filled from the stream key and the
//! wall clock, sanitized so that no key, however hostile, can name a file outside `--dir`.

use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The pattern used when no `--pattern` is given.
pub const DEFAULT_PATTERN: &str = "{app}_{stream}_{date}_{time}.{ext}";

/// Longest path component written, in bytes (the usual file system limit).
const MAX_COMPONENT: usize = 255;

/// Why a pattern or a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// `{something}` that is not a known placeholder.
    #[error("unknown placeholder {{{0}}} in the file name pattern")]
    UnknownPlaceholder(String),
    /// A `{` without its `}`.
    #[error("unclosed placeholder in the file name pattern")]
    Unclosed,
    /// The rendered name is empty after sanitizing.
    #[error("the file name pattern renders to an empty name")]
    Empty,
    /// The rendered name would leave the directory (should be impossible after sanitizing;
    /// checked again as a last line of defence).
    #[error("file name {0:?} would leave the recording directory")]
    Escapes(String),
}

/// A calendar date and time of day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year.
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59.
    pub second: u32,
}

impl DateTime {
    /// The UTC date and time of `t` (times before 1970 become 1970-01-01).
    pub fn utc(t: SystemTime) -> Self {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// What a name is built from.
#[derive(Debug, Clone, Copy)]
pub struct NameInput<'a> {
    /// Stream key, `app/name`.
    pub key: &'a str,
    /// When the file starts.
    pub time: DateTime,
    /// Segment number of this recording (0 for the first file).
    pub seq: u32,
    /// File extension without the dot (`flv`, `mp4`).
    pub ext: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Key,
    App,
    Stream,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Date,
    Time,
    Seq,
    Ext,
}

/// A parsed `--pattern` bound to a directory.
#[derive(Debug, Clone)]
pub struct Namer {
    dir: PathBuf,
    pieces: Vec<Piece>,
}

impl Namer {
    /// Parses `pattern`; unknown placeholders are refused here, at startup.
    pub fn new(dir: impl Into<PathBuf>, pattern: &str) -> Result<Self, NameError> {
        let mut pieces = Vec::new();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Lit(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(NameError::Unclosed)?;
            let name = &after[..close];
            pieces.push(match name {
                "key" => Piece::Key,
                "app" => Piece::App,
                "stream" => Piece::Stream,
                "YYYY" => Piece::Year,
                "MM" => Piece::Month,
                "DD" => Piece::Day,
                "hh" => Piece::Hour,
                "mm" => Piece::Minute,
                "ss" => Piece::Second,
                "date" => Piece::Date,
                "time" => Piece::Time,
                "seq" => Piece::Seq,
                "ext" => Piece::Ext,
                other => return Err(NameError::UnknownPlaceholder(other.to_owned())),
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_owned()));
        }
        Ok(Namer {
            dir: dir.into(),
            pieces,
        })
    }

    /// The recording directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a new file, always strictly inside the directory.
    pub fn path(&self, input: &NameInput<'_>) -> Result<PathBuf, NameError> {
        let rel = self.relative(input)?;
        let path = self.dir.join(&rel);
        // Last line of defence: the relative part must be plain names only.
        let ok = Path::new(&rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
            && path.starts_with(&self.dir);
        if !ok {
            return Err(NameError::Escapes(rel));
        }
        Ok(path)
    }

    /// The name relative to the directory, sanitized.
    pub fn relative(&self, input: &NameInput<'_>) -> Result<String, NameError> {
        let (app, stream) = input.key.rsplit_once('/').unwrap_or(("", input.key));
        let t = input.time;
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                // Literal `/` in the pattern makes sub-directories on purpose.
                Piece::Lit(s) => out.push_str(s),
                Piece::Key => out.push_str(&flatten(input.key)),
                Piece::App => out.push_str(&flatten(app)),
                Piece::Stream => out.push_str(&flatten(stream)),
                Piece::Year => out.push_str(&format!("{:04}", t.year)),
                Piece::Month => out.push_str(&format!("{:02}", t.month)),
                Piece::Day => out.push_str(&format!("{:02}", t.day)),
                Piece::Hour => out.push_str(&format!("{:02}", t.hour)),
                Piece::Minute => out.push_str(&format!("{:02}", t.minute)),
                Piece::Second => out.push_str(&format!("{:02}", t.second)),
                Piece::Date => out.push_str(&format!("{:04}{:02}{:02}", t.year, t.month, t.day)),
                Piece::Time => {
                    out.push_str(&format!("{:02}{:02}{:02}", t.hour, t.minute, t.second))
                }
                Piece::Seq => out.push_str(&input.seq.to_string()),
                Piece::Ext => out.push_str(&flatten(input.ext)),
            }
        }
        let parts: Vec<String> = out
            .split('/')
            .map(clean_component)
            .filter(|c| !c.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(NameError::Empty);
        }
        Ok(parts.join("/"))
    }
}

/// A value substituted into a name: no separators at all.
fn flatten(s: &str) -> String {
    s.chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect()
}

/// One path component: no control characters, no backslash, never `.`/`..` or hidden,
/// at most [`MAX_COMPONENT`] bytes.
fn clean_component(s: &str) -> String {
    let mut c: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\\' || c == ':' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if c.starts_with('.') {
        c.replace_range(0..1, "_");
    }
    if c.len() > MAX_COMPONENT {
        let mut end = MAX_COMPONENT;
        while !c.is_char_boundary(end) {
            end -= 1;
        }
        c.truncate(end);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime {
        DateTime {
            year: 2024,
            month: 3,
            day: 9,
            hour: 7,
            minute: 5,
            second: 1,
        }
    }

    fn name(pattern: &str, key: &str) -> Result<PathBuf, NameError> {
        Namer::new("/rec", pattern)?.path(&NameInput {
            key,
            time: t(),
            seq: 2,
            ext: "mp4",
        })
    }

    #[test]
    fn default_pattern() {
        assert_eq!(
            name(DEFAULT_PATTERN, "live/cam1").unwrap(),
            PathBuf::from("/rec/live_cam1_20240309_070501.mp4")
        );
    }

    #[test]
    fn every_placeholder() {
        assert_eq!(
            name(
                "{key}-{app}-{stream}-{YYYY}{MM}{DD}-{hh}{mm}{ss}-{date}{time}-{seq}.{ext}",
                "a/b/c"
            )
            .unwrap(),
            PathBuf::from("/rec/a_b_c-a_b-c-20240309-070501-20240309070501-2.mp4")
        );
        assert_eq!(
            name("{app}/{stream}/{seq}.{ext}", "live/x").unwrap(),
            PathBuf::from("/rec/live/x/2.mp4")
        );
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(
            Namer::new("/rec", "{nope}.flv").unwrap_err(),
            NameError::UnknownPlaceholder("nope".into())
        );
        assert_eq!(Namer::new("/rec", "{key").unwrap_err(), NameError::Unclosed);
        assert_eq!(name("/", "a/b").unwrap_err(), NameError::Empty);
    }

    #[test]
    fn hostile_keys_stay_inside() {
        let hostile = [
            "../../etc/passwd",
            "..",
            "../..",
            "/etc/x",
            "live/..",
            "..//..",
            "a\\..\\..\\b/c",
            "live/a\u{0}b\nc\u{7f}",
            "live/.hidden",
            "live/....",
            "C:/windows",
            "",
            "/",
        ];
        let patterns = [
            DEFAULT_PATTERN,
            "{key}.{ext}",
            "{app}/{stream}.{ext}",
            "{stream}",
            "/{app}/../{stream}/{key}",
            "../{key}",
        ];
        for key in hostile {
            for pattern in patterns {
                match name(pattern, key) {
                    Ok(p) => {
                        assert!(p.starts_with("/rec/"), "{key:?} {pattern:?} -> {p:?}");
                        let rel = p.strip_prefix("/rec").unwrap();
                        for c in rel.components() {
                            let Component::Normal(s) = c else {
                                panic!("{key:?} {pattern:?} -> {p:?}");
                            };
                            let s = s.to_str().unwrap();
                            assert!(!s.starts_with('.'), "{p:?}");
                            assert!(!s.chars().any(|c| c.is_control()), "{p:?}");
                        }
                    }
                    Err(NameError::Empty) => {}
                    Err(e) => panic!("{key:?} {pattern:?}: {e}"),
                }
            }
        }
    }

    #[test]
    fn long_names_are_cut() {
        let key = format!("live/{}", "é".repeat(300));
        let p = name("{key}", &key).unwrap();
        let last = p.file_name().unwrap().to_str().unwrap();
        assert!(last.len() <= MAX_COMPONENT);
    }

    #[test]
    fn dates() {
        let d = DateTime::utc(UNIX_EPOCH + std::time::Duration::from_secs(1_709_967_901));
        assert_eq!(d, t());
        let d = DateTime::utc(UNIX_EPOCH + std::time::Duration::from_secs(951_782_400));
        assert_eq!((d.year, d.month, d.day), (2000, 2, 29));
    }

    proptest::proptest! {
        #[test]
        fn any_key_stays_inside(key in "\\PC{0,40}|[./\\\\a]{0,20}", pattern in "[{}a-z/.]{0,5}(\\{key\\}|\\{app\\}|\\{stream\\})[./]{0,4}") {
            if let Ok(namer) = Namer::new("/rec", &pattern) {
                if let Ok(p) = namer.path(&NameInput { key: &key, time: t(), seq: 0, ext: "flv" }) {
                    let rel = p.strip_prefix("/rec").unwrap();
                    proptest::prop_assert!(rel.components().all(|c| matches!(c, Component::Normal(_))));
                }
            }
        }
    }
}
