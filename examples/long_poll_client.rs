//! Load client for `bench/long_polls.py`: opens HTTP/2 (prior knowledge) connections to the
//! proxy, which must serve cleartext HTTP/2 (`[listen] h2c = true`), and sends N signed
//! `PollForActivityTask` calls at once, 100 streams per connection (the proxy's default
//! `max_concurrent_streams`), then waits for every answer and prints how many were 200 and
//! carried MARKER (default `sw1.`, a sealed task token; `bench/long_polls.py` passes the
//! upstream's own token for HAProxy, which forwards it as it is).
//!
//! HTTP/2 keeps the client side to a few sockets, so the proxy's file descriptors go to the
//! upstream side, where each held poll needs a connection.
//! Usage: long_poll_client ADDR N ACCESS_KEY SECRET [MARKER]

use std::time::SystemTime;

#[path = "../tests/common/sdk_sign.rs"]
mod sdk_sign;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

const STREAMS_PER_CONNECTION: usize = 100;

fn signed(addr: &str, key: &str, secret: &str) -> http::Request<Full<Bytes>> {
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
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/"));
    for (name, value) in headers.iter().filter(|(n, _)| n != "host") {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from_static(body)))
        .expect("request")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (addr, n, key, secret, marker) = match &args[..] {
        [_, addr, n, key, secret] => (addr, n, key, secret, "sw1."),
        [_, addr, n, key, secret, marker] => (addr, n, key, secret, marker.as_str()),
        _ => {
            eprintln!("usage: long_poll_client ADDR N ACCESS_KEY SECRET [MARKER]");
            std::process::exit(64);
        }
    };
    let marker: &'static [u8] = Box::leak(marker.as_bytes().to_vec().into_boxed_slice());
    let n: usize = n.parse().expect("N");
    let mut calls = Vec::with_capacity(n);
    let mut remaining = n;
    while remaining > 0 {
        let stream = tokio::net::TcpStream::connect(addr.as_str())
            .await
            .expect("connect");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        for _ in 0..remaining.min(STREAMS_PER_CONNECTION) {
            let mut sender = sender.clone();
            let request = signed(addr, key, secret);
            calls.push(tokio::spawn(async move {
                sender.ready().await.ok()?;
                let response = sender.send_request(request).await.ok()?;
                let ok = response.status() == 200;
                let body = response.into_body().collect().await.ok()?.to_bytes();
                Some(ok && body.windows(marker.len()).any(|w| w == marker))
            }));
        }
        remaining -= remaining.min(STREAMS_PER_CONNECTION);
    }
    let mut sealed = 0;
    for call in calls {
        if call.await.ok().flatten() == Some(true) {
            sealed += 1;
        }
    }
    println!("{sealed}");
}
