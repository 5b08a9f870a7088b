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
    limit(app.max_body_bytes, form(app.sts.is_some(), headers))
}

/// Whether a call with these headers is a form for the STS (`sts`: one is configured).
fn form(sts: bool, headers: &HeaderMap) -> bool {
    sts && sts::query::is_query(headers)
}

/// The body limit of an STS form (`form`) or an SWF call, under `max_body_bytes`.
pub(super) fn limit(max_body_bytes: usize, form: bool) -> usize {
    if form {
        max_body_bytes.min(sts::query::MAX_FORM_BYTES)
    } else {
        max_body_bytes
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECOND: Duration = Duration::from_secs(1);

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    /// `read_body` of a body the server has read (or failed to).
    async fn read(
        read: Result<&'static [u8], BodyFault>,
        pairs: &[(&'static str, &'static str)],
        limit: usize,
    ) -> Result<Bytes, ProxyError> {
        let body = CallBody::Read(read.map(Bytes::from_static));
        read_body(body, &headers(pairs), limit, SECOND * 7).await
    }

    #[test]
    fn a_form_is_limited_to_the_smaller_of_the_two_limits() {
        let form = sts::query::MAX_FORM_BYTES;
        assert_eq!(limit(form * 4, false), form * 4);
        assert_eq!(limit(form * 4, true), form);
        assert_eq!(limit(100, true), 100);
        assert_eq!(limit(100, false), 100);
    }

    #[test]
    fn only_a_form_to_a_configured_sts_takes_the_form_limit() {
        let form_headers = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let swf = headers(&[
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "SimpleWorkflowService.DescribeDomain"),
        ]);
        assert!(form(true, &form_headers));
        assert!(!form(false, &form_headers), "no STS: an SWF call's limit");
        assert!(!form(true, &swf));
        assert!(!form(false, &swf));
    }

    #[tokio::test]
    async fn a_body_within_its_limit_is_handed_on_whole() {
        let body = read(Ok(b"{\"a\":1}"), &[("content-length", "7")], 7).await;
        assert_eq!(&body.unwrap()[..], b"{\"a\":1}");
        let body = read(Ok(b"{}"), &[("transfer-encoding", "chunked")], 2).await;
        assert_eq!(&body.unwrap()[..], b"{}");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_declared_or_not() {
        let cases: [(&[u8], _); 2] = [
            // Declared over it: refused whatever was read.
            (b"{}", ("content-length", "8")),
            // Undeclared: refused by what was read.
            (b"12345678", ("transfer-encoding", "chunked")),
        ];
        for (body, header) in cases {
            let refused = read(Ok(body), &[header], 7).await;
            assert!(
                matches!(refused, Err(ProxyError::TooLarge { limit: 7 })),
                "{header:?}: {refused:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_coding_other_than_chunked_alone_is_refused() {
        for pairs in [
            &[("transfer-encoding", "gzip")][..],
            &[("transfer-encoding", "chunked"), ("content-length", "2")],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
        ] {
            let refused = read(Ok(b"{}"), pairs, 100).await;
            assert!(
                matches!(&refused, Err(ProxyError::Serialization(m)) if m.contains("Transfer-Encoding")),
                "{pairs:?}: {refused:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_the_server_could_not_read_gets_its_refusal() {
        let cases = [
            (BodyFault::TooLarge, "TooLarge { limit: 9 }"),
            (BodyFault::TimedOut, "RequestTimeout { seconds: 7 }"),
            (BodyFault::Unreadable, "could not be read"),
        ];
        for (fault, refusal) in cases {
            let refused = read(Err(fault), &[], 9).await.unwrap_err();
            assert!(
                format!("{refused:?}").contains(refusal),
                "{fault:?}: {refused:?}"
            );
        }
    }
}
