//! The request path, top to bottom, as SPEC lists it:
//! 1. authenticate (`sigv4`), 2. resolve action and resource (`swf`, `resolve`),
//! 3. authorize (`policy`), 4. on deny: audit and answer `OperationNotPermittedFault`,
//! 5. on allow: check the quotas (`quota`), forward re-signed (`forward`) and stream the
//!    answer back, sealing task tokens and filtering `ListDomains` (`visibility`).
//!
//! Every refusal flows through `?` to `refuse`, the one place that audits and turns a
//! `ProxyError` into its wire response.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response};
use serde_json::Value;

use crate::access;
use crate::app::App;
use crate::audit::{self, DecisionContext, MatchedStatement, Outcome, Record, RecordContext};
use crate::error::ProxyError;
use crate::forward::{Outbound, UpstreamBody};
use crate::identity::Principal;
use crate::policy::{self, Action, Caller, Context, Permit, StatementRef};
use crate::resolve::{self, Resolved};
use crate::sts;
use crate::telemetry::{self, Trace};
use crate::visibility::{self, Listing};

mod sts_call;
use crate::swf::{self, Operation};

mod body;
mod incoming;
pub use body::Body;
use incoming::read_body;
pub use incoming::{body_limit, BodyFault, CallBody};

/// Largest poll answer the proxy buffers to seal its task token (a decision task's page of
/// history events is far smaller).
const MAX_POLL_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// What is known about a call so far, for its audit record (built only when one is written).
struct Call {
    request_id: String,
    source_ip: IpAddr,
    /// Shortened into the record only when one is written.
    user_agent: Option<HeaderValue>,
    principal: Option<Arc<Principal>>,
    action: Option<&'static str>,
    resource: Option<String>,
    matched: Vec<StatementRef>,
    /// The task token the caller presented, for the audit record's fingerprint.
    sealed_token: Option<String>,
    /// Shadow-mode `wouldDeny` records, written once the request id the client will see is
    /// known (the upstream's, for a forwarded call).
    pending: Vec<Record>,
    operation: Option<Operation>,
    /// The web identity an STS call presented, once its token verified.
    web_identity: Option<audit::WebIdentity>,
    /// The session an STS call issued.
    issued: Option<audit::PrincipalRef>,
    /// Whether the call came in STS's Query API (answered in XML).
    query_api: bool,
    /// The decision of a forwarded call, for the metrics.
    outcome: Outcome,
    upstream_time: Duration,
    /// The condition keys the call presented, once a record will need them.
    context: Option<RecordContext>,
}

impl Call {
    fn new(request_id: String, peer: Peer, user_agent: Option<HeaderValue>) -> Call {
        Call {
            request_id,
            source_ip: peer.addr.ip(),
            user_agent,
            principal: None,
            action: None,
            resource: None,
            matched: Vec::new(),
            sealed_token: None,
            pending: Vec::new(),
            operation: None,
            web_identity: None,
            issued: None,
            query_api: false,
            outcome: Outcome::Allowed,
            upstream_time: Duration::ZERO,
            context: None,
        }
    }

    fn record(&self, decision: Outcome, error: Option<&ProxyError>) -> Record {
        Record {
            event_time: audit::now_rfc3339(),
            request_id: self.request_id.clone(),
            decision,
            error_code: error.map(|e| {
                if self.query_api {
                    e.sts_wire().1
                } else {
                    e.wire().short_name()
                }
            }),
            cause: error.and_then(ProxyError::cause),
            principal: self.principal.as_deref().map(Principal::audit_ref),
            issued: self.issued.clone(),
            action: self.action,
            resource: self.resource.clone(),
            matched_statements: matched(&self.matched),
            source_ip: self.source_ip.to_string(),
            user_agent: self
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(crate::error::excerpt),
            message: error.map(ToString::to_string),
            task_token_fingerprint: self.sealed_token.as_deref().map(crate::tokens::fingerprint),
            quota: error.and_then(ProxyError::quota).map(str::to_owned),
            suppressed: None,
            web_identity: self.web_identity.clone(),
            context: self.context.clone(),
        }
    }
}

