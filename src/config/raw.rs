//! The configuration file as written: serde structs with `deny_unknown_fields` and spans on
//! every value a later check may need to point at.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub address: Spanned<String>,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub workers: Option<Spanned<u64>>,
    #[serde(default)]
    pub h2c: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub region: Spanned<String>,
    pub account_id: Spanned<String>,
    #[serde(default = "default_partition")]
    pub partition: Spanned<String>,
    #[serde(default = "default_skew")]
    pub max_clock_skew_seconds: Spanned<u64>,
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
}

fn default_partition() -> Spanned<String> {
    Spanned::new(0..0, "aws".to_owned())
}

fn default_skew() -> Spanned<u64> {
    Spanned::new(0..0, 900)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub endpoint: Spanned<String>,
    pub region: Option<Spanned<String>>,
    pub credentials: Option<Spanned<String>>,
    pub access_key_id: Option<Spanned<String>>,
    pub access_key_id_file: Option<Spanned<String>>,
    pub role_arn: Option<Spanned<String>>,
    pub external_id: Option<Spanned<String>>,
    pub session_name: Option<Spanned<String>>,
    pub secret_access_key: Option<Spanned<String>>,
    pub secret_access_key_env: Option<Spanned<String>>,
    pub secret_access_key_file: Option<Spanned<String>>,
    pub session_token: Option<Spanned<String>>,
    pub session_token_env: Option<Spanned<String>>,
    pub session_token_file: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: Spanned<u64>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: Spanned<u64>,
    #[serde(default = "default_poll_timeout")]
    pub poll_timeout_seconds: Spanned<u64>,
}

fn default_connect_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}

/// Every call but the long polls.
fn default_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 30)
}

/// SWF holds a long poll open for up to 60 s; the default leaves room for the answer.
fn default_poll_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 70)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenKey {
    pub id: Spanned<String>,
    pub secret: Option<Spanned<String>>,
    pub secret_env: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTokens {
    pub keys: Spanned<Vec<Spanned<TokenKey>>>,
    #[serde(default = "default_unsealed")]
    pub unsealed: Spanned<String>,
}

fn default_unsealed() -> Spanned<String> {
    Spanned::new(0..0, "deny".to_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    #[serde(default = "default_audit_path")]
    pub path: Spanned<String>,
    #[serde(default)]
    pub include_allowed: bool,
    #[serde(default = "default_true")]
    pub record_context: bool,
    pub fsync: Option<Spanned<String>>,
    pub unauthenticated_per_second: Option<Spanned<u64>>,
    pub signing_key_file: Option<Spanned<String>>,
    pub key_id: Option<Spanned<String>>,
    pub checkpoint_every: Option<Spanned<u64>>,
    pub checkpoint_seconds: Option<Spanned<u64>>,
    pub checkpoint_path: Option<Spanned<String>>,
}

fn default_audit_path() -> Spanned<String> {
    Spanned::new(0..0, "-".to_owned())
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            path: default_audit_path(),
            include_allowed: false,
            record_context: true,
            fsync: None,
            unauthenticated_per_second: None,
            signing_key_file: None,
            key_id: None,
            checkpoint_every: None,
            checkpoint_seconds: None,
            checkpoint_path: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    pub otlp_endpoint: Spanned<String>,
    pub sample_ratio: Option<Spanned<Number>>,
    pub service_name: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub address: Spanned<String>,
    pub max_connections: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    #[serde(default = "default_policy_dir")]
    pub dir: Spanned<String>,
    #[serde(default = "default_true")]
    pub enforce: bool,
    #[serde(default = "default_true")]
    pub filter_list_domains: bool,
}

fn default_policy_dir() -> Spanned<String> {
    Spanned::new(0..0, "policies".to_owned())
}

fn default_true() -> bool {
    true
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            dir: default_policy_dir(),
            enforce: true,
            filter_list_domains: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_body_bytes: Option<Spanned<u64>>,
    pub max_decisions: Option<Spanned<u64>>,
    pub max_header_bytes: Option<Spanned<u64>>,
    pub header_read_timeout_seconds: Option<Spanned<u64>>,
    pub max_connections: Option<Spanned<u64>>,
    pub drain_timeout_seconds: Option<Spanned<u64>>,
    pub idle_timeout_seconds: Option<Spanned<u64>>,
    pub body_read_timeout_seconds: Option<Spanned<u64>>,
    pub write_timeout_seconds: Option<Spanned<u64>>,
    pub max_concurrent_streams: Option<Spanned<u64>>,
    pub max_connections_per_ip: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub format: Option<Spanned<String>>,
    pub level: Option<Spanned<String>>,
    pub access: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: Spanned<String>,
    #[serde(default)]
    pub policies: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub name: Spanned<String>,
    pub arn: Option<Spanned<String>>,
    pub access_key_id: Spanned<String>,
    pub secret_access_key: Option<Spanned<String>>,
    pub secret_access_key_env: Option<Spanned<String>>,
    pub secret_access_key_file: Option<Spanned<String>>,
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub policies: Vec<Spanned<String>>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub enforce: Option<bool>,
}

/// A rate in `[[quota]]`: an integer or a decimal number.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum Number {
    Integer(i64),
    Float(f64),
}

impl Number {
    pub fn value(self) -> f64 {
        match self {
            Number::Integer(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub name: Spanned<String>,
    pub actions: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub principals: Vec<Spanned<String>>,
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    pub per: Option<Spanned<String>>,
    pub rate_per_second: Option<Spanned<Number>>,
    pub burst: Option<Spanned<u64>>,
    pub max_in_flight: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaStore {
    pub backend: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub url_env: Option<Spanned<String>>,
    pub url_file: Option<Spanned<String>>,
    pub on_error: Option<Spanned<String>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub lease_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sts {
    pub session_keys: Spanned<Vec<Spanned<TokenKey>>>,
    pub max_duration_seconds: Option<Spanned<u64>>,
    pub issues_per_minute: Option<Spanned<u64>>,
    pub issue_burst: Option<Spanned<u64>>,
    pub unverified_per_second: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    pub name: Spanned<String>,
    pub issuer: Spanned<String>,
    pub audiences: Spanned<Vec<Spanned<String>>>,
    pub jwks_file: Option<Spanned<String>>,
    pub jwks_url: Option<Spanned<String>>,
    /// Extra trust roots for `jwks_url`.
    pub ca_file: Option<Spanned<String>>,
    pub jwks_refetch_interval_seconds: Option<Spanned<u64>>,
    pub jwks_refresh_seconds: Option<Spanned<u64>>,
    pub jwks_max_stale_seconds: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub name: Spanned<String>,
    pub provider: Option<Spanned<String>>,
    pub subjects: Option<Spanned<Vec<Spanned<String>>>>,
    /// Claim path → patterns, one of which the claim must match.
    #[serde(default)]
    pub conditions: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    /// Tag key → claim path.
    #[serde(default)]
    pub session_tags: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub policies: Vec<Spanned<String>>,
    pub enforce: Option<bool>,
    #[serde(default)]
    pub accept_tags_claim: bool,
    pub sessions_not_before: Option<Spanned<String>>,
    pub tenant_tag: Option<Spanned<String>>,
}
