//! Accepting connections and serving HTTP/1.1 and HTTP/2 on them, in the clear or over TLS,
//! within the configured limits (SPEC, "Connections"), and draining them on shutdown.
//! `swf-warden serve` uses `run_workers` (one single-threaded runtime per core); `run` serves
//! on the current runtime, so tests bind `127.0.0.1:0` and start the real server in-process.
//! Both take a bound listener.
//!
//! Every connection is held to the caps (`caps`: a slot per connection, and one per further
//! concurrent call on it) and to the timeouts (`watch`: one watchdog per connection, which
//! drops a connection that is late with its head or does not take its answers, and closes an
//! idle one gracefully); when slots run short, idle connections yield to new ones
//! (`pressure`). The admin listener is served the same way, with its own cap.

mod calls;
mod caps;
pub mod h1;
mod pressure;
mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch as signal};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::Limits;
use crate::handler::{self, CallBody, Peer};
use crate::metrics::{Closed, Metrics};
use crate::runtime::Runtime;
use calls::Calls;
use caps::{Caps, Slot};
use pressure::Pressure;
use watch::{Activity, Timeouts, Watchdog, Watched};

/// What serving a connection ends with (hyper's error, if any).
type Served = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// How the listener serves.
#[derive(Clone)]
pub struct Options {
    pub tls: Option<TlsAcceptor>,
    /// Cleartext HTTP/2 with prior knowledge (without TLS); over TLS, ALPN decides.
    pub h2c: bool,
    pub limits: Limits,
    pub serves: Serves,
}

/// What a listener answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serves {
    /// SWF (and STS) calls: the request path.
    Proxy,
    /// `/healthz`, `/readyz`, `/metrics` (`admin`).
    Admin,
}

impl Options {
    /// The proxy's listener.
    pub fn proxy(tls: Option<TlsAcceptor>, h2c: bool, limits: Limits) -> Options {
        Options {
            tls,
            h2c,
            limits,
            serves: Serves::Proxy,
        }
    }

    /// The admin listener: the proxy's header, idle and write timeouts, its own cap on
    /// connections, and no cap per address.
    pub fn admin(limits: &Limits, max_connections: usize) -> Options {
        Options {
            tls: None,
            h2c: true,
            limits: Limits {
                max_connections,
                max_connections_per_ip: None,
                // Nothing the admin answers takes long; a probe does not hold a shutdown.
                drain_timeout: std::time::Duration::from_secs(1),
                ..limits.clone()
            },
            serves: Serves::Admin,
        }
    }
}

/// How often each worker closes its expired or upstream-closed idle upstream connections.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection accepted within the caps, for a worker to serve.
struct Accepted {
    stream: std::net::TcpStream,
    addr: SocketAddr,
    slot: Slot,
    /// When the connection was accepted: its header deadline counts from here.
    at: Instant,
}

/// Serves on `workers` threads, each running its own single-threaded runtime (thread-per-core).
/// This task accepts and deals the connections out in turn; from then on a connection and every
/// call on it (upstream connection included) stay on one worker, with no cross-thread
/// wake-ups. The caps are shared by every worker. Stops accepting when `shutdown` completes
/// and returns once every worker has drained.
pub async fn run_workers(
    listener: TcpListener,
    workers: usize,
    runtime: Arc<Runtime>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let caps = Caps::new(
        options.limits.max_connections,
        options.limits.max_connections_per_ip,
    );
    let pressure = Pressure::new(options.limits.max_connections);
    runtime
        .metrics
        .set_max_connections(options.limits.max_connections);
    let mut queues = Vec::with_capacity(workers);
    let mut done = Vec::with_capacity(workers);
    for index in 0..workers.max(1) {
        let (queue, mut accepted) = mpsc::unbounded_channel::<Accepted>();
        let (finished, wait) = tokio::sync::oneshot::channel::<()>();
        let (runtime, options, caps, pressure) = (
            runtime.clone(),
            options.clone(),
            caps.clone(),
            pressure.clone(),
        );
        let worker = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("swf-warden-worker-{index}"))
            .spawn(move || {
                worker.block_on(async move {
                    tokio::spawn(async {
                        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
                        loop {
                            sweep.tick().await;
                            crate::forward::sweep_idle();
                        }
                    });
                    let server = Server::new(runtime, options, caps, pressure);
                    while let Some(Accepted {
                        stream,
                        addr,
                        slot,
                        at,
                    }) = accepted.recv().await
                    {
                        match tokio::net::TcpStream::from_std(stream) {
                            Ok(stream) => server.spawn(stream, addr, slot, at),
                            Err(e) => tracing::warn!(error = %e, "cannot serve a connection"),
                        }
                    }
                    server.drain().await;
                });
                let _ = finished.send(());
            })?;
        queues.push(queue);
        done.push(wait);
    }
    let mut next = 0;
    tokio::pin!(shutdown);
    while let Some((stream, addr, slot, at)) =
        accept(&listener, &caps, &pressure, &runtime.metrics, &mut shutdown).await
    {
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a connection over");
                continue;
            }
        };
        let mut accepted = Accepted {
            stream,
            addr,
            slot,
            at,
        };
        // A worker whose thread has ended no longer takes connections: the next one does.
        while !queues.is_empty() {
            next = (next + 1) % queues.len();
            match queues[next].send(accepted) {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) => {
                    tracing::error!("a worker thread has ended; serving on the others");
                    queues.remove(next);
                    accepted = back;
                }
            }
        }
        if queues.is_empty() {
            break;
        }
    }
    drop(listener);
    let lost = queues.is_empty();
    drop(queues);
    for wait in done {
        let _ = wait.await;
    }
    if lost {
        return Err(std::io::Error::other("no worker thread is left"));
    }
    Ok(())
}