/// A unique request id, UUID-shaped: a random per-process prefix and a counter, so that no
/// call pays for a system random-number call.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    uuid::Uuid::from_u64_pair(prefix, COUNTER.fetch_add(1, Ordering::Relaxed))
        .hyphenated()
        .to_string()
}

/// Marks an answer to a call refused before its caller was authenticated: the server closes
/// an HTTP/1.x connection after it (SPEC, "Connections").
#[derive(Debug, Clone, Copy)]
pub struct Unauthenticated;

/// Where a call came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    /// Whether the connection is TLS (`aws:SecureTransport`).
    pub secure: bool,
}

/// Handles one call. Never fails: every error becomes its AWS wire response.
///
/// A plain function returning its future (not `async fn`): an `async fn` keeps its argument
/// twice in its state (as the argument and as the local it is moved to), and this future is
/// held for as long as a long poll waits.
#[allow(clippy::manual_async_fn)] // deliberate: see above
pub fn handle(
    app: &App,
    request: Request<CallBody>,
    peer: Peer,
) -> impl Future<Output = Response<Body>> + '_ {
    async move {
        let user_agent = owned_user_agent(request.headers());
        let mut call = Call::new(request_id(), peer, user_agent);
        let _in_flight = app.metrics.enter();
        let started = Instant::now();
        // Not traced (the usual case): no span at all, not even at `info`.
        let trace = telemetry::start(request.headers(), &call.request_id);
        let span = trace.span();
        let result = process(app, request, peer, &mut call, &trace)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        let (response, outcome) = match result {
            Ok(response) => (response, call.outcome),
            Err(error) => {
                let outcome = error.outcome();
                tracing::debug!(
                    request_id = %call.request_id,
                    error = error.wire().short_name(),
                    decision = outcome.as_str(),
                    "refused"
                );
                let _audit = trace.child("audit").entered();
                (refuse(app, &mut call, &error), outcome)
            }
        };
        app.metrics.request(call.operation, outcome);
        if let Some(principal) = &call.principal {
            principal.counters.count(outcome);
        }
        let proxy_time = started.elapsed().saturating_sub(call.upstream_time);
        app.metrics.proxy_time.observe(proxy_time);
        let status = response.status().as_u16();
        if trace.traced() {
            trace.finish(telemetry::Ended {
                request_id: &call.request_id,
                operation: call.operation.map(Operation::name),
                principal: call.principal.as_deref().map(|p| p.name.as_str()),
                action: call.action,
                // As in the access log: nothing a caller sent is named before it is authenticated
                // (an STS call's `RoleArn` among it).
                domain: call
                    .resource
                    .as_deref()
                    .filter(|_| call.principal.is_some())
                    .and_then(|arn| arn.rsplit_once("/domain/"))
                    .map(|(_, domain)| domain),
                service: if call.query_api { "STS" } else { "SWF" },
                decision: outcome.as_str(),
                status,
            });
        }
        log_access(app, &call, outcome, status, proxy_time, trace.trace_id());
        response
    }
}

/// The call's access log line, if the access log is on. Nothing a caller sent is named as a
/// resource before the caller was authenticated (or, for a session issued, its identity
/// token verified).
fn log_access(
    app: &App,
    call: &Call,
    decision: Outcome,
    status: u16,
    proxy_time: Duration,
    trace_id: Option<&str>,
) {
    if app.access_log {
        let known = call.principal.is_some() || decision == Outcome::Issued;
        access::log(&access::Line {
            request_id: &call.request_id,
            principal: call.principal.as_deref().map(|p| p.name.as_str()),
            operation: call.operation.map(Operation::name),
            resource: call.resource.as_deref().filter(|_| known),
            decision,
            status,
            upstream_time: call.upstream_time,
            proxy_time,
            trace_id,
        });
    }
}

/// Answers a call the server refuses before handling it (over the connection caps), audited
/// and counted like any refusal.
pub fn refuse_unhandled<B>(
    app: &App,
    request: &Request<B>,
    peer: Peer,
    error: &ProxyError,
) -> Response<Body> {
    refuse_outside(app, peer, owned_user_agent(request.headers()), error, None)
}

