//! The HTTP listener's limits against misbehaving clients: a head that never ends is
//! closed after `--http-header-timeout`, an oversized head gets 431, an announced large
//! body 413, and connections over `--http-max-connections` are closed at once, while a
//! normal request still gets its answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::{http, prom, Server, ServerOpts};

/// Reads until EOF or `limit`; returns what came and when it ended (None: still open).
fn read_until_closed(sock: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    sock.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return (got, Some(start.elapsed())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (got, None)
            }
            Err(_) => return (got, Some(start.elapsed())),
        }
        if start.elapsed() > limit {
            return (got, None);
        }
    }
}

#[test]
fn slow_heads_big_heads_big_bodies_and_too_many_connections_are_refused() {
    let server = Server::start(ServerOpts::default().hub(&[
        "--http-header-timeout",
        "2s",
        "--http-max-connections",
        "4",
    ]));
    let addr = server.http_addr();

    // Slowloris: a head that never ends is closed after the header timeout.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(8));
    assert!(
        closed.is_some(),
        "a never-ending head was not closed\n{}",
        server.describe()
    );

    // An oversized head.
    let mut big = TcpStream::connect(addr).unwrap();
    let filler = "a".repeat(40 * 1024);
    let _ =
        big.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\nX-Fill: {filler}\r\n\r\n").as_bytes());
    let (answer, _) = read_until_closed(&mut big, Duration::from_secs(8));
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // A large announced body is refused before it is read.
    let mut body = TcpStream::connect(addr).unwrap();
    body.write_all(b"POST /api/v1/streams HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut body, Duration::from_secs(8));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // The connection limit. The probe is a keep-alive connection the test holds open
    // (its idle time is inside the 2 s header timeout), so the hub's count is known
    // exactly when the next connections arrive: the probe plus three, then two refused.
    // A probe closed by the client would leave a race with the hub letting it go.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut probe, before) = loop {
        let mut probe = TcpStream::connect(addr).unwrap();
        let text = http::keep_alive_get(&mut probe, "/metrics")
            .expect("a keep-alive scrape")
            .text();
        if prom::value(&text, "mediaserver_http_connections") == Some(1.0) {
            break (
                probe,
                prom::value(&text, "mediaserver_http_connections_refused_total"),
            );
        }
        assert!(
            Instant::now() < deadline,
            "earlier connections still open\n{text}"
        );
        drop(probe);
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        before,
        Some(0.0),
        "nothing refused before the limit is reached"
    );
    let mut five: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Watched for 600 ms, well inside the 2 s header timeout that ends idle connections.
    let start = Instant::now();
    let mut closed = Vec::new();
    while start.elapsed() < Duration::from_millis(600) {
        for (i, sock) in five.iter_mut().enumerate() {
            if !closed.contains(&(i + 1))
                && read_until_closed(sock, Duration::from_millis(10))
                    .1
                    .is_some()
            {
                closed.push(i + 1);
            }
        }
    }
    assert_eq!(
        closed,
        [4, 5],
        "connections closed at once (the probe and three fill the limit of four)\n{}",
        server.describe()
    );
    assert!(
        read_until_closed(&mut probe, Duration::from_millis(10))
            .1
            .is_none(),
        "the probe was closed while it counted against the limit"
    );
    drop(probe);
    drop(five);
    // Once they are gone, requests are answered again; a retry made before the hub saw
    // them go is refused too, and counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut retries_refused = 0u32;
    loop {
        if let Ok(r) = http::request(addr, "GET", "/metrics", &[]) {
            assert_eq!(r.status, 200);
            assert_eq!(
                prom::value(&r.text(), "mediaserver_http_connections_refused_total"),
                Some(f64::from(2 + retries_refused)),
                "the fourth and fifth connections and {retries_refused} refused retries\n{}",
                r.text()
            );
            break;
        }
        retries_refused += 1;
        assert!(
            Instant::now() < deadline,
            "no answer after the idle connections left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