/// Serves on the current runtime until `shutdown` completes, then stops accepting and lets
/// calls in flight finish (long polls included) for up to the drain timeout.
pub async fn run(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) {
    let caps = Caps::new(
        options.limits.max_connections,
        options.limits.max_connections_per_ip,
    );
    let pressure = Pressure::new(options.limits.max_connections);
    let metrics = runtime.metrics.clone();
    if options.serves == Serves::Proxy {
        metrics.set_max_connections(options.limits.max_connections);
    }
    let server = Server::new(runtime, options, caps.clone(), pressure.clone());
    tokio::pin!(shutdown);
    while let Some((stream, addr, slot, at)) =
        accept(&listener, &caps, &pressure, &metrics, &mut shutdown).await
    {
        server.spawn(stream, addr, slot, at);
    }
    drop(listener);
    server.drain().await;
}

/// How often a connection waiting for a slot asks idle connections again to make way.
const RELIEVE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The next connection, with its slot under the caps; `None` on shutdown. A connection from
/// an address at `max_connections_per_ip` is closed at once (the others must still be
/// served); past `max_connections`, the accepted connection waits for a slot and new ones
/// wait in the backlog, holding no descriptor. While slots are short, idle connections are
/// asked to make way (`pressure`). The instant returned is when the connection got its slot.
async fn accept(
    listener: &TcpListener,
    caps: &Arc<Caps>,
    pressure: &Pressure,
    metrics: &Metrics,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Option<(TcpStream, SocketAddr, Slot, Instant)> {
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept; keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut *shutdown => return None,
        };
        let Ok(ticket) = caps.address(addr.ip()) else {
            metrics.closed(Closed::PerIpLimit);
            tracing::debug!(peer = %addr, "connection refused: its address is at max_connections_per_ip");
            continue;
        };
        let waiting = caps.connection(ticket);
        tokio::pin!(waiting);
        let slot = loop {
            pressure.relieve(caps.free());
            tokio::select! {
                slot = &mut waiting => break slot?,
                () = &mut *shutdown => return None,
                () = tokio::time::sleep(RELIEVE_INTERVAL) => {}
            }
        };
        // Taking this slot may have left fewer than a tenth free.
        pressure.relieve(caps.free());
        let _ = stream.set_nodelay(true);
        // The header-read deadline counts from here: time spent waiting for a slot is the
        // proxy's, not the client's (a head sent at once must not time out in the queue).
        return Some((stream, addr, slot, Instant::now()));
    }
}

/// hyper's servers a connection may get: HTTP/2 only (TLS with ALPN `h2`), or either by prior
/// knowledge (cleartext with `h2c`). HTTP/1.1 alone is the proxy's own (`h1`).
struct Builders {
    h2: auto::Builder<TokioExecutor>,
    either: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: &Limits) -> Builders {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            // The watchdog times heads (hyper's own timer would also close idle connections).
            .header_read_timeout(None)
            .max_buf_size(limits.max_header_bytes.max(8192));
        builder
            .http2()
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(limits.max_concurrent_streams);
        Builders {
            h2: builder.clone().http2_only(),
            either: builder,
        }
    }
}

/// Serves connections on the current runtime and drains them on shutdown.
struct Server {
    runtime: Arc<Runtime>,
    options: Options,
    caps: Arc<Caps>,
    pressure: Arc<Pressure>,
    builders: Arc<Builders>,
    /// Set to `true` on shutdown; every connection holds a receiver until it ends.
    drain: signal::Sender<bool>,
}

impl Server {
    fn new(
        runtime: Arc<Runtime>,
        options: Options,
        caps: Arc<Caps>,
        pressure: Arc<Pressure>,
    ) -> Server {
        Server {
            builders: Arc::new(Builders::new(&options.limits)),
            runtime,
            options,
            caps,
            pressure,
            drain: signal::channel(false).0,
        }
    }