/// Puts on record a request the HTTP layer refused before it became one (two different
/// `Content-Length` values, a `Transfer-Encoding` not ending in `chunked`, a head over the
/// limit). The layer has already answered with a bare `400` or `431` and closed the
/// connection; the record is unauthenticated and goes through the per-source allowance.
pub fn record_unparsed(app: &App, peer: Peer, answered: u16, why: &dyn std::fmt::Display) {
    let error = ProxyError::Serialization(format!(
        "The HTTP layer refused the request before it was read: {why}."
    ));
    drop(refuse_outside(app, peer, None, &error, Some(answered)));
}

/// The caller's `User-Agent` for the call's record, in bytes of its own: a value that shares
/// the request head's buffer would keep that buffer while a long poll waits.
fn owned_user_agent(headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers.get(http::header::USER_AGENT)?;
    let mut owned = HeaderValue::from_bytes(value.as_bytes()).ok()?;
    owned.set_sensitive(value.is_sensitive());
    Some(owned)
}

/// Audits, counts, logs and answers a refusal made outside `handle`; `answered` is the status
/// the client already got, when the HTTP layer answered instead.
fn refuse_outside(
    app: &App,
    peer: Peer,
    user_agent: Option<HeaderValue>,
    error: &ProxyError,
    answered: Option<u16>,
) -> Response<Body> {
    let started = Instant::now();
    let mut call = Call::new(request_id(), peer, user_agent);
    let response = refuse(app, &mut call, error);
    let outcome = error.outcome();
    app.metrics.request(None, outcome);
    let status = answered.unwrap_or(response.status().as_u16());
    log_access(app, &call, outcome, status, started.elapsed(), None);
    response
}

/// What steps 1 to 4 produce for step 5.
struct Prepared {
    principal: Arc<Principal>,
    op: Operation,
    resolved: Resolved,
    permit: Permit,
    upstream_body: Bytes,
    /// The parsed call, kept until the quotas admit it: a throttled call's record carries
    /// its `context`.
    request: swf::SwfRequest,
}

/// Steps 1 to 4 (authenticate, resolve, authorize), everything but the network.
fn prepare(
    app: &App,
    parts: &http::request::Parts,
    body: Bytes,
    peer: Peer,
    now: SystemTime,
    call: &mut Call,
    trace: &Trace,
) -> Result<Prepared, ProxyError> {
    // 1. Authenticate.
    let principal = trace.child("authenticate").in_scope(|| {
        app.verifier.verify_with(parts, &body, now, |key, token| {
            app.principal(key, token, now)
        })
    })?;
    call.principal = Some(principal.clone());
    let _authorize = trace.child("authorize").entered();

    // 2. Action and resource.
    let target = parts
        .headers
        .get("x-amz-target")
        .map_or(&b""[..], HeaderValue::as_bytes);
    let op = swf::operation(target)?;
    call.operation = Some(op);
    call.action = Some(op.iam_action());
    let mut request = swf::parse(op, &body)?;
    let mut resolved = resolve::resolve(&app.service, &app.sealer, &request, &principal.arn)
        .inspect_err(|e| {
            if let ProxyError::NotPermitted { .. } = e {
                app.metrics.token_failure();
                call.sealed_token = request.string("taskToken").ok().map(str::to_owned);
            }
        })?;
    call.resource = Some(resolved.resource.clone());
    // The upstream's own token replaces the sealed one; the sealed one is kept (moved, not
    // copied) for the audit record's fingerprint, computed only if a record is written.
    if let Some(upstream) = resolved.upstream_token.take() {
        if let Some(Value::String(sealed)) = request
            .input
            .insert("taskToken".into(), Value::String(upstream))
        {
            call.sealed_token = Some(sealed);
        }
    }
    let decisions = resolve::decisions(&request, app.max_decisions)?;

    // 3. Authorize the call, then each decision it carries; 4. a denial returns here.
    let ctx = Context {
        input: Some(&request.input),
        ..caller_context(app, &principal, Action::Operation(op), peer, now)
    };
    let record_context = app.audit.record_context();
    // A record is certain (an allowed call's, or shadow mode's): its context is taken now.
    if record_context && (app.audit.include_allowed() || !principal.enforce) {
        call.context = Some(context_of(&ctx, &decisions, &resolved.resource));
    }
    let authorized = authorize_all(&principal, &resolved.resource, &ctx, &decisions, call);
    if authorized.is_err() && record_context && call.context.is_none() {
        call.context = Some(context_of(&ctx, &decisions, &resolved.resource));
    }
    let permit = authorized?;
    // Only a record of an allowed call names the statements that allowed it.
    if app.audit.include_allowed() {
        call.matched = permit.decision().statements.clone();
    }

    let upstream_body = if call.sealed_token.is_some() {
        Bytes::from(
            serde_json::to_vec(&request.input)
                .map_err(|e| ProxyError::Serialization(e.to_string()))?,
        )
    } else {
        body
    };
    Ok(Prepared {
        principal,
        op,
        resolved,
        permit,
        upstream_body,
        request,
    })
}

