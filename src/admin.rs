//! The admin listener: `/healthz` (the process serves), `/readyz` (a valid configuration is
//! loaded and the upstream credentials are valid; the body tells which generation serves,
//! when it was loaded and what it holds, where the upstream credentials come from and when
//! they expire, and how the last reload went), `/metrics` (Prometheus text format) and
//! `/audit/checkpoint` (the audit log's newest signed checkpoint, for a monitor to keep).
//! `GET` (and `HEAD`) only: any other method is 405.
//! Kept apart from the proxy port so probes and scrapers need no credentials.

use hyper::{Method, Request, Response, StatusCode};

use crate::handler::Body;
use crate::runtime::Runtime;

/// The answer to an admin request. The admin listener is served by `server` with the proxy's
/// header, idle and write timeouts and its own cap on connections (`[admin] max_connections`),
/// so that it can never take the descriptors the proxy's listener needs.
pub fn respond<B>(request: &Request<B>, runtime: &Runtime) -> Response<Body> {
    let (status, content_type, body) = match request.uri().path() {
        _ if !matches!(*request.method(), Method::GET | Method::HEAD) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed: the admin endpoints answer GET only\n".to_owned(),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" => match runtime.readiness() {
            (true, body) => (StatusCode::OK, "text/plain", body),
            (false, body) => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", body),
        },
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            runtime.metrics.render(),
        ),
        "/audit/checkpoint" => match runtime.audit.newest_checkpoint() {
            Some(line) => (
                StatusCode::OK,
                "application/json",
                format!("{}\n", String::from_utf8_lossy(&line)),
            ),
            None => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "no checkpoint yet (none written, or no [audit] signing_key_file)\n".to_owned(),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
    }
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}
