//! Step 1 of the request path: authenticate the caller by verifying AWS Signature Version 4,
//! per SPEC's signature rules. The proxy is the verifier; `verify` returns the principal whose
//! secret produced the signature, or the AWS error that refuses the request.
//!
//! Only the derived signing key is cached (per credential and date); nothing about a request is.

pub mod authorization;
pub mod canonical;
pub mod signer;

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, HeaderName};
use http::request::Parts;
use subtle::ConstantTimeEq;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::error::{excerpt, ProxyError};
use crate::secret::Secret;
use authorization::Authorization;
use sha2::{Digest, Sha256};

static AUTHORIZATION: HeaderName = http::header::AUTHORIZATION;
/// `X-Amz-Date`, which the verifier reads and the upstream signer writes.
pub static X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
static X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
static X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

/// The service name clients sign for.
pub const SERVICE: &str = "swf";

/// An access key pair the proxy issued, with its cached signing key.
#[derive(Debug)]
pub struct Credential {
    pub access_key_id: String,
    secret: Secret,
    cache: Mutex<Option<(String, canonical::HmacSha256)>>,
}

impl Credential {
    pub fn new(access_key_id: impl Into<String>, secret: Secret) -> Credential {
        Credential {
            access_key_id: access_key_id.into(),
            secret,
            cache: Mutex::new(None),
        }
    }

    /// The signing key for a credential scope (`date/region/service/aws4_request`), keyed
    /// for HMAC and derived once per scope: in practice once a day.
    pub(crate) fn signing_key(
        &self,
        scope: &authorization::Scope<'_>,
        scope_text: &str,
    ) -> canonical::HmacSha256 {
        // A poisoned lock only means another thread panicked mid-update; the cache is
        // rebuilt from the secret either way.
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached_scope, key)) = cache.as_ref() {
            if cached_scope == scope_text {
                return key.clone();
            }
        }
        let key = canonical::keyed(&canonical::signing_key(
            self.secret.expose(),
            scope.date,
            scope.region,
            scope.service,
        ));
        *cache = Some((scope_text.to_owned(), key.clone()));
        key
    }
}

/// Verification settings: the scope clients must sign for, the allowed clock skew, and the
/// headers every request must carry exactly once and sign.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub region: String,
    pub service: String,
    pub max_skew: Duration,
    pub required_signed: &'static [&'static str],
    /// The hosts clients may sign for (lowercase); empty: any (`[service] hosts`).
    pub hosts: Vec<String>,
}

/// The headers SWF requests must carry once and sign (SPEC, "Signature rules").
pub const SWF_REQUIRED_SIGNED: &[&str] = &["content-type", "host", "x-amz-date", "x-amz-target"];
/// The headers STS Query API requests must carry once and sign.
pub const STS_REQUIRED_SIGNED: &[&str] = &["content-type", "host", "x-amz-date"];

impl Verifier {
    /// The verifier for SWF clients signing for `region`.
    pub fn swf(region: impl Into<String>, max_skew: Duration) -> Verifier {
        Verifier {
            region: region.into(),
            service: SERVICE.to_owned(),
            max_skew,
            required_signed: SWF_REQUIRED_SIGNED,
            hosts: Vec::new(),
        }
    }

    /// The verifier for STS calls signed for `region`: the Query API signs no target.
    pub fn sts(region: impl Into<String>, max_skew: Duration) -> Verifier {
        Verifier {
            region: region.into(),
            service: "sts".to_owned(),
            max_skew,
            required_signed: STS_REQUIRED_SIGNED,
            hosts: Vec::new(),
        }
    }

    /// Pins the signed host to `hosts`, so that a request captured at another deployment
    /// sharing the same keys is refused here.
    pub fn with_hosts(mut self, hosts: Vec<String>) -> Verifier {
        self.hosts = hosts;
        self
    }
}

fn invalid(message: impl Into<String>) -> ProxyError {
    ProxyError::InvalidSignature(message.into())
}

/// The single value of `name`, refusing repeats.
fn single<K: http::header::AsHeaderName>(
    headers: &HeaderMap,
    name: K,
    repeated: impl FnOnce() -> ProxyError,
) -> Result<Option<&[u8]>, ProxyError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(repeated());
    }
    Ok(first.map(|v| v.as_bytes()))
}

