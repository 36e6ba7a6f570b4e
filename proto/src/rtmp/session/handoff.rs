//! The state of a player connection handed from one process to another.

use serde::{Deserialize, Serialize};

use crate::rtmp::chunk::ChunkStreamState;

/// Everything needed to continue an RTMP player connection in another process: what
/// ingest-rtmp's [`super::ServerSession::into_player_state`] exports and the hub's
/// [`super::PlayerSession`] starts from. The framed format carries it in
/// `Header::PlayerHandoff` (FORMAT.md section 3), so its field order is wire format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerHandoff {
    /// Connection id assigned by ingest (for logs).
    pub conn_id: u64,
    /// Remote address of the player.
    pub remote: String,
    /// Stream key `app/name` the player asked for.
    pub key: String,
    /// Message stream id the play came on (from createStream).
    pub stream_id: u32,
    /// Chunk size the client sends with.
    pub in_chunk_size: u32,
    /// Chunk size the server last announced to the client.
    pub out_chunk_size: u32,
    /// Window acknowledgement size the client asked for (0 = none).
    pub window_ack_size: u32,
    /// Bytes received from the client so far (for acknowledgements).
    pub bytes_received: u64,
    /// Bytes received when the last acknowledgement was sent.
    pub last_ack_sent: u64,
    /// Inbound chunk header state per chunk stream.
    pub in_chunk_streams: Vec<ChunkStreamState>,
    /// Bytes ingest read from the socket past the play command, not yet parsed.
    pub pending_input: Vec<u8>,
    /// The play `start` argument (-2 live or recorded, -1 live, >= 0 recorded from).
    pub start: f64,
    /// The play `duration` argument.
    pub duration: f64,
    /// The play `reset` argument.
    pub reset: bool,
    /// Whether the client wants audio (receiveAudio).
    pub receive_audio: bool,
    /// Whether the client wants video (receiveVideo).
    pub receive_video: bool,
    /// Transaction id of the play command (0 normally).
    pub transaction_id: f64,
    /// The E-RTMP `capsEx` bits both sides announced in `connect`: the client's, without
    /// Reconnect unless the server announced it too.
    pub caps_ex: u32,
    /// The codecs the player announced in `connect` (what the hub may send it).
    pub announced: super::Announced,
}

impl PlayerHandoff {
    /// A live play of `key` just handed over: default chunk sizes, no window, nothing
    /// received yet, audio and video wanted. For tests and fuzz targets, which change
    /// the fields they exercise with struct update syntax; real handoffs come from
    /// [`super::ServerSession::into_player_state`].
    #[doc(hidden)]
    pub fn for_tests(conn_id: u64, key: &str, stream_id: u32) -> PlayerHandoff {
        PlayerHandoff {
            conn_id,
            remote: "127.0.0.1:5000".into(),
            key: key.into(),
            stream_id,
            in_chunk_size: 128,
            out_chunk_size: 4096,
            window_ack_size: 0,
            bytes_received: 0,
            last_ack_sent: 0,
            in_chunk_streams: Vec::new(),
            pending_input: Vec::new(),
            start: -2.0,
            duration: -1.0,
            reset: false,
            receive_audio: true,
            receive_video: true,
            transaction_id: 0.0,
            caps_ex: 0,
            announced: super::Announced::default(),
        }
    }
}
