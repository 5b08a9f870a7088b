//! Step 5 of the request path: forward an authorized call to the upstream.
//!
//! The upstream request is built fresh from the verified parts (operation and body), never
//! from inbound headers, and signed with the proxy's own credentials (`sigv4::signer`). It goes
//! over HTTP/1.1 on a kept-alive connection from the calling thread's pool (`pool`), opened by
//! `connect`. The only timeout is the whole call's, which defaults above SWF's 60-second long
//! poll so polls are never cut.

mod connect;
mod pool;

pub use pool::{sweep_idle, UpstreamBody};

use std::io::BufReader;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use http_body_util::Full;
use hyper::{Request, Response};

use crate::config::Upstream;
use crate::error::ProxyError;
use crate::policy::Permit;
use crate::sigv4::signer::Signer;
use crate::swf::ops::TARGET_PREFIX;
use crate::swf::Operation;

/// The upstream client and the identity it signs with.
pub struct Forwarder {
    /// Tags this forwarder's pooled connections (see `pool`).
    id: u64,
    connector: connect::Connector,
    host: String,
    signer: Signer,
    /// `SimpleWorkflowService.<Op>` for every operation, built once.
    targets: Vec<String>,
    timeout: std::time::Duration,
    poll_timeout: std::time::Duration,
}

/// Why the forwarder could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ForwarderError {
    #[error("cannot read CA file `{path}`: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("CA file `{0}` holds no usable certificate")]
    NoCertificate(String),
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("`{0}` is not a host name the upstream's certificate can be checked against")]
    ServerName(String),
}

impl Forwarder {
    pub fn new(upstream: &Upstream) -> Result<Forwarder, ForwarderError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &upstream.ca_file {
            let shown = path.display().to_string();
            let file = std::fs::File::open(path).map_err(|source| ForwarderError::CaFile {
                path: shown.clone(),
                source,
            })?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
                let cert = cert.map_err(|source| ForwarderError::CaFile {
                    path: shown.clone(),
                    source,
                })?;
                roots.add(cert)?;
                added += 1;
            }
            if added == 0 {
                return Err(ForwarderError::NoCertificate(shown));
            }
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        let endpoint = &upstream.endpoint;
        let https = endpoint.scheme_str() != Some("http");
        let host = endpoint
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let name = endpoint.host().unwrap_or_default();
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let port = endpoint.port_u16().unwrap_or(if https { 443 } else { 80 });
        let connector = connect::Connector::new(
            name,
            port,
            https.then(|| Arc::new(tls)),
            upstream.connect_timeout,
        )
        .map_err(|_| ForwarderError::ServerName(name.to_owned()))?;
        let signer = Signer::new(
            &upstream.access_key_id,
            upstream.secret_access_key.clone(),
            upstream.session_token.clone(),
            &upstream.region,
        );
        let targets = Operation::ALL
            .iter()
            .map(|op| format!("{TARGET_PREFIX}{}", op.name()))
            .collect();
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Ok(Forwarder {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            connector,
            host,
            signer,
            targets,
            timeout: upstream.timeout,
            poll_timeout: upstream.poll_timeout,
        })
    }

    /// Sends `body` as `op` to the upstream, signed anew. Requires the call's [`Permit`].
    pub async fn forward(
        &self,
        _permit: &Permit,
        op: Operation,
        body: Bytes,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let request = self.signed_request(op, body)?;
        // Polls are held open by SWF for up to 60 s: they get their own, longer timeout.
        let timeout = if op.issues_task_token() {
            self.poll_timeout
        } else {
            self.timeout
        };
        match tokio::time::timeout(timeout, pool::send(&self.connector, self.id, request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, operation = op.name(), "upstream request failed");
                Err(unavailable())
            }
            Err(_) => {
                tracing::warn!(
                    operation = op.name(),
                    timeout_s = timeout.as_secs(),
                    "upstream timed out"
                );
                Err(unavailable())
            }
        }
    }

    fn signed_request(
        &self,
        op: Operation,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ProxyError> {
        let target = self.targets[op.index()].as_str();
        let signature = self
            .signer
            .sign(&self.host, target, &body, SystemTime::now());
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = http::Uri::from_static("/");
        let headers = request.headers_mut();
        headers.reserve(6);
        let value = |v: &str| HeaderValue::from_str(v).map_err(|e| internal(&e));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        headers.insert(HOST, value(&self.host)?);
        headers.insert(X_AMZ_TARGET, value(target)?);
        headers.insert(X_AMZ_DATE, value(&signature.amz_date)?);
        headers.insert(AUTHORIZATION, value(&signature.authorization)?);
        if let Some(token) = self.signer.session_token() {
            headers.insert(X_AMZ_SECURITY_TOKEN, value(token)?);
        }
        Ok(request)
    }
}

const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

fn unavailable() -> ProxyError {
    ProxyError::Unavailable(
        "Service Unavailable: the SWF endpoint behind this proxy could not be reached in time."
            .into(),
    )
}

fn internal(e: &dyn std::fmt::Display) -> ProxyError {
    tracing::error!(error = %e, "could not sign the upstream request");
    unavailable()
}