impl Verifier {
    /// Checks the request's shape and signature. `lookup` finds a credential by access key id.
    /// A request carrying `x-amz-security-token` is refused: static keys have no session.
    pub fn verify<'p, P: AsRef<Credential>>(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
        lookup: impl FnOnce(&str) -> Option<&'p P>,
    ) -> Result<&'p P, ProxyError> {
        self.verify_with(parts, body, now, |key, token| match token {
            Some(_) => Err(ProxyError::UnrecognizedClient),
            None => lookup(key).ok_or(ProxyError::UnrecognizedClient),
        })
    }

    /// Checks the request's shape and signature. `lookup` finds a credential by access key
    /// id and the `x-amz-security-token` sent with it (a session's), or refuses it; the token
    /// is trusted only once the signature it keys verifies (and the verifier requires it
    /// signed).
    pub fn verify_with<P, C>(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
        lookup: impl FnOnce(&str, Option<&[u8]>) -> Result<P, ProxyError>,
    ) -> Result<P, ProxyError>
    where
        P: std::ops::Deref<Target = C>,
        C: AsRef<Credential> + ?Sized,
    {
        check_shape(parts)?;
        let headers = &parts.headers;

        let auth_value = single(headers, &AUTHORIZATION, || {
            ProxyError::IncompleteSignature("Only one Authorization header is allowed.".into())
        })?
        .ok_or(ProxyError::MissingAuthentication)?;
        let auth = authorization::parse(auth_value)?;

        let amz_date = single(headers, &X_AMZ_DATE, || {
            ProxyError::IncompleteSignature("Only one X-Amz-Date header is allowed.".into())
        })?
        .ok_or_else(|| {
            ProxyError::IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            )
        })?;
        let (amz_date, signed_at) = parse_amz_date(amz_date)?;

        let token = single(headers, &X_AMZ_SECURITY_TOKEN, || {
            ProxyError::IncompleteSignature(
                "Only one X-Amz-Security-Token header is allowed.".into(),
            )
        })?;
        let principal = lookup(auth.access_key_id, token)?;

        self.check_scope(&auth, amz_date)?;
        self.check_clock(amz_date, signed_at, now)?;
        let host = host_value(parts)?;
        if !self.hosts.is_empty()
            && !self
                .hosts
                .iter()
                .any(|h| h.as_bytes().eq_ignore_ascii_case(host))
        {
            return Err(invalid(format!(
                "The signed host '{}' is not a host of this service.",
                excerpt(&String::from_utf8_lossy(host))
            )));
        }
        check_signed_headers(headers, &auth, self.required_signed)?;

        let payload_hash = canonical::hex64(&Sha256::digest(body).into());
        if let Some(declared) = headers.get(&X_AMZ_CONTENT_SHA256) {
            if declared.as_bytes() != payload_hash {
                return Err(invalid(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }

        let mut creq = canonical::CanonicalHasher::new("POST", "/", "");
        for name in auth.signed_header_names() {
            let present = if name == "host" {
                creq.header(name, std::iter::once(host))
            } else {
                creq.header(name, headers.get_all(name).iter().map(|v| v.as_bytes()))
            };
            if !present {
                return Err(invalid(format!(
                    "Signed header '{}' is not present in the request.",
                    excerpt(name)
                )));
            }
        }
        let creq = creq.finish(auth.signed_headers, &payload_hash);
        let key = (*principal)
            .as_ref()
            .signing_key(&auth.scope, auth.scope_text);
        let expected = canonical::signature_bytes(&key, amz_date, auth.scope_text, &creq);
        let mut provided = [0u8; 32];
        let matches = hex::decode_to_slice(auth.signature, &mut provided).is_ok()
            && auth.signature.bytes().all(|b| !b.is_ascii_uppercase())
            && bool::from(provided.ct_eq(&expected));
        if !matches {
            return Err(invalid(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service \
                 documentation for details.",
            ));
        }
        Ok(principal)
    }

    fn check_scope(&self, auth: &Authorization<'_>, amz_date: &str) -> Result<(), ProxyError> {
        let scope = &auth.scope;
        if scope.date != &amz_date[..8] {
            return Err(invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                excerpt(scope.date),
                &amz_date[..8],
                amz_date
            )));
        }
        if scope.region != self.region {
            return Err(invalid(format!(
                "Credential should be scoped to a valid region, not '{}'.",
                excerpt(scope.region)
            )));
        }
        if scope.service != self.service {
            return Err(invalid(format!(
                "Credential should be scoped to correct service: '{}'.",
                self.service
            )));
        }
        if scope.terminator != "aws4_request" {
            return Err(invalid(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
                excerpt(scope.terminator)
            )));
        }
        Ok(())
    }

    fn check_clock(
        &self,
        amz_date: &str,
        signed_at: OffsetDateTime,
        now: SystemTime,
    ) -> Result<(), ProxyError> {
        let now = OffsetDateTime::from(now);
        let skew = time::Duration::try_from(self.max_skew).unwrap_or(time::Duration::MAX);
        let minutes = self.max_skew.as_secs() / 60;
        if signed_at < now - skew {
            return Err(invalid(format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - {minutes} min.)",
                format_amz_date(now - skew),
                format_amz_date(now)
            )));
        }
        if signed_at > now + skew {
            return Err(invalid(format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + {minutes} min.)",
                format_amz_date(now + skew),
                format_amz_date(now)
            )));
        }
        Ok(())
    }
}