/// Authorizes the call, then each decision it carries, stopping at the first denial.
fn authorize_all(
    principal: &Principal,
    resource: &str,
    ctx: &Context<'_>,
    decisions: &[resolve::Decision<'_>],
    call: &mut Call,
) -> Result<Permit, ProxyError> {
    let permit = authorize(principal, resource, ctx, call, None)?;
    for (i, decision) in decisions.iter().enumerate() {
        let ctx = Context {
            action: Action::Decision(decision.kind),
            input: decision.attributes,
            ..*ctx
        };
        let position = format!(
            "decision {} of {} in RespondDecisionTaskCompleted",
            i + 1,
            decisions.len()
        );
        let allowed = authorize(principal, resource, &ctx, call, Some(&position))?;
        // A record of the allowed call names what allowed each decision too.
        if let Some(d) = call.context.as_mut().and_then(|c| c.decisions.get_mut(i)) {
            d.statements = matched(&allowed.decision().statements);
        }
    }
    Ok(permit)
}

/// `matchedStatements` of a record.
fn matched(statements: &[StatementRef]) -> Vec<MatchedStatement> {
    statements.iter().map(MatchedStatement::from).collect()
}

/// The call's `context` for its audit records: the keys the call presents (`ctx`), and each
/// decision's action, resource and SWF keys.
fn context_of(
    ctx: &Context<'_>,
    decisions: &[resolve::Decision<'_>],
    resource: &str,
) -> RecordContext {
    RecordContext {
        keys: ctx.presented(),
        decisions: decisions
            .iter()
            .map(|d| {
                let action = Action::Decision(d.kind);
                DecisionContext {
                    action: action.iam_action().to_owned(),
                    resource: resource.to_owned(),
                    keys: Context {
                        action,
                        input: d.attributes,
                        ..*ctx
                    }
                    .presented_swf(),
                    statements: Vec::new(),
                }
            })
            .collect(),
    }
}

/// Steps 1 to 4 for one request, as `handle` runs them, without forwarding: what the
/// benchmarks measure as "the whole handler without the network". Returns the body that
/// would be forwarded.
pub fn prepare_only(
    app: &App,
    parts: &http::request::Parts,
    body: Bytes,
    peer: Peer,
    now: SystemTime,
) -> Result<Bytes, ProxyError> {
    let mut call = Call::new(String::new(), peer, None);
    let trace = Trace::default();
    prepare(app, parts, body, peer, now, &mut call, &trace).map(|p| p.upstream_body)
}

/// Not `async fn`, for the reason `handle` gives.
#[allow(clippy::manual_async_fn)] // deliberate: see above
fn process<'a>(
    app: &'a App,
    request: Request<CallBody>,
    peer: Peer,
    call: &'a mut Call,
    trace: &'a Trace,
) -> impl Future<Output = Result<Response<Body>, ProxyError>> + 'a {
    async move {
        let (parts, body) = request.into_parts();
        let sts = app
            .sts
            .as_ref()
            .filter(|_| sts::query::is_query(&parts.headers));
        call.query_api = sts.is_some();
        let limit = incoming::limit(app.max_body_bytes, sts.is_some());
        let body = read_body(body, &parts.headers, limit, app.body_read_timeout).await?;
        let now = SystemTime::now();
        if let Some(sts) = sts {
            // Boxed: STS calls are rare and their future (a JWKS fetch included) is large; every
            // call's future would otherwise be as large, held for as long as a poll waits.
            return Box::pin(sts_call::handle(app, sts, &parts, &body, peer, now, call)).await;
        }
        let Prepared {
            principal,
            op,
            resolved,
            permit,
            upstream_body,
            request,
        } = prepare(app, &parts, body, peer, now, call, trace)?;
        // The caller's headers are not needed past here: not held while the upstream answers.
        drop(parts);

        call.outcome = if permit.shadowed() {
            Outcome::WouldDeny
        } else {
            Outcome::Allowed
        };
        // A call that must be audited is not forwarded while the audit log cannot be written.
        let must_audit = permit.shadowed() || app.audit.include_allowed();
        if must_audit && !app.audit.healthy() {
            return Err(audit_unavailable());
        }
        // Held until the answer has been written to the client (`Body::holding`).
        let admission = match app
            .quotas
            .admit(principal.meters(op), resolved.domain.as_deref())
            .instrument(trace.child("quotas"))
            .await
        {
            Ok(admission) => admission,
            Err(why) => {
                if app.audit.record_context() && call.context.is_none() {
                    let ctx = Context {
                        input: Some(&request.input),
                        ..caller_context(app, &principal, Action::Operation(op), peer, now)
                    };
                    let decisions = resolve::decisions(&request, usize::MAX).unwrap_or_default();
                    call.context = Some(context_of(&ctx, &decisions, &resolved.resource));
                }
                return Err(why.refusal(op));
            }
        };
        drop(request);
        let (upstream_span, trace_headers) = trace.upstream(op.name());
        let outbound = Outbound {
            request_id: &call.request_id,
            trace: &trace_headers,
        };
        // Shadow mode refuses nothing, so it hides nothing either.
        let lister = (op == Operation::ListDomains && app.filter_list_domains && principal.enforce)
            .then(|| visibility::Lister {
                forwarder: &app.forwarder,
                permit: &permit,
                pages: &app.pages,
                service: &app.service,
                policies: &principal.policies,
                ctx: caller_context(app, &principal, Action::Operation(op), peer, now),
                outbound,
            });
        let sent = Instant::now();
        let listing = match &lister {
            Some(lister) => {
                let input = serde_json::from_slice(&upstream_body)
                    .map_err(|e| ProxyError::Serialization(e.to_string()))?;
                lister.list(&input).instrument(upstream_span.clone()).await
            }
            None => app
                .forwarder
                .forward(&permit, op, upstream_body, &outbound)
                .instrument(upstream_span.clone())
                .await
                .map(Listing::Upstream),
        };
        call.upstream_time = sent.elapsed();
        app.metrics.upstream_time.observe(call.upstream_time);
        let response = match listing.inspect_err(|_| app.metrics.upstream_error())? {
            Listing::Upstream(response) => {
                upstream_span.record(
                    "http.response.status_code",
                    i64::from(response.status().as_u16()),
                );
                respond(app, op, &resolved, response, &call.request_id)
                    .instrument(upstream_span)
                    .await?
            }
            Listing::Page { body, request_id } => page_response(body, request_id, &call.request_id),
        };
        if let Some(id) = response
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
        {
            call.request_id = id.to_owned();
        }
        let allowed = (app.audit.include_allowed() && !permit.shadowed())
            .then(|| call.record(Outcome::Allowed, None));
        let written = trace
            .child("audit")
            .in_scope(|| write_records(app, call, allowed));
        if !written {
            return Err(audit_unavailable());
        }
        Ok(response.map(|body| body.holding(admission)))
    }
}

