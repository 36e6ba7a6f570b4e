//! Command line and the configuration built from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use proto::rtmp::amf0::AmfLimits;
use proto::rtmp::chunk::ChunkLimits;
use proto::rtmp::session::SessionConfig;

use crate::slots::SlotLimits;

/// Longest timeout accepted: beyond it a deadline is meaningless, and far enough it
/// overflows the clock.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Longest `--read-coalesce`: beyond it the delay shows in players' latency for little gain.
const MAX_READ_COALESCE: Duration = Duration::from_millis(200);

/// The RTMPS port when only a certificate is given.
const DEFAULT_RTMPS_PORT: u16 = 1936;

/// RTMP ingest of the media server: accepts publishers and players on one port, sends
/// published streams to the hub and hands players over to it.
#[derive(Debug, Parser)]
#[command(name = "ingest-rtmp", version)]
pub(crate) struct Cli {
    /// TCP address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "0.0.0.0:1935")]
    listen: SocketAddr,
    /// The hub's Unix socket [default: $XDG_RUNTIME_DIR/mediaserver/hub.sock, else
    /// /run/user/UID/mediaserver/hub.sock or ~/.local/state/mediaserver/hub.sock].
    #[arg(long)]
    hub: Option<PathBuf>,
    /// Write published streams in the framed format (proto/FORMAT.md) to this file or FIFO,
    /// or `-` for standard output, instead of to a hub; players are refused
    /// [default: none, streams go to the hub].
    #[arg(long, value_name = "PATH|-", value_parser = ingest_link::pipe::Target::parse, conflicts_with = "hub")]
    pub(crate) out: Option<ingest_link::pipe::Target>,
    /// Longest time a client may take to complete the RTMP handshake.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    handshake_timeout: Duration,
    /// Longest time from accepting a connection until it publishes or plays (handshake,
    /// connect and createStream included); slower clients are closed.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    setup_timeout: Duration,
    /// A client that completes no RTMP message for this long is disconnected (bytes that
    /// never make a whole message do not count).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Most client connections at once (lowered to fit the open-file limit, two
    /// descriptors per publisher). When full, a new connection takes the slot of the
    /// oldest one that has not yet published or played; only when all publish or play is
    /// it refused.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Most connections at once from one IP address, with the same eviction of the
    /// oldest that has not yet published or played.
    #[arg(long, default_value_t = 128)]
    max_connections_per_ip: usize,
    /// Most new connections per second from one IP address (a token bucket with one
    /// second of burst); more are closed on accept.
    #[arg(long, default_value_t = 500)]
    max_new_connections_per_ip: u32,
    /// Bytes all connections together may hold in partially received messages and input
    /// buffers; a connection that needs more while the total is over it is closed.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = runtime::size::bytes::<usize>)]
    memory_budget: usize,
    /// Largest RTMP message accepted, in bytes (units allowed: 16MiB, 512KiB).
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = runtime::size::bytes::<u32>)]
    max_message_size: u32,
    /// Most chunk streams a client may use at once.
    #[arg(long, default_value_t = 64)]
    max_chunk_streams: usize,
    /// Chunk size announced to clients and used toward them.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(128..=0x7FFF_FFFF))]
    chunk_size: u32,
    /// Window acknowledgement size and peer bandwidth announced to clients, in bytes
    /// (units allowed: 2500kB).
    #[arg(long, value_name = "BYTES", default_value = "2500000", value_parser = runtime::size::bytes::<u32>)]
    window_ack_size: u32,
    /// Deepest AMF nesting accepted in metadata (commands: at most 8).
    #[arg(long, default_value_t = 32)]
    amf_max_depth: usize,
    /// Bytes of media queued per publisher toward the hub before frames are dropped (a
    /// slow hub), and the bound on the GOP kept to re-announce after a hub restart (units
    /// allowed: 8MiB, 512KiB).
    #[arg(long, value_name = "BYTES", default_value = "8MiB", value_parser = runtime::size::bytes::<usize>)]
    hub_queue_bytes: usize,
    #[command(flatten)]
    hub_replay: ingest_link::link::ReplayFlag,
    /// RTMPS listen address [default: 0.0.0.0:1936 when --tls-cert is given, else no
    /// RTMPS].
    #[arg(long, value_name = "ADDR")]
    tls_listen: Option<SocketAddr>,
    /// RTMPS certificate chain, PEM (leaf first); reloaded on SIGHUP [default: none].
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// RTMPS private key, PEM (PKCS#8, PKCS#1 or SEC1); reloaded on SIGHUP [default: none].
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Runtime worker threads. One thread serves hundreds of publishers (each costs a
    /// fraction of a percent of a core) and wakes no sibling thread per frame, which a
    /// second worker does; raise it when many RTMPS clients connect at once (their TLS
    /// handshakes and decryption then spread over cores).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) threads: u16,
    /// Up to how long a publisher's frames wait in the kernel before they are read and
    /// sent to the hub together (0ms to 200ms). The sockets of all publishers are read on
    /// one shared tick of this period: one wake-up of this process and of the hub serves
    /// every publisher's frames of the period, instead of one each per arriving frame.
    /// A publisher's first frames (up to its first video keyframe) and a burst of 64 KiB
    /// are read at once; 0ms reads every frame as it arrives (the zero-latency mode).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    read_coalesce: Duration,
    /// At shutdown (SIGTERM), first stop accepting, have the hub send every RTMP client
    /// that announced the E-RTMP Reconnect capability `NetConnection.Connect.ReconnectRequest`
    /// (with the hub's --reconnect-tc-url), and wait up to this long for those publishers
    /// to reconnect elsewhere and leave; then end the rest as usual. `0s`: no requests.
    /// Clients reconnecting to the same address need another instance listening there
    /// (--reuse-port); see docs/reconnect.md.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub(crate) reconnect_grace: Duration,
    /// Set SO_REUSEPORT on the RTMP and RTMPS listeners, so that a new instance can listen
    /// on the same address while this one drains (with --reconnect-grace); without it a
    /// second server on the address is refused at start.
    #[arg(long)]
    reuse_port: bool,
    #[command(flatten)]
    pub(crate) auth: auth::AuthArgs,
    #[command(flatten)]
    common: runtime::start::CommonArgs,
}

