//! E-RTMP clients that act on `NetConnection.Connect.ReconnectRequest` as the spec asks:
//! they announce the Reconnect capability (capsEx 0x01) in `connect`, and on a request
//! connect again (to the request's `tcUrl`), then leave the old connection. Built on the
//! byte-level [`RtmpClient`]. Every video frame carries its index, so a player can tell
//! exactly which frames it got across the switch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rtmp_client::{msg_type, Amf0, ClientError, Message, RtmpClient};

/// Video frames per GOP (every GOP starts with a keyframe).
pub const GOP: u32 = 10;
/// Time between frames (25 fps).
pub const FRAME: Duration = Duration::from_millis(40);

/// The AVC sequence header the publisher sends first (the hub does not look inside).
pub const AVC_CONFIG: &[u8] = &[0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0];

/// The code of a reconnect request.
pub const RECONNECT_REQUEST: &str = "NetConnection.Connect.ReconnectRequest";

/// A reconnect request as a client received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Its `tcUrl`, if any.
    pub tc_url: Option<String>,
    /// Its `description`.
    pub description: String,
}

/// The request in `m`, if it is one (an `onStatus` on message stream 0).
pub fn request(m: &Message) -> Option<Request> {
    let (name, args) = m.command()?;
    let info = args.iter().find(|v| matches!(v, Amf0::Object(_)))?;
    if name != "onStatus" || info.get("code").and_then(Amf0::as_str) != Some(RECONNECT_REQUEST) {
        return None;
    }
    Some(Request {
        tc_url: info.get("tcUrl").and_then(Amf0::as_str).map(str::to_owned),
        description: info
            .get("description")
            .and_then(Amf0::as_str)
            .unwrap_or("")
            .to_owned(),
    })
}

/// A video tag body: H.264 NAL unit of 4 bytes holding `index` (big-endian).
pub fn video(index: u32, key: bool) -> Vec<u8> {
    let mut b = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 4];
    b.extend(index.to_be_bytes());
    b
}

/// The frame index a video message carries (not the sequence header).
pub fn index_of(m: &Message) -> Option<u32> {
    (m.type_id == msg_type::VIDEO && m.payload.len() == 13 && m.payload[1] == 1)
        .then(|| u32::from_be_bytes(m.payload[9..13].try_into().expect("4 bytes")))
}

/// `rtmp://HOST:PORT/APP` as an address and app; `fallback` when absent.
fn target(tc_url: Option<&str>, fallback: SocketAddr) -> (SocketAddr, String) {
    let Some(url) = tc_url else {
        return (fallback, "live".into());
    };
    let rest = url.strip_prefix("rtmp://").expect("rtmp:// tcUrl");
    let (host, app) = rest.split_once('/').expect("tcUrl with an app");
    (host.parse().expect("IP:PORT host"), app.to_owned())
}

/// Connects announcing the Reconnect capability; createStream.
pub fn open(addr: SocketAddr, app: &str) -> Result<(RtmpClient, u32), ClientError> {
    let mut c = RtmpClient::connect_tcp(addr)?;
    c.handshake()?;
    c.connect_with(app, &[("capsEx", Amf0::Number(1.0))])?;
    let sid = c.create_stream()?;
    Ok((c, sid))
}

fn open_publisher(addr: SocketAddr, app: &str, name: &str) -> (RtmpClient, u32) {
    let (mut c, sid) = open(addr, app).expect("publisher connects");
    let status = c.publish(sid, name).expect("publish");
    assert_eq!(status.code, "NetStream.Publish.Start", "{status:?}");
    c.send_video(sid, 0, AVC_CONFIG).expect("sequence header");
    (c, sid)
}

/// What a [`publisher`] did.
#[derive(Debug, Default)]
pub struct Published {
    /// The requests it got.
    pub requests: Vec<Request>,
    /// The frame index at which it moved to each new connection (a keyframe).
    pub switches: Vec<u32>,
    /// Frames sent in all.
    pub sent: u32,
}

