//! The server's reading and writing on an in-memory connection: heads, bodies and answers as
//! bytes on the wire.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

/// An answer's body of unknown length (as an upstream's chunked answer is), in pieces.
struct Pieces(VecDeque<Bytes>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.0.pop_front().map(|p| Ok(Frame::data(p))))
    }
}

fn pieces(parts: &[&'static str]) -> http::Response<Pieces> {
    http::Response::new(Pieces(
        parts
            .iter()
            .map(|p| Bytes::from_static(p.as_bytes()))
            .collect(),
    ))
}

/// Writes `answer` as the server would to a client of `version`, then closes; what the client
/// reads.
async fn on_the_wire<B>(answer: http::Response<B>, version: Version, close: bool) -> String
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let (mut server, mut client) = tokio::io::duplex(1 << 16);
    let _ = write_answer(&mut server, answer, version, close, false).await;
    drop(server);
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn an_answer_of_unknown_length_is_chunked_for_http11_and_close_delimited_for_http10() {
    let wire = on_the_wire(pieces(&["ab", "cde"]), Version::HTTP_11, false).await;
    assert!(wire.contains("transfer-encoding: chunked\r\n"), "{wire}");
    assert!(
        wire.ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
        "{wire}"
    );
    assert!(!wire.contains("connection:"), "{wire}");

    // HTTP/1.0 has no chunked coding: the body ends with the connection.
    let wire = on_the_wire(pieces(&["ab", "cde"]), Version::HTTP_10, true).await;
    assert!(!wire.contains("transfer-encoding"), "{wire}");
    assert!(wire.contains("connection: close\r\n"), "{wire}");
    assert!(wire.ends_with("\r\n\r\nabcde"), "{wire}");
}

/// A transport that keeps what is written until it is flushed, as TLS may.
impl Transport for tokio::io::BufWriter<DuplexStream> {}

/// A connection whose client has sent `bytes` (and, with `close`, closed its side).
async fn sent(bytes: &[u8], close: bool) -> (DuplexStream, DuplexStream) {
    let (server, mut client) = tokio::io::duplex(1 << 20);
    client.write_all(bytes).await.unwrap();
    if close {
        client.shutdown().await.unwrap();
    }
    (server, client)
}

fn activity() -> std::sync::Arc<Activity> {
    Activity::new(tokio::time::Instant::now())
}

const POST: &[u8] = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";

#[tokio::test]
async fn heads_are_read_whole_and_what_follows_is_kept() {
    let (mut server, mut client) = sent(&POST[..10], false).await;
    let mut buf = BytesMut::new();
    let activity = activity();
    let head = {
        let reading = read_head(&mut server, &mut buf, 1024, &activity);
        let mut reading = std::pin::pin!(reading);
        // Half a head: still reading.
        assert!(futures_poll_once(reading.as_mut()).await.is_none());
        client.write_all(&POST[10..]).await.unwrap();
        client.write_all(b"GET").await.unwrap();
        reading.await.ok().flatten().expect("a head")
    };
    assert_eq!(head.request.method(), Method::POST);
    assert_eq!(head.body, Framing::Length(2));
    assert_eq!(
        &buf[..],
        b"{}GET",
        "the body and the next request's bytes are kept"
    );
}

/// Polls `future` once: its output if it is ready.
async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
    let mut future = future;
    poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut future).poll(cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test]
async fn a_close_between_requests_ends_quietly_and_a_broken_head_does_not() {
    let activity = activity();
    let (mut server, _client) = sent(b"", true).await;
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_head(&mut server, &mut buf, 1024, &activity).await,
        Ok(None)
    ));

    let (mut server, _client) = sent(&POST[..20], true).await;
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_head(&mut server, &mut buf, 1024, &activity).await,
        Err(End::Io)
    ));

    // Asked to close while idle: it closes without waiting for the client.
    let (mut server, _client) = sent(b"", false).await;
    let mut buf = BytesMut::new();
    activity.close_gracefully();
    assert!(matches!(
        read_head(&mut server, &mut buf, 1024, &activity).await,
        Ok(None)
    ));
}

