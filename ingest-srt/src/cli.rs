//! Command line and the configuration built from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ingest_link::pipe::Target;
use proto::media::StreamKey;
use proto::srt::crypto::Passphrase;

/// `--handoff` unless given (lowered to half of `--latency` when that is less).
const DEFAULT_HANDOFF: Duration = Duration::from_millis(50);

/// Longest `--handoff`: beyond it the delay shows in players' latency for little gain.
const MAX_HANDOFF: Duration = Duration::from_millis(200);

/// SRT ingest of the media server: accepts SRT publishers (MPEG-TS over SRT, plain or
/// AES-encrypted) on one UDP port and sends their streams to the hub.
#[derive(Debug, Parser)]
#[command(name = "ingest-srt", version)]
pub(crate) struct Cli {
    /// UDP address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "0.0.0.0:4200")]
    pub(crate) listen: SocketAddr,
    /// The hub's Unix socket [default: $XDG_RUNTIME_DIR/mediaserver/hub.sock, else
    /// /run/user/UID/mediaserver/hub.sock or ~/.local/state/mediaserver/hub.sock].
    #[arg(long)]
    hub: Option<PathBuf>,
    /// Write published streams in the framed format (proto/FORMAT.md) to this file or FIFO,
    /// or `-` for standard output, instead of to a hub [default: none, streams go to the hub].
    #[arg(long, value_name = "PATH|-", value_parser = Target::parse, conflicts_with = "hub")]
    pub(crate) out: Option<Target>,
    /// TSBPD latency this side asks for; the larger of the caller's and this one is used.
    #[arg(long, default_value = "120ms", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// Passphrase (10 to 80 characters) every stream requires [default: none].
    #[arg(long, conflicts_with = "passphrase_file")]
    passphrase: Option<String>,
    /// File of `PATTERN PASSPHRASE` lines (`#` comments; `*` in a pattern matches any run
    /// of characters): the first pattern matching a stream key gives its passphrase; keys
    /// matching none need no passphrase. Reloaded on SIGHUP [default: none].
    #[arg(long)]
    pub(crate) passphrase_file: Option<PathBuf>,
    /// Key length encrypting callers must use: 16, 24 or 32 bytes, or 0 for any
    /// (a caller's shorter key is refused with CRYPTO).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=32))]
    pbkeylen: u16,
    /// Encrypted players: packets sent with one key before switching to a new one
    /// (libsrt's SRTO_KMREFRESHRATE; the player is sent the new key in advance).
    #[arg(long, default_value_t = proto::srt::crypto::TxKeys::DEFAULT_REFRESH_RATE)]
    km_refresh_rate: u32,
    /// Encrypted players: packets before and after a key switch during which both keys
    /// are announced (libsrt's SRTO_KMPREANNOUNCE; at most half the refresh rate).
    #[arg(long, default_value_t = proto::srt::crypto::TxKeys::DEFAULT_PREANNOUNCE)]
    km_preannounce: u32,
    /// Refuse callers that do not encrypt even for streams without a passphrase.
    #[arg(long)]
    enforce_encryption: bool,
    /// Most SRT connections at once; further callers are refused with RESOURCE.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// The stream key of callers that send no stream id.
    #[arg(long, default_value = "live/srt")]
    default_key: String,
    /// A connection from which nothing arrives for this long is closed.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    peer_idle_timeout: Duration,
    /// Bytes of media queued per publisher toward the hub before frames are dropped (a
    /// slow hub), and the bound on the GOP kept to re-announce after a hub restart.
    #[arg(long, default_value_t = 8 << 20)]
    hub_queue_bytes: usize,
    #[command(flatten)]
    hub_replay: ingest_link::link::ReplayFlag,
    /// Up to how long the payloads a publisher's connection released (at their TSBPD time)
    /// wait to be handed to its demuxer and on to the hub together: one wake-up of the
    /// publisher's task and one write toward the hub (and one wake-up of the hub) per
    /// hand-off instead of one per 10 ms step. It adds up to this much to what players
    /// see of the stream's delay. `0ms` hands off at every 10 ms step. At most 200ms and
    /// at most half of --latency [default: 50ms, or half of --latency when that is less].
    #[arg(long, value_parser = humantime::parse_duration)]
    handoff: Option<Duration>,
    /// How long a player (`m=request`) of a key that is not live waits for it before it
    /// is refused with 1404 (not found). Keep it below the callers' connect timeout
    /// (libsrt's default is 3 s): the caller waits for the handshake's answer meanwhile.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    play_wait: Duration,
    /// Bytes of muxed MPEG-TS queued per player toward its SRT connection; beyond it the
    /// player skips to the next keyframe.
    #[arg(long, default_value_t = 4 << 20)]
    play_queue_bytes: usize,
    /// Keyframe skips a player may need within a minute (it falls behind: over
    /// --play-queue-bytes, or packets it never acknowledged were dropped) before it is
    /// disconnected as too slow.
    #[arg(long, default_value_t = 3)]
    play_max_skips: u32,
    /// Receive and send buffer of the UDP socket: what arrives while ingest-srt is busy
    /// (a burst, a flood of junk, a moment without CPU) waits there instead of being
    /// dropped by the kernel, and so do bursts of sends (a datagram that finds the send
    /// buffer full is dropped and counted, never waited for). Capped by the kernel's
    /// `net.core.rmem_max`/`wmem_max`; the size granted is logged at start.
    #[arg(long, value_name = "BYTES", default_value = "8MiB", value_parser = runtime::size::bytes::<usize>)]
    pub(crate) udp_buffer: usize,
    /// Runtime threads. With 1 one thread does everything (the socket, every SRT
    /// connection, each publisher's demuxing) and no thread wakes another per packet;
    /// with more, the endpoint stays on the main thread and the publishers' demuxing and
    /// hand-off to the hub spread over that many workers (each batch of payloads then
    /// crosses threads).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) threads: u16,
    /// Interval of the `srt_stats` event each connection sends (also sent on close).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    stats_interval: Duration,
    /// Who may publish and play: the same modes and flags as ingest-rtmp (README "Auth");
    /// the credential comes from the stream id (`token=`, `r=...?token=`, or `s=`).
    #[command(flatten, next_help_heading = "Auth")]
    pub(crate) auth: auth::AuthArgs,
    #[command(flatten)]
    common: runtime::start::CommonArgs,
}

