//! The admin listener: `/healthz` (the process serves), `/readyz` (a valid configuration is
//! loaded; the body tells which generation serves, when it was loaded and what it holds, and
//! how the last reload went) and `/metrics` (Prometheus text format). `GET` (and `HEAD`) only:
//! any other method is 405.
//! Kept apart from the proxy port so probes and scrapers need no credentials.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::runtime::Runtime;

fn respond(request: &Request<hyper::body::Incoming>, runtime: &Runtime) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match request.uri().path() {
        _ if !matches!(*request.method(), Method::GET | Method::HEAD) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed: the admin endpoints answer GET only\n".to_owned(),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" => (StatusCode::OK, "text/plain", runtime.readiness()),
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            runtime.metrics.render(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
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

/// Serves the admin endpoints on `listener` until `shutdown` completes.
pub async fn run(listener: TcpListener, runtime: Arc<Runtime>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = &mut shutdown => break,
        };
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let runtime = runtime.clone();
                async move { Ok::<_, Infallible>(respond(&request, &runtime)) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
