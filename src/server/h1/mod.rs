//! The proxy's own HTTP/1.1 server, for the connections that speak only HTTP/1.1 (cleartext
//! without `h2c`, TLS without ALPN `h2`): every SDK the proxy supports polls this way, one
//! connection per held poll.
//!
//! Why not hyper's: its HTTP/1.1 connection keeps a header buffer (8 KiB) from the start, a
//! read buffer (8 KiB) for its whole life and a second one while a call waits (hyper reads on
//! to notice the client leaving, and the first is still shared with the request's header
//! values), and boxes the call's future beside the connection's: 38.9 KiB per held poll
//! against HAProxy's 4.7 (`bench/long_polls.py`). Here a connection holds no buffer while it
//! waits for its next request or for the upstream's answer: the read buffer is allocated when
//! the socket turns readable and released once the request is read whole (its head shared by
//! the header values until the handler drops them, before forwarding), and the answer is
//! written from the handler's own bytes.
//!
//! What it does, as hyper does: requests parsed with `httparse` (`head`), bodies delimited by
//! length or chunked (the decoder the upstream side uses, `forward::h1`), `Expect:
//! 100-continue`, keep-alive and pipelining, HTTP/1.0, `date`, answers delimited by length or
//! chunked, the client leaving mid-call ending the call, a graceful close. A head that cannot
//! be read is answered with a bare 400 or 431 and put on record, and the connection closes.
//! Timeouts are the watchdog's (`watch`), as for hyper's connections.

mod answer;
#[cfg(test)]
mod differential;
pub mod head;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::calls::{Answered, Calls, Started};
use super::watch::{Activity, Watched};
use crate::forward::h1::{BodyDecoder, Decoded, Framing};
use crate::handler::{self, BodyFault, CallBody};
use answer::Delimit;
use head::Head;

/// The first read of a head; the buffer doubles up to the head limit when a head needs more.
const HEAD_BUFFER: usize = 4096;
/// Reads of a chunked body, and while a call waits (a pipelined request, or the close).
const READ_PIECE: usize = 4096;

/// A client connection's transport: waits for bytes (or the close) without a buffer.
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// Reads into `buf`, given `size` bytes of room if it has none. TLS has its own buffers
    /// and records: it just reads.
    fn read_fresh(
        &mut self,
        buf: &mut BytesMut,
        size: usize,
    ) -> impl std::future::Future<Output = io::Result<usize>> + Send {
        async move {
            if buf.capacity() == buf.len() {
                buf.reserve(size);
            }
            self.read_buf(buf).await
        }
    }
}

impl Transport for Watched<TcpStream> {
    /// The room is given only once the socket is readable, and given back if the read would
    /// wait: a connection waiting for its client holds no buffer. The read is tokio's own,
    /// which takes a short read as the socket drained, so the next wait costs no syscall.
    async fn read_fresh(&mut self, buf: &mut BytesMut, size: usize) -> io::Result<usize> {
        loop {
            poll_fn(|cx| self.poll_read_ready(cx)).await?;
            if buf.capacity() == buf.len() {
                buf.reserve(size);
            }
            // One attempt: a read that would wait leaves the socket's interest registered.
            let read = poll_fn(|cx| match pin!(self.read_buf(&mut *buf)).poll(cx) {
                std::task::Poll::Ready(read) => std::task::Poll::Ready(Some(read)),
                std::task::Poll::Pending => std::task::Poll::Ready(None),
            })
            .await;
            match read {
                Some(read) => return read,
                None if buf.is_empty() => *buf = BytesMut::new(),
                None => {}
            }
        }
    }
}

impl Transport for TlsStream<Watched<TcpStream>> {}

#[cfg(test)]
impl Transport for tokio::io::DuplexStream {}

/// Limits of one connection's requests.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    /// The most bytes a head may take (hyper's `max_buf_size`, as before: at least 8 KiB).
    pub head: usize,
}

/// Serves HTTP/1.1 calls on `io` until the connection ends, the client leaves, or it is asked
/// to close (`Activity::close_gracefully`).
pub(super) async fn serve<T: Transport>(mut io: T, calls: &Calls, limits: Limits) {
    let activity = &*calls.activity;
    let mut buf = BytesMut::new();
    loop {
        let Some(Next {
            started,
            request,
            keep_alive,
            whole,
            head_request,
        }) = next(&mut io, &mut buf, calls, limits).await
        else {
            return;
        };
        let version = request.version();
        let answered = {
            let mut respond = pin!(calls.respond(started, request));
            // The client leaving ends the call (as hyper's server does); bytes arriving are
            // the next request's, kept for after the answer.
            let mut watching = buf.is_empty();
            loop {
                tokio::select! {
                    biased;
                    answered = &mut respond => break answered,
                    left = client_left(&mut io, &mut buf), if watching => {
                        if left {
                            return;
                        }
                        watching = false;
                    }
                }
            }
        };
        let close = !keep_alive || !whole || activity.closing() || closes(&answered);
        match write_answer(&mut io, answered, version, close, head_request).await {
            Ok(true) if !close => {}
            Ok(_) | Err(_) => {
                let _ = io.shutdown().await;
                return;
            }
        }
    }
}

