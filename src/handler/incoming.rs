//! A call's request body as the server hands it to the handler: streamed by hyper (HTTP/2,
//! and HTTP/1.1 with cleartext HTTP/2 on), or already read by the proxy's own HTTP/1.1 server
//! (`server::h1`), which applies the same limit and timeout while reading.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, CONTENT_LENGTH, TRANSFER_ENCODING};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::app::App;
use crate::error::ProxyError;
use crate::sts;

/// A call's body.
pub enum CallBody {
    /// Read by the handler, from hyper.
    Streaming(Incoming),
    /// Read by the server: the body, or why it could not be.
    Read(Result<Bytes, BodyFault>),
}

/// Why the server could not read a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// Over `body_limit` (declared, or found while reading).
    TooLarge,
    /// Not whole within the body read timeout.
    TimedOut,
    /// Its framing broke off, or the connection closed first.
    Unreadable,
}

/// The most body bytes read for a call with these headers: `max_body_bytes`, and for an
/// STS form less (nothing larger is read before a signature is checked).
pub fn body_limit(app: &App, headers: &HeaderMap) -> usize {
    limit(app, app.sts.is_some() && sts::query::is_query(headers))
}

/// The body limit of an STS form (`form`) or an SWF call.
pub(super) fn limit(app: &App, form: bool) -> usize {
    if form {
        app.max_body_bytes.min(sts::query::MAX_FORM_BYTES)
    } else {
        app.max_body_bytes
    }
}

/// Reads the body, refusing anything over `limit` without reading it whole, and anything that
/// has not arrived whole within `timeout`. A coding other than plain `chunked` is refused: the
/// bytes signed must be the bytes sent. (The HTTP layer already answers 400 to codings not
/// ending in `chunked`, and resolves `Content-Length` with `Transfer-Encoding` as RFC 9112
/// says, closing the connection; the check stays as defence.)
pub(super) async fn read_body(
    body: CallBody,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ProxyError> {
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(coding) = codings.next() {
        if headers.contains_key(CONTENT_LENGTH) || coding != "chunked" || codings.next().is_some() {
            return Err(ProxyError::Serialization(
                "Transfer-Encoding must be exactly `chunked`, without Content-Length.".into(),
            ));
        }
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ProxyError::TooLarge { limit });
    }
    let read = match body {
        CallBody::Read(read) => read,
        // The timer is armed only if the body is not already there.
        CallBody::Streaming(body) => {
            match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
                Err(_) => Err(BodyFault::TimedOut),
                Ok(Ok(collected)) => Ok(collected.to_bytes()),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    Err(BodyFault::TooLarge)
                }
                Ok(Err(_)) => Err(BodyFault::Unreadable),
            }
        }
    };
    match read {
        Ok(body) if body.len() > limit => Err(ProxyError::TooLarge { limit }),
        Ok(body) => Ok(body),
        Err(fault) => Err(fault.refusal(limit, timeout)),
    }
}

impl BodyFault {
    /// The refusal a body that could not be read gets.
    fn refusal(self, limit: usize, timeout: Duration) -> ProxyError {
        match self {
            BodyFault::TooLarge => ProxyError::TooLarge { limit },
            BodyFault::TimedOut => ProxyError::RequestTimeout {
                seconds: timeout.as_secs(),
            },
            BodyFault::Unreadable => {
                ProxyError::Serialization("The request body could not be read.".into())
            }
        }
    }
}
