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
/// CapsExMask.Multitrack | CapsExMask.ModEx: parsed by the FLV layer. Reconnect (a server
/// request) and TimestampNanoOffset (dropped, milliseconds are kept) are not claimed.
const CAPS_EX: u32 = 0x02 | 0x04;

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

/// Appends the E-RTMP answer for the `connect` command object `obj` to `props`.
pub(super) fn negotiate(obj: &Amf0Value, props: &mut Vec<(String, Amf0Value)>) {
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
    if let Some(c) = caps_ex {
        let theirs = if c.is_finite() && c >= 0.0 {
            c as u32
        } else {
            0
        };
        props.push((
            "capsEx".to_owned(),
            Amf0Value::Number(f64::from(theirs & CAPS_EX)),
        ));
    }
}
