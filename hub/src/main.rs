//! `hub`: the stream registry and router (the library is `hub`, see `lib.rs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use hub::config::{Config, OnDuplicate, MAX_WRITE_COALESCE};
use hub::{http, registry, server};

/// Stream registry and router of the media server: takes streams from publishers over a
/// Unix socket, serves RTMP players handed over by ingest-rtmp, and feeds subscribers.
#[derive(Debug, Parser)]
#[command(name = "hub", version)]
struct Cli {
    /// Unix socket to listen on [default: $XDG_RUNTIME_DIR/mediaserver/hub.sock, else
    /// /run/user/UID/mediaserver/hub.sock, else ~/.local/state/mediaserver/hub.sock]. Its
    /// directory must be ours: it is created 0700 (0710 with --socket-group), tightened if
    /// open to others, and refused if another user owns it.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// A group (name or gid) whose members may also use the socket: its directory becomes
    /// 0710 and the socket 0660, both of that group, and connections from other users are
    /// refused [default: none: only this process's own uid may connect].
    #[arg(long, value_name = "GROUP")]
    socket_group: Option<String>,
    /// What a second publisher of a live key does: take it over (players stay), or be
    /// rejected.
    #[arg(long, value_enum, default_value = "takeover")]
    on_duplicate: OnDuplicate,
    /// Largest GOP cache per stream, in bytes (units allowed: 16MiB, 512KiB).
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = runtime::size::bytes::<usize>)]
    gop_cache_bytes: usize,
    /// Longest GOP cache per stream (from the last video keyframe).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    gop_cache_duration: Duration,
    /// How far behind the live edge a player may be, in bytes, before it skips to the
    /// newest keyframe: what it has not taken from the stream plus everything queued for
    /// it (media, control replies, status) counts. More than this queued for it alone
    /// (replies to requests it sends without reading) closes it (units allowed: 4MiB,
    /// 512KiB). A bound, not a reservation: a stream keeps entries only back to its
    /// slowest reader.
    #[arg(long, value_name = "BYTES", default_value = "4MiB", value_parser = runtime::size::bytes::<usize>)]
    player_queue_bytes: usize,
    /// Lag skips within 30 s before a slow player is disconnected.
    #[arg(long, default_value_t = 3)]
    max_lag_skips: u32,
    /// A player whose socket accepts no bytes for this long (it stopped reading without
    /// closing) is disconnected; lag skips only help players that still read.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    player_write_timeout: Duration,
    /// A subscriber (recorder, relayer, hookd, custom consumer) whose socket accepts no
    /// bytes for this long (it stopped reading without closing) is disconnected, so that
    /// it holds no memory or task; it reconnects and re-subscribes.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    subscriber_write_timeout: Duration,
    /// A player that sends nothing for this long is sent a ping (which every RTMP client
    /// answers); 0s never pings.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    player_ping_interval: Duration,
    /// A pinged player that still sends nothing for this long is closed as idle.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    player_ping_timeout: Duration,
    /// How long a player of a key that is not live waits for its publisher.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    publisher_wait: Duration,
    /// How long players stay after their publisher left.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    unpublish_timeout: Duration,
    /// RTMP chunk size the hub writes to players.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(128..=0x7FFF_FFFF))]
    chunk_size: u32,
    /// Up to how long a caught-up player's frames are held so that they go out together in
    /// one vectored write (fewer system calls per delivered byte); 0ms to 200ms. A
    /// keyframe, and everything in a player's first window, is written at once; 0ms writes
    /// every frame as it arrives (the zero-latency mode).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    write_coalesce: Duration,
    /// Most streams at once.
    #[arg(long, default_value_t = 10_000)]
    max_streams: usize,
    /// Most players at once (all streams together), lowered to fit the open-file limit
    /// (one descriptor each); players over it are refused.
    #[arg(long, default_value_t = 100_000)]
    max_players: usize,
    /// HTTP listener for metrics (/metrics, /debug/vars), the API, HTTP-FLV,
    /// WebSocket-FLV and HLS players and the status page; `off` disables it.
    /// `127.0.0.1:0` picks a free port (logged as `listening on http://IP:PORT`).
    #[arg(long, value_name = "ADDR|off", default_value = "0.0.0.0:8080", value_parser = parse_http)]
    http: HttpListen,
    /// Most HTTP connections at once (players included); more are closed at once.
    #[arg(long, default_value_t = 4096)]
    http_max_connections: usize,
    /// Time a client has to send a request's head, and the longest idle time of a
    /// keep-alive connection between requests.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    http_header_timeout: Duration,
    /// HLS segments are cut at the first video keyframe at least this long after the
    /// segment's start (audio-only streams: the first frame).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    hls_segment_duration: Duration,
    /// HLS segments kept in memory and listed in the playlist, per stream.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(2..=100))]
    hls_segment_count: u64,
    /// Most streams played over HLS at once (each has a segmenter, started by its first
    /// playlist request); 0 turns HLS off.
    #[arg(long, default_value_t = 1000)]
    hls_max_streams: usize,
    /// Bearer token for the API's mutating calls (kicks); without one they are refused.
    /// Also read from MEDIASERVER_API_TOKEN, which keeps it out of the process list.
    /// [default: none]
    #[arg(long, env = "MEDIASERVER_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Read-only API calls, /metrics and /debug/vars need the token too (the status
    /// page then asks for it).
    #[arg(long)]
    api_protect_reads: bool,
    /// Where clients asked to reconnect (E-RTMP `NetConnection.Connect.ReconnectRequest`:
    /// SIGUSR1 to the supervisor, the API, ingest-rtmp's --reconnect-grace) are told to
    /// go: the request's `tcUrl`, an `rtmp://` or `rtmps://` URL up to the app
    /// (`rtmp://new-host:1935/live`) [default: none: they reconnect to the URL they used].
    #[arg(long, value_name = "URL")]
    reconnect_tc_url: Option<String>,
    /// Who may play over HTTP (HTTP-FLV): `--play-auth` and the flags of its mode, as for
    /// ingest-rtmp (README "Auth"). Publish auth is the ingests' and is refused here.
    #[command(flatten, next_help_heading = "Auth of HTTP players")]
    auth: auth::AuthArgs,
    #[command(flatten)]
    common: runtime::start::CommonArgs,
}