/// A call read whole, ready to be answered.
struct Next {
    started: Started,
    request: Request<CallBody>,
    /// The connection may carry another request after this one's answer.
    keep_alive: bool,
    /// The body's framing was read to its end.
    whole: bool,
    head_request: bool,
}

/// Reads the next request, head and body; `None` when the connection ends first. Its own
/// function: while the call waits, nothing of the reading is held beside it.
async fn next<T: Transport>(
    io: &mut T,
    buf: &mut BytesMut,
    calls: &Calls,
    limits: Limits,
) -> Option<Next> {
    let head = match read_head(io, buf, limits.head, &calls.activity).await {
        Ok(Some(head)) => head,
        Ok(None) | Err(End::Io) => return None,
        Err(End::Refused(refusal)) => {
            // As hyper: a bare status, the connection closed, and the refusal on record.
            let _ = io.write_all(&answer::bare(refusal.status)).await;
            let _ = io.shutdown().await;
            if calls.serves == super::Serves::Proxy {
                handler::record_unparsed(
                    &calls.runtime.app(),
                    calls.peer,
                    refusal.status,
                    &refusal.why,
                );
            }
            return None;
        }
    };
    let Head {
        request,
        body: framing,
        keep_alive,
        expect_continue,
    } = head;
    let head_request = request.method() == Method::HEAD;
    let started = calls.start(request.version());
    let (body, whole) = if started.admitted() {
        let limit = handler::body_limit(&started.app, request.headers());
        let timeout = started.app.body_read_timeout;
        let reading = Reading {
            framing,
            limit,
            expect_continue,
        };
        read_body(io, buf, reading, timeout).await
    } else {
        // Refused at capacity: its body is not read, and the connection ends after.
        (Ok(Bytes::new()), framing == Framing::Length(0))
    };
    // Nothing is held while the call waits: a pipelined request keeps its own bytes.
    *buf = if buf.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&buf[..])
    };
    let (parts, ()) = request.into_parts();
    Some(Next {
        started,
        request: Request::from_parts(parts, CallBody::Read(body)),
        keep_alive,
        whole,
        head_request,
    })
}

/// Why a connection ends while waiting for a head.
#[derive(Debug)]
enum End {
    Io,
    Refused(head::Refusal),
}

/// The next request head, reading as needed; `None` when the client closes (or the
/// connection is asked to close) between requests. An idle connection holds no buffer.
async fn read_head<T: Transport>(
    io: &mut T,
    buf: &mut BytesMut,
    max: usize,
    activity: &Activity,
) -> Result<Option<Head>, End> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = head::parse(buf, max).map_err(End::Refused)? {
                return Ok(Some(head));
            }
        }
        let read = if buf.is_empty() {
            tokio::select! {
                biased;
                () = activity.closing_asked() => return Ok(None),
                read = io.read_fresh(buf, HEAD_BUFFER) => read,
            }
        } else {
            // Doubled as a head needs it; `head::parse` refuses one that reaches `max`.
            if buf.capacity() == buf.len() {
                buf.reserve(buf.capacity());
            }
            io.read_buf(buf).await
        };
        match read {
            Ok(0) if buf.is_empty() => return Ok(None),
            // A head broken off by the close: nothing to answer.
            Ok(0) | Err(_) => return Err(End::Io),
            Ok(_) => {}
        }
    }
}

/// While a call waits: whether the client has closed the connection (or it failed); `false`
/// when bytes arrived instead (a pipelined request, kept in `buf`).
async fn client_left<T: Transport>(io: &mut T, buf: &mut BytesMut) -> bool {
    !matches!(io.read_fresh(buf, READ_PIECE).await, Ok(n) if n > 0)
}

/// How a body is to be read.
struct Reading {
    framing: Framing,
    limit: usize,
    expect_continue: bool,
}

