//! Accepting connections and serving HTTP/1.1 and HTTP/2 on them, in the clear or over TLS,
//! within the configured limits, and draining them on shutdown. `swf-warden serve` uses
//! `run_workers` (one single-threaded runtime per core); `run` serves on the current runtime,
//! so tests bind `127.0.0.1:0` and start the real server in-process. Both take a bound
//! listener.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::Limits;
use crate::handler::{self, Peer};
use crate::runtime::Runtime;

/// How the listener serves.
#[derive(Clone)]
pub struct Options {
    pub tls: Option<TlsAcceptor>,
    pub limits: Limits,
}

/// How often each worker closes its expired or upstream-closed idle upstream connections.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection accepted within the connection cap, for a worker to serve.
struct Accepted {
    stream: std::net::TcpStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
}

/// Serves on `workers` threads, each running its own single-threaded runtime (thread-per-core).
/// This task accepts and deals the connections out in turn; from then on a connection and every
/// call on it (upstream connection included) stay on one worker, with no cross-thread
/// wake-ups. Stops accepting when `shutdown` completes and returns once every worker has
/// drained.
pub async fn run_workers(
    listener: TcpListener,
    workers: usize,
    runtime: Arc<Runtime>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut queues = Vec::with_capacity(workers);
    let mut done = Vec::with_capacity(workers);
    for index in 0..workers.max(1) {
        let (queue, mut accepted) = mpsc::unbounded_channel::<Accepted>();
        let (finished, wait) = tokio::sync::oneshot::channel::<()>();
        let (runtime, options) = (runtime.clone(), options.clone());
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
                    let server = Server::new(runtime, options);
                    while let Some(Accepted {
                        stream,
                        addr,
                        permit,
                    }) = accepted.recv().await
                    {
                        match tokio::net::TcpStream::from_std(stream) {
                            Ok(stream) => server.spawn(stream, addr, permit),
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
    let slots = Arc::new(Semaphore::new(options.limits.max_connections));
    let mut next = 0;
    tokio::pin!(shutdown);
    while let Some((stream, addr, permit)) = accept(&listener, &slots, &mut shutdown).await {
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
            permit,
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
    let slots = Arc::new(Semaphore::new(options.limits.max_connections));
    let server = Server::new(runtime, options);
    tokio::pin!(shutdown);
    while let Some((stream, addr, permit)) = accept(&listener, &slots, &mut shutdown).await {
        server.spawn(stream, addr, permit);
    }
    drop(listener);
    server.drain().await;
}

/// The next connection, with its slot under the connection cap; `None` on shutdown. Past
/// `max_connections`, new connections wait in the backlog.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.ok()?,
            () = &mut *shutdown => return None,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((stream, addr, permit));
                }
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept; keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = &mut *shutdown => return None,
        }
    }
}

/// Serves connections on the current runtime and drains them on shutdown.
struct Server {
    runtime: Arc<Runtime>,
    options: Options,
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: GracefulShutdown,
}

impl Server {
    fn new(runtime: Arc<Runtime>, options: Options) -> Server {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.limits.header_read_timeout)
            .max_buf_size(options.limits.max_header_bytes.max(8192));
        builder.http2().max_header_list_size(
            u32::try_from(options.limits.max_header_bytes).unwrap_or(u32::MAX),
        );
        Server {
            runtime,
            options,
            builder: Arc::new(builder),
            graceful: GracefulShutdown::new(),
        }
    }

    /// Serves one connection (after the TLS handshake, if any) in a task of its own.
    fn spawn(&self, stream: TcpStream, addr: SocketAddr, permit: OwnedSemaphorePermit) {
        let runtime = self.runtime.clone();
        let connection = Connection {
            builder: self.builder.clone(),
            watcher: self.graceful.watcher(),
            runtime: runtime.clone(),
            addr,
        };
        let tls = self.options.tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            runtime.metrics.connection(1);
            match tls {
                None => connection.serve(TokioIo::new(stream), false).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => connection.serve(TokioIo::new(stream), true).await,
                    Err(e) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                },
            }
            runtime.metrics.connection(-1);
        });
    }

    /// Lets calls in flight finish, for up to the drain timeout.
    async fn drain(self) {
        tracing::info!(in_flight = self.runtime.metrics.in_flight(), "draining");
        let timeout = self.options.limits.drain_timeout;
        if tokio::time::timeout(timeout, self.graceful.shutdown())
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

/// One accepted connection, ready to serve HTTP once its transport (plain or TLS) is set up.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: hyper_util::server::graceful::Watcher,
    runtime: Arc<Runtime>,
    addr: SocketAddr,
}

impl Connection {
    /// Serves calls on `io` until the connection ends; `secure`: the transport is TLS.
    async fn serve<I>(self, io: I, secure: bool)
    where
        I: Read + Write + Unpin + Send + 'static,
    {
        let peer = Peer {
            addr: self.addr,
            secure,
        };
        let runtime = self.runtime;
        let service = service_fn(move |request| {
            // Each call runs under the configuration current when it arrived.
            let app = runtime.app();
            async move { Ok::<_, Infallible>(handler::handle(&app, request, peer).await) }
        });
        let connection = self.builder.serve_connection(io, service);
        if let Err(e) = self.watcher.watch(connection.into_owned()).await {
            tracing::debug!(error = %e, peer = %peer.addr, "connection ended with an error");
        }
    }
}
