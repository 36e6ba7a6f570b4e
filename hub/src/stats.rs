//! The hub's own counters and gauges (component `hub` at `/metrics`), as handles taken
//! once so that hot paths bump an atomic and never look a series up.

use telemetry::{Counter, Gauge, Metrics};

/// How a player reached the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Handed over by ingest-rtmp.
    Rtmp,
    /// `GET /{app}/{name}.flv` on the HTTP listener.
    HttpFlv,
    /// The same path upgraded to a WebSocket (WebSocket-FLV).
    WsFlv,
    /// An SRT caller (`m=request`) that ingest-srt serves through a subscription which
    /// named its player (`Header::Player`). The hub counts it (players, plays, kicks);
    /// its bytes and skips are ingest-srt's (`mediaserver_srt_*`).
    Srt,
}

impl Protocol {
    /// The label value: the name the auth crate (and the events) give it.
    pub fn as_str(self) -> &'static str {
        self.auth().as_str()
    }

    /// The protocol as the auth crate names it (in `auth_allowed`/`auth_denied`).
    pub fn auth(self) -> auth::Protocol {
        match self {
            Protocol::Rtmp => auth::Protocol::Rtmp,
            Protocol::HttpFlv => auth::Protocol::HttpFlv,
            Protocol::WsFlv => auth::Protocol::WsFlv,
            Protocol::Srt => auth::Protocol::Srt,
        }
    }

    /// The hub's name for a player another process serves.
    pub fn of_player(p: proto::ipc::PlayerProtocol) -> Protocol {
        match p {
            proto::ipc::PlayerProtocol::Srt => Protocol::Srt,
        }
    }

    /// Every protocol, in label order of the API.
    pub const ALL: [Protocol; 4] = [
        Protocol::Rtmp,
        Protocol::HttpFlv,
        Protocol::WsFlv,
        Protocol::Srt,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of the players of one protocol.
#[derive(Debug)]
pub struct PlayerStats {
    /// Players connected now.
    pub connected: Gauge,
    /// Players ever started.
    pub started: Counter,
    /// Bytes written to players.
    pub bytes: Counter,
    /// Times a slow player skipped to the newest keyframe.
    pub gop_skips: Counter,
    /// Frames those skips left out.
    pub dropped_frames: Counter,
    /// Players closed for lagging too often.
    pub too_slow: Counter,
    /// Players closed because their socket took nothing for the write timeout.
    pub stalled: Counter,
    /// Players closed because more than their queue bound was queued for them.
    pub queue_full: Counter,
    /// Players closed through the API.
    pub kicked: Counter,
}

/// Every hub series, registered at start.
#[derive(Debug)]
pub struct HubStats {
    /// The set they live in (rendered at `/metrics`).
    pub metrics: Metrics,
    /// Publishes accepted.
    pub publishes: Counter,
    /// Publishes refused (duplicate, capacity, policy).
    pub publish_refused: Counter,
    /// Media frames received from publishers.
    pub frames_in: Counter,
    /// Media payload bytes received from publishers.
    pub bytes_in: Counter,
    /// Subscriber connections now (recorder, relayer, custom consumers).
    pub subscribers: Gauge,
    /// Frames skipped for subscribers that fell behind.
    pub subscriber_dropped_frames: Counter,
    /// HTTP connections open now.
    pub http_connections: Gauge,
    /// HTTP connections refused at the connection limit.
    pub http_refused: Counter,
    /// HLS playlists served.
    pub hls_playlists: Counter,
    /// HLS segments served.
    pub hls_segments_served: Counter,
    /// HLS segment bytes served.
    pub hls_bytes: Counter,
    /// HLS segments cut (all streams).
    pub hls_segments_cut: Counter,
    /// HLS segmenters running now (streams someone plays over HLS).
    pub hls_segmenters: Gauge,
    players: [PlayerStats; 4],
}

impl HubStats {
    /// Registers every series at 0.
    pub fn new() -> HubStats {
        let metrics = Metrics::new();
        let players = Protocol::ALL.map(|p| {
            let l = [("protocol", p.as_str())];
            PlayerStats {
                connected: metrics.gauge("mediaserver_players", &l),
                started: metrics.counter("mediaserver_plays_total", &l),
                bytes: metrics.counter("mediaserver_player_bytes_total", &l),
                gop_skips: metrics.counter("mediaserver_player_gop_skips_total", &l),
                dropped_frames: metrics.counter("mediaserver_player_dropped_frames_total", &l),
                too_slow: metrics.counter(
                    "mediaserver_player_disconnects_total",
                    &[("protocol", p.as_str()), ("reason", "too_slow")],
                ),
                stalled: metrics.counter(
                    "mediaserver_player_disconnects_total",
                    &[("protocol", p.as_str()), ("reason", "stalled")],
                ),
                queue_full: metrics.counter(
                    "mediaserver_player_disconnects_total",
                    &[("protocol", p.as_str()), ("reason", "queue_full")],
                ),
                kicked: metrics.counter(
                    "mediaserver_player_disconnects_total",
                    &[("protocol", p.as_str()), ("reason", "kicked")],
                ),
            }
        });
        HubStats {
            publishes: metrics.counter("mediaserver_publishes_total", &[]),
            publish_refused: metrics.counter("mediaserver_publishes_refused_total", &[]),
            frames_in: metrics.counter("mediaserver_ingest_frames_total", &[]),
            bytes_in: metrics.counter("mediaserver_ingest_bytes_total", &[]),
            subscribers: metrics.gauge("mediaserver_subscribers", &[]),
            subscriber_dropped_frames: metrics
                .counter("mediaserver_subscriber_dropped_frames_total", &[]),
            http_connections: metrics.gauge("mediaserver_http_connections", &[]),
            http_refused: metrics.counter("mediaserver_http_connections_refused_total", &[]),
            hls_playlists: metrics
                .counter("mediaserver_hls_requests_total", &[("kind", "playlist")]),
            hls_segments_served: metrics
                .counter("mediaserver_hls_requests_total", &[("kind", "segment")]),
            hls_bytes: metrics.counter("mediaserver_hls_bytes_total", &[]),
            hls_segments_cut: metrics.counter("mediaserver_hls_segments_total", &[]),
            hls_segmenters: metrics.gauge("mediaserver_hls_segmenters", &[]),
            players,
            metrics,
        }
    }

    /// The player counters of `protocol`.
    pub fn players(&self, protocol: Protocol) -> &PlayerStats {
        &self.players[protocol.index()]
    }
}

impl Default for HubStats {
    fn default() -> HubStats {
        HubStats::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `protocol` label values are part of the metrics and API output.
    #[test]
    fn protocol_labels() {
        assert_eq!(
            Protocol::ALL.map(Protocol::as_str),
            ["rtmp", "http-flv", "ws-flv", "srt"]
        );
        assert_eq!(
            Protocol::of_player(proto::ipc::PlayerProtocol::Srt).as_str(),
            proto::ipc::PlayerProtocol::Srt.as_str()
        );
    }
}