/// Everything a connection needs to know, shared read-only.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) listen: SocketAddr,
    /// `--reuse-port`.
    pub(crate) reuse_port: bool,
    pub(crate) hub: PathBuf,
    pub(crate) handshake_timeout: Duration,
    pub(crate) setup_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) slots: SlotLimits,
    pub(crate) memory_budget: usize,
    pub(crate) session: SessionConfig,
    pub(crate) hub_queue_bytes: usize,
    /// `--hub-replay`.
    pub(crate) hub_replay: ingest_link::link::Replay,
    /// `--read-coalesce`: the tick publishers' sockets are read on (zero: at once).
    pub(crate) read_coalesce: Duration,
    /// `--out`: streams go to this pipe instead of the hub (set once it is open).
    pub(crate) pipe: Option<ingest_link::pipe::Pipe>,
    /// Counters reported to the hub.
    pub(crate) stats: std::sync::Arc<crate::stats::Stats>,
    /// Who may publish and play.
    pub(crate) auth: auth::Authenticator,
    /// Where auth decisions are reported.
    pub(crate) events: ingest_link::events::Events,
    /// Open publishers that announced the Reconnect capability (the grace waits for them).
    pub(crate) capable: std::sync::Arc<crate::grace::Capable>,
}

impl Cli {
    /// Where RTMPS listens, when it is on.
    pub(crate) fn tls_listen(&self) -> Option<SocketAddr> {
        self.tls_cert.as_ref()?;
        Some(
            self.tls_listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_RTMPS_PORT))),
        )
    }

    /// The per-publisher queue bound actually used (at least 64 KiB).
    pub(crate) fn config_queue_bytes(&self) -> usize {
        self.hub_queue_bytes.max(64 << 10)
    }

    /// The hub socket in use.
    pub(crate) fn hub_path(&self) -> PathBuf {
        self.hub
            .clone()
            .unwrap_or_else(runtime::dir::default_hub_socket)
    }

    /// What is wrong with its own flags beyond their syntax, as (flag, value, why).
    fn own_problems(&self) -> Option<runtime::start::Problem> {
        let positive = [
            ("max-connections", self.max_connections as u64),
            ("max-connections-per-ip", self.max_connections_per_ip as u64),
            (
                "max-new-connections-per-ip",
                u64::from(self.max_new_connections_per_ip),
            ),
            ("memory-budget", self.memory_budget as u64),
            ("max-message-size", u64::from(self.max_message_size)),
            ("max-chunk-streams", self.max_chunk_streams as u64),
            ("window-ack-size", u64::from(self.window_ack_size)),
            ("amf-max-depth", self.amf_max_depth as u64),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Some((flag, "0".into(), "must be more than 0".into()));
        }
        let timeouts = [
            ("handshake-timeout", self.handshake_timeout),
            ("setup-timeout", self.setup_timeout),
            ("idle-timeout", self.idle_timeout),
        ];
        if self.reconnect_grace > MAX_TIMEOUT {
            let value = humantime::format_duration(self.reconnect_grace).to_string();
            return Some(("reconnect-grace", value, "must be at most 1day".into()));
        }
        if let Some((flag, _)) = timeouts.iter().find(|(_, d)| d.is_zero()) {
            return Some((flag, "0s".into(), "must be more than 0".into()));
        }
        if self.tls_listen.is_some() && self.tls_cert.is_none() {
            let v = self.tls_listen.map(|a| a.to_string()).unwrap_or_default();
            return Some((
                "tls-listen",
                v,
                "RTMPS needs --tls-cert and --tls-key".into(),
            ));
        }
        if self.read_coalesce > MAX_READ_COALESCE {
            let value = humantime::format_duration(self.read_coalesce).to_string();
            return Some(("read-coalesce", value, "must be at most 200ms".into()));
        }
        if let Some((flag, d)) = timeouts.iter().find(|(_, d)| *d > MAX_TIMEOUT) {
            let value = humantime::format_duration(*d).to_string();
            return Some((flag, value, "must be at most 1day".into()));
        }
        self.auth.problems()
    }

    /// The configuration, with the connection limit sized to `fd_limit` open files and the
    /// parts built at start: the `--out` pipe, the loaded auth, the event sink and the
    /// counters.
    pub(crate) fn config(
        &self,
        fd_limit: u64,
        pipe: Option<ingest_link::pipe::Pipe>,
        auth: auth::Authenticator,
        events: ingest_link::events::Events,
        stats: std::sync::Arc<crate::stats::Stats>,
    ) -> Config {
        let chunk_limits = ChunkLimits {
            max_message_size: self.max_message_size,
            max_chunk_streams: self.max_chunk_streams,
            // Partial messages may hold at most two maximal messages at once.
            max_buffered_bytes: (self.max_message_size as usize).saturating_mul(2),
            ..ChunkLimits::default()
        };
        let data_limits = AmfLimits {
            max_depth: self.amf_max_depth,
            max_total_bytes: AmfLimits::data()
                .max_total_bytes
                .min(self.max_message_size as usize),
            ..AmfLimits::data()
        };
        let command_limits = AmfLimits {
            max_depth: self.amf_max_depth.min(AmfLimits::command().max_depth),
            ..AmfLimits::command()
        };
        Config {
            listen: self.listen,
            reuse_port: self.reuse_port,
            hub: self.hub_path(),
            handshake_timeout: self.handshake_timeout,
            setup_timeout: self.setup_timeout,
            idle_timeout: self.idle_timeout,
            slots: SlotLimits {
                // A publisher holds its client socket and a link to the hub.
                max: self.max_connections.min(runtime::fds::budget(fd_limit, 2)),
                per_ip: self.max_connections_per_ip,
                new_per_ip_per_sec: self.max_new_connections_per_ip,
            },
            memory_budget: self.memory_budget,
            session: SessionConfig {
                chunk_limits,
                command_limits,
                data_limits,
                chunk_size: self.chunk_size,
                window_ack_size: self.window_ack_size,
                // Requests come from the hub; a pipe has nobody to send them.
                reconnect: pipe.is_none(),
                ..SessionConfig::default()
            },
            hub_queue_bytes: self.config_queue_bytes(),
            hub_replay: self.hub_replay.hub_replay,
            read_coalesce: self.read_coalesce,
            pipe,
            stats,
            auth,
            events,
            capable: Default::default(),
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
