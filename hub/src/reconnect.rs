//! Reconnect requests (Enhanced RTMP `NetConnection.Connect.ReconnectRequest`): an
//! operator asks, for one stream or for every one, through a `Control` peer on hub.sock
//! (the supervisor's SIGUSR1, ingest-rtmp's graceful shutdown) or the HTTP API. The order
//! goes out on one broadcast channel; each RTMP player's task sends the request if its
//! client announced the capability, and each publisher connection's task passes a
//! `Reconnect` message to its ingest, which asks the publishing client.
//!
//! ```text
//!  Control peer / API --> Registry::request_reconnect --broadcast--> player tasks --> RTMP players
//!                                                               \--> publisher tasks --Reconnect--> ingest-rtmp
//! ```

use std::sync::Arc;

use proto::media::StreamKey;
use tokio::sync::broadcast;

use crate::conns::{ConnInfo, ConnKind};

/// Orders kept for tasks that are busy when one is sent; more are rare (an operator's
/// commands), and a task that missed some takes the latest ones.
const ORDER_BACKLOG: usize = 16;

/// The description sent when the requester gives none.
pub const DEFAULT_DESCRIPTION: &str = "The server asks clients to reconnect.";

/// One reconnect request, as every task that may act on it sees it.
#[derive(Debug)]
pub struct Order {
    /// The stream whose clients are asked; `None`: every stream.
    pub key: Option<StreamKey>,
    /// Where the clients are to reconnect (`tcUrl`); `None`: where they are.
    pub tc_url: Option<String>,
    /// Why, for people.
    pub description: String,
}

impl Order {
    /// Whether clients of `key` are asked.
    pub fn applies_to(&self, key: &str) -> bool {
        self.key.as_ref().is_none_or(|k| k.as_str() == key)
    }
}

/// Who an order reached, counted when it was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requested {
    /// RTMP players that announced the capability: each is sent the request.
    pub players: usize,
    /// RTMP players of the key that did not announce it: left alone.
    pub skipped_players: usize,
    /// Publisher streams whose ingest is told (it asks its client if it can).
    pub publishers: usize,
}

impl Requested {
    /// Counts who `order` reaches among the listed connections.
    pub fn count(order: &Order, conns: &[ConnInfo]) -> Requested {
        let mut r = Requested::default();
        for c in conns.iter().filter(|c| order.applies_to(&c.key)) {
            match c.kind {
                ConnKind::Player if c.protocol == "rtmp" && c.reconnect => r.players += 1,
                ConnKind::Player if c.protocol == "rtmp" => r.skipped_players += 1,
                ConnKind::Publisher => r.publishers += 1,
                _ => {}
            }
        }
        r
    }
}

/// The channel the orders travel on.
#[derive(Debug)]
pub struct Orders {
    tx: broadcast::Sender<Arc<Order>>,
}

impl Default for Orders {
    fn default() -> Self {
        Orders {
            tx: broadcast::channel(ORDER_BACKLOG).0,
        }
    }
}

impl Orders {
    /// A receiver of every order sent from now on.
    pub fn subscribe(&self) -> Receiver {
        Receiver {
            rx: self.tx.subscribe(),
        }
    }

    /// Sends `order` to every task listening.
    pub fn send(&self, order: Order) {
        // No receiver (no client at all) is fine.
        let _ = self.tx.send(Arc::new(order));
    }
}

/// One task's end of the channel.
#[derive(Debug)]
pub struct Receiver {
    rx: broadcast::Receiver<Arc<Order>>,
}

impl Receiver {
    /// The next order; pending forever once the channel is gone.
    pub async fn next(&mut self) -> Arc<Order> {
        loop {
            match self.rx.recv().await {
                Ok(order) => return order,
                // The oldest were overwritten; the next ones are still there.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn conn(kind: ConnKind, protocol: &str, key: &str, reconnect: bool) -> ConnInfo {
        ConnInfo {
            id: 1,
            conn_id: 1,
            kind,
            protocol: protocol.into(),
            remote: String::new(),
            key: key.into(),
            since: SystemTime::UNIX_EPOCH,
            reconnect,
        }
    }

    #[test]
    fn counts_who_an_order_reaches() {
        let conns = [
            conn(ConnKind::Player, "rtmp", "live/a", true),
            conn(ConnKind::Player, "rtmp", "live/a", false),
            conn(ConnKind::Player, "http-flv", "live/a", false),
            conn(ConnKind::Player, "rtmp", "live/b", true),
            conn(ConnKind::Publisher, "ingest-rtmp/1", "live/a", false),
            conn(ConnKind::Subscriber, "recorder/2", "", false),
        ];
        let one = Order {
            key: Some(StreamKey::parse("live/a").unwrap()),
            tc_url: None,
            description: DEFAULT_DESCRIPTION.into(),
        };
        let want = Requested {
            players: 1,
            skipped_players: 1,
            publishers: 1,
        };
        assert_eq!(Requested::count(&one, &conns), want);
        let all = Order { key: None, ..one };
        assert_eq!(Requested::count(&all, &conns).players, 2);
        assert!(all.applies_to("x/y"));
    }

    #[tokio::test]
    async fn every_receiver_gets_every_order() {
        let orders = Orders::default();
        let (mut a, mut b) = (orders.subscribe(), orders.subscribe());
        orders.send(Order {
            key: None,
            tc_url: Some("rtmp://h/live".into()),
            description: "x".into(),
        });
        assert_eq!(a.next().await.tc_url.as_deref(), Some("rtmp://h/live"));
        assert_eq!(b.next().await.description, "x");
    }
}