/// Only `POST /` without a query string: the one shape SWF's JSON protocol uses. Anything
/// else (including presigned query-string authentication) is refused before any lookup.
fn check_shape(parts: &Parts) -> Result<(), ProxyError> {
    if let Some(query) = parts.uri.query() {
        let presigned = query
            .split('&')
            .any(|p| p.starts_with("X-Amz-Signature=") || p.starts_with("X-Amz-Credential="));
        let message = if presigned {
            "Query-string (presigned) authentication is not accepted; sign the Authorization header."
        } else {
            "Requests must not carry a query string."
        };
        return Err(invalid(message));
    }
    if parts.method != http::Method::POST || parts.uri.path() != "/" {
        return Err(ProxyError::UnknownOperation(format!(
            "Only POST / is served; got {} {}.",
            excerpt(parts.method.as_str()),
            excerpt(parts.uri.path())
        )));
    }
    Ok(())
}

/// The value signed as `host`: the `Host` header (HTTP/1.1) or the `:authority` (HTTP/2).
fn host_value(parts: &Parts) -> Result<&[u8], ProxyError> {
    let header = single(&parts.headers, &http::header::HOST, || {
        invalid("Only one Host header is allowed.")
    })?;
    match (header, parts.uri.authority()) {
        (Some(h), _) => Ok(h),
        (None, Some(authority)) => Ok(authority.as_str().as_bytes()),
        (None, None) => Err(invalid("The request has no Host header.")),
    }
}

/// Required headers present once and signed; every `x-amz-*` header signed.
fn check_signed_headers(
    headers: &HeaderMap,
    auth: &Authorization<'_>,
    required: &[&str],
) -> Result<(), ProxyError> {
    for &name in required {
        // `host` may come from the HTTP/2 authority instead; `host_value` checked it.
        if name != "host" {
            let present = single(headers, name, || {
                invalid(format!("Only one '{name}' header is allowed."))
            })?;
            if present.is_none() {
                return Err(invalid(format!("The request has no '{name}' header.")));
            }
        }
        if !auth.signs(name) {
            return Err(invalid(format!(
                "'{name}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    for name in headers.keys().map(HeaderName::as_str) {
        if name.starts_with("x-amz-") && !auth.signs(name) {
            if name == "x-amz-security-token" {
                return Err(ProxyError::UnrecognizedClient);
            }
            return Err(invalid(format!(
                "'{}' must be a 'SignedHeader' in the AWS Authorization.",
                excerpt(name)
            )));
        }
    }
    Ok(())
}

/// Parses `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(raw: &[u8]) -> Result<(&str, OffsetDateTime), ProxyError> {
    let bad = || {
        ProxyError::IncompleteSignature(
            "X-Amz-Date must be in ISO-8601 basic format 'YYYYMMDDTHHMMSSZ'.".into(),
        )
    };
    let text = std::str::from_utf8(raw).map_err(|_| bad())?;
    if text.len() != 16 {
        return Err(bad());
    }
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let parsed = PrimitiveDateTime::parse(text, &format).map_err(|_| bad())?;
    Ok((text, parsed.assume_utc()))
}

fn format_amz_date(t: OffsetDateTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(&format).unwrap_or_default()
}

/// Formats `t` as an `X-Amz-Date` value, `YYYYMMDDTHHMMSSZ`, digit by digit (the upstream
/// signer does this for every call).
pub fn amz_date(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    let (h, m, s) = t.to_hms();
    let fields = [
        (t.year().clamp(0, 9999) as u32, 4),
        (u32::from(u8::from(t.month())), 2),
        (u32::from(t.day()), 2),
        (u32::from(h), 2),
        (u32::from(m), 2),
        (u32::from(s), 2),
    ];
    let mut out = String::with_capacity(16);
    for (i, (value, width)) in fields.into_iter().enumerate() {
        if i == 3 {
            out.push('T');
        }
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests;
