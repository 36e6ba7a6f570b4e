//! Which handler answers a request, and the response conventions every route shares:
//! CORS for browsers on other origins, JSON errors, status counters.

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::body::Body;
use super::{ConnCtx, Http, HANDLER_TIMEOUT, MAX_BODY_BYTES};
use crate::stats::Protocol;

/// A response with a body and a content type.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON document.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut text = serde_json::to_vec_pretty(value).unwrap_or_default();
    text.push(b'\n');
    response(status, "application/json", Bytes::from(text))
}

/// A JSON error `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message.into() }))
}

impl Http {
    /// Answers one request.
    pub(super) async fn route(
        &self,
        mut req: Request<hyper::body::Incoming>,
        remote: SocketAddr,
        ctx: &ConnCtx,
    ) -> Response<Body> {
        let mut resp = if let Some(r) = refuse_body(&req) {
            r
        } else if req.method() == Method::OPTIONS {
            preflight()
        } else {
            match tokio::time::timeout(HANDLER_TIMEOUT, self.dispatch(&req, remote, ctx)).await {
                Ok(r) => r,
                Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the request took too long"),
            }
        };
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            ctx.websocket.set_upgrade(hyper::upgrade::on(&mut req));
        }
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(header::SERVER, HeaderValue::from_static("mediaserver"));
        let code = resp.status();
        self.registry
            .stats()
            .metrics
            .counter(
                "mediaserver_http_requests_total",
                &[("code", code.as_str())],
            )
            .inc();
        if code.is_server_error() || code == StatusCode::PAYLOAD_TOO_LARGE {
            tracing::debug!(method = %req.method(), path = req.uri().path(), %code, "http request failed");
        }
        resp
    }

    async fn dispatch(
        &self,
        req: &Request<hyper::body::Incoming>,
        remote: SocketAddr,
        ctx: &ConnCtx,
    ) -> Response<Body> {
        let path = req.uri().path();
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        if let Some(rest) = path.strip_prefix("/api/v1") {
            if rest.is_empty() || rest.starts_with('/') {
                return self.api(req, rest);
            }
        }
        if let Some(page) = get.then(|| super::status::asset(path)).flatten() {
            return page;
        }
        let metrics = matches!(path, "/metrics" | "/debug/vars");
        if let Some(refused) = metrics.then(|| self.check_auth(req, false)).flatten() {
            return refused;
        }
        match path {
            "/metrics" if get => self.prometheus(),
            "/debug/vars" if get => self.vars(),
            "/metrics" | "/debug/vars" => method_not_allowed("GET, HEAD"),
            p if p.starts_with("/hls/") && get => {
                self.hls(&p["/hls/".len()..], req.uri().query(), remote)
                    .await
            }
            p if p.ends_with(".flv") && get => {
                let query = req.uri().query();
                match super::ws::handshake(req) {
                    Ok(None) => {
                        self.flv(p, query, remote, ctx.abort.clone(), Protocol::HttpFlv)
                            .await
                    }
                    Ok(Some(accept)) => super::ws::switch(
                        self.flv(p, query, remote, ctx.abort.clone(), Protocol::WsFlv)
                            .await,
                        accept,
                        &ctx.websocket,
                    ),
                    Err(refused) => *refused,
                }
            }
            _ => error(StatusCode::NOT_FOUND, format!("no route for {path}")),
        }
    }
}

/// 405 with the methods that are allowed.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Requests announcing a body larger than [`MAX_BODY_BYTES`] (or a chunked one, whose
/// size is unknown) are refused before anything is read.
fn refuse_body<B>(req: &Request<B>) -> Option<Response<Body>> {
    let h = req.headers();
    let len = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let chunked = h.contains_key(header::TRANSFER_ENCODING);
    if len > MAX_BODY_BYTES || chunked {
        let mut r = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {MAX_BODY_BYTES} bytes with a Content-Length"),
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Some(r);
    }
    None
}

/// The answer to a CORS preflight: any origin may call the API and play streams; the
/// bearer token travels in `Authorization`.
fn preflight() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, Range"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    r
}
