//! The one publish/play decision of ingest-rtmp (RTMP, RTMPS) and the hub's HTTP players:
//! ask, report the decision as an event, and answer the key to use or the refusal to
//! show the client.

use proto::ipc::Event;
use proto::media::{KeyError, StreamKey};

use crate::request::{Action, Denial, Outcome, Request};
use crate::Authenticator;

/// Why a publish or play of a key was refused; its text is the description the client
/// gets (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {key} is not authorized: {reason}", verb(*.action))]
pub struct Refusal {
    /// What was asked.
    pub action: Action,
    /// The key asked for.
    pub key: StreamKey,
    /// Why.
    pub reason: RefusalReason,
}

/// The cause of a [`Refusal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The auth mode denied it.
    #[error("{0}")]
    Denied(Denial),
    /// The callback allowed it under a key that is not a valid stream key.
    #[error("renamed key: {0}")]
    BadRename(KeyError),
}

impl Refusal {
    /// The denial, when the auth mode denied (not for an unusable rename).
    pub fn denial(&self) -> Option<&Denial> {
        match &self.reason {
            RefusalReason::Denied(d) => Some(d),
            RefusalReason::BadRename(_) => None,
        }
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Publish => "publishing",
        Action::Play => "playing",
    }
}

impl Authenticator {
    /// Decides `req` (whose `key` is `key` as text), hands the decision's event to
    /// `report`, and returns the key to use: `key` itself, or the callback's rename.
    pub async fn authorize_key(
        &self,
        key: StreamKey,
        req: &Request,
        report: impl FnOnce(Event),
    ) -> Result<StreamKey, Refusal> {
        let outcome = self.authorize(req).await;
        report(self.event(req, &outcome));
        let refuse = |reason| Refusal {
            action: req.action,
            key: key.clone(),
            reason,
        };
        match outcome {
            Outcome::Allow { key: granted, .. } if granted == req.key => Ok(key),
            // The callback checked the new key's syntax; parse cannot fail, but stays safe.
            Outcome::Allow { key: granted, .. } => {
                StreamKey::parse(&granted).map_err(|e| refuse(RefusalReason::BadRename(e)))
            }
            Outcome::Deny(d) => Err(refuse(RefusalReason::Denied(d))),
        }
    }
}
