//! Building blocks shared by the integration tests: a raw publisher of hand-built H.264/AAC,
//! a raw player that records what it receives, and checks on what was received.

use std::net::SocketAddr;
use std::time::Instant;

use crate::flv::{self, Packet};
use crate::rtmp_client::{msg_type, Amf0, ClientError, Message, RtmpClient, Status};

/// Opens a raw connection and publishes `live/<name>`; panics unless the server answers
/// `NetStream.Publish.Start`.
pub fn raw_publisher(addr: SocketAddr, name: &str) -> (RtmpClient, u32) {
    let (mut client, sid) =
        RtmpClient::open(addr, "live").unwrap_or_else(|e| panic!("raw publisher connects: {e}"));
    client.set_chunk_size(4096).expect("set chunk size");
    let status = client.publish(sid, name).expect("publish answered");
    assert_eq!(
        status.code, "NetStream.Publish.Start",
        "publish {name}: {status:?}"
    );
    (client, sid)
}

/// Sends metadata, the AVC and AAC sequence headers, then `frames` video frames `step_ms`
/// apart from `start_ts` (a keyframe first, then every `gop` frames), each with an AAC frame.
/// The frame payloads are stand-ins: the server does not decode them.
pub fn send_h264_aac(
    client: &mut RtmpClient,
    sid: u32,
    start_ts: u32,
    frames: u32,
    step_ms: u32,
    gop: u32,
) -> Result<(), ClientError> {
    client.send_metadata(
        sid,
        &[
            ("width", Amf0::Number(64.0)),
            ("height", Amf0::Number(64.0)),
            ("videocodecid", Amf0::Number(7.0)),
            ("audiocodecid", Amf0::Number(10.0)),
            ("framerate", Amf0::Number(f64::from(1000 / step_ms.max(1)))),
        ],
    )?;
    let header = flv::avc_sequence_header(flv::SPS_64X64, flv::PPS_64X64);
    client.send_video(sid, start_ts, &header)?;
    client.send_audio(sid, start_ts, &flv::aac_sequence_header())?;
    for i in 0..frames {
        let ts = start_ts + i * step_ms;
        let keyframe = i % gop.max(1) == 0;
        let nalu: &[u8] = if keyframe {
            &[0x65, 0x88, 0x84, 0x00, 0x33, 0xff]
        } else {
            &[0x41, 0x9a, 0x02, 0x04, 0x11]
        };
        client.send_video(sid, ts, &flv::avc_frame(keyframe, 0, &[nalu]))?;
        client.send_audio(
            sid,
            ts,
            &flv::aac_frame(&[0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]),
        )?;
    }
    Ok(())
}

/// What a raw player received, in order.
#[derive(Default)]
pub struct Received {
    /// Every message (media, data, commands, control).
    pub messages: Vec<Message>,
}

impl Received {
    /// Media messages only.
    pub fn media(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.is_media())
    }

    /// How many coded video frames arrived after message index `from`.
    pub fn coded_video_since(&self, from: usize) -> usize {
        self.messages[from.min(self.messages.len())..]
            .iter()
            .filter(|m| is_coded_video(m))
            .count()
    }

    /// Statuses received, in order.
    pub fn statuses(&self) -> Vec<Status> {
        self.messages.iter().filter_map(Message::status).collect()
    }

    /// Panics unless audio and video timestamps each never go backwards.
    pub fn assert_monotonic(&self) {
        for (kind, name) in [(msg_type::VIDEO, "video"), (msg_type::AUDIO, "audio")] {
            let ts: Vec<u32> = self
                .messages
                .iter()
                .filter(|m| m.type_id == kind)
                .map(|m| m.timestamp)
                .collect();
            if let Some(i) = ts.windows(2).position(|w| w[1] < w[0]) {
                panic!(
                    "{name} timestamps go backwards at message {}: {} -> {} (all: {ts:?})",
                    i + 1,
                    ts[i],
                    ts[i + 1]
                );
            }
        }
    }
}

/// Whether `m` is a coded video frame.
pub fn is_coded_video(m: &Message) -> bool {
    m.type_id == msg_type::VIDEO && matches!(flv::video_packet(&m.payload), Packet::Coded { .. })
}

/// Reads `player`'s messages until its coded video has advanced `media_ms` milliseconds of
/// stream time past the first coded frame it sees, and returns how far it advanced: a
/// readiness signal ("this much media has flowed through the server") that does not
/// depend on how fast this machine is. Panics at `deadline`.
pub fn wait_media_time(player: &mut RtmpClient, media_ms: u32, deadline: Instant) -> u32 {
    let mut first = None;
    loop {
        let m = player
            .next_message(deadline)
            .unwrap_or_else(|e| panic!("waiting for {media_ms} ms of media: {e}"));
        if !is_coded_video(&m) {
            continue;
        }
        let start = *first.get_or_insert(m.timestamp);
        let advanced = m.timestamp.wrapping_sub(start);
        if advanced >= media_ms {
            return advanced;
        }
    }
}

/// Reads messages into `into` until `done(into)` holds; panics with what arrived on error.
pub fn read_until(
    client: &mut RtmpClient,
    into: &mut Received,
    deadline: Instant,
    what: &str,
    done: impl Fn(&Received) -> bool,
) {
    while !done(into) {
        match client.next_message(deadline) {
            Ok(m) => into.messages.push(m),
            Err(e) => panic!(
                "raw player waiting for {what}: {e}; received {} messages, statuses {:?}",
                into.messages.len(),
                into.statuses()
            ),
        }
    }
}
