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
//!
//! Before any signature is checked an STS call costs little: forms are small (`query`), and
//! identity tokens are verified only within their source address's allowance
//! (`[sts] unverified_per_second`, [`Rations`]).

pub mod oidc;
pub mod query;
mod ration;
pub mod session;
pub mod settings;
mod tenants;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::error::ProxyError;
use crate::identity::{Principal, SessionInfo};
use crate::metrics::PrincipalCounters;
use crate::quota::Meters;
use crate::sigv4::{Credential, Verifier};
use oidc::Provider;
use ration::Rations;
use session::{SessionError, SessionKeys};
use settings::Role;
pub use tenants::Tenants;

/// Sessions whose principals are kept; past this, expired ones are dropped, then all.
const CACHE_ENTRIES: usize = 10_000;

/// A role with what its sessions share.
#[derive(Debug)]
pub struct RoleTemplate {
    pub role: Role,
    pub quotas: Arc<Meters>,
    pub counters: Arc<PrincipalCounters>,
    /// With a `tenant_tag`: each tag value's own quotas and counters.
    pub tenants: Option<Tenants>,
}

/// One generation's STS: keys, providers, roles, and the principals of sessions seen.
#[derive(Debug)]
pub struct Sts {
    pub keys: SessionKeys,
    pub max_duration: Duration,
    pub roles: BTreeMap<String, RoleTemplate>,
    /// By role ARN.
    pub arns: BTreeMap<String, String>,
    /// By issuer (each issuer names one provider).
    providers: BTreeMap<String, Arc<Provider>>,
    /// Signed STS calls: SigV4 for the service `sts`.
    pub verifier: Verifier,
    cache: RwLock<HashMap<String, Arc<Principal>>>,
    /// Sessions issued per identity (`[sts] issues_per_minute`, `issue_burst`).
    issued: Rations<String>,
    /// Identity tokens verified per source address (`[sts] unverified_per_second`).
    unverified: Rations<IpAddr>,
}

impl Sts {
    /// The STS of a generation: `settings` without their roles, which come as `roles`.
    pub fn new(settings: &settings::Settings, roles: Vec<RoleTemplate>, verifier: Verifier) -> Sts {
        let arns = roles
            .iter()
            .map(|r| (r.role.arn.clone(), r.role.name.clone()))
            .collect();
        Sts {
            keys: SessionKeys::new(&settings.session_keys),
            max_duration: settings.max_duration,
            roles: roles
                .into_iter()
                .map(|r| (r.role.name.clone(), r))
                .collect(),
            arns,
            providers: settings
                .providers
                .values()
                .map(|p| (p.issuer.clone(), p.clone()))
                .collect(),
            verifier,
            cache: RwLock::new(HashMap::new()),
            issued: Rations::new(settings.issue_rate, "sts-issue"),
            unverified: Rations::new(settings.unverified_rate, "sts-unverified"),
        }
    }

    /// Spends one of `identity`'s sessions (a web identity's issuer and subject, or a
    /// principal's name), or refuses with STS's `Throttling`: a valid token or key cannot
    /// mint sessions, nor issue records, without bound.
    pub fn admit_issue(&self, identity: &str) -> Result<(), ProxyError> {
        self.issued.admit(identity)
    }

    /// Spends one of `source`'s identity token verifications, or refuses with `Throttling`
    /// before anything of the token is read: forged signatures cost a flooder its allowance,
    /// not everyone's CPU.
    pub fn admit_unverified(&self, source: IpAddr) -> Result<(), ProxyError> {
        self.unverified.admit(&source.to_canonical())
    }

    /// The provider that issues tokens naming `issuer` as their `iss`.
    pub fn provider(&self, issuer: &str) -> Option<&Arc<Provider>> {
        self.providers.get(issuer)
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
        service: &crate::swf::Service,
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
        // Sessions issued before the role's cut-off are revoked.
        if role
            .sessions_not_before
            .is_some_and(|cutoff| session.issued < cutoff)
        {
            return Err(ProxyError::ExpiredToken);
        }
        let (quotas, counters) = match (&template.tenants, &role.tenant_tag) {
            (Some(tenants), Some(tag)) => match session.tags.get(tag) {
                Some(value) => tenants.of(value),
                // Issued before the role named its tenant tag: one bucket with the role's.
                None => (template.quotas.clone(), template.counters.clone()),
            },
            _ => (template.quotas.clone(), template.counters.clone()),
        };
        let principal = Arc::new(Principal {
            name: role.name.clone(),
            arn: assumed_role_arn(service, &role.name, &session.name),
            credential: Credential::new(derived_id.clone(), secret),
            policies: role.policies.clone(),
            tags: session.tags,
            enforce: role.enforce,
            groups: role.groups.clone(),
            quotas,
            counters,
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
pub fn assumed_role_arn(service: &crate::swf::Service, role: &str, session: &str) -> String {
    format!(
        "arn:{}:sts::{}:assumed-role/{role}/{session}",
        service.partition, service.account_id
    )
}
