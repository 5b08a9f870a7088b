//! An answer's body as the handler hands it to the server: the proxy's own bytes, or the
//! upstream's answer streamed. It holds the call's quota admission until it is dropped, which
//! the server does once the answer has been written: a tenant's `max_in_flight` then bounds
//! the answers it leaves unread, not only the calls waiting on the upstream (SPEC,
//! "Connections").

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use crate::forward::UpstreamBody;
use crate::quota::Admission;

/// A response body.
pub struct Body {
    inner: Inner,
    /// Released when the answer has been written (or dropped).
    _admission: Option<Admission>,
}

enum Inner {
    /// The proxy's own answer, whole; `None` once handed out.
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

impl Body {
    /// An answer the proxy wrote itself.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes: Bytes = bytes.into();
        Body {
            inner: Inner::Full((!bytes.is_empty()).then_some(bytes)),
            _admission: None,
        }
    }

    /// The upstream's answer, passed on as it arrives.
    pub fn upstream(body: UpstreamBody) -> Body {
        Body {
            inner: Inner::Upstream(body),
            _admission: None,
        }
    }

    /// This body, holding `admission` until it is dropped.
    pub fn holding(self, admission: Admission) -> Body {
        Body {
            _admission: Some(admission),
            ..self
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut self.get_mut().inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Upstream(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::body::Body as _;

    #[tokio::test]
    async fn a_full_body_is_handed_out_once_with_its_length() {
        let body = Body::full(Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(body.size_hint().exact(), Some(7));
        assert!(!body.is_end_stream());
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"a\":1}");
        let empty = Body::full(Bytes::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }
}
