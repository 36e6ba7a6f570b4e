//! A minimal HTTP/1.1 server on 127.0.0.1 for the auth callback and JWKS tests: one thread
//! per connection, `Connection: close`, every request body recorded as a log line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use crate::log::LineLog;

/// What to answer: `Some((status, body))`, or `None` to never answer (the connection is
/// held open until the test ends).
pub type Handler = dyn Fn(&str, &str, &str) -> Option<(u16, String)> + Send + Sync;

/// A running server. Requests are logged as `METHOD PATH BODY`.
pub struct HttpStub {
    addr: SocketAddr,
    /// One line per request.
    pub requests: Arc<LineLog>,
}

impl HttpStub {
    /// Serves `handler(method, path, body)` until the process ends.
    pub fn start(
        handler: impl Fn(&str, &str, &str) -> Option<(u16, String)> + Send + Sync + 'static,
    ) -> HttpStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind http stub");
        let addr = listener.local_addr().expect("addr");
        let requests = LineLog::new_shared();
        let log = requests.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &log, &*handler));
            }
        });
        HttpStub { addr, requests }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn serve(conn: TcpStream, log: &LineLog, handler: &Handler) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len.min(1 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    log.push(format!("{method} {path} {body}"));
    match handler(&method, &path, &body) {
        Some((status, reply)) => {
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
        None => {
            // Stall: keep the connection open and silent until the client gives up.
            let mut sink = [0u8; 64];
            let mut conn = conn;
            while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}
