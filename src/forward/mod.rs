//! Step 5 of the request path: forward an authorized call to the upstream.
//!
//! The upstream request is built fresh from the verified parts (operation and body), never
//! from inbound headers, and signed with the proxy's own credentials as they are now
//! (`credentials`, through `sigv4::signer`); without valid ones nothing is sent. It goes
//! over HTTP/1.1 (`h1`: the request head written and the answer parsed by hand) on a
//! kept-alive connection from the calling thread's pool (`pool`), opened by `connect`. The
//! only timeout is the whole call's, which defaults above SWF's 60-second long poll so polls
//! are never cut.

mod connect;
pub mod fetch;
pub mod h1;
mod pool;

pub use pool::{sweep_idle, UpstreamBody};

use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderValue;
use hyper::Response;

use std::sync::Arc;

use crate::credentials::{Credentials, Identity};
use crate::error::ProxyError;
use crate::policy::Permit;
use crate::swf::ops::TARGET_PREFIX;
use crate::swf::Operation;

/// `[upstream]`, validated: where calls go and how long they may take.
#[derive(Debug)]
pub struct Upstream {
    pub endpoint: http::Uri,
    pub region: String,
    /// Where the proxy's own credentials come from.
    pub credentials: crate::credentials::Settings,
    pub ca_file: Option<std::path::PathBuf>,
    pub connect_timeout: std::time::Duration,
    /// Every call but the polls.
    pub timeout: std::time::Duration,
    /// `PollForActivityTask` and `PollForDecisionTask`, which SWF holds open up to 60 s.
    pub poll_timeout: std::time::Duration,
}

/// The longest a call waits for the first credentials of a source (after a reload that
/// changed it); valid credentials once held are never waited for.
const FIRST_CREDENTIALS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The upstream client and the identity it signs with.
pub struct Forwarder {
    connector: connect::Connector,
    credentials: Arc<Credentials>,
    /// The upstream's `host:port`, for the `Host` header and the signature.
    host: HeaderValue,
    /// `SimpleWorkflowService.<Op>` for every operation, built once.
    targets: Vec<HeaderValue>,
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
    /// A client for `upstream`, signing with `credentials` (which outlive it across reloads).
    pub fn new(
        upstream: &Upstream,
        credentials: Arc<Credentials>,
    ) -> Result<Forwarder, ForwarderError> {
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
        Ok(Forwarder {
            connector,
            credentials,
            host,
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
        call: &Outbound<'_>,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let mut now = SystemTime::now();
        if let Err(crate::credentials::Unavailable::NotYet) = self.credentials.current(now) {
            // Just started or reloaded onto another source: the first credentials are coming.
            let _ = self.credentials.first_attempt(FIRST_CREDENTIALS_WAIT).await;
            now = SystemTime::now();
        }
        let identity = self.identity(now)?;
        let head = self.signed_head(&identity, op, &body, now, call.trace);
        // Polls are held open by SWF for up to 60 s: they get their own, longer timeout.
        let timeout = if op.issues_task_token() {
            self.poll_timeout
        } else {
            self.timeout
        };
        match tokio::time::timeout(timeout, pool::send(&self.connector, &head, &body)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                tracing::warn!(
                    request_id = call.request_id,
                    error = %e,
                    operation = op.name(),
                    "upstream request failed"
                );
                Err(unavailable())
            }
            Err(_) => {
                tracing::warn!(
                    request_id = call.request_id,
                    operation = op.name(),
                    timeout_s = timeout.as_secs(),
                    "upstream timed out"
                );
                Err(unavailable())
            }
        }
    }

    /// The credentials to sign with at `now`.
    fn identity(&self, now: SystemTime) -> Result<Arc<Identity>, ProxyError> {
        self.credentials.current(now).map_err(|why| {
            ProxyError::NoUpstreamCredentials(format!(
                "Service Unavailable: the proxy holds no valid credentials for the SWF endpoint behind it ({why})."
            ))
        })
    }

    /// The signed request head `forward` writes for `body` as `op` now, without the network
    /// (what the benchmarks and the allocation counts measure).
    pub fn sign_only(&self, op: Operation, body: &[u8]) -> Result<Vec<u8>, ProxyError> {
        let now = SystemTime::now();
        let identity = self.identity(now)?;
        Ok(self.signed_head(&identity, op, body, now, &http::HeaderMap::new()))
    }

    /// The request head for `body` as `op`, signed by `identity` at `now`: `POST /` with the
    /// target, the signature and the length, nothing from the caller's headers; then the
    /// trace context (`trace`, unsigned, made by the propagator, never the caller's bytes).
    fn signed_head(
        &self,
        identity: &Identity,
        op: Operation,
        body: &[u8],
        now: SystemTime,
        trace: &http::HeaderMap,
    ) -> Vec<u8> {
        let target = &self.targets[op.index()];
        let signature = identity
            .signer
            .sign(self.host.as_bytes(), target.as_bytes(), body, now);
        // Header-safe by construction: the date is formatted here, the authorization from a
        // key id and region both checked before they are used (`config`, `credentials`).
        let mut headers: [(&str, &[u8]); 6] = [
            ("host", self.host.as_bytes()),
            ("content-type", b"application/x-amz-json-1.0"),
            ("x-amz-target", target.as_bytes()),
            ("x-amz-date", signature.amz_date.as_bytes()),
            ("authorization", signature.authorization.as_bytes()),
            ("", b""),
        ];
        let count = match &identity.session_token {
            Some(token) => {
                headers[5] = ("x-amz-security-token", token.as_bytes());
                6
            }
            None => 5,
        };
        if trace.is_empty() {
            return h1::request_head(&headers[..count], body.len());
        }
        let mut all = headers[..count].to_vec();
        all.extend(
            trace
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        );
        h1::request_head(&all, body.len())
    }
}

/// What the upstream call carries of the call it serves: the request id (for the log lines)
/// and the trace context (`telemetry::Trace::upstream`; empty when not traced).
#[derive(Clone, Copy)]
pub struct Outbound<'a> {
    pub request_id: &'a str,
    pub trace: &'a http::HeaderMap,
}

fn unavailable() -> ProxyError {
    ProxyError::Unavailable(
        "Service Unavailable: the SWF endpoint behind this proxy could not be reached in time."
            .into(),
    )
}
