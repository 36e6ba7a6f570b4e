//! Orderly shutdown. On SIGTERM the listener stops, every connection is told to stop
//! (publishers end their stream as an unpublish with `EndOfStream` and get
//! `NetStream.Unpublish.Success`; every connected client gets
//! `NetConnection.Connect.Closed`), and the process waits, within a bound, until every
//! connection and every hub link or pipe writer holding a [`Token`] has finished writing.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// The owner side: asks everyone to stop and waits for them.
#[derive(Debug)]
pub(crate) struct Drain {
    stop: watch::Sender<bool>,
    done: mpsc::Receiver<()>,
    token: Token,
}

/// Held by each task that must finish before the process exits; dropping it says done.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Drain {
    pub(crate) fn new() -> Drain {
        let (stop, stop_rx) = watch::channel(false);
        let (alive, done) = mpsc::channel(1);
        Drain {
            stop,
            done,
            token: Token {
                stop: stop_rx,
                _alive: alive,
            },
        }
    }

    /// A token for one more task.
    pub(crate) fn token(&self) -> Token {
        self.token.clone()
    }

    /// Asks every token holder to stop and waits until all tokens are dropped or `grace`
    /// passed; false when some were still running.
    pub(crate) async fn finish(self, grace: Duration) -> bool {
        let Drain {
            stop,
            mut done,
            token,
        } = self;
        let _ = stop.send(true);
        drop(token);
        // recv() returns None once every sender (token) is gone.
        tokio::time::timeout(grace, done.recv()).await.is_ok()
    }
}

impl Token {
    /// Resolves once a stop was asked for (at once if it already was).
    pub(crate) async fn stopping(&mut self) {
        if self.stop.wait_for(|s| *s).await.is_err() {
            // The owner is gone without asking: never.
            std::future::pending::<()>().await;
        }
    }
}