#[tokio::test]
async fn a_head_over_the_limit_is_refused_431_however_it_arrives() {
    let activity = activity();
    // Far past the limit: the reading stops near the limit, not at the head's end.
    let long = format!("POST / HTTP/1.1\r\nx-long: {}\r\n\r\n", "a".repeat(100_000));
    let (mut server, _client) = sent(long.as_bytes(), false).await;
    let mut buf = BytesMut::new();
    match read_head(&mut server, &mut buf, 8192, &activity).await {
        Err(End::Refused(refusal)) => assert_eq!(refusal.status, 431),
        other => panic!("{:?}", other.map(|h| h.map(|h| h.body))),
    }
    assert!(
        buf.len() < 2 * 8192 + HEAD_BUFFER,
        "read at most about twice the limit"
    );
}

fn reading(framing: Framing, limit: usize, expect_continue: bool) -> Reading {
    Reading {
        framing,
        limit,
        expect_continue,
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn bodies_are_read_within_their_limit_and_what_follows_is_kept() {
    let (mut server, _client) = sent(b"{\"a\":1}GET", false).await;
    let mut buf = BytesMut::new();
    let (body, whole) = read_body(
        &mut server,
        &mut buf,
        reading(Framing::Length(7), 7, false),
        SECOND,
    )
    .await;
    assert_eq!((body.as_deref(), whole), (Ok(&b"{\"a\":1}"[..]), true));
    // What follows, read yet or not, is the next request's, never the body's.
    assert!(b"GET".starts_with(&buf), "{buf:?}");

    let (mut server, _client) = sent(b"", false).await;
    let (body, whole) = read_body(
        &mut server,
        &mut BytesMut::new(),
        reading(Framing::Length(0), 7, false),
        SECOND,
    )
    .await;
    assert_eq!((body.as_deref(), whole), (Ok(&b""[..]), true));

    let chunked = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET";
    let (mut server, _client) = sent(chunked, false).await;
    let mut buf = BytesMut::new();
    let (body, whole) = read_body(
        &mut server,
        &mut buf,
        reading(Framing::Chunked, 5, false),
        SECOND,
    )
    .await;
    assert_eq!((body.as_deref(), whole), (Ok(&b"abcde"[..]), true));
    assert_eq!(&buf[..], b"GET");
}

#[tokio::test]
async fn bodies_over_the_limit_broken_or_cut_are_refused_and_end_the_connection() {
    // Declared over the limit: refused unread, without a 100 Continue.
    let (mut server, mut client) = sent(b"{\"a\":1}", false).await;
    let mut buf = BytesMut::new();
    let (body, whole) = read_body(
        &mut server,
        &mut buf,
        reading(Framing::Length(7), 6, true),
        SECOND,
    )
    .await;
    assert_eq!((body, whole), (Err(BodyFault::TooLarge), false));
    assert!(buf.is_empty(), "nothing of it read");
    drop(server);
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    assert!(answer.is_empty(), "no interim answer: {answer:?}");

    // Chunked, found over the limit while reading.
    let (mut server, _client) = sent(b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", false).await;
    let (body, whole) = read_body(
        &mut server,
        &mut BytesMut::new(),
        reading(Framing::Chunked, 6, false),
        SECOND,
    )
    .await;
    assert_eq!((body, whole), (Err(BodyFault::TooLarge), false));

    let (mut server, _client) = sent(b"3\r\nabc\r\nzz\r\n\r\n", false).await;
    let (body, whole) = read_body(
        &mut server,
        &mut BytesMut::new(),
        reading(Framing::Chunked, 64, false),
        SECOND,
    )
    .await;
    assert_eq!((body, whole), (Err(BodyFault::Unreadable), false));

    let (mut server, _client) = sent(b"{\"a\"", true).await;
    let (body, whole) = read_body(
        &mut server,
        &mut BytesMut::new(),
        reading(Framing::Length(7), 64, false),
        SECOND,
    )
    .await;
    assert_eq!((body, whole), (Err(BodyFault::Unreadable), false));
}

#[tokio::test]
async fn a_body_not_whole_within_the_timeout_is_refused() {
    // The client never sends the rest: whatever the timeout, the outcome is the same.
    let (mut server, _client) = sent(b"{\"a\"", false).await;
    let (body, whole) = read_body(
        &mut server,
        &mut BytesMut::new(),
        reading(Framing::Length(7), 64, false),
        Duration::from_millis(50),
    )
    .await;
    assert_eq!((body, whole), (Err(BodyFault::TimedOut), false));
}

#[tokio::test]
async fn expect_continue_gets_its_interim_answer_only_when_the_body_is_awaited() {
    // The body is not there yet: the client is told to send it, at once (a transport that
    // buffers its writes, as TLS does, is flushed).
    let (server, mut client) = sent(b"", false).await;
    let mut server = tokio::io::BufWriter::new(server);
    let mut buf = BytesMut::new();
    let read = read_body(
        &mut server,
        &mut buf,
        reading(Framing::Length(2), 64, true),
        SECOND,
    );
    let mut read = std::pin::pin!(read);
    assert!(futures_poll_once(read.as_mut()).await.is_none());
    let mut interim = vec![0u8; answer::CONTINUE.len()];
    let arrived = futures_poll_once(std::pin::pin!(client.read_exact(&mut interim))).await;
    assert!(arrived.is_some(), "the interim answer was not sent");
    assert_eq!(interim, answer::CONTINUE);
    client.write_all(b"{}").await.unwrap();
    assert_eq!(read.await.0.as_deref(), Ok(&b"{}"[..]));

    // Already sent with the head: no interim answer.
    let (mut server, mut client) = sent(b"", false).await;
    let mut buf = BytesMut::from(&b"{}"[..]);
    let (body, _) = read_body(
        &mut server,
        &mut buf,
        reading(Framing::Length(2), 64, true),
        SECOND,
    )
    .await;
    assert_eq!(body.as_deref(), Ok(&b"{}"[..]));
    drop(server);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

fn full(body: &'static str) -> http::Response<http_body_util::Full<Bytes>> {
    let mut answer = http::Response::new(http_body_util::Full::new(Bytes::from_static(
        body.as_bytes(),
    )));
    // The handler's own framing and connection headers are replaced by the server's.
    answer
        .headers_mut()
        .insert("content-length", "999".parse().unwrap());
    answer
        .headers_mut()
        .insert("connection", "upgrade".parse().unwrap());
    answer
        .headers_mut()
        .insert("x-amzn-requestid", "r1".parse().unwrap());
    answer
}

#[tokio::test]
async fn answers_carry_their_length_and_the_servers_connection_header() {
    let wire = on_the_wire(full("{}"), Version::HTTP_11, false).await;
    assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{wire}");
    assert!(wire.contains("x-amzn-requestid: r1\r\n"), "{wire}");
    assert!(
        wire.contains("content-length: 2\r\n") && !wire.contains("999"),
        "{wire}"
    );
    assert!(!wire.contains("connection"), "{wire}");
    assert!(wire.contains("\r\ndate: "), "{wire}");
    assert!(wire.ends_with("\r\n\r\n{}"), "{wire}");

    let wire = on_the_wire(full("{}"), Version::HTTP_11, true).await;
    assert!(
        wire.contains("connection: close\r\n") && !wire.contains("upgrade"),
        "{wire}"
    );
    let wire = on_the_wire(full("{}"), Version::HTTP_10, false).await;
    assert!(wire.contains("connection: keep-alive\r\n"), "{wire}");
}

#[tokio::test]
async fn a_head_answer_has_no_body_and_a_body_unlike_its_length_ends_the_connection() {
    let (mut server, mut client) = tokio::io::duplex(1 << 16);
    assert!(
        write_answer(&mut server, full("{}"), Version::HTTP_11, false, true)
            .await
            .unwrap()
    );
    drop(server);
    let mut wire = String::new();
    client.read_to_string(&mut wire).await.unwrap();
    assert!(
        wire.contains("content-length: 2\r\n") && wire.ends_with("\r\n\r\n"),
        "{wire}"
    );

    /// A body whose length says one thing and whose frames another.
    struct Lying(u64, Pieces);
    impl hyper::body::Body for Lying {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Pin::new(&mut self.1).poll_frame(cx)
        }
        fn size_hint(&self) -> hyper::body::SizeHint {
            hyper::body::SizeHint::with_exact(self.0)
        }
    }
    // What the client gets: the body up to the frame that would pass the declared length.
    let cases = [
        (3, &["ab", "cd"][..], "ab"),
        (3, &["abcd"][..], ""),
        (5, &["ab"][..], "ab"),
        (2, &["ab"][..], "ab"),
    ];
    for (declared, parts, sent) in cases {
        let (mut server, mut client) = tokio::io::duplex(1 << 16);
        let body = Lying(declared, pieces(parts).into_body());
        let whole = write_answer(
            &mut server,
            http::Response::new(body),
            Version::HTTP_11,
            false,
            false,
        )
        .await
        .unwrap();
        assert_eq!(whole, declared == 2, "{declared} declared, {parts:?} sent");
        drop(server);
        let mut wire = String::new();
        client.read_to_string(&mut wire).await.unwrap();
        let body = wire.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        assert_eq!(body, sent, "{declared} declared, {parts:?} sent: {wire}");
    }
}

#[tokio::test]
async fn a_client_leaving_mid_call_is_noticed_and_bytes_arriving_are_kept() {
    let (mut server, client) = sent(b"", false).await;
    drop(client);
    assert!(client_left(&mut server, &mut BytesMut::new()).await);

    let (mut server, _client) = sent(b"GET", false).await;
    let mut buf = BytesMut::new();
    assert!(!client_left(&mut server, &mut buf).await);
    assert_eq!(&buf[..], b"GET");
}

#[test]
fn a_bare_refusal_is_a_status_and_a_close() {
    let wire = String::from_utf8(answer::bare(431)).unwrap();
    assert!(
        wire.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{wire}"
    );
    assert!(
        wire.contains("content-length: 0\r\n") && wire.ends_with("connection: close\r\n\r\n"),
        "{wire}"
    );
}

#[tokio::test]
async fn a_tcp_read_that_would_wait_gives_its_buffer_back() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = listener.accept().await.unwrap();
    let mut server = Watched::new(accepted, activity());
    let mut buf = BytesMut::new();
    // Nothing sent: the read waits, holding no buffer.
    assert!(
        futures_poll_once(std::pin::pin!(server.read_fresh(&mut buf, 4096)))
            .await
            .is_none()
    );
    assert_eq!(buf.capacity(), 0);
    // Bytes: room is given. A read that fills its room leaves the socket marked readable.
    client.write_all(b"GET / HT").await.unwrap();
    assert_eq!(server.read_fresh(&mut buf, 8).await.unwrap(), 8);
    assert_eq!((&buf[..], buf.capacity()), (&b"GET / HT"[..], 8));
    // Marked readable, but drained: the read would wait. Bytes already read are kept...
    assert!(
        futures_poll_once(std::pin::pin!(server.read_fresh(&mut buf, 4096)))
            .await
            .is_none()
    );
    assert_eq!(&buf[..], b"GET / HT", "bytes read before are kept");
    client.write_all(b"TP/1.1\r\n").await.unwrap();
    assert_eq!(server.read_fresh(&mut buf, 4096).await.unwrap(), 8);
    assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
    // ...and an empty buffer's room is given back.
    client.write_all(b"Host: a\r").await.unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(server.read_fresh(&mut buf, 8).await.unwrap(), 8);
    assert_eq!(buf.capacity(), 8);
    let mut buf = BytesMut::new();
    assert!(
        futures_poll_once(std::pin::pin!(server.read_fresh(&mut buf, 4096)))
            .await
            .is_none()
    );
    assert_eq!(buf.capacity(), 0, "no buffer held while waiting");
    // An empty buffer gets the room asked for: a head arrives in one read, not in pieces.
    client.write_all(&[b'x'; 3000]).await.unwrap();
    let mut read = 0;
    while read < 3000 {
        read += server.read_fresh(&mut buf, 4096).await.unwrap();
        assert!(read == 3000 || buf.capacity() >= 4096, "{read}");
    }
    assert_eq!(buf.len(), 3000);
    drop(client);
    let mut buf = BytesMut::new();
    assert_eq!(
        server.read_fresh(&mut buf, 4096).await.unwrap(),
        0,
        "the close"
    );
}

#[tokio::test]
async fn a_read_into_a_full_buffer_is_given_the_room_asked_for() {
    let (mut server, mut client) = sent(&[b'x'; 3000], false).await;
    let mut buf = BytesMut::new();
    assert_eq!(server.read_fresh(&mut buf, 4096).await.unwrap(), 3000);
    assert!(buf.capacity() >= 4096);
    // A buffer with room left reads into that room, however much is asked.
    let mut buf = BytesMut::with_capacity(16);
    client.write_all(&[b'y'; 100]).await.unwrap();
    assert_eq!(server.read_fresh(&mut buf, 4096).await.unwrap(), 16);
    assert!(buf.capacity() < 4096, "{}", buf.capacity());
}

#[test]
fn a_partial_head_is_refused_when_it_reaches_the_limit() {
    let partial = b"POST / HTTP/1.1\r\nx-long: aaaaaaaaaaaaaaaaaaaa";
    let max = partial.len();
    let mut buf = BytesMut::from(&partial[..max - 1]);
    assert!(matches!(head::parse(&mut buf, max), Ok(None)));
    let mut buf = BytesMut::from(&partial[..]);
    match head::parse(&mut buf, max) {
        Err(refusal) => assert_eq!(refusal.status, 431),
        Ok(head) => panic!("{:?}", head.map(|h| h.body)),
    }
}

#[test]
fn whether_a_connection_is_kept_and_a_body_awaited_is_read_from_the_head() {
    // (version, headers, kept alive, Expect: 100-continue)
    let cases: &[(&str, &[&str], bool, bool)] = &[
        ("HTTP/1.1", &[], true, false),
        ("HTTP/1.1", &["Connection: close"], false, false),
        ("HTTP/1.1", &["Connection: foo , Close"], false, false),
        ("HTTP/1.1", &["Connection: keep-alive"], true, false),
        ("HTTP/1.0", &[], false, false),
        ("HTTP/1.0", &["Connection: foo"], false, false),
        ("HTTP/1.0", &["Connection: Keep-Alive"], true, false),
        (
            "HTTP/1.0",
            &["Connection: keep-alive", "Connection: close"],
            false,
            false,
        ),
        ("HTTP/1.1", &["Expect: 100-continue"], true, true),
        ("HTTP/1.1", &["Expect: 100-Continue"], true, true),
        ("HTTP/1.1", &["Expect: 200-ok"], true, false),
        ("HTTP/1.0", &["Expect: 100-continue"], false, false),
        ("HTTP/1.1", &["Transfer-Encoding: chunked"], true, false),
        // A length beside a coding: read by the coding, and nothing after it on the connection.
        (
            "HTTP/1.1",
            &["Transfer-Encoding: chunked", "Content-Length: 5"],
            false,
            false,
        ),
    ];
    for &(version, headers, kept, awaited) in cases {
        let mut head = format!("POST / {version}\r\nhost: a\r\n");
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut buf = BytesMut::from(head.as_bytes());
        let read = head::parse(&mut buf, 8192).unwrap().unwrap();
        assert_eq!(
            (read.keep_alive, read.expect_continue),
            (kept, awaited),
            "{head}"
        );
    }
}

#[test]
fn a_head_of_exactly_the_limit_is_read() {
    let head = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
    let mut buf = BytesMut::from(&head[..]);
    assert!(head::parse(&mut buf, head.len()).unwrap().is_some());
    let mut buf = BytesMut::from(&head[..]);
    assert!(head::parse(&mut buf, head.len() - 1).is_err());
}
