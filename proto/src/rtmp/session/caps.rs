//! Enhanced RTMP v2 capability negotiation in `connect` (E-RTMP v2, "Enhancing
//! NetConnection connect Command").
//!
//! The client lists the codecs it handles (`fourCcList`, or the newer
//! `videoFourCcInfoMap`/`audioFourCcInfoMap`) and its extended capabilities (`capsEx`); the
//! `_result` properties answer with the intersection with what this server forwards.
//! Nothing is added for a client that sent none of these, so legacy clients see a legacy
//! answer.

use serde::{Deserialize, Serialize};

use crate::flv::{audio_fourcc, legacy_form, video_fourcc, PacketKind};
use crate::media::{Codec, TrackKind};
use crate::rtmp::amf0::Amf0Value;

/// Video FourCCs this server forwards.
pub const VIDEO_FOURCCS: [&str; 6] = ["avc1", "hvc1", "av01", "vp09", "vp08", "vvc1"];
/// Audio FourCCs this server forwards.
pub const AUDIO_FOURCCS: [&str; 6] = ["mp4a", "Opus", "fLaC", ".mp3", "ac-3", "ec-3"];

/// FourCcInfoMask.CanForward: the server passes the codec through untouched.
const CAN_FORWARD: f64 = 4.0;

/// CapsExMask.Reconnect: `NetConnection.Connect.ReconnectRequest` is understood (client)
/// or may be sent (server).
pub const CAPS_EX_RECONNECT: u32 = 0x01;
/// CapsExMask.Multitrack: multitrack audio/video messages.
pub const CAPS_EX_MULTITRACK: u32 = 0x02;
/// CapsExMask.ModEx: ModEx packets are parsed.
pub const CAPS_EX_MODEX: u32 = 0x04;
/// CapsExMask.TimestampNanoOffset: ModEx nanosecond offsets are kept.
pub const CAPS_EX_NANO_OFFSET: u32 = 0x08;

/// What the server always takes and passes on: multitrack and ModEx are parsed by the FLV
/// layer, and nano offsets travel through the hub to players. Reconnect is added when the
/// application sends reconnect requests ([`super::SessionConfig::reconnect`]).
const CAPS_EX_MEDIA: u32 = CAPS_EX_MULTITRACK | CAPS_EX_MODEX | CAPS_EX_NANO_OFFSET;

/// The `capsEx` bits the client announced in its `connect` command object (0 when it sent
/// none or a value that is not a `u32`).
pub(super) fn client_caps_ex(obj: &Amf0Value) -> u32 {
    match obj.get("capsEx").and_then(|v| v.as_f64()) {
        Some(c) if c.is_finite() && c >= 0.0 && c <= f64::from(u32::MAX) => c as u32,
        _ => 0,
    }
}

/// Which of `ours` the client declared, in our order; `*` means all of them.
fn intersect<'a>(ours: &[&'a str], theirs: &[&str]) -> Vec<&'a str> {
    if theirs.contains(&"*") {
        return ours.to_vec();
    }
    ours.iter()
        .copied()
        .filter(|c| theirs.contains(c))
        .collect()
}

fn strings(v: Option<&Amf0Value>) -> Vec<&str> {
    match v {
        Some(Amf0Value::StrictArray(items)) => items.iter().filter_map(|i| i.as_str()).collect(),
        _ => Vec::new(),
    }
}

fn map_keys(v: Option<&Amf0Value>) -> Option<Vec<&str>> {
    match v {
        Some(Amf0Value::Object(p)) | Some(Amf0Value::EcmaArray(p)) => {
            Some(p.iter().map(|(k, _)| k.as_str()).collect())
        }
        _ => None,
    }
}

fn info_map(codecs: &[&str]) -> Amf0Value {
    Amf0Value::Object(
        codecs
            .iter()
            .map(|c| ((*c).to_owned(), Amf0Value::Number(CAN_FORWARD)))
            .collect(),
    )
}

