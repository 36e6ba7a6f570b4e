//! The hub socket is ours alone: a process of another uid cannot use it (the directory
//! keeps it out, and SO_PEERCRED refuses it even when the directory and socket are opened
//! by mistake), and a handed-over descriptor that is not a player's connected stream
//! socket is refused with an `Error`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use bytes::BytesMut;
use e2e::server::Which;
use e2e::{deadline_in, Server, ServerOpts};
use proto::ipc::{self, FrameDecoder, Header, Role, FORMAT_VERSION};
use sendfd::SendWithFd;

const NOBODY: u32 = 65534;

fn hello(role: Role) -> Vec<u8> {
    let mut out = BytesMut::new();
    ipc::encode(
        &Header::Hello {
            version: FORMAT_VERSION,
            role,
            name: "e2e".into(),
        },
        &[],
        &mut out,
    );
    out.to_vec()
}

/// Runs a Python client as `nobody` that connects to `socket`, sends `bytes` and reports
/// `EACCES`, `closed` (no answer) or `answered`.
fn connect_as_nobody(socket: &std::path::Path, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let script = "import socket,sys,binascii\n\
        s=socket.socket(socket.AF_UNIX)\n\
        try:\n    s.connect(sys.argv[1])\n\
        except PermissionError:\n    print('EACCES'); sys.exit(0)\n\
        try:\n    s.sendall(binascii.unhexlify(sys.argv[2])); s.settimeout(15); d=s.recv(4096)\n\
        except (BrokenPipeError, ConnectionResetError):\n    d=b''\n\
        print('answered' if d else 'closed')\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(socket)
        .arg(hex)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("run python3 as nobody");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn another_uid_cannot_use_the_hub_socket() {
    if !nix_is_root() {
        println!("skipped: the test must run as root to start a client under another uid");
        return;
    }
    if !std::path::Path::new("/usr/bin/python3").exists() {
        println!("skipped: /usr/bin/python3 (the client run as nobody) is missing");
        return;
    }
    let server = Server::start(ServerOpts::default());
    let socket = server.socket().to_owned();
    let run_dir = socket.parent().unwrap();
    let mode = std::fs::metadata(run_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the hub's socket directory is not private");
    // The private directory alone keeps the other user out.
    std::fs::set_permissions(server.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        connect_as_nobody(&socket, &hello(Role::Subscriber)),
        "EACCES"
    );

    // Opened by mistake: the connection gets through the file system, and SO_PEERCRED
    // refuses it before any hello is answered.
    std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mark = server.log_marks();
    assert_eq!(
        connect_as_nobody(&socket, &hello(Role::Subscriber)),
        "closed"
    );
    let (_, line) = server
        .wait_log(mark, Duration::from_secs(10), |l| {
            l.contains("refusing connection")
        })
        .expect("refusal logged");
    assert!(line.contains("peer uid 65534"), "{line}");
    // Our own uid still gets in.
    let mut ours = UnixStream::connect(&socket).unwrap();
    std::io::Write::write_all(&mut ours, &hello(Role::Subscriber)).unwrap();
    assert!(matches!(
        read_message(&mut ours),
        Some(Header::Hello {
            role: Role::Hub,
            ..
        })
    ));
}

#[test]
fn a_handed_over_descriptor_that_is_not_a_socket_is_refused() {
    let server = Server::start(ServerOpts::default());
    let mut sock = UnixStream::connect(server.socket()).unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let bytes = hello(Role::PlayerHandoff);
    let sent = sock.send_with_fd(&bytes, &[file.as_raw_fd()]).unwrap();
    assert_eq!(sent, bytes.len());
    match read_message(&mut sock) {
        Some(Header::Error { message }) => assert!(message.contains("not a socket"), "{message}"),
        other => panic!("expected an Error from the hub, got {other:?}"),
    }
    server
        .log(Which::Hub)
        .wait_for(0, deadline_in(5.0), |l| {
            l.contains("player handoff refused: the descriptor is not a socket")
        })
        .expect("refusal logged");
    // A UDP socket is a socket, but not a stream.
    let mut sock = UnixStream::connect(server.socket()).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_with_fd(&bytes, &[udp.as_raw_fd()]).unwrap();
    match read_message(&mut sock) {
        Some(Header::Error { message }) => {
            assert!(message.contains("not a stream socket"), "{message}")
        }
        other => panic!("expected an Error from the hub, got {other:?}"),
    }
}

fn read_message(sock: &mut UnixStream) -> Option<Header> {
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(m) = decoder.decode(&mut buf).ok()? {
            return Some(m.header);
        }
        let n = sock.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
