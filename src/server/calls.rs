//! One call on a connection, whichever HTTP server read it (hyper's, or the proxy's own
//! HTTP/1.1 server, `h1`): a slot under the caps when its head arrives, then the handler (or
//! the admin endpoints, or a refusal at capacity), its answer counted by the watchdog until
//! it has been written.

use std::future::Future;
use std::sync::Arc;

use hyper::{Request, Response};

use super::caps::{Caps, Full};
use super::watch::{Activity, Answer, CallGuard};
use super::Serves;
use crate::app::App;
use crate::error::ProxyError;
use crate::handler::{self, Body, CallBody, Peer};
use crate::runtime::Runtime;

/// An answer as the server writes it.
pub(super) type Answered = Response<Answer<Body>>;

/// What the calls on one connection share.
pub(super) struct Calls {
    pub runtime: Arc<Runtime>,
    pub caps: Arc<Caps>,
    pub activity: Arc<Activity>,
    pub peer: Peer,
    pub serves: Serves,
}

/// A call whose head has arrived.
pub(super) struct Started {
    /// The configuration current when it arrived: the call runs under it.
    pub app: Arc<App>,
    entered: Result<CallGuard, Full>,
    version: http::Version,
}

impl Started {
    /// Whether the call will be handled (and so needs its body): not refused at capacity.
    pub fn admitted(&self) -> bool {
        self.entered.is_ok()
    }
}

impl Calls {
    /// A request head has arrived: the call takes a slot, or is to be refused.
    pub fn start(&self, version: http::Version) -> Started {
        Started {
            app: self.runtime.app(),
            entered: self
                .activity
                .enter(&self.caps, self.peer.addr.ip(), version),
            version,
        }
    }

    /// The call's answer. Not `async fn`, for the reason `handler::handle` gives.
    #[allow(clippy::manual_async_fn)] // deliberate: see above
    pub fn respond(
        &self,
        started: Started,
        request: Request<CallBody>,
    ) -> impl Future<Output = Answered> + '_ {
        async move {
            let Started {
                app,
                entered,
                version,
            } = started;
            let activity = self.activity.clone();
            let response = match (entered, self.serves) {
                (Ok(call), Serves::Admin) => crate::admin::respond(&request, &self.runtime)
                    .map(|body| Answer::new(body, activity, Some(call))),
                (Ok(call), Serves::Proxy) => handler::handle(&app, request, self.peer)
                    .await
                    .map(|body| Answer::new(body, activity, Some(call))),
                (Err(full), _) => {
                    app.metrics.capacity_refusal();
                    let error = ProxyError::AtCapacity(match full {
                        Full::All => "",
                        Full::Address => " from this address",
                    });
                    handler::refuse_unhandled(&app, &request, self.peer, &error)
                        .map(|body| Answer::new(body, activity, None))
                }
            };
            close_if_unauthenticated(response, version)
        }
    }
}

/// An HTTP/1.x answer to a call refused before its caller was authenticated closes its
/// connection: a stranger's refused request leaves nothing open behind it (SPEC,
/// "Connections"). HTTP/2 has no such header; its idle connections yield under pressure.
fn close_if_unauthenticated<B>(
    mut response: hyper::Response<B>,
    version: http::Version,
) -> hyper::Response<B> {
    if version < http::Version::HTTP_2
        && response
            .extensions()
            .get::<handler::Unauthenticated>()
            .is_some()
    {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Version;

    fn closes(unauthenticated: bool, version: Version) -> bool {
        let mut response = hyper::Response::new(());
        if unauthenticated {
            response.extensions_mut().insert(handler::Unauthenticated);
        }
        let response = close_if_unauthenticated(response, version);
        match response.headers().get(http::header::CONNECTION) {
            Some(value) => value == "close",
            None => false,
        }
    }

    #[test]
    fn an_http1_answer_to_a_stranger_closes_its_connection() {
        assert!(closes(true, Version::HTTP_11));
        assert!(closes(true, Version::HTTP_10));
        // An authenticated caller's connection stays open; HTTP/2 has no such header.
        assert!(!closes(false, Version::HTTP_11));
        assert!(!closes(false, Version::HTTP_10));
        assert!(!closes(true, Version::HTTP_2));
    }
}
