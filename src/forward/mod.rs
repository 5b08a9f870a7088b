//! Step 5 of the request path: forward an authorized call to the upstream.
//!
//! The upstream request is built fresh from the verified parts (operation and body), never
//! from inbound headers, and signed with the proxy's own credentials (`sigv4::signer`). It goes
//! over HTTP/1.1 on a kept-alive connection from the calling thread's pool (`pool`), opened by
//! `connect`. The only timeout is the whole call's, which defaults above SWF's 60-second long
//! poll so polls are never cut.

mod connect;
pub mod fetch;
mod pool;

pub use pool::{sweep_idle, UpstreamBody};

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use http_body_util::Full;
use hyper::{Request, Response};

use crate::config::Upstream;
use crate::error::ProxyError;
use crate::policy::Permit;
use crate::sigv4::signer::Signer;
use crate::sigv4::X_AMZ_DATE;
use crate::swf::ops::TARGET_PREFIX;
use crate::swf::Operation;

/// The upstream client and the identity it signs with.
pub struct Forwarder {
    connector: connect::Connector,
    signer: Signer,
    /// The upstream's `host:port`, for the `Host` header and the signature.
    host: HeaderValue,
    /// `SimpleWorkflowService.<Op>` for every operation, built once.
    targets: Vec<HeaderValue>,
    session_token: Option<HeaderValue>,
    timeout: std::time::Duration,
    poll_timeout: std::time::Duration,
}

/// Why the forwarder could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ForwarderError {
    #[error("CA file: {0}")]
    CaFile(#[from] crate::tls::TlsError),
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("`{0}` is not a host name the upstream's certificate can be checked against")]
    ServerName(String),
    #[error("`{0}` cannot be sent as a header")]
    Header(String),
}

impl Forwarder {
    pub fn new(upstream: &Upstream) -> Result<Forwarder, ForwarderError> {
        let endpoint = &upstream.endpoint;
        let https = endpoint.scheme_str() != Some("http");
        let extra_roots = match (&upstream.ca_file, https) {
            (_, false) => None,
            (Some(path), true) => Some(crate::tls::certificates(path)?),
            (None, true) => Some(Vec::new()),
        };
        let name = endpoint.host().unwrap_or_default();
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let port = endpoint.port_u16().unwrap_or(if https { 443 } else { 80 });
        let connector = connect::Connector::new(name, port, extra_roots, upstream.connect_timeout)?;
        let header = |text: &str| {
            HeaderValue::from_str(text).map_err(|_| ForwarderError::Header(text.to_owned()))
        };
        let host = header(endpoint.authority().map_or("", |a| a.as_str()))?;
        let targets = Operation::ALL
            .iter()
            .map(|op| header(&format!("{TARGET_PREFIX}{}", op.name())))
            .collect::<Result<_, _>>()?;
        let session_token = match &upstream.session_token {
            Some(token) => {
                let mut value = HeaderValue::from_str(token.expose())
                    .map_err(|_| ForwarderError::Header("the session token".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let signer = Signer::new(
            &upstream.access_key_id,
            upstream.secret_access_key.clone(),
            upstream.session_token.clone(),
            &upstream.region,
        );
        Ok(Forwarder {
            connector,
            signer,
            host,
            targets,
            session_token,
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
        match tokio::time::timeout(timeout, pool::send(&self.connector, request)).await {
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
        let target = &self.targets[op.index()];
        let signature = self.signer.sign(
            self.host.as_bytes(),
            target.as_bytes(),
            &body,
            SystemTime::now(),
        );
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
        headers.insert(HOST, self.host.clone());
        headers.insert(X_AMZ_TARGET, target.clone());
        headers.insert(X_AMZ_DATE.clone(), value(&signature.amz_date)?);
        headers.insert(AUTHORIZATION, value(&signature.authorization)?);
        if let Some(token) = &self.session_token {
            headers.insert(X_AMZ_SECURITY_TOKEN, token.clone());
        }
        Ok(request)
    }
}

const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
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
