//! The hub's settings, as parsed from the command line.

use std::path::PathBuf;
use std::time::Duration;

/// What happens when a second publisher announces a key that is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnDuplicate {
    /// The new publisher replaces the old one, whose connection is closed; players stay
    /// and continue with the new publisher's stream.
    Takeover,
    /// The new publisher is refused (`NetStream.Publish.BadName`, "KEY is already being
    /// published"); the old one goes on.
    Reject,
}

/// Everything the hub's subsystems read from the configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The UDS path.
    pub socket: PathBuf,
    /// A group (gid) whose members may use the socket besides our own uid.
    pub socket_group: Option<u32>,
    /// Duplicate publisher policy.
    pub on_duplicate: OnDuplicate,
    /// Largest GOP cache per stream, bytes.
    pub gop_cache_bytes: usize,
    /// Longest GOP cache per stream.
    pub gop_cache_duration: Duration,
    /// How far behind the live edge a player may be before it skips to a keyframe.
    pub player_queue_bytes: usize,
    /// Lag skips allowed within [`LAG_WINDOW`] before a player is disconnected.
    pub max_lag_skips: u32,
    /// A player whose socket takes no bytes for this long stopped reading: it is closed.
    pub player_write_timeout: Duration,
    /// A subscriber whose socket takes no bytes for this long stopped reading: it is
    /// closed.
    pub subscriber_write_timeout: Duration,
    /// A player that sends nothing for this long is pinged; `None` never pings.
    pub player_ping_interval: Option<Duration>,
    /// A pinged player that still sends nothing for this long is closed.
    pub player_ping_timeout: Duration,
    /// How long a player of a key that is not live waits for its publisher.
    pub publisher_wait: Duration,
    /// How long players stay after their publisher left.
    pub unpublish_timeout: Duration,
    /// RTMP chunk size written to players.
    pub chunk_size: u32,
    /// How long a caught-up player's frames may be held to be written together (one
    /// vectored write); zero writes every frame at once.
    pub write_coalesce: Duration,
    /// Most streams at once.
    pub max_streams: usize,
    /// Most players at once (all streams).
    pub max_players: usize,
    /// The `tcUrl` of reconnect requests (`--reconnect-tc-url`); `None`: clients
    /// reconnect to the URL they used.
    pub reconnect_tc_url: Option<String>,
}

/// The largest `--write-coalesce`: beyond it the hold would rival what players buffer.
pub const MAX_WRITE_COALESCE: Duration = Duration::from_millis(200);

/// The window in which lag skips are counted against [`Config::max_lag_skips`].
pub const LAG_WINDOW: Duration = Duration::from_secs(30);

impl Config {
    /// Settings for unit tests: small, predictable bounds.
    #[cfg(test)]
    pub fn for_tests() -> Config {
        Config {
            socket: PathBuf::from("/nonexistent/hub.sock"),
            socket_group: None,
            on_duplicate: OnDuplicate::Takeover,
            gop_cache_bytes: 16 << 20,
            gop_cache_duration: Duration::from_secs(10),
            player_queue_bytes: 4 << 20,
            max_lag_skips: 3,
            player_write_timeout: Duration::from_secs(10),
            subscriber_write_timeout: Duration::from_secs(30),
            player_ping_interval: Some(Duration::from_secs(60)),
            player_ping_timeout: Duration::from_secs(30),
            publisher_wait: Duration::from_secs(30),
            unpublish_timeout: Duration::from_secs(30),
            chunk_size: 4096,
            write_coalesce: Duration::ZERO,
            max_streams: 100,
            max_players: 100,
            reconnect_tc_url: None,
        }
    }
}
