//! Opening upstream connections: TCP (no Nagle), then TLS for an `https` endpoint (the public
//! web PKI roots plus any extra ones). What goes over them is `h1`'s (the forwarder's) or
//! hyper's (`fetch`, the JWKS).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A connection to the upstream, in the clear or over TLS.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Where and how to connect.
pub(super) struct Connector {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    identity: u64,
}

/// What makes two connectors' connections interchangeable: the same host and port, and for
/// TLS the same extra trust roots.
#[derive(PartialEq)]
struct Identity {
    host: String,
    port: u16,
    extra_roots: Option<Vec<CertificateDer<'static>>>,
}

/// A number per distinct [`Identity`] seen by this process: connectors built by different
/// configuration generations for the same upstream share their pooled connections.
fn identity_number(identity: Identity) -> u64 {
    static KNOWN: Mutex<Vec<Identity>> = Mutex::new(Vec::new());
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let index = known
        .iter()
        .position(|k| *k == identity)
        .unwrap_or_else(|| {
            known.push(identity);
            known.len() - 1
        });
    index as u64
}

impl Connector {
    /// `host` may be a name or an IP address (without brackets). `extra_roots` is `Some` for
    /// https: the roots trusted besides the public web PKI.
    pub(super) fn new(
        host: &str,
        port: u16,
        extra_roots: Option<Vec<CertificateDer<'static>>>,
        timeout: Duration,
    ) -> Result<Connector, super::ForwarderError> {
        let tls = match &extra_roots {
            Some(extra) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                for cert in extra {
                    roots.add(cert.clone())?;
                }
                let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|_| super::ForwarderError::ServerName(host.to_owned()))?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            None => None,
        };
        let identity = identity_number(Identity {
            host: host.to_owned(),
            port,
            extra_roots,
        });
        Ok(Connector {
            host: host.to_owned(),
            port,
            tls,
            timeout,
            identity,
        })
    }

    /// Tags the connections this connector opens (see `pool`).
    pub(super) fn identity(&self) -> u64 {
        self.identity
    }

    /// A new connection (TLS handshake done), within the connect timeout.
    pub(super) async fn connect(&self) -> io::Result<Stream> {
        tokio::time::timeout(self.timeout, self.stream())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
    }

    async fn stream(&self) -> io::Result<Stream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some((connector, name)) => Ok(Stream::Tls(Box::new(
                connector.connect(name.clone(), tcp).await?,
            ))),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
