//! Load client for `bench/long_polls.py`: sends N signed `PollForActivityTask` calls at once
//! and holds them until they are answered, then prints how many were 200 and carried MARKER
//! (default `sw1.`, a sealed task token; `bench/long_polls.py` passes the upstream's own token
//! for HAProxy, which forwards it as it is).
//!
//! `h1`: one HTTP/1.1 connection per poll, as boto3, the AWS CLI, the JS SDK v3 and the AWS
//! SDK for Rust poll. `h2`: HTTP/2 with prior knowledge (the proxy must serve cleartext HTTP/2,
//! `[listen] h2c = true`), 100 streams per connection (the proxy's default
//! `max_concurrent_streams`).
//! Usage: long_poll_client h1|h2 ADDR N ACCESS_KEY SECRET [MARKER]

use std::sync::Arc;
use std::time::SystemTime;

#[path = "../tests/common/sdk_sign.rs"]
mod sdk_sign;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::task::JoinHandle;

const STREAMS_PER_CONNECTION: usize = 100;
/// Connections opened at once (HTTP/1.1): more would overflow the proxy's accept backlog and
/// wait out SYN retransmissions.
const CONNECTING: usize = 256;

fn signed(addr: &str, key: &str, secret: &str, h2: bool) -> http::Request<Full<Bytes>> {
    let body = br#"{"domain":"bench","taskList":{"name":"work"}}"#;
    let headers = sdk_sign::signed_headers(&sdk_sign::Call {
        key,
        secret,
        region: "us-east-1",
        service: "swf",
        time: SystemTime::now(),
        host: addr,
        target: "SimpleWorkflowService.PollForActivityTask",
        extra: &[],
        body,
    });
    // HTTP/2 carries the host as the URI's authority, not as a header.
    let mut builder = http::Request::builder().method("POST");
    builder = if h2 {
        builder.uri(format!("http://{addr}/"))
    } else {
        builder.uri("/")
    };
    for (name, value) in headers.iter().filter(|(n, _)| !h2 || n != "host") {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from_static(body)))
        .expect("request")
}

/// Whether an answer was a 200 carrying the marker.
async fn sealed(response: http::Response<hyper::body::Incoming>, marker: &[u8]) -> Option<bool> {
    let ok = response.status() == 200;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some(ok && body.windows(marker.len()).any(|w| w == marker))
}

type Call = JoinHandle<Option<bool>>;

/// A connection, tried a few times: a burst of connects may meet a full accept queue.
async fn connect(addr: &str) -> Option<tokio::net::TcpStream> {
    for attempt in 1..=5 {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => return Some(stream),
            Err(e) => {
                eprintln!("connect {addr} (attempt {attempt}): {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
        }
    }
    None
}

fn http1(addr: &str, n: usize, key: &str, secret: &str, marker: &'static [u8]) -> Vec<Call> {
    let connecting = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
    (0..n)
        .map(|_| {
            let request = signed(addr, key, secret, false);
            let (addr, connecting) = (addr.to_owned(), connecting.clone());
            tokio::spawn(async move {
                let (mut sender, connection) = {
                    let _turn = connecting.acquire().await.ok()?;
                    let stream = connect(&addr).await?;
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .ok()?
                };
                tokio::spawn(connection);
                sender.ready().await.ok()?;
                sealed(sender.send_request(request).await.ok()?, marker).await
            })
        })
        .collect()
}

async fn http2(addr: &str, n: usize, key: &str, secret: &str, marker: &'static [u8]) -> Vec<Call> {
    let mut calls = Vec::with_capacity(n);
    let mut remaining = n;
    while remaining > 0 {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        for _ in 0..remaining.min(STREAMS_PER_CONNECTION) {
            let mut sender = sender.clone();
            let request = signed(addr, key, secret, true);
            calls.push(tokio::spawn(async move {
                sender.ready().await.ok()?;
                sealed(sender.send_request(request).await.ok()?, marker).await
            }));
        }
        remaining -= remaining.min(STREAMS_PER_CONNECTION);
    }
    calls
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (proto, addr, n, key, secret, marker) = match &args[..] {
        [_, proto, addr, n, key, secret] => (proto, addr, n, key, secret, "sw1."),
        [_, proto, addr, n, key, secret, marker] => (proto, addr, n, key, secret, marker.as_str()),
        _ => {
            eprintln!("usage: long_poll_client h1|h2 ADDR N ACCESS_KEY SECRET [MARKER]");
            std::process::exit(64);
        }
    };
    let marker: &'static [u8] = Box::leak(marker.as_bytes().to_vec().into_boxed_slice());
    let n: usize = n.parse().expect("N");
    let calls = match proto.as_str() {
        "h1" => http1(addr, n, key, secret, marker),
        "h2" => http2(addr, n, key, secret, marker).await,
        _ => {
            eprintln!("protocol: h1 or h2");
            std::process::exit(64);
        }
    };
    let mut sealed = 0;
    for call in calls {
        if call.await.ok().flatten() == Some(true) {
            sealed += 1;
        }
    }
    println!("{sealed}");
}
