//! One-shot HTTP exchanges off the request path: an identity provider's key set (`jwks_url`,
//! a `GET`), a batch of trace spans (`[tracing]`, a `POST`). Over TLS the certificate is
//! checked against the public web PKI roots plus any extra ones, as for the upstream; the
//! answer is read up to a bound, within a timeout.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;

use super::connect::Connector;
use super::ForwarderError;

/// Exchanges with one URL.
pub struct Fetcher {
    connector: Connector,
    host: HeaderValue,
    path: String,
    timeout: Duration,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("host", &self.host)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// `url` is `https://` with `extra_roots` (`Some`: trusted besides the public roots), or
    /// `http://` without.
    pub fn new(
        url: &http::Uri,
        extra_roots: Option<Vec<CertificateDer<'static>>>,
        timeout: Duration,
    ) -> Result<Fetcher, ForwarderError> {
        let name = url.host().unwrap_or_default();
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let default_port = if extra_roots.is_some() { 443 } else { 80 };
        let port = url.port_u16().unwrap_or(default_port);
        let connector = Connector::new(name, port, extra_roots, timeout)?;
        let authority = url.authority().map_or("", |a| a.as_str());
        let host = HeaderValue::from_str(authority)
            .map_err(|_| ForwarderError::Header(authority.to_owned()))?;
        let path = url
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        Ok(Fetcher {
            connector,
            host,
            path,
            timeout,
        })
    }

    /// The body of a `200` answer to a `GET` of at most `max_bytes`, within the timeout.
    pub async fn get(&self, max_bytes: usize) -> Result<Bytes, String> {
        let request = Request::get(self.path.as_str())
            .header(HOST, self.host.clone())
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        match self.exchange(request, max_bytes).await? {
            (http::StatusCode::OK, body) => Ok(body),
            (status, _) => Err(format!("answered {status}")),
        }
    }

    /// The status and body (at most `max_bytes`) of the answer to a `POST` of `body` with
    /// `headers` (the host is this fetcher's).
    pub async fn post(
        &self,
        headers: &http::HeaderMap,
        body: Bytes,
        max_bytes: usize,
    ) -> Result<(http::StatusCode, Bytes), String> {
        let mut request = Request::post(self.path.as_str())
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        for (name, value) in headers {
            if name != HOST {
                request.headers_mut().append(name, value.clone());
            }
        }
        request.headers_mut().insert(HOST, self.host.clone());
        self.exchange(request, max_bytes).await
    }

    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        max_bytes: usize,
    ) -> Result<(http::StatusCode, Bytes), String> {
        tokio::time::timeout(self.timeout, self.exchange_unbounded(request, max_bytes))
            .await
            .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))?
    }

    async fn exchange_unbounded(
        &self,
        request: Request<Full<Bytes>>,
        max_bytes: usize,
    ) -> Result<(http::StatusCode, Bytes), String> {
        let (mut sender, connection): (http1::SendRequest<Full<Bytes>>, _) = {
            let stream = self.connector.connect().await.map_err(|e| e.to_string())?;
            http1::Builder::new()
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?
        };
        // Ends the connection however this call ends (a timeout drops it mid-answer).
        let driver = AbortOnDrop(tokio::spawn(connection));
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string());
        let result = match response {
            Ok(response) => {
                let status = response.status();
                Limited::new(response.into_body(), max_bytes)
                    .collect()
                    .await
                    .map(|b| (status, b.to_bytes()))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        drop(driver);
        result
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
