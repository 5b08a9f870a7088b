//! Accepting connections and serving HTTP/1.1 and HTTP/2 on them, in the clear or over TLS.
//! `run` takes a bound listener, so tests bind `127.0.0.1:0` and start the real server
//! in-process.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::handler::{self, Peer};

/// Serves the proxy in the clear on `listener` until `shutdown` completes.
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    run_with(listener, app, None, shutdown).await;
}

/// Serves the proxy on `listener`, over TLS when `tls` is given, until `shutdown` completes.
pub async fn run_with(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
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
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    serve(
                        TokioIo::new(stream),
                        app,
                        Peer {
                            addr: peer,
                            secure: false,
                        },
                    )
                    .await
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        serve(
                            TokioIo::new(stream),
                            app,
                            Peer {
                                addr: peer,
                                secure: true,
                            },
                        )
                        .await
                    }
                    Err(e) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                },
            }
        });
    }
}

async fn serve<I>(io: I, app: Arc<App>, peer: Peer)
where
    I: Read + Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handler::handle(&app, request, peer).await) }
    });
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await
    {
        tracing::debug!(error = %e, peer = %peer.addr, "connection ended with an error");
    }
}
