//! Players that another process serves through a subscription (ingest-srt's SRT players,
//! `m=request`): the subscription's `Header::Player` (FORMAT.md section 3) makes the hub
//! count it as a player of its key, waiting for a publisher or not, exactly as long as the
//! connection lives: `players` events (the relayer's pull mode), `/api/v1/streams` and
//! `/api/v1/connections`, and `mediaserver_players{protocol="srt"}`.
//!
//! The serving process keeps its own timeouts (ingest-srt's `--play-wait`) and sends the
//! `play`/`stop` events itself; the hub only attaches and lists the player here, and
//! detaches it when the [`ServedPlayer`] is dropped, however the connection ended.

use std::sync::Arc;

use proto::ipc::PlayerProtocol;
use proto::media::StreamKey;
use telemetry::GaugeGuard;

use crate::conns::{ConnGuard, ConnKind};
use crate::registry::{AttachError, HeldPlayer, Registry};
use crate::stats::Protocol;

/// Who a subscription serves, from its `Header::Player`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerOf {
    /// The key it plays, as sent.
    pub key: String,
    /// How the player reached the serving process.
    pub protocol: PlayerProtocol,
    /// The serving process's id of the player's client connection.
    pub conn_id: u64,
    /// The player's address.
    pub remote: String,
}

/// Why a served player was not attached; the hub answers `Error` and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServedError {
    /// The key is not `app/name`.
    #[error("player of an invalid stream key {key:?}: {reason}")]
    InvalidKey {
        /// The key as sent.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A player or stream limit.
    #[error("player refused: {0}")]
    Attach(#[from] AttachError),
}

/// A served player attached to its key and listed as a player; dropping it detaches it
/// (a `players` event) and unlists it.
#[derive(Debug)]
pub struct ServedPlayer {
    /// Its entry in the API's connection list, which a kick wakes.
    pub listed: ConnGuard,
    protocol: Protocol,
    // Field order is drop order: unlisted and uncounted before the detach's event.
    _connected: GaugeGuard,
    _held: HeldPlayer,
}

impl ServedPlayer {
    /// Attaches `player` to its key (creating the stream, not live, when nobody
    /// publishes it yet) and lists it.
    pub fn attach(registry: &Arc<Registry>, player: &PlayerOf) -> Result<Self, ServedError> {
        let key = StreamKey::parse(&player.key).map_err(|e| ServedError::InvalidKey {
            key: player.key.clone(),
            reason: e.to_string(),
        })?;
        let held = registry.hold_player(&key)?;
        let protocol = Protocol::of_player(player.protocol);
        let stats = registry.stats().players(protocol);
        stats.started.inc();
        let listed = registry.conns().register(
            player.conn_id,
            ConnKind::Player,
            protocol.as_str(),
            &player.remote,
            key.as_str(),
        );
        Ok(ServedPlayer {
            listed,
            protocol,
            _connected: stats.connected.track(),
            _held: held,
        })
    }

    /// Counts a kick through the API (the caller then closes the connection).
    pub fn kicked(&self, registry: &Registry) {
        registry.stats().players(self.protocol).kicked.inc();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;

    fn player(key: &str, conn_id: u64) -> PlayerOf {
        PlayerOf {
            key: key.into(),
            protocol: PlayerProtocol::Srt,
            conn_id,
            remote: "10.0.0.2:9000".into(),
        }
    }

    /// `(count, live)` of every `players` event received so far.
    pub(crate) fn players_events(
        rx: &mut tokio::sync::broadcast::Receiver<Arc<proto::ipc::Event>>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if e.kind == "players" {
                let f = |n: &str| {
                    e.fields
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                out.push((f("count"), f("live")));
            }
        }
        out
    }

    #[test]
    fn attached_while_held_listed_as_srt_and_detached_once() {
        let reg = Arc::new(Registry::new(Arc::new(Config::for_tests())));
        let mut rx = reg.events();
        let key = StreamKey::parse("live/a").unwrap();
        let a = ServedPlayer::attach(&reg, &player("live/a", 7)).unwrap();
        let b = ServedPlayer::attach(&reg, &player("live/a", 8)).unwrap();
        // Waiting for a publisher: the stream exists, not live, with both players.
        let stream = reg.stream(&key).expect("a waited-for stream");
        assert_eq!(stream.lock().players, 2);
        assert!(!stream.lock().is_live());
        let listed = reg.conns().list();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|c| c.kind == ConnKind::Player
            && c.protocol == "srt"
            && c.key == "live/a"
            && c.remote == "10.0.0.2:9000"));
        let srt = reg.stats().players(Protocol::Srt);
        assert_eq!(srt.connected.get(), 2);
        assert_eq!(srt.started.get(), 2);
        let rtmp = reg.stats().players(Protocol::Rtmp);
        assert_eq!(rtmp.connected.get(), 0);
        drop(a);
        assert_eq!(stream.lock().players, 1);
        assert_eq!(reg.conns().list().len(), 1);
        assert_eq!(reg.conns().list()[0].conn_id, 8);
        drop(b);
        assert_eq!(srt.connected.get(), 0);
        assert!(reg.conns().list().is_empty());
        assert!(reg.stream(&key).is_none(), "nobody publishes or plays it");
        assert!(stream.lock().closed);
        assert_eq!(
            players_events(&mut rx),
            [
                ("1", "false"),
                ("2", "false"),
                ("1", "false"),
                ("0", "false")
            ]
            .map(|(c, l)| (c.to_owned(), l.to_owned()))
        );
    }

    #[test]
    fn refused_at_the_limits_and_for_a_bad_key_without_counting() {
        let mut cfg = Config::for_tests();
        cfg.max_players = 1;
        let reg = Arc::new(Registry::new(Arc::new(cfg)));
        let _a = ServedPlayer::attach(&reg, &player("live/a", 1)).unwrap();
        assert_eq!(
            ServedPlayer::attach(&reg, &player("live/a", 2)).err(),
            Some(ServedError::Attach(AttachError::TooManyPlayers { max: 1 }))
        );
        assert!(matches!(
            ServedPlayer::attach(&reg, &player("no-slash", 3)),
            Err(ServedError::InvalidKey { .. })
        ));
        assert_eq!(reg.conns().list().len(), 1);
        assert_eq!(reg.stats().players(Protocol::Srt).connected.get(), 1);
        assert_eq!(reg.stats().players(Protocol::Srt).started.get(), 1);
    }
}
