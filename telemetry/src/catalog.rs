//! The help text of every series the components report or the hub serves, for the
//! `# HELP` lines of `/metrics` (docs/metrics.md lists the same names). A component that
//! adds a series adds its line here; a name missing here is still served, with a generic
//! help text.

/// `(metric name, help)`, by component.
pub const CATALOG: &[(&str, &str)] = &[
    // hub
    (
        "mediaserver_uptime_seconds",
        "Seconds since the hub started.",
    ),
    (
        "mediaserver_streams",
        "Streams the hub knows (live, or waited for by players).",
    ),
    ("mediaserver_streams_live", "Streams with a live publisher."),
    ("mediaserver_publishes_total", "Publishes the hub accepted."),
    (
        "mediaserver_publishes_refused_total",
        "Publishes the hub refused (duplicate key, stream limit, policy).",
    ),
    (
        "mediaserver_ingest_frames_total",
        "Media frames the hub received from publishers.",
    ),
    (
        "mediaserver_ingest_bytes_total",
        "Media payload bytes the hub received from publishers.",
    ),
    ("mediaserver_players", "Players connected now, by protocol."),
    ("mediaserver_plays_total", "Players started, by protocol."),
    (
        "mediaserver_player_bytes_total",
        "Bytes written to players, by protocol.",
    ),
    (
        "mediaserver_player_gop_skips_total",
        "Times a slow player skipped to the newest keyframe, by protocol.",
    ),
    (
        "mediaserver_player_dropped_frames_total",
        "Frames slow players skipped (whole GOPs), by protocol.",
    ),
    (
        "mediaserver_player_disconnects_total",
        "Players the hub closed, by protocol and reason (too_slow, stalled, queue_full, kicked).",
    ),
    (
        "mediaserver_subscribers",
        "Subscriber connections now (recorder, relayer, custom consumers).",
    ),
    (
        "mediaserver_subscriber_dropped_frames_total",
        "Frames skipped for subscribers that fell behind.",
    ),
    ("mediaserver_http_connections", "HTTP connections open now."),
    (
        "mediaserver_http_connections_refused_total",
        "HTTP connections refused at --http-max-connections.",
    ),
    (
        "mediaserver_http_requests_total",
        "HTTP requests answered, by status code.",
    ),
    (
        "mediaserver_component_reporting",
        "Components whose counter reports the hub holds now (1 each).",
    ),
    (
        "mediaserver_auth_allowed_total",
        "Publishes and plays auth admitted, by protocol and action (from auth_allowed events).",
    ),
    (
        "mediaserver_auth_denied_total",
        "Publishes and plays auth refused, by protocol, action and reason (from auth_denied events).",
    ),
    // ingest-rtmp
    (
        "mediaserver_rtmp_connections_open",
        "RTMP connections open now on ingest-rtmp.",
    ),
    (
        "mediaserver_rtmp_connections_total",
        "RTMP connections accepted by ingest-rtmp.",
    ),
    (
        "mediaserver_rtmp_connections_refused_total",
        "RTMP connections refused at --max-connections.",
    ),
    (
        "mediaserver_rtmp_publishers",
        "RTMP publishers publishing now.",
    ),
    (
        "mediaserver_rtmp_publishes_total",
        "RTMP publishes started.",
    ),
    (
        "mediaserver_rtmp_plays_total",
        "RTMP players handed to the hub.",
    ),
    (
        "mediaserver_rtmp_bytes_in_total",
        "Bytes read from RTMP connections (publishers and players before handoff).",
    ),
    (
        "mediaserver_rtmp_closed_total",
        "RTMP connections ingest-rtmp closed for bad input, a limit or a timeout, by layer.",
    ),
    // ingest-srt
    (
        "mediaserver_srt_connections_open",
        "SRT connections open now on ingest-srt.",
    ),
    (
        "mediaserver_srt_connections_total",
        "SRT connections accepted (handshake done).",
    ),
    (
        "mediaserver_srt_connections_refused_total",
        "SRT handshakes refused, by reject reason.",
    ),
    (
        "mediaserver_srt_publishers",
        "SRT publishers publishing now.",
    ),
    (
        "mediaserver_srt_publishes_total",
        "SRT publishes started.",
    ),
    (
        "mediaserver_srt_players",
        "SRT players connected now.",
    ),
    (
        "mediaserver_srt_packets_in_total",
        "SRT data packets received, retransmissions and duplicates included.",
    ),
    (
        "mediaserver_srt_bytes_in_total",
        "SRT payload bytes received.",
    ),
    (
        "mediaserver_srt_packets_lost_total",
        "SRT packets detected missing.",
    ),
    (
        "mediaserver_srt_packets_retransmitted_total",
        "SRT retransmitted packets received.",
    ),
    (
        "mediaserver_srt_packets_dropped_total",
        "SRT packets given up on (too late or dropped by the sender).",
    ),
    (
        "mediaserver_srt_packets_undecrypted_total",
        "SRT packets that could not be decrypted.",
    ),
    (
        "mediaserver_srt_naks_sent_total",
        "SRT loss reports (NAKs) sent.",
    ),
    (
        "mediaserver_srt_packets_out_total",
        "SRT data packets sent to players for the first time.",
    ),
    (
        "mediaserver_srt_bytes_out_total",
        "SRT payload bytes sent to players.",
    ),
    (
        "mediaserver_srt_packets_resent_total",
        "SRT retransmissions sent to players.",
    ),
    (
        "mediaserver_srt_ts_errors_total",
        "MPEG-TS damage contained by ingest-srt.",
    ),
    (
        "mediaserver_srt_datagrams_send_dropped_total",
        "Datagrams ingest-srt dropped instead of sending because its UDP send buffer was full.",
    ),
    (
        "mediaserver_srt_connection_packets_received_total",
        "Data packets received on one SRT connection, retransmissions and duplicates included.",
    ),
    (
        "mediaserver_srt_connection_bytes_received_total",
        "Payload bytes received on one SRT connection.",
    ),
    (
        "mediaserver_srt_connection_packets_lost_total",
        "Packets one SRT connection detected missing.",
    ),
    (
        "mediaserver_srt_connection_packets_retransmitted_total",
        "Retransmitted packets received on one SRT connection.",
    ),
    (
        "mediaserver_srt_connection_packets_dropped_total",
        "Packets one SRT connection gave up on (too late or dropped by the sender).",
    ),
    (
        "mediaserver_srt_connection_packets_undecrypted_total",
        "Packets one SRT connection could not decrypt.",
    ),
    (
        "mediaserver_srt_connection_naks_sent_total",
        "Loss reports (NAKs) one SRT connection sent.",
    ),
    (
        "mediaserver_srt_connection_packets_sent_total",
        "Data packets sent on one SRT connection for the first time.",
    ),
    (
        "mediaserver_srt_connection_bytes_sent_total",
        "Payload bytes sent on one SRT connection for the first time.",
    ),
    (
        "mediaserver_srt_connection_packets_resent_total",
        "Retransmissions sent on one SRT connection.",
    ),
    (
        "mediaserver_srt_connection_packets_send_dropped_total",
        "Packets one SRT connection dropped from its send buffer unacknowledged (too late).",
    ),
    (
        "mediaserver_srt_connection_naks_received_total",
        "Loss reports (NAKs) one SRT connection received.",
    ),
    (
        "mediaserver_srt_connection_rtt_microseconds",
        "Round-trip time estimate of one SRT connection.",
    ),
    (
        "mediaserver_srt_connection_rtt_var_microseconds",
        "Round-trip time variance of one SRT connection.",
    ),
    (
        "mediaserver_srt_connection_receive_buffer_packets",
        "Packets in one SRT connection's receive buffer now (holes included).",
    ),
    (
        "mediaserver_srt_connection_receive_buffer_milliseconds",
        "Span of sender timestamps in one SRT connection's receive buffer now.",
    ),
    (
        "mediaserver_srt_connection_send_buffer_packets",
        "Packets in one SRT connection's send buffer now (unacknowledged or not sent yet).",
    ),
    (
        "mediaserver_srt_connection_bandwidth_bits_per_second",
        "Link capacity estimate of one SRT connection (packet pairs, times a full packet).",
    ),
    // relayer
    (
        "mediaserver_relay_destinations",
        "Relay push destinations now, by state (connecting, live, backing_off).",
    ),
    (
        "mediaserver_relay_pulls",
        "Relay pulls now, by state (connecting, live, backing_off).",
    ),
    (
        "mediaserver_relay_connects_total",
        "Relay connections that went live, by destination.",
    ),
    (
        "mediaserver_relay_failures_total",
        "Relay connection attempts that failed and live connections that broke, by destination.",
    ),
    (
        "mediaserver_relay_bytes_total",
        "Bytes sent to relay destinations, by destination.",
    ),
    (
        "mediaserver_relay_dropped_frames_total",
        "Frames dropped from a relay destination's queue, by destination.",
    ),
    (
        "mediaserver_relay_queued_bytes",
        "Bytes waiting in a relay destination's queue now, by destination.",
    ),
    // recorder
    (
        "mediaserver_recorder_files_open",
        "Recording files open now.",
    ),
    (
        "mediaserver_recorder_files_total",
        "Recording files started.",
    ),
    (
        "mediaserver_recorder_bytes_total",
        "Bytes written to recording files.",
    ),
    (
        "mediaserver_recorder_errors_total",
        "Recording errors (a file that could not be created or written).",
    ),
    // every component that sends events
    (
        "mediaserver_events_dropped_total",
        "Events dropped because the hub was away until the component's event queue was full (oldest first).",
    ),
    // supervisor
    (
        "mediaserver_component_restarts_total",
        "Restarts of a crashed component by the supervisor, by component.",
    ),
    (
        "mediaserver_component_up",
        "Whether the supervisor has the component running (1) or not (0), by component.",
    ),
];

/// The help text of `name`, if listed.
pub fn help(name: &str) -> Option<&'static str> {
    CATALOG.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

#[cfg(test)]
mod tests {
    use super::CATALOG;

    /// A gauge `x` next to a counter `x_total` is one family to an OpenMetrics parser,
    /// which then refuses the text; names are unique too.
    #[test]
    fn no_gauge_shadows_a_counter_and_no_name_repeats() {
        for (i, (name, _)) in CATALOG.iter().enumerate() {
            assert!(
                CATALOG[i + 1..].iter().all(|(n, _)| n != name),
                "{name} listed twice"
            );
            if let Some(stem) = name.strip_suffix("_total") {
                assert!(
                    CATALOG.iter().all(|(n, _)| *n != stem),
                    "gauge {stem} shadows counter {name}"
                );
            }
        }
    }
}
