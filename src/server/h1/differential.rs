//! hyper's HTTP/1.1 server on given bytes, and a request as both sides compare it: the other
//! half of the differential tests of `head` (`tests.rs`) and of the fuzz target
//! `fuzz/fuzz_targets/request_head.rs`, which includes this file by path. Only outside
//! crates here, so that it compiles in both.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;

/// The head limit of the comparisons (the default `max_header_bytes`).
pub const MAX: usize = 16 * 1024;

/// A request as read: method, target, version, headers by name, body.
pub type Read = (String, String, String, Vec<(String, Vec<u8>)>, Vec<u8>);

/// Headers by name, each name's values in the order they came: the order of different names
/// is not part of HTTP's meaning (nor kept by `HeaderMap` through a removal).
pub fn pairs(headers: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    let te = headers.contains_key(http::header::TRANSFER_ENCODING);
    let mut pairs: Vec<(String, Vec<u8>)> = headers
        .iter()
        // A length beside a transfer coding is dropped here; hyper may keep the header while
        // framing by the coding, as here.
        .filter(|(n, _)| !(te && *n == http::header::CONTENT_LENGTH))
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

pub fn read<B>(request: &http::Request<B>, body: &[u8]) -> Read {
    (
        request.method().to_string(),
        request.uri().to_string(),
        format!("{:?}", request.version()),
        pairs(request.headers()),
        body.to_vec(),
    )
}

/// What hyper's HTTP/1.1 server makes of `input` followed by the close: the first request and
/// its body, read whole.
pub fn hyper_reads(input: &[u8]) -> Result<Read, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let input = input.to_vec();
    runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let first: Arc<Mutex<Option<Result<Read, String>>>> = Arc::default();
        let seen = first.clone();
        let service =
            hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let seen = seen.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.map(|c| c.to_bytes());
                    let request = http::Request::from_parts(parts, ());
                    let mut seen = seen.lock().unwrap();
                    if seen.is_none() {
                        *seen = Some(body.map(|b| read(&request, &b)).map_err(|e| e.to_string()));
                    }
                    Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<Bytes>::new()))
                }
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Half-closed: the input ends with the client's close, which must not cancel the call.
        builder
            .max_buf_size(MAX)
            .header_read_timeout(None)
            .half_close(true);
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(server), service);
        let serving = tokio::spawn(connection);
        let _ = client.write_all(&input).await;
        let _ = client.shutdown().await;
        let mut answers = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.read_to_end(&mut answers),
        )
        .await;
        serving.abort();
        let seen = first.lock().unwrap().take();
        seen.unwrap_or_else(|| Err("no request".into()))
    })
}
