//! Rejection reasons: the handshake type a listener answers with when it refuses a caller.
//!
//! On the wire the code is the API value plus 1000 (rejection-codes.md): `BADSECRET` (10) is
//! sent as 1010 and the access-control `FORBIDDEN` (1403) as 2403.

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// 0: unknown.
    Unknown,
    /// 1: a system call failed.
    System,
    /// 2: the peer refused without details.
    Peer,
    /// 3: out of resources (connection limit).
    Resource,
    /// 4: the data could not be interpreted.
    Rogue,
    /// 5: listener backlog exceeded.
    Backlog,
    /// 6: internal program error.
    Ipe,
    /// 7: the listener is closing.
    Close,
    /// 8: the peer's version is too old (HSv4).
    Version,
    /// 9: rendezvous cookie collision.
    RdvCookie,
    /// 10: passphrases differ.
    BadSecret,
    /// 11: only one side has a passphrase.
    Unsecure,
    /// 12: message API flags differ.
    MessageApi,
    /// 13: congestion controllers differ.
    Congestion,
    /// 14: packet filters differ.
    Filter,
    /// 15: group settings differ.
    Group,
    /// 16: timed out.
    Timeout,
    /// 17: unsupported or mismatching encryption mode.
    Crypto,
    /// 1000-2999: an access-control (1000-1999, HTTP-like, e.g. 1403) or application code.
    Access(u16),
}

impl RejectReason {
    /// Access control: general syntax error (1400).
    pub const BAD_REQUEST: Self = RejectReason::Access(1400);
    /// Access control: unauthorized (1401).
    pub const UNAUTHORIZED: Self = RejectReason::Access(1401);
    /// Access control: overload (1402).
    pub const OVERLOAD: Self = RejectReason::Access(1402);
    /// Access control: forbidden (1403).
    pub const FORBIDDEN: Self = RejectReason::Access(1403);
    /// Access control: resource not found (1404).
    pub const NOT_FOUND: Self = RejectReason::Access(1404);
    /// Access control: the `m=` mode is not supported (1405).
    pub const BAD_MODE: Self = RejectReason::Access(1405);
    /// Access control: parameters unacceptable (1406).
    pub const UNACCEPTABLE: Self = RejectReason::Access(1406);
    /// Access control: resource locked for modification, e.g. already published (1409).
    pub const CONFLICT: Self = RejectReason::Access(1409);
    /// Access control: internal server error (1500).
    pub const ISE: Self = RejectReason::Access(1500);
    /// Access control: not implemented (1501).
    pub const UNIMPLEMENTED: Self = RejectReason::Access(1501);

    const TABLE: [RejectReason; 18] = [
        RejectReason::Unknown,
        RejectReason::System,
        RejectReason::Peer,
        RejectReason::Resource,
        RejectReason::Rogue,
        RejectReason::Backlog,
        RejectReason::Ipe,
        RejectReason::Close,
        RejectReason::Version,
        RejectReason::RdvCookie,
        RejectReason::BadSecret,
        RejectReason::Unsecure,
        RejectReason::MessageApi,
        RejectReason::Congestion,
        RejectReason::Filter,
        RejectReason::Group,
        RejectReason::Timeout,
        RejectReason::Crypto,
    ];

    /// The API code (0-17, or 1000-2999).
    pub fn code(self) -> u32 {
        match self {
            RejectReason::Access(c) => u32::from(c),
            other => Self::TABLE.iter().position(|r| *r == other).unwrap_or(0) as u32,
        }
    }

    /// The handshake type value carrying this reason.
    pub fn wire(self) -> u32 {
        self.code() + 1000
    }

    /// The reason from a handshake type value (1000 and above).
    pub fn from_wire(v: u32) -> Self {
        let code = v.saturating_sub(1000);
        match code {
            0..=17 => Self::TABLE[code as usize],
            1000..=2999 => RejectReason::Access(code as u16),
            _ => RejectReason::Unknown,
        }
    }

    /// libsrt's name for the code.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::Unknown => "UNKNOWN",
            RejectReason::System => "SYSTEM",
            RejectReason::Peer => "PEER",
            RejectReason::Resource => "RESOURCE",
            RejectReason::Rogue => "ROGUE",
            RejectReason::Backlog => "BACKLOG",
            RejectReason::Ipe => "IPE",
            RejectReason::Close => "CLOSE",
            RejectReason::Version => "VERSION",
            RejectReason::RdvCookie => "RDVCOOKIE",
            RejectReason::BadSecret => "BADSECRET",
            RejectReason::Unsecure => "UNSECURE",
            RejectReason::MessageApi => "MESSAGEAPI",
            RejectReason::Congestion => "CONGESTION",
            RejectReason::Filter => "FILTER",
            RejectReason::Group => "GROUP",
            RejectReason::Timeout => "TIMEOUT",
            RejectReason::Crypto => "CRYPTO",
            RejectReason::Access(1400) => "BAD_REQUEST",
            RejectReason::Access(1401) => "UNAUTHORIZED",
            RejectReason::Access(1402) => "OVERLOAD",
            RejectReason::Access(1403) => "FORBIDDEN",
            RejectReason::Access(1404) => "NOTFOUND",
            RejectReason::Access(1405) => "BAD_MODE",
            RejectReason::Access(1406) => "UNACCEPTABLE",
            RejectReason::Access(1409) => "CONFLICT",
            RejectReason::Access(1500) => "ISE",
            RejectReason::Access(1501) => "UNIMPLEMENTED",
            RejectReason::Access(_) => "ACCESS",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        assert_eq!(RejectReason::BadSecret.wire(), 1010);
        assert_eq!(RejectReason::FORBIDDEN.wire(), 2403);
        assert_eq!(RejectReason::from_wire(1011), RejectReason::Unsecure);
        assert_eq!(RejectReason::from_wire(2409), RejectReason::CONFLICT);
        for r in RejectReason::TABLE {
            assert_eq!(RejectReason::from_wire(r.wire()), r);
        }
    }
}