/// Authorizes one action, recording what decided it. In shadow mode a denial is kept for the
/// audit log as `wouldDeny` and the call goes on; `position` names a decision inside the call.
/// A record names the action authorized (the decision's, for a decision); `call.action` stays
/// the operation's unless this refuses.
fn authorize(
    principal: &Principal,
    resource: &str,
    ctx: &Context<'_>,
    call: &mut Call,
    position: Option<&str>,
) -> Result<Permit, ProxyError> {
    let action = Some(ctx.action.iam_action());
    match policy::authorize(
        &principal.policies,
        &principal.arn,
        resource,
        ctx,
        principal.enforce,
    ) {
        Ok(permit) => {
            if permit.shadowed() {
                call.matched = permit.decision().statements.clone();
                let record = Record {
                    action,
                    ..call.record(Outcome::WouldDeny, None)
                };
                call.pending.push(record);
            }
            Ok(permit)
        }
        Err((decision, mut message)) => {
            if let Some(position) = position {
                message.push_str(&format!(" ({position})"));
            }
            let outcome = match decision.kind {
                policy::DecisionKind::ExplicitDeny => Outcome::ExplicitDeny,
                _ => Outcome::ImplicitDeny,
            };
            call.matched = decision.statements;
            call.action = action;
            Err(ProxyError::NotPermitted { message, outcome })
        }
    }
}