/// Publishes `app/name` at `addr` until `stop`, a frame every [`FRAME`]; on a reconnect
/// request connects again and publishes there from the next keyframe, then closes the
/// old connection.
pub fn publisher(addr: SocketAddr, name: &str, stop: Arc<AtomicBool>) -> Published {
    let (mut cur, mut sid) = open_publisher(addr, "live", name);
    let mut next: Option<(RtmpClient, u32)> = None;
    let mut done = Published::default();
    let mut due = Instant::now();
    let mut index = 0u32;
    // Keyframes every GOP, and at once on a connection taken over early.
    let mut next_key = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if index == next_key {
            if let Some((c, s)) = next.take() {
                // The old connection goes away; the new one starts at this keyframe.
                (cur, sid) = (c, s);
                done.switches.push(index);
            }
            next_key = index + GOP;
        }
        let ts = index * FRAME.as_millis() as u32;
        if let Err(e) = cur.send_video(sid, ts, &video(index, index + GOP == next_key)) {
            panic!("publisher send of frame {index}: {e}");
        }
        index += 1;
        done.sent = index;
        due += FRAME;
        // Read what the server says until the next frame is due.
        loop {
            match cur.next_message(due) {
                Ok(m) => {
                    if let Some(r) = request(&m) {
                        let (a, app) = target(r.tc_url.as_deref(), addr);
                        done.requests.push(r);
                        next = Some(open_publisher(a, &app, name));
                    }
                }
                Err(ClientError::Timeout) => break,
                // The server closed the old connection once the new one took the stream
                // over (the same server): go on there with a keyframe now.
                Err(ClientError::Closed) if next.is_some() => {
                    next_key = index;
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    break;
                }
                Err(e) => panic!("publisher connection failed after frame {index}: {e}"),
            }
        }
    }
    done
}

/// What a [`player`] got.
#[derive(Debug, Default)]
pub struct Played {
    /// The requests it got.
    pub requests: Vec<Request>,
    /// Every frame index received, in order, across connections (duplicates kept).
    pub indices: Vec<u32>,
    /// The index of the first frame received on each new connection.
    pub switches: Vec<u32>,
}

impl Played {
    /// The frame indices between the first and the last one received that never came.
    pub fn missing(&self) -> Vec<u32> {
        let (Some(&lo), Some(&hi)) = (self.indices.iter().min(), self.indices.iter().max()) else {
            return Vec::new();
        };
        (lo..=hi).filter(|i| !self.indices.contains(i)).collect()
    }
}

fn open_player(addr: SocketAddr, app: &str, name: &str) -> RtmpClient {
    let (mut c, sid) = open(addr, app).expect("player connects");
    c.play(sid, name).expect("play");
    c
}

/// Plays `app/name` at `addr`; on a reconnect request plays again (at the request's
/// `tcUrl`) and leaves the old connection once the new one delivers a frame. Returns once
/// `after` frames came on a new connection, or at `deadline`.
pub fn player(addr: SocketAddr, name: &str, after: usize, deadline: Instant) -> Played {
    let mut cur = Some(open_player(addr, "live", name));
    let mut next: Option<RtmpClient> = None;
    let mut got = Played::default();
    let mut since_switch = 0usize;
    let slice = Duration::from_millis(20);
    while Instant::now() < deadline && !(got.switches.len() == 1 && since_switch >= after) {
        if let Some(c) = cur.as_mut() {
            match c.next_message(Instant::now() + slice) {
                Ok(m) => {
                    if let Some(i) = index_of(&m) {
                        got.indices.push(i);
                        since_switch += usize::from(next.is_none() && !got.switches.is_empty());
                    } else if let Some(r) = request(&m) {
                        let (a, app) = target(r.tc_url.as_deref(), addr);
                        got.requests.push(r);
                        next = Some(open_player(a, &app, name));
                    }
                }
                Err(ClientError::Timeout) => {}
                // The old server ended it: the new connection carries on.
                Err(_) => cur = None,
            }
        }
        if let Some(n) = next.as_mut() {
            match n.next_message(Instant::now() + slice) {
                Ok(m) => {
                    if let Some(i) = index_of(&m) {
                        got.indices.push(i);
                        got.switches.push(i);
                        cur = next.take();
                    }
                }
                Err(ClientError::Timeout) => {}
                Err(e) => panic!("the new player connection failed: {e}"),
            }
        } else if cur.is_none() {
            break;
        }
    }
    got
}
