//! One-shot HTTPS `GET`s off the request path: an identity provider's key set (`jwks_url`).
//! The certificate is checked against the public web PKI roots plus any extra ones, as for
//! the upstream; the answer must be `200` and is read up to a bound, within a timeout.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;

use super::connect::Connector;
use super::ForwarderError;

/// Fetches one `https://` URL.
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
    /// `url` must be `https://`; `extra_roots` are trusted besides the public roots.
    pub fn new(
        url: &http::Uri,
        extra_roots: Vec<CertificateDer<'static>>,
        timeout: Duration,
    ) -> Result<Fetcher, ForwarderError> {
        let name = url.host().unwrap_or_default();
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_u16().unwrap_or(443);
        let connector = Connector::new(name, port, Some(extra_roots), timeout)?;
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

    /// The body of a `200` answer of at most `max_bytes`, within the timeout.
    pub async fn get(&self, max_bytes: usize) -> Result<Bytes, String> {
        tokio::time::timeout(self.timeout, self.get_unbounded(max_bytes))
            .await
            .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))?
    }

    async fn get_unbounded(&self, max_bytes: usize) -> Result<Bytes, String> {
        let (mut sender, connection): (http1::SendRequest<Empty<Bytes>>, _) = {
            let stream = self.connector.connect().await.map_err(|e| e.to_string())?;
            http1::Builder::new()
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?
        };
        // Ends the connection however this call ends (a timeout drops it mid-answer).
        let driver = AbortOnDrop(tokio::spawn(connection));
        let request = Request::get(self.path.as_str())
            .header(HOST, self.host.clone())
            .header("accept", "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string());
        let result = match response {
            Ok(response) if response.status() == http::StatusCode::OK => {
                Limited::new(response.into_body(), max_bytes)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .map_err(|e| e.to_string())
            }
            Ok(response) => Err(format!("answered {}", response.status())),
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
