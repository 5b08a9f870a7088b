//! STS's Query API on the proxy's listener: a form-encoded `POST /` with `Action` and
//! `Version=2011-06-15`, answered in STS's XML, as the SDKs' STS clients (and their
//! web-identity credential providers) send and parse it. `AssumeRoleWithWebIdentity` is
//! unsigned; `GetCallerIdentity` is signed for the service `sts`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, CONTENT_TYPE};
use serde_json::Value;

use super::oidc::{self, TokenRefusal};
use super::session::{Credentials, Session, MAX_TAGS, MAX_TAG_VALUE};
use super::settings::{
    valid_name, valid_tag_text, Role, DEFAULT_DURATION_SECONDS, MIN_DURATION_SECONDS,
};
use super::Sts;
use crate::audit::WebIdentity;
use crate::error::{xml_escape, ProxyError};
use crate::policy::wildcard;
use crate::swf::Service;

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The tags claim AWS reads session tags from.
const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";
/// The longest session token issued (its calls carry it in a header).
const MAX_SESSION_TOKEN: usize = 8 * 1024;
/// `WebIdentityToken`'s longest, as in AWS.
const MAX_TOKEN: usize = 20_000;

/// Whether a request is for the STS: a form post, which SWF's JSON protocol never is.
pub fn is_query(headers: &HeaderMap) -> bool {
    !headers.contains_key("x-amz-target")
        && headers.get(CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .get(..33)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"application/x-www-form-urlencoded"))
        })
}

/// The actions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AssumeRoleWithWebIdentity,
    AssumeRole,
    GetCallerIdentity,
}

impl Action {
    pub fn iam_action(self) -> &'static str {
        match self {
            Action::AssumeRoleWithWebIdentity => "sts:AssumeRoleWithWebIdentity",
            Action::AssumeRole => "sts:AssumeRole",
            Action::GetCallerIdentity => "sts:GetCallerIdentity",
        }
    }
}

/// The largest form an STS call may send, and the most parameters in it: every call this STS
/// serves needs far fewer, and nothing larger is decoded before a signature is checked.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
pub const MAX_PARAMETERS: usize = 64;

/// A request's form parameters (each at most once).
#[derive(Debug, Default)]
pub struct Form(BTreeMap<String, String>);

impl Form {
    /// Reads a form of at most [`MAX_FORM_BYTES`] (the caller reads no more) and
    /// [`MAX_PARAMETERS`]: `Action` and `Version` first, so that a call this STS does not
    /// serve is refused before the rest is decoded.
    pub fn parse(body: &[u8]) -> Result<Form, ProxyError> {
        let pairs = body.split(|&b| b == b'&').filter(|p| !p.is_empty()).count();
        if pairs > MAX_PARAMETERS {
            return Err(ProxyError::Validation(format!(
                "A request carries at most {MAX_PARAMETERS} parameters."
            )));
        }
        let mut head = Form::default();
        for (key, value) in form_urlencoded::parse(body) {
            if key == "Action" || key == "Version" {
                head.insert(key.into_owned(), value.into_owned())?;
            }
        }
        head.action()?;
        let mut out = Form::default();
        for (key, value) in form_urlencoded::parse(body) {
            out.insert(key.into_owned(), value.into_owned())?;
        }
        Ok(out)
    }

