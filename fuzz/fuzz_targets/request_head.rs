//! Client requests as the proxy's HTTP/1.1 server reads them (`src/server/h1/head.rs`), from
//! a client that sends any bytes. The first input byte picks where the rest is cut in two:
//! the request arrives in two reads. Asserts:
//! - nothing panics, and reading ends (every step consumes bytes or asks for more);
//! - read in two pieces, a request reads exactly as it does whole (head, body, or refusal);
//! - a body never holds more bytes than arrived;
//! - a request read here is one hyper's HTTP/1.1 server reads the same way: method, target,
//!   version, headers and body (never more lenient than hyper).
#![no_main]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use swf_warden::server::h1::head;

const MAX: usize = 16 * 1024;

type Read = (String, String, String, Vec<(String, Vec<u8>)>, Vec<u8>);

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let whole = head::read_pieces(&[input], MAX).map(|(h, b)| read(&h.request, &b));
    let at = usize::from(cut) * input.len() / 255;
    let (first, second) = input.split_at(at);
    let pieces = head::read_pieces(&[first, second], MAX).map(|(h, b)| read(&h.request, &b));
    assert_eq!(pieces, whole, "cut at {at}");
    if let Ok(mine) = whole {
        assert!(mine.4.len() <= input.len());
        assert_eq!(Ok(mine), hyper_reads(input), "hyper reads it otherwise");
    }
});

/// Headers by name, each name's values in the order they came (the order of different names
/// is not part of HTTP's meaning, nor kept by `HeaderMap` through a removal).
fn read<B>(request: &http::Request<B>, body: &[u8]) -> Read {
    let te = request.headers().contains_key("transfer-encoding");
    let mut headers: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        // A length beside a transfer coding: dropped here, perhaps kept by hyper.
        .filter(|(n, _)| !(te && n.as_str() == "content-length"))
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    (
        request.method().to_string(),
        request.uri().to_string(),
        format!("{:?}", request.version()),
        headers,
        body.to_vec(),
    )
}

/// The first request hyper's HTTP/1.1 server reads from `input` followed by the close.
fn hyper_reads(input: &[u8]) -> Result<Read, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
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
        builder
            .max_buf_size(MAX)
            .header_read_timeout(None)
            .half_close(true);
        let serving = tokio::spawn(
            builder.serve_connection(hyper_util::rt::TokioIo::new(server), service),
        );
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