/// Where the HTTP listener binds, if anywhere.
#[derive(Debug, Clone, Copy)]
enum HttpListen {
    Off,
    At(std::net::SocketAddr),
}

fn parse_http(v: &str) -> Result<HttpListen, String> {
    if v == "off" {
        return Ok(HttpListen::Off);
    }
    v.parse()
        .map(HttpListen::At)
        .map_err(|e| format!("{e} (expected IP:PORT or off)"))
}

/// Longest path a Unix socket address holds (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

impl runtime::start::Command for Cli {
    fn common(&self) -> &runtime::start::CommonArgs {
        &self.common
    }

    fn problems(&self) -> Option<runtime::start::Problem> {
        let socket = self
            .socket
            .clone()
            .unwrap_or_else(runtime::dir::default_hub_socket);
        let len = socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            let why = format!("{len} bytes; a Unix socket path holds at most {MAX_SOCKET_PATH}");
            return Some(("socket", socket.display().to_string(), why));
        }
        if self.gop_cache_bytes == 0 || self.player_queue_bytes == 0 {
            let (flag, v) = if self.gop_cache_bytes == 0 {
                ("gop-cache-bytes", self.gop_cache_bytes)
            } else {
                ("player-queue-bytes", self.player_queue_bytes)
            };
            return Some((flag, v.to_string(), "must be more than 0".into()));
        }
        if self
            .api_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty() || t.len() > 4096)
        {
            return Some((
                "api-token",
                "(hidden)".into(),
                "must be 1 to 4096 bytes, not blank".into(),
            ));
        }
        if self.api_protect_reads && self.api_token.is_none() {
            return Some((
                "api-protect-reads",
                "true".into(),
                "needs --api-token (or MEDIASERVER_API_TOKEN)".into(),
            ));
        }
        if self.http_max_connections == 0 || self.http_header_timeout.is_zero() {
            let (flag, v) = if self.http_max_connections == 0 {
                ("http-max-connections", "0".to_string())
            } else {
                ("http-header-timeout", "0s".to_string())
            };
            return Some((flag, v, "must be more than 0".into()));
        }
        if self.write_coalesce > MAX_WRITE_COALESCE {
            return Some((
                "write-coalesce",
                humantime::format_duration(self.write_coalesce).to_string(),
                format!(
                    "must be at most {}",
                    humantime::format_duration(MAX_WRITE_COALESCE)
                ),
            ));
        }
        if let Some(url) = &self.reconnect_tc_url {
            if let Err(why) = check_tc_url(url) {
                return Some(("reconnect-tc-url", url.clone(), why));
            }
        }
        if let Some(problem) = self.auth.problems() {
            return Some(problem);
        }
        if self.auth.publish_auth != auth::Mode::None || !self.auth.publish_token.is_empty() {
            return Some((
                "publish-auth",
                self.auth.publish_auth.as_str().into(),
                "the hub authorizes HTTP players only (--play-auth); publish auth is set on \
                 ingest-rtmp and ingest-srt"
                    .into(),
            ));
        }
        runtime::start::zero_duration(&[
            ("player-write-timeout", self.player_write_timeout),
            ("subscriber-write-timeout", self.subscriber_write_timeout),
        ])
    }
}