    fn insert(&mut self, key: String, value: String) -> Result<(), ProxyError> {
        if self.0.contains_key(&key) {
            return Err(ProxyError::Validation(format!(
                "The parameter {} is given more than once.",
                crate::error::excerpt(&key)
            )));
        }
        self.0.insert(key, value);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every parameter, by name.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn required(&self, name: &str, member: &str) -> Result<&str, ProxyError> {
        self.get(name).ok_or_else(|| {
            ProxyError::Validation(format!(
                "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ))
        })
    }

    /// The action, once `Version` is STS's.
    pub fn action(&self) -> Result<Action, ProxyError> {
        let action = self
            .get("Action")
            .ok_or_else(|| ProxyError::InvalidAction("(none)".into()))?;
        let action = match action {
            "AssumeRoleWithWebIdentity" => Action::AssumeRoleWithWebIdentity,
            "AssumeRole" => Action::AssumeRole,
            "GetCallerIdentity" => Action::GetCallerIdentity,
            other => return Err(ProxyError::InvalidAction(crate::error::excerpt(other))),
        };
        match self.get("Version") {
            Some("2011-06-15") => Ok(action),
            _ => Err(ProxyError::Validation("Version must be 2011-06-15.".into())),
        }
    }
}

/// An `AssumeRoleWithWebIdentity` or `AssumeRole` call's parameters, checked.
#[derive(Debug)]
pub struct RoleRequest<'f> {
    pub role_arn: &'f str,
    pub session_name: &'f str,
    /// `WebIdentityToken` (`AssumeRoleWithWebIdentity` only).
    pub token: &'f str,
    pub duration: Duration,
}

impl<'f> RoleRequest<'f> {
    /// `action`'s parameters from `form`.
    pub fn from_form(
        form: &'f Form,
        action: Action,
        max_duration: Duration,
    ) -> Result<Self, ProxyError> {
        // Session policies narrow a session; ignoring one would grant more than was asked.
        // Tags, MFA and external ids would be conditions this STS does not check.
        let unsupported = |k: &str| {
            k == "Policy"
                || k.starts_with("PolicyArns.")
                || k == "ProviderId"
                || k.starts_with("Tags.")
                || k.starts_with("TransitiveTagKeys.")
                || k == "SerialNumber"
                || k == "TokenCode"
                || k == "ExternalId"
                || k == "SourceIdentity"
                || k.starts_with("ProvidedContexts.")
        };
        if let Some((k, _)) = form.params().find(|(k, _)| unsupported(k)) {
            return Err(ProxyError::Validation(format!(
                "{} is not supported by this STS (nor are session policies, tags, MFA, external ids and source identities).",
                crate::error::excerpt(k)
            )));
        }
        let role_arn = form.required("RoleArn", "roleArn")?;
        let session_name = form.required("RoleSessionName", "roleSessionName")?;
        let token = match action {
            Action::AssumeRoleWithWebIdentity => {
                let token = form.required("WebIdentityToken", "webIdentityToken")?;
                if token.len() < 4 || token.len() > MAX_TOKEN {
                    return Err(ProxyError::Validation(format!(
                        "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and {MAX_TOKEN}"
                    )));
                }
                token
            }
            _ => "",
        };
        if session_name.len() < 2 || !valid_name(session_name, 64) {
            return Err(ProxyError::Validation(
                "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64 and match [\\w+=,.@-]*".into(),
            ));
        }
        let seconds = match form.get("DurationSeconds") {
            None => DEFAULT_DURATION_SECONDS,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|s| (MIN_DURATION_SECONDS..=max_duration.as_secs()).contains(s))
                .ok_or_else(|| {
                    ProxyError::Validation(format!(
                        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role, or is under {MIN_DURATION_SECONDS}: it must be between {MIN_DURATION_SECONDS} and {}.",
                        max_duration.as_secs()
                    ))
                })?,
        };
        Ok(RoleRequest {
            role_arn,
            session_name,
            token,
            duration: Duration::from_secs(seconds),
        })
    }
}

impl From<TokenRefusal> for ProxyError {
    fn from(refusal: TokenRefusal) -> ProxyError {
        match refusal {
            TokenRefusal::Expired => ProxyError::ExpiredIdentityToken,
            TokenRefusal::Invalid(m) => ProxyError::InvalidIdentityToken(m),
            TokenRefusal::Unreachable(m) => ProxyError::IdpCommunication(m),
        }
    }
}

impl From<oidc::AmbiguousClaim> for ProxyError {
    fn from(ambiguous: oidc::AmbiguousClaim) -> ProxyError {
        ProxyError::IdpRejectedClaim(ambiguous.to_string())
    }
}

/// A session issued.
#[derive(Debug)]
pub struct Issued {
    pub credentials: Credentials,
    pub expires: SystemTime,
    pub role: String,
    pub assumed_role_arn: String,
    pub session_name: String,
    /// For a web identity: who it was and the audience its token was for.
    pub identity: Option<(WebIdentity, String)>,
}

/// A refusal, with the web identity when its token verified.
pub type Refusal = (ProxyError, Option<WebIdentity>);

impl Sts {
    /// Verifies the web identity, then the role's trust in it, and issues a session of the
    /// role. The token comes first, within its source's allowance: until it verifies, an
    /// unknown role and a role that trusts no such token answer exactly as a known one would,
    /// so a stranger cannot list the roles that take web identities.
    pub async fn assume_role_with_web_identity(
        &self,
        service: &Service,
        request: &RoleRequest<'_>,
        source: IpAddr,
        now: SystemTime,
    ) -> Result<Issued, Refusal> {
        let denied = || {
            ProxyError::AccessDenied(
                "Not authorized to perform sts:AssumeRoleWithWebIdentity".into(),
            )
        };
        self.admit_unverified(source).map_err(|e| (e, None))?;
        let issuer = oidc::unverified_issuer(request.token).map_err(|e| (e.into(), None))?;
        let provider = self.provider(&issuer).ok_or_else(|| {
            let refusal = TokenRefusal::Invalid(format!(
                "No OpenIDConnect provider found for the issuer {}.",
                crate::error::excerpt(&issuer)
            ));
            (refusal.into(), None)
        })?;
        let claims = provider
            .verify(request.token)
            .await
            .map_err(|e| (e.into(), None))?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let subject = text(claims.get("sub")).unwrap_or_default();
        let identity = WebIdentity {
            issuer: provider.issuer.clone(),
            subject: subject.clone(),
        };
        let refuse = |e: ProxyError| (e, Some(identity.clone()));
        let template = self
            .role_by_arn(request.role_arn)
            .filter(|t| {
                t.role
                    .provider
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(p, provider))
            })
            .ok_or_else(|| refuse(denied()))?;
        let role = &template.role;
        if !role.subjects.iter().any(|p| wildcard::matches(p, &subject)) {
            return Err(refuse(denied()));
        }
        for (path, patterns) in &role.conditions {
            let value = text(oidc::claim(&claims, path).map_err(|e| refuse(e.into()))?);
            let fits = value.is_some_and(|v| patterns.iter().any(|p| wildcard::matches(p, &v)));
            if !fits {
                return Err(refuse(denied()));
            }
        }
        let tags = session_tags(role, &claims).map_err(refuse)?;
        self.admit_issue(&format!("{}\n{subject}", provider.issuer))
            .map_err(refuse)?;
        let audience = match claims.get("aud") {
            Some(Value::String(a)) => a.clone(),
            Some(Value::Array(all)) => all
                .iter()
                .filter_map(Value::as_str)
                .find(|a| provider.audiences.iter().any(|b| b == a))
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        let issued = self.issue(
            service,
            role,
            request.session_name,
            tags,
            request.duration,
            now,
        );
        // Its calls carry it in a header: it must fit the proxy's own header limits.
        if issued.credentials.session_token.len() > MAX_SESSION_TOKEN {
            return Err(refuse(ProxyError::IdpRejectedClaim(format!(
                "The session's tags make a session token of {} bytes, over {MAX_SESSION_TOKEN}: send fewer or shorter tags.",
                issued.credentials.session_token.len()
            ))));
        }
        Ok(Issued {
            identity: Some((identity, audience)),
            ..issued
        })
    }