/// Everything the endpoint and the publishers need, shared read-only.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) hub: PathBuf,
    pub(crate) srt: proto::srt::Config,
    pub(crate) passphrase: Option<Passphrase>,
    pub(crate) pbkeylen: usize,
    pub(crate) enforce_encryption: bool,
    pub(crate) max_connections: usize,
    pub(crate) default_key: StreamKey,
    pub(crate) hub_queue_bytes: usize,
    /// `--hub-replay`.
    pub(crate) hub_replay: ingest_link::link::Replay,
    /// `--handoff`: how long TSBPD's releases are held for a publisher (zero: not held).
    pub(crate) handoff: Duration,
    pub(crate) stats_interval: Duration,
    pub(crate) play_wait: Duration,
    pub(crate) play_queue_bytes: usize,
    pub(crate) play_max_skips: u32,
    /// `--out`: streams go to this pipe instead of the hub (set once it is open).
    pub(crate) pipe: Option<ingest_link::pipe::Pipe>,
    /// Where connection events go (set at start: the hub or the pipe).
    pub(crate) events: ingest_link::events::Events,
}

impl Cli {
    /// What is wrong with its own flags beyond their syntax, as (flag, value, why).
    fn own_problems(&self) -> Option<runtime::start::Problem> {
        if let Some(problem) = self.auth.problems() {
            return Some(problem);
        }
        if let Some(p) = &self.passphrase {
            if let Err(e) = Passphrase::new(p.clone()) {
                return Some(("passphrase", "(hidden)".into(), e.to_string()));
            }
        }
        if let Some(f) = &self.passphrase_file {
            if let Err(e) = crate::passphrase::Book::load(f) {
                return Some(("passphrase-file", f.display().to_string(), e));
            }
        }
        if ![0, 16, 24, 32].contains(&self.pbkeylen) {
            return Some((
                "pbkeylen",
                self.pbkeylen.to_string(),
                "must be 0, 16, 24 or 32".into(),
            ));
        }
        if self.km_refresh_rate < 4 {
            return Some((
                "km-refresh-rate",
                self.km_refresh_rate.to_string(),
                "must be at least 4".into(),
            ));
        }
        if self.km_preannounce == 0 || self.km_preannounce > (self.km_refresh_rate - 1) / 2 {
            return Some((
                "km-preannounce",
                self.km_preannounce.to_string(),
                "must be 1 to (km-refresh-rate - 1) / 2".into(),
            ));
        }
        if self.max_connections == 0 {
            return Some(("max-connections", "0".into(), "must be more than 0".into()));
        }
        if let Err(e) = StreamKey::parse(&self.default_key) {
            return Some(("default-key", self.default_key.clone(), e.to_string()));
        }
        let ms = self.latency.as_millis();
        if ms == 0 || ms > u128::from(u16::MAX) {
            return Some((
                "latency",
                format!("{:?}", self.latency),
                "must be 1ms to 65s".into(),
            ));
        }
        if let Some(h) = self.handoff {
            let most = MAX_HANDOFF.min(self.latency / 2);
            if h > most {
                let value = humantime::format_duration(h).to_string();
                let why = format!(
                    "must be at most {} and at most half of --latency ({})",
                    humantime::format_duration(MAX_HANDOFF),
                    humantime::format_duration(self.latency)
                );
                return Some(("handoff", value, why));
            }
        }
        let timeouts = [
            ("peer-idle-timeout", self.peer_idle_timeout),
            ("stats-interval", self.stats_interval),
            ("play-wait", self.play_wait),
        ];
        if let Some((flag, _)) = timeouts.iter().find(|(_, d)| d.is_zero()) {
            return Some((flag, "0s".into(), "must be more than 0".into()));
        }
        None
    }