/// Whether `url` can be a reconnect request's `tcUrl`: `rtmp[s]://HOST[:PORT]/APP`.
fn check_tc_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("rtmp://")
        .or_else(|| url.strip_prefix("rtmps://"))
        .ok_or("must start with rtmp:// or rtmps://")?;
    let (host, app) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() || app.trim_matches('/').is_empty() {
        return Err("must name a host and an app: rtmp://HOST[:PORT]/APP".into());
    }
    if url.len() > 1024 || url.chars().any(char::is_control) {
        return Err("must be at most 1024 characters, without control characters".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    runtime::exit_code!(run(&runtime::start::parse()))
}

/// Why a run ended in error: which exit status it gets.
type Failure = runtime::exit::Failure<anyhow::Error>;

fn run(cli: &Cli) -> Result<(), Failure> {
    // A player or a producer link is one descriptor each.
    let fd_budget = runtime::fds::budget(runtime::fds::limit(), 1);
    let cfg = Arc::new(Config {
        socket_group: match &cli.socket_group {
            Some(g) => Some(hub::peer::resolve_group(g).map_err(|why| {
                Failure::CannotStart(anyhow::anyhow!("--socket-group {g}: {why}"))
            })?),
            None => None,
        },
        socket: cli
            .socket
            .clone()
            .unwrap_or_else(runtime::dir::default_hub_socket),
        on_duplicate: cli.on_duplicate,
        gop_cache_bytes: cli.gop_cache_bytes,
        gop_cache_duration: cli.gop_cache_duration,
        player_queue_bytes: cli.player_queue_bytes,
        max_lag_skips: cli.max_lag_skips,
        player_write_timeout: cli.player_write_timeout,
        subscriber_write_timeout: cli.subscriber_write_timeout,
        player_ping_interval: (!cli.player_ping_interval.is_zero())
            .then_some(cli.player_ping_interval),
        player_ping_timeout: cli.player_ping_timeout,
        publisher_wait: cli.publisher_wait,
        unpublish_timeout: cli.unpublish_timeout,
        chunk_size: cli.chunk_size,
        write_coalesce: cli.write_coalesce,
        max_streams: cli.max_streams,
        max_players: cli.max_players.min(fd_budget),
        reconnect_tc_url: cli.reconnect_tc_url.clone(),
    });
    runtime::start::block_on(runtime::start::Threads::PerCore, async move {
        // HTTP first: a taken port fails the start before the hub socket (the readiness
        // signal) exists.
        let http_listener = match cli.http {
            HttpListen::At(addr) => {
                let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                        "; stop what uses it, or choose another --http (off disables it)"
                    } else {
                        ""
                    };
                    Failure::CannotStart(anyhow::anyhow!("cannot serve http://{addr}: {e}{hint}"))
                })?;
                let local = l
                    .local_addr()
                    .context("HTTP local address")
                    .map_err(Failure::Failed)?;
                tracing::info!("listening on http://{local}");
                Some((l, local))
            }
            HttpListen::Off => None,
        };
        let listener = server::bind(&cfg.socket, cfg.socket_group).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                "; stop that hub or choose another --socket"
            } else {
                ""
            };
            Failure::CannotStart(anyhow::anyhow!(
                "cannot serve unix:{}: {e}{hint}",
                cfg.socket.display()
            ))
        })?;
        tracing::info!("listening on unix:{}", cfg.socket.display());
        let registry = Arc::new(registry::Registry::new(cfg.clone()));
        let play_auth = match cli.auth.play_auth {
            auth::Mode::None => None,
            _ => {
                let a = auth::Authenticator::load(&cli.auth).await.map_err(|e| {
                    Failure::CannotStart(anyhow::anyhow!("auth configuration: {e}"))
                })?;
                a.log_summary();
                Some(a)
            }
        };
        let _refresh = play_auth.as_ref().and_then(|a| a.spawn_refresh());
        // Without play auth there is nothing to reload, but SIGHUP (which the supervisor
        // forwards) must not end the hub either.
        let auth = play_auth.clone();
        runtime::signal::on_hangup(move || {
            let auth = auth.clone();
            async move {
                match auth {
                    Some(auth) => auth.reload().await,
                    None => tracing::info!("SIGHUP: nothing to reload (no play auth)"),
                }
            }
        });
        let http_server = async {
            match http_listener {
                Some((l, listen)) => {
                    let http_cfg = http::HttpConfig {
                        listen,
                        token: cli.api_token.clone(),
                        protect_reads: cli.api_protect_reads,
                        max_connections: cli.http_max_connections,
                        header_timeout: cli.http_header_timeout,
                        play_auth,
                        hls: http::HlsConfig {
                            segment_duration: cli.hls_segment_duration,
                            segment_count: cli.hls_segment_count as usize,
                            max_streams: cli.hls_max_streams,
                        },
                    };
                    http::serve(l, registry.clone(), http_cfg).await
                }
                None => std::future::pending().await,
            }
        };
        let socket = cfg.socket.clone();
        let result = tokio::select! {
            r = server::serve(listener, registry.clone()) => {
                r.context("accepting connections").map_err(Failure::Failed)
            }
            r = http_server => r.context("accepting HTTP connections").map_err(Failure::Failed),
            signal = runtime::signal::shutdown() => {
                tracing::info!(%signal, "shutting down");
                Ok(())
            }
        };
        let _ = std::fs::remove_file(&socket);
        result
    })
}