/// The policy context of `principal`'s `action` (without the call's input).
fn caller_context<'c>(
    app: &'c App,
    principal: &'c Principal,
    action: Action,
    peer: Peer,
    now: SystemTime,
) -> Context<'c> {
    Context {
        caller: Caller {
            name: &principal.name,
            arn: &principal.arn,
            tags: &principal.tags,
            session: principal
                .session
                .as_ref()
                .map(|s| crate::policy::RoleSession {
                    role_arn: &s.role_arn,
                    name: &s.name,
                }),
        },
        action,
        input: None,
        source_ip: Some(peer.addr.ip()),
        now,
        secure_transport: peer.secure,
        region: &app.service.region,
        overrides: None,
    }
}

/// Passes the upstream's answer back: streamed, except poll answers, which are read whole to
/// seal their task token.
async fn respond(
    app: &App,
    op: Operation,
    resolved: &Resolved,
    response: Response<UpstreamBody>,
    request_id: &str,
) -> Result<Response<Body>, ProxyError> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if !parts.headers.contains_key("x-amzn-requestid") {
        if let Ok(v) = HeaderValue::from_str(request_id) {
            parts.headers.insert("x-amzn-requestid", v);
        }
    }
    let domain = resolved.domain.as_deref();
    let Some(domain) = domain.filter(|_| parts.status.is_success() && op.issues_task_token())
    else {
        return Ok(Response::from_parts(parts, Body::upstream(body)));
    };
    // Boxed: only a task's answer is read here, and the future would otherwise be part of
    // every call's, held for as long as a long poll waits.
    let bytes = Box::pin(read_answer(body, "poll", request_id)).await?;
    let rewritten = seal_token(app, domain, &bytes, request_id)?;
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
    Ok(Response::from_parts(parts, Body::full(rewritten)))
}

/// A page of the caller's filtered `ListDomains` (`visibility`), under the last upstream
/// answer's request id (or the proxy's own).
fn page_response(
    body: Vec<u8>,
    upstream_id: Option<HeaderValue>,
    request_id: &str,
) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Some(id) = upstream_id.or_else(|| HeaderValue::from_str(request_id).ok()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// An upstream answer read whole (bounded by [`MAX_POLL_RESPONSE_BYTES`]).
async fn read_answer(
    body: UpstreamBody,
    what: &str,
    request_id: &str,
) -> Result<Bytes, ProxyError> {
    body.read_all(MAX_POLL_RESPONSE_BYTES).await.map_err(|e| {
        tracing::warn!(request_id, error = %e, "could not read the upstream {what} answer");
        unreadable_upstream()
    })
}

/// A poll answer with its task token sealed for `domain`.
fn seal_token(
    app: &App,
    domain: &str,
    bytes: &[u8],
    request_id: &str,
) -> Result<Vec<u8>, ProxyError> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| {
        // Never pass on what may hold an unsealed upstream token.
        tracing::warn!(request_id, error = %e, "upstream poll answer is not JSON");
        unreadable_upstream()
    })?;
    if let Some(Value::String(token)) = value.get_mut("taskToken") {
        if !token.is_empty() {
            *token = app.sealer.seal(domain, token);
        }
    }
    serde_json::to_vec(&value).map_err(|_| unreadable_upstream())
}

