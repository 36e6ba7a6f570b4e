//! SRT (Secure Reliable Transport) in live mode, sans-IO: the packet codec, the HSv5
//! caller-listener handshake with SYN cookies and key material, the connection's ARQ and
//! TSBPD machinery, and AES-CTR encryption with key rotation.
//!
//! ```text
//!                 dst socket id 0                         dst socket id = ours
//!  datagram --+--> Listener::handle --> Reply (induction)  --+--> Connection::handle_datagram
//!             |                     \-> Request --accept--> Connection + conclusion reply
//!             |                                    \-reject-> rejection reply
//!             +--> Caller::handle_datagram --> Connection (when the listener agrees)
//! ```
//!
//! Nothing here opens a socket, reads a clock or draws randomness by itself: every input
//! carries `now`, outputs are datagrams to send, events and the next timeout, and random
//! bytes come from a [`Random`] the caller provides.

mod caller;
pub mod connection;
pub mod crypto;
mod listener;
pub mod packet;
mod reject;
mod seq;
mod stream_id;

pub use caller::{Caller, CallerOptions, ConnectError};
pub use connection::{CloseReason, Connection, Event, SendError, Stats, MAX_PAYLOAD};
pub use listener::{Accept, ConnectRequest, Listener, ListenerOutput, Rejected};
pub use reject::RejectReason;
pub use seq::{MsgNo, SeqNo};
pub use stream_id::{StreamId, StreamIdError, StreamMode};

use std::time::Duration;

/// A source of random bytes (socket ids, sequence numbers, cookies, keys and salts). The
/// binaries pass the operating system's generator; tests pass a seeded one. `Sync` so
/// that a task holding connections may be spawned on any runtime (it is only used through
/// `&mut`).
pub trait Random: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// A random `u32`.
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_be_bytes(b)
    }
}

/// The version this implementation announces in HSREQ/HSRSP (1.5.1, like the libsrt it was
/// tested against).
pub const SRT_VERSION: u32 = 0x0001_0501;

/// Connection parameters; the defaults are libsrt's for live mode.
#[derive(Clone, Debug)]
pub struct Config {
    /// TSBPD latency this side asks for (the larger of both sides' wins). Default 120 ms.
    pub latency: Duration,
    /// Close when nothing arrives for this long. Default 5 s.
    pub peer_idle_timeout: Duration,
    /// Flow window, packets in flight. Default 25600.
    pub flow_window: u32,
    /// Receive buffer, packets. Default 8192.
    pub recv_buffer: u32,
    /// Send buffer, packets. Default 8192.
    pub send_buffer: u32,
    /// MTU announced in the handshake. Default 1500.
    pub mtu: u32,
    /// Drop packets that can no longer be delivered in time. Default on.
    pub too_late_drop: bool,
    /// Sender: packets per key before switching to the other key. Default 2^24.
    pub km_refresh_rate: u32,
    /// Sender: packets before and after a switch during which both keys are announced.
    /// Default 2^16.
    pub km_preannounce: u32,
    /// Caller: give up connecting after this long. Default 3 s.
    pub connect_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            latency: Duration::from_millis(120),
            peer_idle_timeout: Duration::from_secs(5),
            flow_window: 25600,
            recv_buffer: 8192,
            send_buffer: 8192,
            mtu: 1500,
            too_late_drop: true,
            km_refresh_rate: crypto::TxKeys::DEFAULT_REFRESH_RATE,
            km_preannounce: crypto::TxKeys::DEFAULT_PREANNOUNCE,
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// The SRT flags this implementation sets in HSREQ/HSRSP: TSBPD both ways, crypt,
/// too-late drop, periodic NAK, rexmit flag (message mode).
pub(crate) const OUR_FLAGS: u32 = packet::SrtFlags::TSBPD_SND
    | packet::SrtFlags::TSBPD_RCV
    | packet::SrtFlags::CRYPT
    | packet::SrtFlags::TLPKTDROP
    | packet::SrtFlags::PERIODIC_NAK
    | packet::SrtFlags::REXMIT;