/// Appends the E-RTMP answer for the `connect` command object `obj` to `props`. The
/// answer's `capsEx` is what both sides announced: the client's bits that this server
/// supports (with Reconnect only when `reconnect`), so nothing the client did not announce
/// is claimed.
pub(super) fn negotiate(obj: &Amf0Value, reconnect: bool, props: &mut Vec<(String, Amf0Value)>) {
    let list = obj
        .get("fourCcList")
        .map(|_| strings(obj.get("fourCcList")));
    let video_map = map_keys(obj.get("videoFourCcInfoMap"));
    let audio_map = map_keys(obj.get("audioFourCcInfoMap"));
    let caps_ex = obj.get("capsEx").and_then(|v| v.as_f64());
    if list.is_none() && video_map.is_none() && audio_map.is_none() && caps_ex.is_none() {
        return;
    }
    if let Some(list) = &list {
        let mut all = intersect(&VIDEO_FOURCCS, list);
        all.extend(intersect(&AUDIO_FOURCCS, list));
        props.push((
            "fourCcList".to_owned(),
            Amf0Value::StrictArray(
                all.into_iter()
                    .map(|c| Amf0Value::String(c.to_owned()))
                    .collect(),
            ),
        ));
    }
    // A client that sent only the legacy list still gets the maps: they are what newer
    // clients read, and the spec recommends both on the server side.
    let from_list = list.as_deref().unwrap_or(&[]);
    let video = intersect(&VIDEO_FOURCCS, video_map.as_deref().unwrap_or(from_list));
    let audio = intersect(&AUDIO_FOURCCS, audio_map.as_deref().unwrap_or(from_list));
    props.push(("videoFourCcInfoMap".to_owned(), info_map(&video)));
    props.push(("audioFourCcInfoMap".to_owned(), info_map(&audio)));
    if caps_ex.is_some() {
        let ours = CAPS_EX_MEDIA | if reconnect { CAPS_EX_RECONNECT } else { 0 };
        props.push((
            "capsEx".to_owned(),
            Amf0Value::Number(f64::from(client_caps_ex(obj) & ours)),
        ));
    }
}

/// FourCcInfoMask.CanDecode.
const CAN_DECODE: f64 = 1.0;

/// The FourCCs a client announced for one kind of media (audio or video).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FourCcSet {
    /// The wildcard `*`: every codec.
    pub any: bool,
    /// The FourCCs named.
    pub codes: Vec<[u8; 4]>,
}

impl FourCcSet {
    /// Whether `code` is in the set.
    pub fn contains(&self, code: [u8; 4]) -> bool {
        self.any || self.codes.contains(&code)
    }

    fn from_names<'a>(names: impl Iterator<Item = &'a str>) -> FourCcSet {
        let mut set = FourCcSet::default();
        for name in names {
            match <[u8; 4]>::try_from(name.as_bytes()) {
                _ if name == "*" => set.any = true,
                Ok(code) if !set.codes.contains(&code) => set.codes.push(code),
                _ => {}
            }
        }
        set
    }
}

/// The codecs a client announced in `connect`, per kind of media: from
/// `videoFourCcInfoMap` / `audioFourCcInfoMap` (entries that can be decoded or forwarded)
/// where sent, else from `fourCcList`. `None` for a kind the client announced nothing
/// for: a legacy client, which is sent the codecs this server knows but no unknown FourCC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    /// Video codecs.
    pub video: Option<FourCcSet>,
    /// Audio codecs.
    pub audio: Option<FourCcSet>,
}