fn unreadable_upstream() -> ProxyError {
    ProxyError::Unavailable(
        "Service Unavailable: the SWF endpoint behind this proxy sent an unreadable answer.".into(),
    )
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    ] {
        headers.remove(name);
    }
}

/// The one place a refusal is audited and answered.
fn refuse(app: &App, call: &mut Call, error: &ProxyError) -> Response<Body> {
    let outcome = error.outcome();
    if outcome == Outcome::AuthFailed {
        app.metrics.auth_failure(error.wire().short_name());
    }
    let recorded = if call.principal.is_none() {
        // Unauthenticated (so nothing pending): past the per-source allowance, counted into
        // a summary record.
        match app
            .audit
            .write_unauthenticated(&call.record(outcome, Some(error)), call.source_ip)
        {
            Ok(false) => {
                app.metrics.audit_suppressed();
                true
            }
            result => audit_result(app, result.map(drop), &call.request_id),
        }
    } else {
        // Upstream failures of allowed calls are not refusals; with `include_allowed` they
        // are recorded as allowed calls that failed.
        let refusal =
            (outcome != Outcome::Allowed || app.audit.include_allowed() || error.always_recorded())
                .then(|| call.record(outcome, Some(error)));
        write_records(app, call, refusal)
    };
    let mut response = if recorded {
        answer(call, error)
    } else {
        // Never answer a call that must be on record without the record.
        answer(call, &audit_unavailable())
    };
    if call.principal.is_none() {
        response.extensions_mut().insert(Unauthenticated);
    }
    response
}

/// The error's answer in the protocol the call came in.
fn answer(call: &Call, error: &ProxyError) -> Response<Body> {
    if call.query_api {
        let mut response =
            sts_call::xml_response(error.sts_body(&call.request_id), &call.request_id);
        *response.status_mut() =
            http::StatusCode::from_u16(error.sts_wire().0).unwrap_or(http::StatusCode::BAD_REQUEST);
        return response;
    }
    error_response(error, &call.request_id)
}

fn audit_unavailable() -> ProxyError {
    ProxyError::Unavailable("Service Unavailable: the audit log cannot be written.".into())
}

/// Writes the shadow-mode records, then `last`, under the request id the client receives:
/// every one is tried; true only if every one was written.
fn write_records(app: &App, call: &mut Call, last: Option<Record>) -> bool {
    let mut records = std::mem::take(&mut call.pending);
    for record in &mut records {
        record.request_id.clone_from(&call.request_id);
    }
    records.extend(last);
    let failed = records
        .iter()
        .filter(|record| !write_audit(app, record))
        .count();
    failed == 0
}

/// Writes one record; false if it could not be written.
fn write_audit(app: &App, record: &Record) -> bool {
    audit_result(app, app.audit.write(record), &record.request_id)
}

fn audit_result(app: &App, result: std::io::Result<()>, request_id: &str) -> bool {
    app.metrics.audit_record(result.is_ok());
    if let Err(e) = &result {
        tracing::error!(error = %e, request_id = %request_id, "could not write the audit record");
    }
    result.is_ok()
}

/// The AWS JSON 1.0 error response for `error`.
pub fn error_response(error: &ProxyError, request_id: &str) -> Response<Body> {
    let wire = error.wire();
    let mut response = Response::new(Body::full(error.body()));
    *response.status_mut() =
        http::StatusCode::from_u16(wire.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static(wire.short_name()),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}