    pub(crate) fn config(&self) -> Config {
        Config {
            hub: self
                .hub
                .clone()
                .unwrap_or_else(runtime::dir::default_hub_socket),
            srt: proto::srt::Config {
                latency: self.latency,
                peer_idle_timeout: self.peer_idle_timeout,
                km_refresh_rate: self.km_refresh_rate,
                km_preannounce: self.km_preannounce,
                ..proto::srt::Config::default()
            },
            passphrase: self
                .passphrase
                .clone()
                .and_then(|p| Passphrase::new(p).ok()),
            pbkeylen: usize::from(self.pbkeylen),
            enforce_encryption: self.enforce_encryption,
            max_connections: self.max_connections,
            default_key: StreamKey::parse(&self.default_key).expect("checked"),
            hub_queue_bytes: self.hub_queue_bytes.max(64 << 10),
            hub_replay: self.hub_replay.hub_replay,
            handoff: self
                .handoff
                .unwrap_or(DEFAULT_HANDOFF.min(self.latency / 2)),
            stats_interval: self.stats_interval,
            play_wait: self.play_wait,
            play_queue_bytes: self.play_queue_bytes.max(64 << 10),
            play_max_skips: self.play_max_skips,
            pipe: None,
            events: ingest_link::events::Events::discard(),
        }
    }
}

impl runtime::start::Command for Cli {
    fn common(&self) -> &runtime::start::CommonArgs {
        &self.common
    }

    fn problems(&self) -> Option<runtime::start::Problem> {
        self.own_problems()
    }
}

#[cfg(test)]
mod tests {
    use ingest_link::link::Replay;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("ingest-srt").chain(args.iter().copied()))
            .expect("parses")
    }

    #[test]
    fn the_handoff_stays_within_half_the_latency() {
        let ms = Duration::from_millis;
        assert_eq!(parse(&[]).config().handoff, ms(50));
        // The default gives way to a short latency; a value given is checked.
        assert_eq!(parse(&["--latency", "80ms"]).config().handoff, ms(40));
        let zero = parse(&["--handoff", "0ms"]);
        assert!(zero.own_problems().is_none());
        assert_eq!(zero.config().handoff, Duration::ZERO);
        assert!(parse(&["--handoff", "60ms"]).own_problems().is_none());
        for args in [
            &["--handoff", "61ms"][..],
            &["--latency", "1s", "--handoff", "201ms"],
        ] {
            let (flag, _, why) = parse(args).own_problems().expect("refused");
            assert_eq!(flag, "handoff");
            assert!(why.contains("half of --latency"), "{why}");
        }
    }

    #[test]
    fn hub_replay_reaches_the_config() {
        assert_eq!(parse(&[]).config().hub_replay, Replay::Gop);
        let headers = parse(&["--hub-replay", "headers"]);
        assert_eq!(headers.config().hub_replay, Replay::Headers);
    }
}