/// Reads a request's body whole, within `limit` and `timeout`; and whether its framing was
/// read to the end (if not, the connection cannot carry another request).
async fn read_body<T: Transport>(
    io: &mut T,
    buf: &mut BytesMut,
    reading: Reading,
    timeout: Duration,
) -> (Result<Bytes, BodyFault>, bool) {
    match reading.framing {
        Framing::Length(0) => return (Ok(Bytes::new()), true),
        // Declared over the limit: refused without reading it.
        Framing::Length(n) if n > reading.limit as u64 => return (Err(BodyFault::TooLarge), false),
        _ => {}
    }
    let mut decoder = BodyDecoder::new(reading.framing);
    let interim =
        reading.expect_continue && decoder.remaining().is_none_or(|n| n > buf.len() as u64);
    if interim && (io.write_all(answer::CONTINUE).await.is_err() || io.flush().await.is_err()) {
        return (Err(BodyFault::Unreadable), false);
    }
    let read = tokio::time::timeout(timeout, decode(io, buf, &mut decoder, reading.limit)).await;
    match read {
        Ok(Ok(body)) => (Ok(body), true),
        Ok(Err(fault)) => (Err(fault), false),
        Err(_) => (Err(BodyFault::TimedOut), false),
    }
}

/// Decodes a body from `buf`, reading more as needed.
async fn decode<T: Transport>(
    io: &mut T,
    buf: &mut BytesMut,
    decoder: &mut BodyDecoder,
    limit: usize,
) -> Result<Bytes, BodyFault> {
    // In bytes of its own: a slice of the read buffer would keep the whole buffer for as
    // long as the forwarder holds the body (until the upstream answers).
    // A declared length is within `limit` here (`read_body`).
    let declared = decoder
        .remaining()
        .map(|n| usize::try_from(n).unwrap_or(limit));
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    loop {
        match decoder.decode(buf).map_err(|_| BodyFault::Unreadable)? {
            Decoded::Data(data) => {
                if body.len() + data.len() > limit {
                    return Err(BodyFault::TooLarge);
                }
                body.extend_from_slice(&data);
            }
            Decoded::End => return Ok(body.freeze()),
            Decoded::NeedMore => {
                // What is left of a declared length, or a piece of a chunked body.
                if buf.capacity() == buf.len() {
                    let left = decoder
                        .remaining()
                        .map(|n| usize::try_from(n).unwrap_or(limit));
                    buf.reserve(left.unwrap_or(READ_PIECE).max(1));
                }
                match io.read_buf(buf).await {
                    Ok(0) | Err(_) => return Err(BodyFault::Unreadable),
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Whether the handler's answer closes the connection.
fn closes(answered: &Answered) -> bool {
    answered
        .headers()
        .get(http::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// Writes an answer whole to a client of `version`; `close`: the connection ends after it.
/// `Ok(false)` when its body could not be delimited as declared (the connection must end).
async fn write_answer<T: Transport, B>(
    io: &mut T,
    answered: http::Response<B>,
    version: Version,
    close: bool,
    head_request: bool,
) -> io::Result<bool>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let (parts, mut body) = answered.into_parts();
    let length = hyper::body::Body::size_hint(&body).exact();
    let delimit = match length {
        Some(n) => Delimit::Length(n),
        None if version >= Version::HTTP_11 => Delimit::Chunked,
        // HTTP/1.0 has no chunked coding: the body ends with the connection.
        None => Delimit::Close,
    };
    let close = close || delimit == Delimit::Close;
    let connection = if close {
        Some("close")
    } else if version == Version::HTTP_10 {
        Some("keep-alive")
    } else {
        None
    };
    let head = answer::head(&parts, delimit, connection);
    if head_request || length == Some(0) {
        io.write_all(&head).await?;
        io.flush().await?;
        return Ok(true);
    }
    let mut head = Some(head);
    let mut written = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // The upstream's answer broke off: the client sees the connection end.
            return Ok(false);
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        written += data.len() as u64;
        if length.is_some_and(|n| written > n) {
            return Ok(false);
        }
        let framed = match delimit {
            Delimit::Chunked => {
                let mut line = head.take().unwrap_or_default();
                line.extend_from_slice(&answer::chunk_line(data.len()));
                Bytes::from(line)
                    .chain(data)
                    .chain(Bytes::from_static(b"\r\n"))
            }
            _ => Bytes::from(head.take().unwrap_or_default())
                .chain(data)
                .chain(Bytes::new()),
        };
        let mut framed = framed;
        io.write_all_buf(&mut framed).await?;
    }
    let mut tail = Bytes::from(head.take().unwrap_or_default());
    if delimit == Delimit::Chunked {
        tail = [&tail[..], b"0\r\n\r\n"].concat().into();
    }
    if !tail.is_empty() {
        io.write_all(&tail).await?;
    }
    io.flush().await?;
    Ok(length.is_none_or(|n| written == n))
}
