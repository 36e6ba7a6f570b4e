//! A neighbour stream: an FFmpeg publisher and player on a live key, started before a test
//! attacks the server, and checked to keep flowing after it. Every hostile-input and
//! resource-limit test proves with it that the damage stayed with the attacker.

use std::time::Duration;

use crate::deadline_in;
use crate::ffmpeg::{self, Codecs, PlayOpts, Player, PublishOpts};
use crate::proc::Proc;
use crate::{Server, ServerOpts};

/// The neighbour's stream name.
pub const NEIGHBOUR: &str = "neighbour";

/// A server with a live neighbour stream. Fields drop in order: the clients go before
/// the server (which holds the serial lock).
pub struct Neighbourhood {
    /// The neighbour's player.
    pub player: Player,
    _publisher: Proc,
    /// The server under attack.
    pub server: Server,
}

impl Neighbourhood {
    /// Starts a server with `opts` and the neighbour stream, and waits until the player
    /// has frames.
    pub fn start(opts: ServerOpts) -> Neighbourhood {
        let server = Server::start(opts);
        let url = server.url(NEIGHBOUR);
        let mut publish = PublishOpts::new(Codecs::H264Aac, Duration::from_secs(120));
        publish.fps = 15;
        publish.gop = 15;
        let publisher = ffmpeg::publish(&url, &publish);
        let player = Player::spawn(&url, &PlayOpts::default());
        assert!(
            player.wait_frames(15, 1, deadline_in(30.0)),
            "neighbour stream never started\n{}",
            server.describe()
        );
        Neighbourhood {
            server,
            player,
            _publisher: publisher,
        }
    }

    /// Asserts that the neighbour player gets another second of video and that both
    /// server processes are still up.
    pub fn assert_flowing(&mut self) {
        let before = self.player.counts().video;
        assert!(
            self.player.wait_frames(before + 15, 0, deadline_in(20.0)),
            "neighbour player stopped receiving (had {before} frames)\n{}",
            self.server.describe()
        );
        self.server.assert_alive();
    }

    /// Stops the neighbour player and asserts that it saw no errors.
    pub fn finish(mut self) {
        let report = self.player.stop();
        assert!(
            report.errors.is_empty(),
            "neighbour player errors: {:#?}",
            report.errors
        );
    }
}