    /// Serves one connection in a task of its own.
    fn spawn(&self, stream: TcpStream, addr: SocketAddr, slot: Slot, accepted: Instant) {
        let runtime = self.runtime.clone();
        let connection = Connection {
            builders: self.builders.clone(),
            caps: self.caps.clone(),
            pressure: self.pressure.clone(),
            drain: self.drain.subscribe(),
            runtime: runtime.clone(),
            timeouts: Timeouts::from(&self.options.limits),
            max_head: self.options.limits.max_header_bytes.max(8192),
            tls: self.options.tls.clone(),
            h2c: self.options.h2c,
            serves: self.options.serves,
            addr,
            accepted,
        };
        let counted = self.options.serves == Serves::Proxy;
        tokio::spawn(async move {
            let _slot = slot;
            if counted {
                runtime.metrics.connection(1);
            }
            connection.serve(stream).await;
            if counted {
                runtime.metrics.connection(-1);
            }
        });
    }

    /// Lets calls in flight finish, for up to the drain timeout.
    async fn drain(self) {
        tracing::info!(in_flight = self.runtime.metrics.in_flight(), "draining");
        let timeout = self.options.limits.drain_timeout;
        let _ = self.drain.send(true);
        if tokio::time::timeout(timeout, self.drain.closed())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_s = timeout.as_secs(),
                "drain timeout reached; closing the remaining connections"
            );
        }
    }
}

/// One accepted connection.
struct Connection {
    builders: Arc<Builders>,
    caps: Arc<Caps>,
    pressure: Arc<Pressure>,
    drain: signal::Receiver<bool>,
    runtime: Arc<Runtime>,
    timeouts: Timeouts,
    /// The most bytes an HTTP/1.1 request head may take.
    max_head: usize,
    tls: Option<TlsAcceptor>,
    h2c: bool,
    serves: Serves,
    addr: SocketAddr,
    /// When it was accepted: the header deadline counts from here, a wait for a slot included.
    accepted: Instant,
}

impl Connection {
    /// Counts a connection the proxy closed (the admin listener's are not counted).
    fn count_closed(&self, why: Closed) {
        if self.serves == Serves::Proxy {
            self.runtime.metrics.closed(why);
        }
    }

    /// Sets up the transport (the TLS handshake counts against the header read timeout),
    /// picks the protocol, and serves calls until the connection ends.
    ///
    /// Not `async fn`: an `async fn` keeps its arguments twice in its state (as arguments and
    /// as the locals they move to), and this is the connection's task, held for as long as a
    /// long poll waits.
    #[allow(clippy::manual_async_fn)] // deliberate: see above
    fn serve(self, stream: TcpStream) -> impl Future<Output = ()> {
        async move {
            let activity = Activity::new(self.accepted);
            let _registered = self.pressure.register(activity.clone());
            let io = Watched::new(stream, activity.clone());
            if self.tls.is_none() && !self.h2c {
                activity.set_h1();
                return self.h1(io, false, activity).await;
            }
            // Boxed: a task is as large as the largest way it may take, and these (a TLS
            // handshake, hyper's connections) are several times the plain HTTP/1.1 one,
            // which is what a held poll costs.
            Box::pin(self.serve_other(io, activity)).await;
        }
    }

