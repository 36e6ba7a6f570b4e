//! Operator requests to the hub over a `Control` connection (FORMAT.md section 4): the
//! supervisor's SIGUSR1 and ingest-rtmp's graceful shutdown ask the hub's RTMP clients to
//! reconnect, and read the hub's answer.

use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use proto::ipc::{self, Event, FrameDecoder, Header, Role, FORMAT_VERSION};
use tokio::io::AsyncReadExt;

use crate::hub_conn::{open, OpenError};

/// How long the hub may take to answer a request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the hub at `hub` to send a reconnect request to the RTMP clients of `key`
/// (every client when `None`) that announced the capability; `tc_url` `None` leaves the
/// hub's `--reconnect-tc-url`. `component` names the caller (`supervisor`). Returns the
/// hub's answer, a `reconnect_request` event with the counts.
pub async fn request_reconnect(
    hub: &Path,
    component: &str,
    key: Option<&str>,
    description: Option<&str>,
) -> Result<Event, OpenError> {
    let mut opening = BytesMut::new();
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role: Role::Control,
            name: format!("{component}/{}", std::process::id()),
        },
        &[],
        &mut opening,
    );
    ipc::encode(
        &Header::Reconnect {
            stream: 0,
            key: key.map(str::to_owned),
            tc_url: None,
            description: description.map(str::to_owned),
        },
        &[],
        &mut opening,
    );
    let exchange = async {
        let mut conn = open(hub, &opening).await?;
        let decoder = FrameDecoder::default();
        loop {
            if let Some(msg) = decoder.decode(&mut conn.buf)? {
                match msg.header {
                    Header::Event(e) => return Ok(e),
                    Header::Error { message } => return Err(OpenError::Hub(message)),
                    _ => continue,
                }
            }
            if conn.sock.read_buf(&mut conn.buf).await? == 0 {
                return Err(OpenError::Closed);
            }
        }
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
        Ok(r) => r,
        Err(_) => Err(OpenError::Io(std::io::ErrorKind::TimedOut.into())),
    }
}

/// The counts of a `reconnect_request` answer, for a log line:
/// `players=1 skipped_players=0 publishers=2`.
pub fn summary(answer: &Event) -> String {
    answer
        .fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
