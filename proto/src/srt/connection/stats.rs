//! Per-connection counters (statistics.md names in brackets).

/// Counters of one connection, both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Data packets received, including retransmissions and duplicates (pktRecv).
    pub recv_packets: u64,
    /// Payload bytes received (byteRecv).
    pub recv_bytes: u64,
    /// Packets detected missing (pktRcvLoss).
    pub recv_lost: u64,
    /// Retransmitted packets received (pktRcvRetrans).
    pub recv_retransmitted: u64,
    /// Packets given up on by too-late drop or a drop request (pktRcvDrop).
    pub recv_dropped: u64,
    /// Packets that arrived twice.
    pub recv_duplicates: u64,
    /// Packets that arrived after their slot was released or dropped (pktRcvBelated).
    pub recv_belated: u64,
    /// Packets beyond the receive buffer.
    pub recv_overflow: u64,
    /// Packets whose key was not available (pktRcvUndecrypt).
    pub recv_undecrypted: u64,
    /// Packets released to the application.
    pub delivered: u64,
    /// Data packets sent for the first time (pktSent).
    pub sent_packets: u64,
    /// Payload bytes sent for the first time.
    pub sent_bytes: u64,
    /// Retransmissions sent (pktRetrans).
    pub sent_retransmitted: u64,
    /// Packets dropped from the send buffer as too old (pktSndDrop).
    pub sent_dropped: u64,
    /// NAKs received (pktRecvNAK).
    pub naks_received: u64,
    /// NAKs sent (pktSentNAK).
    pub naks_sent: u64,
    /// Current RTT estimate, microseconds (msRTT x 1000).
    pub rtt_us: u32,
    /// Current RTT variance, microseconds.
    pub rtt_var_us: u32,
    /// Estimated link capacity from packet pairs, packets/s (mbpsBandwidth / packet size).
    pub link_capacity_pps: u32,
    /// Received rate over the last ACK period, bytes/s.
    pub recv_rate_bps: u32,
    /// Packets the receive buffer holds now, from the first not yet delivered to the
    /// highest received, holes included (pktRcvBuf).
    pub recv_buffer_packets: u32,
    /// Span of sender timestamps in the receive buffer now, milliseconds (msRcvBuf).
    pub recv_buffer_ms: u32,
    /// Packets in the send buffer now: unacknowledged or not sent yet (pktSndBuf).
    pub send_buffer_packets: u32,
}
