//! Upstream connections kept per thread and driven by the call that uses them.
//!
//! A pooled client in the usual style runs each connection as a task of its own and reaches it
//! through channels, so every call hops between tasks (often between threads) on the way out
//! and back. Here a call takes an idle connection from its own thread's pool, writes its
//! request and reads the answer's head itself (HTTP/1.1 as `h1` parses it), and the answer's
//! body (`UpstreamBody`) reads the rest as the client takes it. When the body ends, the
//! connection goes back to the pool, holding no buffer. With one single-threaded runtime per
//! core (`server::run_workers`), a call's upstream I/O never leaves its core.
//!
//! Connections are tagged with their connector's identity (host, port, trust roots), so a
//! reload that keeps the upstream keeps its connections, and one that changes the upstream
//! closes the old connections instead of reusing them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::Response;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::connect::{Connector, Stream};
use super::h1::{self, BodyDecoder, Decoded};

/// How long a connection may sit idle in the pool; below the usual upstream keep-alive limits.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Idle connections kept per thread; past this the oldest is closed.
const MAX_IDLE_PER_THREAD: usize = 1024;
/// The first read of an answer takes this much; a larger answer grows the buffer.
const READ_CHUNK: usize = 4096;

struct Idle {
    lease: Lease,
    since: Instant,
}

thread_local! {
    static IDLE: RefCell<VecDeque<Idle>> = const { RefCell::new(VecDeque::new()) };
}

/// A connection in use by one call. Between calls it holds no buffer.
pub(super) struct Lease {
    owner: u64,
    stream: Stream,
}

/// Why an exchange failed, and whether the request can go again elsewhere.
struct Failure {
    error: io::Error,
    /// Not a byte of the request was written.
    unsent: bool,
}

impl Lease {
    /// The most recently used idle connection of `owner` on this thread that is still open.
    fn reuse(owner: u64) -> Option<Lease> {
        loop {
            let idle = IDLE.with(|pool| pool.borrow_mut().pop_back())?;
            if idle.lease.owner != owner || idle.since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            let mut lease = idle.lease;
            if lease.ready_now() {
                return Some(lease);
            }
        }
    }

    /// Whether the connection is open and has nothing to read, without waiting: an upstream
    /// that closed it while idle (or sent bytes nobody asked for) makes it unusable.
    fn ready_now(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        Pin::new(&mut self.stream)
            .poll_read(&mut cx, &mut probe)
            .is_pending()
    }

    /// Back to this thread's pool.
    fn release(self) {
        let now = Instant::now();
        IDLE.with(|pool| {
            let mut pool = pool.borrow_mut();
            while pool
                .front()
                .is_some_and(|idle| now.duration_since(idle.since) > IDLE_TIMEOUT)
            {
                pool.pop_front();
            }
            if pool.len() >= MAX_IDLE_PER_THREAD {
                pool.pop_front();
            }
            pool.push_back(Idle {
                lease: self,
                since: now,
            });
        });
    }

    /// Writes the request (head and body in one vectored write when the socket takes it),
    /// then reads the answer's head. The buffer returned holds what was read past the head.
    async fn exchange(
        &mut self,
        head: &[u8],
        body: &[u8],
    ) -> Result<(h1::Head, BytesMut), Failure> {
        let mut written = 0;
        let total = head.len() + body.len();
        while written < total {
            let (a, b) = if written < head.len() {
                (&head[written..], body)
            } else {
                (&body[written - head.len()..], &[][..])
            };
            let slices = [io::IoSlice::new(a), io::IoSlice::new(b)];
            let n = poll_fn(|cx| Pin::new(&mut self.stream).poll_write_vectored(cx, &slices))
                .await
                .and_then(|n| match n {
                    0 => Err(io::ErrorKind::WriteZero.into()),
                    n => Ok(n),
                })
                .map_err(|error| Failure {
                    error,
                    // Over TLS a failed write may have sent some records already.
                    unsent: written == 0 && matches!(self.stream, Stream::Plain(_)),
                })?;
            written += n;
        }
        let sent = |error| Failure {
            error,
            unsent: false,
        };
        poll_fn(|cx| Pin::new(&mut self.stream).poll_flush(cx))
            .await
            .map_err(sent)?;
        let mut buf = BytesMut::new();
        loop {
            if let Some(head) = h1::parse_head(&mut buf).map_err(|e| sent(invalid(e)))? {
                return Ok((head, buf));
            }
            if poll_fn(|cx| self.poll_fill(cx, &mut buf))
                .await
                .map_err(sent)?
                == 0
            {
                return Err(sent(invalid(h1::Error::Incomplete)));
            }
        }
    }

