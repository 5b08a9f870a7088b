//! Accepting connections and serving HTTP/1.1 and HTTP/2 on them, in the clear or over TLS,
//! within the configured limits, and draining them on shutdown. `run` takes a bound listener,
//! so tests bind `127.0.0.1:0` and start the real server in-process.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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

/// Serves on `workers` threads, each running its own single-threaded runtime that accepts from
/// the same listening socket (thread-per-core). A call then stays on one thread from accept to
/// answer, upstream connection included, with no cross-thread wake-ups; the kernel hands each
/// new connection to whichever worker accepts first. `shutdown` makes one future per worker.
/// Returns once every worker has drained.
pub async fn run_workers<S, F>(
    listener: std::net::TcpListener,
    workers: usize,
    runtime: Arc<Runtime>,
    options: Options,
    shutdown: S,
) -> std::io::Result<()>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    listener.set_nonblocking(true)?;
    let slots = Arc::new(Semaphore::new(options.limits.max_connections));
    let mut done = Vec::with_capacity(workers);
    for index in 0..workers.max(1) {
        let listener = listener.try_clone()?;
        let (runtime, options, slots, shutdown) =
            (runtime.clone(), options.clone(), slots.clone(), shutdown());
        let (finished, wait) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("swf-warden-worker-{index}"))
            .spawn(move || {
                worker.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve_on(listener, runtime, options, slots, shutdown).await,
                        Err(e) => tracing::error!(error = %e, "worker cannot use the listener"),
                    }
                });
                let _ = finished.send(());
            })?;
        done.push(wait);
    }
    drop(listener);
    for wait in done {
        let _ = wait.await;
    }
    Ok(())
}

/// Serves until `shutdown` completes, then stops accepting and lets calls in flight finish
/// (long polls included) for up to the drain timeout.
pub async fn run(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(options.limits.max_connections));
    serve_on(listener, runtime, options, slots, shutdown).await;
}

/// One accept loop, sharing the connection cap `slots` with the loops of other workers.
async fn serve_on(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    options: Options,
    slots: Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.limits.header_read_timeout)
        .max_buf_size(options.limits.max_header_bytes.max(8192));
    builder
        .http2()
        .max_header_list_size(u32::try_from(options.limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    loop {
        // A connection slot first: past `max_connections`, new connections wait in the backlog.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept; keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let runtime = runtime.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = options.tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            runtime.metrics.connection(1);
            match tls {
                None => {
                    serve(
                        &builder,
                        watcher,
                        TokioIo::new(stream),
                        runtime.clone(),
                        Peer {
                            addr,
                            secure: false,
                        },
                    )
                    .await
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        serve(
                            &builder,
                            watcher,
                            TokioIo::new(stream),
                            runtime.clone(),
                            Peer { addr, secure: true },
                        )
                        .await
                    }
                    Err(e) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                },
            }
            runtime.metrics.connection(-1);
        });
    }
    drop(listener);
    tracing::info!(in_flight = runtime.metrics.in_flight(), "draining");
    if tokio::time::timeout(options.limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_s = options.limits.drain_timeout.as_secs(),
            "drain timeout reached; closing the remaining connections"
        );
    }
}

async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    runtime: Arc<Runtime>,
    peer: Peer,
) where
    I: Read + Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        // Each call runs under the configuration current when it arrived.
        let app = runtime.app();
        async move { Ok::<_, Infallible>(handler::handle(&app, request, peer).await) }
    });
    let connection = builder.serve_connection(io, service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(error = %e, peer = %peer.addr, "connection ended with an error");
    }
}
