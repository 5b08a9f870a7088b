//! The running proxy's state, built once from a validated [`Config`]: principals by access key,
//! the verifier, the token sealer, the quotas, the audit log and the upstream forwarder.

use std::collections::HashMap;
use std::sync::Arc;

use crate::audit::AuditLog;
use crate::config::{Config, Service};
use crate::forward::{Forwarder, ForwarderError};
use crate::metrics::Metrics;
use crate::quota::{self, Quotas, Registry};
use crate::sigv4::{Credential, Verifier};
use crate::tokens::{TokenKey, TokenSealer};

pub use crate::identity::{Principal, SessionInfo};

/// Everything a request needs: one generation of the configuration. A reload builds a new
/// `App` and swaps it in (see `runtime`); calls in flight keep the one they started with.
pub struct App {
    pub service: Service,
    pub verifier: Verifier,
    pub principals: HashMap<String, Arc<Principal>>,
    pub sealer: TokenSealer,
    /// Seals the proxy's own `ListDomains` page tokens (`visibility`).
    pub pages: crate::tokens::Keyring,
    pub audit: Arc<AuditLog>,
    pub metrics: Arc<Metrics>,
    pub forwarder: Forwarder,
    pub max_body_bytes: usize,
    pub max_decisions: usize,
    /// How long a request body may take to arrive.
    pub body_read_timeout: std::time::Duration,
    /// The policy folder this generation was read from.
    pub policy_dir: std::path::PathBuf,
    /// Whether each call writes an access log line (`[log] access`).
    pub access_log: bool,
    pub quotas: Quotas,
    /// `ListDomains` answers list only the domains the caller may describe.
    pub filter_list_domains: bool,
    /// The STS (`[sts]`), when configured.
    pub sts: Option<crate::sts::Sts>,
}

/// Why the state could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open audit log `{path}`: {source}")]
    Audit {
        path: String,
        source: std::io::Error,
    },
    #[error("upstream: {0}")]
    Upstream(#[from] ForwarderError),
    #[error("{0}")]
    QuotaStore(#[from] quota::redis::StoreError),
}

impl StartupError {
    pub fn audit(settings: &crate::audit::Settings, source: std::io::Error) -> StartupError {
        StartupError::Audit {
            path: settings
                .path
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string()),
            source,
        }
    }
}

impl App {
    /// Builds a generation from `config`, sharing the process's audit log, metrics and quota
    /// counters.
    pub fn new(
        config: Config,
        audit: Arc<AuditLog>,
        metrics: Arc<Metrics>,
        registry: &Arc<Registry>,
        credentials: Arc<crate::credentials::Credentials>,
    ) -> Result<App, StartupError> {
        let forwarder = Forwarder::new(&config.upstream, credentials)?;
        let sealer = TokenSealer::new(
            config
                .token_keys
                .iter()
                .map(|(id, s)| TokenKey::new(id, s))
                .collect(),
        );
        let pages = crate::tokens::Keyring::new(
            crate::visibility::PAGE_PREFIX,
            config
                .token_keys
                .iter()
                .map(|(id, s)| TokenKey::derive(id, s, crate::visibility::PAGE_PURPOSE))
                .collect(),
        );
        // The SWF model is compiled once, here, off the request threads.
        crate::swf::model::Model::get();
        let store = match config.quota_store {
            Some(settings) => Some(Arc::new(quota::redis::Store::new(
                settings,
                metrics.quota_store.clone(),
            )?)),
            None => None,
        };
        let quotas = Quotas::new(config.quotas, store);
        registry.sweep();
        let principals = config
            .principals
            .into_iter()
            .map(|p| {
                // Built here, off the request threads, not by a principal's first call.
                p.policies.build_index();
                let meters = quotas.meters(registry, &p.name, &p.groups, |q| {
                    metrics.throttle_counter(&p.name, q)
                });
                let counters = metrics.principal(&p.name);
                let principal = Principal {
                    name: p.name,
                    arn: p.arn,
                    credential: Credential::new(p.access_key_id.clone(), p.secret_access_key),
                    policies: p.policies,
                    tags: p.tags,
                    enforce: p.enforce,
                    quotas: Arc::new(meters),
                    counters,
                    groups: p.groups,
                    session: None,
                };
                (p.access_key_id, Arc::new(principal))
            })
            .collect();
        let sts = config.sts.map(|mut sts| {
            let roles = std::mem::take(&mut sts.roles)
                .into_iter()
                .map(|role| {
                    role.policies.build_index();
                    let quotas_of =
                        Arc::new(quotas.meters(registry, &role.name, &role.groups, |q| {
                            metrics.throttle_counter(&role.name, q)
                        }));
                    let counters = metrics.principal(&role.name);
                    let tenants = role.tenant_tag.as_ref().map(|_| {
                        let (specs, registry, metrics) =
                            (quotas.specs.clone(), registry.clone(), metrics.clone());
                        let (name, groups) = (role.name.clone(), role.groups.clone());
                        crate::sts::Tenants::new(
                            &role.name,
                            (quotas_of.clone(), counters.clone()),
                            move |tenant| {
                                let meters =
                                    quota::meters(&specs, &registry, &name, tenant, &groups, |q| {
                                        metrics.throttle_counter(tenant, q)
                                    });
                                (Arc::new(meters), metrics.principal(tenant))
                            },
                        )
                    });
                    crate::sts::RoleTemplate {
                        quotas: quotas_of,
                        counters,
                        tenants,
                        role,
                    }
                })
                .collect();
            crate::sts::Sts::new(
                &sts,
                roles,
                Verifier::sts(config.service.region.clone(), config.service.max_clock_skew)
                    .with_hosts(config.service.hosts.clone()),
            )
        });
        Ok(App {
            sts,
            verifier: Verifier::swf(config.service.region.clone(), config.service.max_clock_skew)
                .with_hosts(config.service.hosts.clone()),
            service: config.service,
            principals,
            sealer,
            pages,
            audit,
            metrics,
            forwarder,
            max_body_bytes: config.limits.max_body_bytes,
            max_decisions: config.limits.max_decisions,
            body_read_timeout: config.limits.body_read_timeout,
            policy_dir: config.policy_dir,
            access_log: config.log.access,
            quotas,
            filter_list_domains: config.filter_list_domains,
        })
    }

    /// The principal that signed a call with `access_key_id` (and, for a role session, the
    /// session token sent with it), or why none did.
    pub fn principal(
        &self,
        access_key_id: &str,
        token: Option<&[u8]>,
        now: std::time::SystemTime,
    ) -> Result<Arc<Principal>, crate::error::ProxyError> {
        match (token, &self.sts) {
            (None, _) => self
                .principals
                .get(access_key_id)
                .cloned()
                .ok_or(crate::error::ProxyError::UnrecognizedClient),
            (Some(token), Some(sts)) => sts.principal(access_key_id, token, &self.service, now),
            (Some(_), None) => Err(crate::error::ProxyError::UnrecognizedClient),
        }
    }

    /// A standalone generation with its own audit log, metrics and upstream credentials
    /// (tests, tools).
    pub fn standalone(config: Config) -> Result<App, StartupError> {
        let audit = AuditLog::open(config.audit.clone())
            .map_err(|e| StartupError::audit(&config.audit, e))?;
        let metrics = Arc::new(Metrics::default());
        let credentials = crate::credentials::start(
            config.upstream.credentials.clone(),
            metrics.upstream_credentials.clone(),
        );
        App::new(
            config,
            Arc::new(audit),
            metrics,
            &Arc::new(Registry::default()),
            credentials,
        )
    }
}