impl Announced {
    /// What the `connect` command object `obj` announces.
    pub(super) fn from_connect(obj: &Amf0Value) -> Announced {
        let list = obj
            .get("fourCcList")
            .map(|v| FourCcSet::from_names(strings(Some(v)).into_iter()));
        let map = |name| match obj.get(name) {
            Some(Amf0Value::Object(p)) | Some(Amf0Value::EcmaArray(p)) => {
                Some(FourCcSet::from_names(p.iter().filter_map(|(k, v)| {
                    // A value that is not a number still names the codec.
                    let usable = v
                        .as_f64()
                        .is_none_or(|f| f as u32 & (CAN_DECODE as u32 | CAN_FORWARD as u32) != 0);
                    usable.then_some(k.as_str())
                })))
            }
            _ => None,
        };
        Announced {
            video: map("videoFourCcInfoMap").or_else(|| list.clone()),
            audio: map("audioFourCcInfoMap").or(list),
        }
    }
}

/// What a message sent to players needs a player to have announced, decided once per
/// message: the FourCC in its E-RTMP header (none for legacy FLV codec tags), whether it
/// is a multitrack packet, and whether it carries a ModEx prefix (a player that cannot
/// parse ModEx gets the message without it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `(video, FourCC, known)`: the FourCC its header names; `known` when this server
    /// knows the codec (legacy players are sent those).
    pub fourcc: Option<(bool, [u8; 4], bool)>,
    /// A Multitrack packet (a track other than the default one).
    pub multitrack: bool,
    /// A ModEx form exists (and a plain one for players without ModEx).
    pub modex: bool,
}

impl Needs {
    /// What a message of `codec` on `track` of `kind` needs; `nanos` > 0 when it has a
    /// ModEx TimestampOffsetNano (its plain form decides the rest).
    pub fn media(codec: Codec, track: u8, kind: PacketKind, nanos: u32) -> Needs {
        let video = codec.kind() == TrackKind::Video;
        let legacy = matches!(codec, Codec::LegacyVideo { .. } | Codec::LegacyAudio { .. });
        let code = if legacy_form(codec, track, kind) {
            None
        } else if video {
            video_fourcc(codec)
        } else {
            audio_fourcc(codec)
        };
        Needs {
            fourcc: code.map(|c| (video, c, !matches!(codec, Codec::Unknown { .. }))),
            multitrack: track != 0 && !legacy,
            modex: nanos > 0 && !legacy && matches!(kind, PacketKind::Frame { .. }),
        }
    }
}

/// What one player can take, from its handoff: a cheap check per message and player.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayerCaps {
    caps_ex: u32,
    announced: Announced,
}

impl PlayerCaps {
    /// The capabilities of a player that announced `caps_ex` and `announced`.
    pub fn new(caps_ex: u32, announced: Announced) -> PlayerCaps {
        PlayerCaps { caps_ex, announced }
    }

    /// Whether a message that `needs` this may be sent to the player: a multitrack
    /// packet only to one that announced Multitrack, a FourCC only to one that announced
    /// it (or, having announced nothing for that kind of media, when this server knows it).
    pub fn takes(&self, needs: &Needs) -> bool {
        if needs.multitrack && self.caps_ex & CAPS_EX_MULTITRACK == 0 {
            return false;
        }
        match needs.fourcc {
            None => true,
            Some((video, code, known)) => {
                let set = if video {
                    &self.announced.video
                } else {
                    &self.announced.audio
                };
                match set {
                    Some(set) => set.contains(code),
                    None => known,
                }
            }
        }
    }

    /// Whether the player parses ModEx packets (else it gets their plain form).
    pub fn modex(&self) -> bool {
        self.caps_ex & CAPS_EX_MODEX != 0
    }

    /// Which form of a message that `needs` this the player gets: `full` (with ModEx),
    /// `plain` (without, for a player that cannot parse ModEx), or none.
    pub fn pick<'a, T>(&self, needs: &Needs, full: &'a T, plain: &'a T) -> Option<&'a T> {
        if !self.takes(needs) {
            None
        } else if needs.modex && !self.modex() {
            Some(plain)
        } else {
            Some(full)
        }
    }
}
