//! STS calls on the listener (`sts::query`): a session issued to a web identity or, by
//! `AssumeRole`, to a principal its policies allow, and the caller's identity. A session
//! issued is on record whatever the audit settings: no record, no credentials.

use std::collections::BTreeMap;
use std::time::SystemTime;

use http::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;

use super::{audit_unavailable, authorize, caller_context, write_records, Body, Call, Peer};
use crate::app::App;
use crate::audit::{self, Outcome};
use crate::error::ProxyError;
use crate::identity::Principal;
use crate::policy::Action as PolicyAction;
use crate::sts::query::{self, Action, Form, Issued, RoleRequest};
use crate::sts::Sts;

/// An STS Query API answer.
pub(super) fn xml_response(body: Vec<u8>, request_id: &str) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

pub(super) async fn handle(
    app: &App,
    sts: &Sts,
    parts: &http::request::Parts,
    body: &[u8],
    peer: Peer,
    now: SystemTime,
    call: &mut Call,
) -> Result<Response<Body>, ProxyError> {
    let form = Form::parse(body)?;
    let action = form.action()?;
    call.action = Some(action.iam_action());
    match action {
        Action::AssumeRoleWithWebIdentity => {
            let request = RoleRequest::from_form(&form, action, sts.max_duration)?;
            call.resource = Some(crate::error::excerpt(request.role_arn));
            let issued = sts
                .assume_role_with_web_identity(&app.service, &request, peer.addr.ip(), now)
                .await
                .map_err(|(error, identity)| {
                    call.web_identity = identity;
                    error
                })?;
            call.web_identity = issued.identity.as_ref().map(|(who, _)| who.clone());
            answer_issued(app, call, action, &issued)
        }
        Action::AssumeRole => {
            let principal = authenticate(app, sts, parts, body, now, call)?;
            let request = RoleRequest::from_form(&form, action, sts.max_duration)?;
            call.resource = Some(crate::error::excerpt(request.role_arn));
            if principal.session.is_some() {
                return Err(ProxyError::AccessDenied(
                    "Roles are assumed with a key, not with a session: no role chaining.".into(),
                ));
            }
            let ctx = caller_context(app, &principal, PolicyAction::AssumeRole, peer, now);
            // STS calls are rare: the context is taken whether or not a record needs it.
            if app.audit.record_context() {
                call.context = Some(crate::audit::RecordContext {
                    keys: ctx.presented(),
                    decisions: Vec::new(),
                });
            }
            let permit = authorize(&principal, request.role_arn, &ctx, call, None)?;
            let not_assumable = |why: &str| {
                ProxyError::AccessDenied(format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {}: {why}",
                    principal.arn,
                    crate::error::excerpt(request.role_arn)
                ))
            };
            // Shadow mode refuses nothing, but credentials it would not grant are not issued.
            if permit.shadowed() {
                return Err(not_assumable(
                    "in shadow mode, only what the policies allow is issued",
                ));
            }
            // Roles that take web identities are their providers' alone: `Action = "*"`
            // written before the STS existed reaches no such role.
            let template = sts
                .role_by_arn(request.role_arn)
                .filter(|t| t.role.provider.is_none())
                .ok_or_else(|| not_assumable("no role by that name is assumed with a key"))?;
            sts.admit_issue(&format!("principal\n{}", principal.name))?;
            let issued = sts.issue(
                &app.service,
                &template.role,
                request.session_name,
                BTreeMap::new(),
                request.duration,
                now,
            );
            answer_issued(app, call, action, &issued)
        }
        Action::GetCallerIdentity => {
            let principal = authenticate(app, sts, parts, body, now, call)?;
            let record = app
                .audit
                .include_allowed()
                .then(|| call.record(Outcome::Allowed, None));
            if !write_records(app, call, record) {
                return Err(audit_unavailable());
            }
            let xml = query::caller_identity_xml(&principal, &app.service, &call.request_id);
            Ok(xml_response(xml.into_bytes(), &call.request_id))
        }
    }
}

/// A signed STS call's principal (a key's or a session's), for the service `sts`.
fn authenticate(
    app: &App,
    sts: &Sts,
    parts: &http::request::Parts,
    body: &[u8],
    now: SystemTime,
    call: &mut Call,
) -> Result<std::sync::Arc<Principal>, ProxyError> {
    let principal = sts.verifier.verify_with(parts, body, now, |key, token| {
        app.principal(key, token, now)
    })?;
    call.principal = Some(principal.clone());
    Ok(principal)
}

/// Records the session issued, then answers with its credentials.
fn answer_issued(
    app: &App,
    call: &mut Call,
    action: Action,
    issued: &Issued,
) -> Result<Response<Body>, ProxyError> {
    call.issued = Some(audit::PrincipalRef {
        name: issued.role.clone(),
        arn: issued.assumed_role_arn.clone(),
        access_key_id: issued.credentials.access_key_id.clone(),
    });
    call.outcome = Outcome::Issued;
    let record = call.record(Outcome::Issued, None);
    if !write_records(app, call, Some(record)) {
        return Err(audit_unavailable());
    }
    let xml = query::issued_xml(action, issued, &call.request_id);
    Ok(xml_response(xml.into_bytes(), &call.request_id))
}
