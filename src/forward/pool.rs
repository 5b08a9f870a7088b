//! Upstream connections kept per thread and driven by the call that uses them.
//!
//! A pooled client in the usual style runs each connection as a task of its own and reaches it
//! through channels, so every call hops between tasks (often between threads) on the way out
//! and back. Here a call takes an idle connection from its own thread's pool, polls the
//! connection itself while it waits for the answer, and the answer's body (`UpstreamBody`)
//! keeps polling it while the client reads. When the body ends, the connection goes back to
//! the pool. With one single-threaded runtime per core (`server::run_workers`), a call's
//! upstream I/O never leaves its core.
//!
//! Connections are tagged with their connector's identity (host, port, trust roots), so a
//! reload that keeps the upstream keeps its connections, and one that changes the upstream
//! closes the old connections instead of reusing them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};

use super::connect::{Connection, Connector, Sender};

/// How long a connection may sit idle in the pool; below the usual upstream keep-alive limits.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Idle connections kept per thread; past this the oldest is closed.
const MAX_IDLE_PER_THREAD: usize = 1024;

struct Idle {
    lease: Lease,
    since: Instant,
}

thread_local! {
    static IDLE: RefCell<VecDeque<Idle>> = const { RefCell::new(VecDeque::new()) };
}

/// A connection in use by one call.
pub(super) struct Lease {
    owner: u64,
    sender: Sender,
    /// `None` once the connection has ended.
    connection: Option<Connection>,
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

    /// Whether the connection is open and free for a request, without waiting: one poll of
    /// the connection sees an upstream that has closed it while idle.
    fn ready_now(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.drive(&mut cx);
        self.connection.is_some() && matches!(self.sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }

    /// Lets the connection read and write what it can.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(connection) = &mut self.connection {
            if let Poll::Ready(result) = Pin::new(connection).poll(cx) {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                self.connection = None;
            }
        }
    }

    /// Back to this thread's pool, if the connection can take another request.
    fn release(mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        self.drive(&mut cx);
        if self.connection.is_none() || self.sender.is_closed() {
            return;
        }
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

    /// Sends `request` and waits for the answer's head, polling the connection meanwhile.
    /// On failure before the request was written, the request comes back for another try.
    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, (hyper::Error, Option<Request<Full<Bytes>>>)> {
        let mut answer = pin!(self.sender.try_send_request(request));
        let result = poll_fn(|cx| {
            self.drive(cx);
            answer.as_mut().poll(cx)
        })
        .await;
        result.map_err(|mut e| {
            let request = e.take_message();
            (e.into_error(), request)
        })
    }
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

/// Sends `request` upstream on a pooled connection of `connector`'s identity, or a new one. A
/// pooled connection the upstream closed just before use fails before the request is
/// written; the request then goes once more, on a new connection.
pub(super) async fn send(
    connector: &Connector,
    request: Request<Full<Bytes>>,
) -> Result<Response<UpstreamBody>, Error> {
    let owner = connector.identity();
    let mut request = request;
    let mut pooled = Lease::reuse(owner);
    loop {
        let reused = pooled.is_some();
        let mut lease = match pooled.take() {
            Some(lease) => lease,
            None => {
                // Boxed: connecting is rare, and its future (TLS included) is large.
                let (sender, connection) = Box::pin(connector.connect())
                    .await
                    .map_err(Error::Connect)?;
                Lease {
                    owner,
                    sender,
                    connection: Some(connection),
                }
            }
        };
        match lease.exchange(request).await {
            Ok(response) => return Ok(response.map(|body| UpstreamBody::new(body, lease))),
            Err((_, Some(unsent))) if reused => request = unsent,
            Err((e, _)) => return Err(Error::Exchange(e)),
        }
    }
}

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Exchange(hyper::Error),
}

/// The body of an upstream answer. Reading it drives the connection it comes on; at its end
/// the connection returns to the pool.
pub struct UpstreamBody {
    body: Incoming,
    lease: Option<Lease>,
}

impl UpstreamBody {
    fn new(body: Incoming, lease: Lease) -> UpstreamBody {
        let mut body = UpstreamBody {
            body,
            lease: Some(lease),
        };
        // An empty body is never read: the connection is free already.
        if body.body.is_end_stream() {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(lease) = &mut this.lease {
            lease.drive(cx);
        }
        let frame = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.finish(),
            Some(Ok(_)) if this.body.is_end_stream() => this.finish(),
            Some(Ok(_)) => {}
            // A broken answer leaves the connection in an unknown state: close it.
            Some(Err(_)) => this.lease = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn idle_count() -> usize {
        IDLE.with(|pool| pool.borrow().len())
    }

    /// An upstream that answers one request on one connection, then closes it when told.
    #[tokio::test]
    async fn the_sweep_closes_connections_the_upstream_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (close, closing) = tokio::sync::oneshot::channel::<()>();
        let (closed, is_closed) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await.unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
            let _ = closing.await;
            drop(stream);
            let _ = closed.send(());
        });
        let connector = Connector::new("127.0.0.1", port, None, Duration::from_secs(5)).unwrap();
        let request = Request::new(Full::new(Bytes::from_static(b"{}")));
        let response = send(&connector, request).await.unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        assert_eq!(body.to_bytes(), "{}");
        assert_eq!(idle_count(), 1, "the connection went back to the pool");

        sweep_idle();
        assert_eq!(idle_count(), 1, "an open connection is kept");

        close.send(()).unwrap();
        is_closed.await.unwrap();
        sweep_idle();
        assert_eq!(
            idle_count(),
            0,
            "a connection the upstream closed is dropped"
        );
    }
}