    /// Reads what has arrived into `buf`; 0 at the end of the stream. An empty buffer is
    /// allocated only once the socket has something to read, so a held poll holds none.
    fn poll_fill(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        if buf.capacity() == buf.len() {
            if buf.capacity() == 0 {
                if let Stream::Plain(tcp) = &self.stream {
                    ready!(tcp.poll_read_ready(cx))?;
                }
            }
            buf.reserve(buf.len().max(READ_CHUNK));
        }
        pin!(self.stream.read_buf(buf)).poll(cx)
    }
}

fn invalid(e: h1::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Closes this thread's idle connections that have expired or that the upstream has closed.
/// Each worker runs this periodically, so a quiet worker does not hold sockets open.
pub fn sweep_idle() {
    let now = Instant::now();
    IDLE.with(|pool| {
        pool.borrow_mut().retain_mut(|idle| {
            now.duration_since(idle.since) <= IDLE_TIMEOUT && idle.lease.ready_now()
        });
    });
}

/// Sends the request (`head`, then `body`) upstream on a pooled connection of `connector`'s
/// identity, or a new one. A pooled connection the upstream closed just before use fails
/// before a byte is written; the request then goes once more, on a new connection.
pub(super) async fn send(
    connector: &Connector,
    head: &[u8],
    body: &[u8],
) -> Result<Response<UpstreamBody>, Error> {
    let owner = connector.identity();
    let mut pooled = Lease::reuse(owner);
    loop {
        let reused = pooled.is_some();
        let mut lease = match pooled.take() {
            Some(lease) => lease,
            None => {
                // Boxed: connecting is rare, and its future (TLS included) is large.
                let stream = Box::pin(connector.connect())
                    .await
                    .map_err(Error::Connect)?;
                Lease { owner, stream }
            }
        };
        match lease.exchange(head, body).await {
            Ok((head, buf)) => {
                let mut response = Response::new(UpstreamBody::new(lease, &head, buf));
                *response.status_mut() = head.status;
                *response.headers_mut() = head.headers;
                return Ok(response);
            }
            Err(Failure { unsent: true, .. }) if reused => {}
            Err(Failure { error, .. }) => return Err(Error::Exchange(error)),
        }
    }
}

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("{0}")]
    Exchange(io::Error),
}

/// The body of an upstream answer. Reading it reads the connection it comes on; at its end
/// the connection returns to the pool, if its answer allows.
pub struct UpstreamBody {
    /// `None` once the body has ended or failed.
    lease: Option<Lease>,
    buf: BytesMut,
    decoder: BodyDecoder,
    reusable: bool,
}

impl UpstreamBody {
    fn new(lease: Lease, head: &h1::Head, buf: BytesMut) -> UpstreamBody {
        let mut body = UpstreamBody {
            lease: Some(lease),
            buf,
            decoder: BodyDecoder::new(head.body),
            reusable: head.reusable,
        };
        // An empty body is never read: the connection is free already.
        if body.decoder.is_done() {
            body.finish();
        }
        body
    }

    /// The body has been read: the connection goes back to the pool if the answer allows and
    /// nothing followed it, and the read buffer goes.
    fn finish(&mut self) {
        if let Some(lease) = self.lease.take() {
            if self.reusable && self.buf.is_empty() {
                lease.release();
            }
        }
        self.buf = BytesMut::new();
    }

    /// The whole body, if it is at most `max` bytes.
    pub async fn read_all(self, max: usize) -> io::Result<Bytes> {
        http_body_util::BodyExt::collect(http_body_util::Limited::new(self, max))
            .await
            .map(|whole| whole.to_bytes())
            .map_err(|e| match e.downcast::<io::Error>() {
                Ok(e) => *e,
                Err(other) => io::Error::new(io::ErrorKind::InvalidData, other),
            })
    }