    /// A session of `role` named `name`, with `tags`, for `duration` from `now`.
    pub fn issue(
        &self,
        service: &Service,
        role: &Role,
        name: &str,
        tags: BTreeMap<String, String>,
        duration: Duration,
        now: SystemTime,
    ) -> Issued {
        let session = Session {
            role: role.name.clone(),
            name: name.to_owned(),
            // Whole seconds, as the token carries them.
            expires: crate::sts::truncate_to_second(now + duration),
            issued: crate::sts::truncate_to_second(now),
            tags,
        };
        let credentials = self.keys.issue(&session);
        Issued {
            credentials,
            expires: session.expires,
            role: role.name.clone(),
            assumed_role_arn: super::assumed_role_arn(service, &role.name, &session.name),
            session_name: session.name,
            identity: None,
        }
    }
}

/// The session tags: the role's, from the claims it names, then, where the role accepts them
/// (`accept_tags_claim`), those of AWS's tags claim (`principal_tags`) that the role does not
/// set itself.
fn session_tags(
    role: &Role,
    claims: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, String>, ProxyError> {
    let rejected = |m: String| ProxyError::IdpRejectedClaim(m);
    let mut tags = BTreeMap::new();
    for (tag, path) in &role.session_tags {
        let value = oidc::claim(claims, path)?
            .and_then(Value::as_str)
            .ok_or_else(|| {
                rejected(format!(
                    "The token has no text claim `{path}`, which the session tag `{tag}` comes from."
                ))
            })?;
        tags.insert(tag.clone(), value.to_owned());
    }
    let principal_tags = claims
        .get(TAGS_CLAIM)
        .and_then(|t| t.get("principal_tags"))
        .and_then(Value::as_object)
        .filter(|_| role.accept_tags_claim);
    if let Some(principal_tags) = principal_tags {
        for (tag, values) in principal_tags {
            let value = match values {
                Value::Array(v) if v.len() == 1 => v[0].as_str(),
                Value::String(s) => Some(s.as_str()),
                _ => None,
            }
            .ok_or_else(|| {
                rejected(format!(
                    "The session tag `{}` in `{TAGS_CLAIM}` must hold one text value.",
                    crate::error::excerpt(tag)
                ))
            })?;
            if !tags.keys().any(|k: &String| k.eq_ignore_ascii_case(tag)) {
                tags.insert(tag.clone(), value.to_owned());
            }
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(rejected(format!(
            "A session carries at most {MAX_TAGS} tags; the token gives {}.",
            tags.len()
        )));
    }
    for (tag, value) in &tags {
        let key_ok = !tag.is_empty() && tag.len() <= 128 && valid_tag_text(tag);
        if !key_ok || value.len() > MAX_TAG_VALUE || !valid_tag_text(value) {
            return Err(rejected(format!(
                "The session tag `{}` or its value is not a valid tag (at most 128 and {MAX_TAG_VALUE} of letters, digits, spaces and _ . : / = + - @).",
                crate::error::excerpt(tag)
            )));
        }
    }
    Ok(tags)
}

/// ISO 8601 with seconds, as STS writes `Expiration`.
fn iso8601(t: SystemTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from(t)
        .format(&format)
        .unwrap_or_default()
}

/// The answer of the `action` (`AssumeRoleWithWebIdentity` or `AssumeRole`) that issued
/// `issued`.
pub fn issued_xml(action: Action, issued: &Issued, request_id: &str) -> String {
    let e = xml_escape;
    let c = &issued.credentials;
    let name = match action {
        Action::AssumeRole => "AssumeRole",
        _ => "AssumeRoleWithWebIdentity",
    };
    let identity = issued.identity.as_ref().map_or(String::new(), |(who, audience)| {
        format!(
            "    <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken>\n    <Audience>{}</Audience>\n    <Provider>{}</Provider>\n",
            e(&who.subject),
            e(audience),
            e(&who.issuer)
        )
    });
    format!(
        "<{name}Response xmlns=\"{NAMESPACE}\">\n\
         \x20 <{name}Result>\n\
         {identity}\
         \x20   <AssumedRoleUser>\n\
         \x20     <Arn>{}</Arn>\n\
         \x20     <AssumedRoleId>{}:{}</AssumedRoleId>\n\
         \x20   </AssumedRoleUser>\n\
         \x20   <Credentials>\n\
         \x20     <AccessKeyId>{}</AccessKeyId>\n\
         \x20     <SecretAccessKey>{}</SecretAccessKey>\n\
         \x20     <SessionToken>{}</SessionToken>\n\
         \x20     <Expiration>{}</Expiration>\n\
         \x20   </Credentials>\n\
         \x20 </{name}Result>\n\
         \x20 <ResponseMetadata>\n\
         \x20   <RequestId>{}</RequestId>\n\
         \x20 </ResponseMetadata>\n\
         </{name}Response>\n",
        e(&issued.assumed_role_arn),
        e(&issued.role),
        e(&issued.session_name),
        e(&c.access_key_id),
        e(c.secret_access_key.expose()),
        e(&c.session_token),
        iso8601(issued.expires),
        e(request_id),
    )
}

/// The `GetCallerIdentity` answer for `principal`.
pub fn caller_identity_xml(
    principal: &crate::identity::Principal,
    service: &Service,
    request_id: &str,
) -> String {
    let e = xml_escape;
    let user_id = match &principal.session {
        Some(s) => format!("{}:{}", principal.name, s.name),
        None => principal.name.clone(),
    };
    format!(
        "<GetCallerIdentityResponse xmlns=\"{NAMESPACE}\">\n\
         \x20 <GetCallerIdentityResult>\n\
         \x20   <Arn>{}</Arn>\n\
         \x20   <UserId>{}</UserId>\n\
         \x20   <Account>{}</Account>\n\
         \x20 </GetCallerIdentityResult>\n\
         \x20 <ResponseMetadata>\n\
         \x20   <RequestId>{}</RequestId>\n\
         \x20 </ResponseMetadata>\n\
         </GetCallerIdentityResponse>\n",
        e(&principal.arn),
        e(&user_id),
        e(&service.account_id),
        e(request_id),
    )
}

#[cfg(test)]
mod tests;
