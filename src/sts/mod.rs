//! The proxy as its tenants' STS (SPEC, "Temporary credentials"): web identities (OIDC
//! tokens, such as a Kubernetes pod's projected service-account token) are exchanged for
//! short-lived role sessions, and calls signed with a session are authenticated as the
//! role's principal with the session's tags.
//!
//! - [`oidc`]: identity providers' key sets and token verification;
//! - [`session`]: stateless session tokens and the credentials derived from them;
//! - [`query`]: the STS Query API on the listener (form in, XML out).
//!
//! Opening a session token costs a MAC, a stream cipher and a few allocations; the principal
//! built from it is cached by access key id ([`Sessions`]), so a session's later calls cost a
//! map lookup and a comparison of the token, as a static key's do.

pub mod oidc;
pub mod query;
pub mod session;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use crate::app::{Principal, SessionInfo};
use crate::config::sts::Role;
use crate::error::ProxyError;
use crate::metrics::PrincipalCounters;
use crate::quota::gcra::{self, Gcra, Rate};
use crate::quota::Meters;
use crate::sigv4::{Credential, Verifier};
use session::{SessionError, SessionKeys};

/// Sessions whose principals are kept; past this, expired ones are dropped, then all.
const CACHE_ENTRIES: usize = 10_000;
/// Identities whose issue buckets are kept; past this, full (idle) ones are dropped, then all.
const ISSUERS: usize = 65_536;

/// A role with what its sessions share.
#[derive(Debug)]
pub struct RoleTemplate {
    pub role: Role,
    pub quotas: Arc<Meters>,
    pub counters: Arc<PrincipalCounters>,
}

/// One generation's STS: keys, roles, and the principals of sessions seen.
#[derive(Debug)]
pub struct Sts {
    pub keys: SessionKeys,
    pub max_duration: Duration,
    pub roles: BTreeMap<String, RoleTemplate>,
    /// By role ARN.
    pub arns: BTreeMap<String, String>,
    /// Signed STS calls: SigV4 for the service `sts`.
    pub verifier: Verifier,
    cache: RwLock<HashMap<String, Arc<Principal>>>,
    /// Sessions issued per identity (`[sts] issues_per_minute`, `issue_burst`).
    issue_rate: Rate,
    issued: Mutex<HashMap<String, Gcra>>,
}

impl Sts {
    pub fn new(
        keys: SessionKeys,
        max_duration: Duration,
        roles: Vec<RoleTemplate>,
        verifier: Verifier,
        issue_rate: Rate,
    ) -> Sts {
        let arns = roles
            .iter()
            .map(|r| (r.role.arn.clone(), r.role.name.clone()))
            .collect();
        Sts {
            keys,
            max_duration,
            roles: roles
                .into_iter()
                .map(|r| (r.role.name.clone(), r))
                .collect(),
            arns,
            verifier,
            cache: RwLock::new(HashMap::new()),
            issue_rate,
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one of `identity`'s sessions (a web identity's issuer and subject, or a
    /// principal's name), or refuses with STS's `Throttling`: a valid token or key cannot
    /// mint sessions, nor issue records, without bound.
    pub fn admit_issue(&self, identity: &str) -> Result<(), ProxyError> {
        let now = gcra::now();
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        if !issued.contains_key(identity) && issued.len() >= ISSUERS {
            issued.retain(|_, bucket| !bucket.is_full(now));
            if issued.len() >= ISSUERS {
                issued.clear();
            }
        }
        issued
            .entry(identity.to_owned())
            .or_default()
            .admit(self.issue_rate, now)
            .map_err(|_| ProxyError::Throttled {
                quota: Arc::from("sts-issue"),
            })
    }

    /// The role named by `arn`.
    pub fn role_by_arn(&self, arn: &str) -> Option<&RoleTemplate> {
        self.roles.get(self.arns.get(arn)?)
    }

    /// The principal of the session whose token is `token`, presented with `access_key_id`
    /// at `now`. Expired: `ExpiredTokenException`; anything else wrong:
    /// `UnrecognizedClientException`.
    pub fn principal(
        &self,
        access_key_id: &str,
        token: &[u8],
        service: &crate::config::Service,
        now: SystemTime,
    ) -> Result<Arc<Principal>, ProxyError> {
        {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            let hit = cache.get(access_key_id).and_then(|p| {
                let session = p.session.as_ref()?;
                (session.token.as_bytes() == token).then_some((p, session.expires))
            });
            if let Some((p, expires)) = hit {
                return if expires <= now {
                    Err(ProxyError::ExpiredToken)
                } else {
                    Ok(p.clone())
                };
            }
        }
        let token = std::str::from_utf8(token).map_err(|_| ProxyError::UnrecognizedClient)?;
        let (session, derived_id, secret) = self.keys.open(token, now).map_err(|e| match e {
            SessionError::Expired => ProxyError::ExpiredToken,
            SessionError::Invalid => ProxyError::UnrecognizedClient,
        })?;
        if derived_id != access_key_id {
            return Err(ProxyError::UnrecognizedClient);
        }
        // A session of a role since removed is no session.
        let template = self
            .roles
            .get(&session.role)
            .ok_or(ProxyError::UnrecognizedClient)?;
        let role = &template.role;
        let principal = Arc::new(Principal {
            name: role.name.clone(),
            arn: assumed_role_arn(service, &role.name, &session.name),
            credential: Credential::new(derived_id.clone(), secret),
            policies: role.policies.clone(),
            tags: session.tags,
            enforce: role.enforce,
            groups: role.groups.clone(),
            quotas: template.quotas.clone(),
            counters: template.counters.clone(),
            session: Some(SessionInfo {
                role_arn: role.arn.clone(),
                name: session.name,
                expires: session.expires,
                token: token.to_owned(),
            }),
        });
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, p| p.session.as_ref().is_some_and(|s| s.expires > now));
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(derived_id, principal.clone());
        Ok(principal)
    }
}

/// `t` without its fraction of a second.
pub fn truncate_to_second(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::time::UNIX_EPOCH + Duration::from_secs(secs)
}

/// `arn:<partition>:sts::<account>:assumed-role/<role>/<session>`.
pub fn assumed_role_arn(service: &crate::config::Service, role: &str, session: &str) -> String {
    format!(
        "arn:{}:sts::{}:assumed-role/{role}/{session}",
        service.partition, service.account_id
    )
}