    /// A broken answer leaves the connection in an unknown state: close it.
    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.lease = None;
        self.buf = BytesMut::new();
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            match this.decoder.decode(&mut this.buf) {
                Err(e) => return this.fail(invalid(e)),
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::Data(data)) => {
                    // A body read in one piece frees its connection at once.
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::NeedMore) => {}
            }
            let Some(lease) = &mut this.lease else {
                return this.fail(invalid(h1::Error::Incomplete));
            };
            match ready!(lease.poll_fill(cx, &mut this.buf)) {
                Ok(0) => {
                    // The end of the stream ends a body delimited by it (never a reusable
                    // connection's), and no other.
                    if let Err(e) = this.decoder.closed() {
                        return this.fail(invalid(e));
                    }
                }
                Ok(_) => {}
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn idle_count() -> usize {
        IDLE.with(|pool| pool.borrow().len())
    }

    /// An upstream on one connection: each request read gets the next of `answers` written
    /// as it is; the connection closes when `close` is sent, and `closed` then completes.
    struct Upstream {
        connector: Connector,
        close: tokio::sync::oneshot::Sender<()>,
        closed: tokio::sync::oneshot::Receiver<()>,
    }

    async fn upstream(answers: &'static [&'static [u8]]) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (close, closing) = tokio::sync::oneshot::channel::<()>();
        let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            for answer in answers {
                let _ = stream.read(&mut buf).await.unwrap();
                stream.write_all(answer).await.unwrap();
            }
            let _ = closing.await;
            drop(stream);
            let _ = closed_tx.send(());
        });
        IDLE.with(|pool| pool.borrow_mut().clear());
        let connector = Connector::new("127.0.0.1", port, None, Duration::from_secs(5)).unwrap();
        Upstream {
            connector,
            close,
            closed,
        }
    }

    async fn call(connector: &Connector) -> Response<UpstreamBody> {
        let head = h1::request_head(&[("host", b"upstream")], 2);
        send(connector, &head, b"{}").await.unwrap()
    }

    async fn read(response: Response<UpstreamBody>) -> Bytes {
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes()
    }

    #[tokio::test]
    async fn the_sweep_closes_connections_the_upstream_closed() {
        let upstream = upstream(&[
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let response = call(&upstream.connector).await;
        assert_eq!(read(response).await, "{}");
        assert_eq!(idle_count(), 1, "the connection went back to the pool");

        sweep_idle();
        assert_eq!(idle_count(), 1, "an open connection is kept");

        // An answer with no body frees its connection though its body is never polled.
        let response = call(&upstream.connector).await;
        assert_eq!(response.status(), 204);
        assert_eq!(idle_count(), 1, "back in the pool before the body was read");
        drop(response);
        assert_eq!(idle_count(), 1);

        upstream.close.send(()).unwrap();
        upstream.closed.await.unwrap();
        sweep_idle();
        assert_eq!(
            idle_count(),
            0,
            "a connection the upstream closed is dropped"
        );
    }

    /// A connection that became readable while it sat in the pool (an answer nobody asked
    /// for arrived late) is not used again: its bytes would be read as the next call's answer.
    #[tokio::test]
    async fn a_connection_that_became_readable_while_idle_is_not_reused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (wrote_stray, stray_written) = tokio::sync::oneshot::channel::<()>();
        let (pooled, was_pooled) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut first, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = first.read(&mut buf).await.unwrap();
            first
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
            // Late, once the connection is back in the pool: an answer to nothing.
            was_pooled.await.unwrap();
            first
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n\"stray\"")
                .await
                .unwrap();
            let _ = wrote_stray.send(());
            let (mut second, _) = listener.accept().await.unwrap();
            let _ = second.read(&mut buf).await.unwrap();
            second
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n\"ok\"")
                .await
                .unwrap();
            let _ = first.read(&mut buf).await;
        });
        IDLE.with(|pool| pool.borrow_mut().clear());
        let connector = Connector::new("127.0.0.1", port, None, Duration::from_secs(5)).unwrap();
        assert_eq!(read(call(&connector).await).await, "{}");
        assert_eq!(idle_count(), 1);
        pooled.send(()).unwrap();
        stray_written.await.unwrap();
        // The stray bytes are in the socket now (loopback delivers them as they are written).
        assert_eq!(
            read(call(&connector).await).await,
            "\"ok\"",
            "a new connection's answer"
        );
    }

    /// An upstream that sends more than one answer's bytes (a second, unasked-for answer
    /// behind the first) must not have its connection reused: the next call would read the
    /// stray answer as its own.
    #[tokio::test]
    async fn a_connection_with_bytes_after_the_answer_is_not_reused() {
        let upstream = upstream(&[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}\
              HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{\"a\":\"b\"}"])
        .await;
        let response = call(&upstream.connector).await;
        assert_eq!(read(response).await, "{}", "the first answer, exactly");
        assert_eq!(idle_count(), 0, "the connection was closed, not pooled");
    }
}
