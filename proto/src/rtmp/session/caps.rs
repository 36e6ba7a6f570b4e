//! Enhanced RTMP v2 capability negotiation in `connect` (E-RTMP v2, "Enhancing
//! NetConnection connect Command").
//!
//! The client lists the codecs it handles (`fourCcList`, or the newer
//! `videoFourCcInfoMap`/`audioFourCcInfoMap`) and its extended capabilities (`capsEx`); the
//! `_result` properties answer with the intersection with what this server forwards.
//! Nothing is added for a client that sent none of these, so legacy clients see a legacy
//! answer.

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