    /// TLS (HTTP/1.1 or HTTP/2 by ALPN), or cleartext HTTP/2 and HTTP/1.1 by prior knowledge.
    async fn serve_other(self, io: Watched<TcpStream>, activity: Arc<Activity>) {
        let Some(acceptor) = self.tls.clone() else {
            let builders = self.builders.clone();
            return self
                .http(&builders.either, TokioIo::new(io), false, activity)
                .await;
        };
        let deadline = activity.epoch() + self.timeouts.header;
        let stream = match tokio::time::timeout_at(deadline, acceptor.accept(io)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, peer = %self.addr, "TLS handshake failed");
                return;
            }
            Err(_) => {
                self.count_closed(Closed::HeaderTimeout);
                tracing::debug!(peer = %self.addr, "TLS handshake not done within the header read timeout");
                return;
            }
        };
        if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            activity.set_h1();
            return self.h1(stream, true, activity).await;
        }
        let builders = self.builders.clone();
        self.http(&builders.h2, TokioIo::new(stream), true, activity)
            .await;
    }

    /// The calls of this connection.
    fn calls(&self, secure: bool, activity: Arc<Activity>) -> Calls {
        Calls {
            runtime: self.runtime.clone(),
            caps: self.caps.clone(),
            activity,
            peer: Peer {
                addr: self.addr,
                secure,
            },
            serves: self.serves,
        }
    }

    /// Serves HTTP/1.1 calls on `io` with the proxy's own server, under the watchdog. Not
    /// `async fn`, for the reason `serve` gives.
    #[allow(clippy::manual_async_fn)] // deliberate: see above
    fn h1<'a, T: h1::Transport + 'a>(
        &'a self,
        io: T,
        secure: bool,
        activity: Arc<Activity>,
    ) -> impl Future<Output = ()> + 'a {
        async move {
            let calls = self.calls(secure, activity.clone());
            let limits = h1::Limits {
                head: self.max_head,
            };
            // Pinned here, and watched by reference: a future passed by value into an async
            // fn is held twice in its state (as the argument and as the local it moves to).
            let connection = std::pin::pin!(async {
                h1::serve(io, &calls, limits).await;
                Ok(())
            });
            self.watch(
                connection,
                |_| activity.close_gracefully(),
                secure,
                activity.clone(),
            )
            .await;
        }
    }

    /// Serves calls on `io` under the watchdog until the connection ends or must go.
    async fn http<I>(
        self,
        builder: &auto::Builder<TokioExecutor>,
        io: I,
        secure: bool,
        activity: Arc<Activity>,
    ) where
        I: Read + Write + Unpin + Send + 'static,
    {
        let calls = Arc::new(self.calls(secure, activity.clone()));
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let calls = calls.clone();
            let started = calls.start(request.version());
            async move {
                let request = request.map(CallBody::Streaming);
                Ok::<_, Infallible>(calls.respond(started, request).await)
            }
        });
        let connection = std::pin::pin!(builder.serve_connection(io, service));
        self.watch(connection, |c| c.graceful_shutdown(), secure, activity)
            .await;
    }

    /// Drives `connection` under the watchdog until it ends or must go: `shutdown` asks it to
    /// close gracefully (on drain, when idle too long, or to make way for a new connection).
    async fn watch<C>(
        &self,
        mut connection: std::pin::Pin<&mut C>,
        mut shutdown: impl FnMut(std::pin::Pin<&mut C>),
        secure: bool,
        activity: Arc<Activity>,
    ) where
        C: Future<Output = Served>,
    {
        let peer = Peer {
            addr: self.addr,
            secure,
        };
        let mut watchdog = Watchdog::new(activity.clone(), self.timeouts);
        let sleep = tokio::time::sleep_until(activity.epoch());
        let mut sleep = std::pin::pin!(sleep);
        let mut drain = self.drain.clone();
        let mut draining = false;
        // Once closing gracefully (idle), the connection is dropped if still open by then.
        let mut closing: Option<Instant> = None;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, peer = %peer.addr, "connection ended with an error");
                        // Framing the HTTP layer refused (and answered with a bare status)
                        // before any request existed is a refusal too: put it on record.
                        // `is_parse` covers an oversized head too.
                        let refused = e
                            .downcast_ref::<hyper::Error>()
                            .filter(|e| e.is_parse() && self.serves == Serves::Proxy);
                        if let Some(e) = refused {
                            let status = if e.is_parse_too_large() { 431 } else { 400 };
                            handler::record_unparsed(&self.runtime.app(), peer, status, e);
                        }
                    }
                    return;
                }
                _ = drain.changed(), if !draining => {
                    draining = true;
                    shutdown(connection.as_mut());
                }
                // Slots run short and this connection has been idle longest: it makes way
                // (HTTP/1.1 after its current answer, HTTP/2 with a GOAWAY).
                () = activity.yielding(), if closing.is_none() => {
                    self.count_closed(Closed::Pressure);
                    tracing::debug!(peer = %peer.addr, "idle connection closed to make way for a new one");
                    shutdown(connection.as_mut());
                    let end = Instant::now() + self.timeouts.write;
                    closing = Some(end);
                    let next = sleep.deadline().min(end);
                    sleep.as_mut().reset(next);
                }
                () = sleep.as_mut() => {
                    let now = Instant::now();
                    let (mut next, verdict) = watchdog.check(now);
                    match verdict {
                        Some(Closed::Idle) if closing.is_none() => {
                            self.count_closed(Closed::Idle);
                            tracing::debug!(peer = %peer.addr, "idle connection closed");
                            shutdown(connection.as_mut());
                            closing = Some(now + self.timeouts.write);
                        }
                        Some(Closed::Idle) | None => {}
                        Some(why) => {
                            self.count_closed(why);
                            tracing::debug!(peer = %peer.addr, reason = ?why, "connection dropped");
                            return;
                        }
                    }
                    if let Some(end) = closing {
                        if now >= end {
                            return;
                        }
                        next = next.min(end);
                    }
                    sleep.as_mut().reset(next);
                }
            }
        }
    }
}
