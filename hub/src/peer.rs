//! Who may talk to the hub, and what may be handed to it.
//!
//! Every connection on `hub.sock` is checked with `SO_PEERCRED`: the peer must run as our
//! uid, or (with `--socket-group`) belong to that group. The directory and the socket's
//! mode already keep others out; this holds even if they are loosened by mistake. A
//! descriptor handed over with a player must be a connected stream socket: TCP (a plain
//! RTMP player) or a Unix socketpair end (an RTMPS player relayed by ingest-rtmp).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    getpeername, getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike,
    SockaddrStorage,
};
use nix::unistd::{Gid, Group, Uid, User};

/// Who may connect.
#[derive(Debug, Clone, Copy)]
pub struct PeerPolicy {
    /// Our own uid.
    pub uid: u32,
    /// A group whose members may connect too.
    pub group: Option<u32>,
}

impl PeerPolicy {
    /// Our uid, and `group` if given.
    pub fn new(group: Option<u32>) -> PeerPolicy {
        PeerPolicy {
            uid: nix::unistd::geteuid().as_raw(),
            group,
        }
    }

    /// Whether a peer with `uid`/`gid` may use the hub; `Err` says why not.
    pub fn check(&self, uid: u32, gid: u32) -> Result<(), String> {
        if uid == self.uid {
            return Ok(());
        }
        if let Some(group) = self.group {
            if gid == group || is_member(uid, group) {
                return Ok(());
            }
            return Err(format!(
                "peer uid {uid} (gid {gid}) is neither uid {} nor in group {group}",
                self.uid
            ));
        }
        Err(format!(
            "peer uid {uid} is not uid {} (the hub's own)",
            self.uid
        ))
    }
}

fn is_member(uid: u32, group: u32) -> bool {
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    if user.gid.as_raw() == group {
        return true;
    }
    matches!(Group::from_gid(Gid::from_raw(group)), Ok(Some(g)) if g.mem.contains(&user.name))
}

/// Resolves a `--socket-group` value: a group name or a numeric gid.
pub fn resolve_group(s: &str) -> Result<u32, String> {
    if let Ok(gid) = s.parse::<u32>() {
        return Ok(gid);
    }
    match Group::from_name(s) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err("no such group".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// What a handed-over player descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerSocket {
    /// A connected TCP socket: the player itself.
    Tcp,
    /// A connected Unix stream socket: ingest's relay of an RTMPS player.
    Relay,
}

/// Checks that `fd` is a connected stream socket of a kind a player arrives on.
pub fn player_socket(fd: &OwnedFd) -> Result<PlayerSocket, String> {
    let ty = getsockopt(fd, sockopt::SockType).map_err(|e| match e {
        Errno::ENOTSOCK => "the descriptor is not a socket".to_owned(),
        e => format!("the descriptor's socket type: {e}"),
    })?;
    if ty != SockType::Stream {
        return Err(format!("a {ty:?} socket, not a stream socket"));
    }
    let local: SockaddrStorage =
        getsockname(fd.as_raw_fd()).map_err(|e| format!("the socket's address: {e}"))?;
    let kind = match local.family() {
        Some(AddressFamily::Inet | AddressFamily::Inet6) => PlayerSocket::Tcp,
        Some(AddressFamily::Unix) => PlayerSocket::Relay,
        other => return Err(format!("a socket of family {other:?}, not TCP or Unix")),
    };
    getpeername::<SockaddrStorage>(fd.as_raw_fd())
        .map_err(|_| "a socket that is not connected".to_owned())?;
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_uid_and_group() {
        let p = PeerPolicy {
            uid: 1000,
            group: None,
        };
        assert!(p.check(1000, 1000).is_ok());
        assert!(p.check(1001, 1000).unwrap_err().contains("1001"));
        let g = PeerPolicy {
            uid: 1000,
            group: Some(2000),
        };
        assert!(g.check(1001, 2000).is_ok());
        assert!(g.check(1001, 1001).is_err());
    }

    #[test]
    fn descriptor_kinds() {
        let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        assert!(player_socket(&file).unwrap_err().contains("not a socket"));
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(player_socket(&OwnedFd::from(a)), Ok(PlayerSocket::Relay));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(player_socket(&OwnedFd::from(client)), Ok(PlayerSocket::Tcp));
        let unconnected: OwnedFd = std::net::TcpListener::bind("127.0.0.1:0").unwrap().into();
        assert!(player_socket(&unconnected)
            .unwrap_err()
            .contains("not connected"));
        let udp: OwnedFd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into();
        assert!(player_socket(&udp)
            .unwrap_err()
            .contains("not a stream socket"));
    }
}
