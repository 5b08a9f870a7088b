//! The STS's validated settings (`[sts]`, `[[oidc_provider]]`, `[[role]]`), as `config`
//! builds them and the STS runs on them, and the name and tag rules both check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::oidc::Provider;
use crate::policy::PolicySet;
use crate::secret::Secret;

/// The validated STS settings.
#[derive(Debug)]
pub struct Settings {
    /// `(id, secret)`; the first seals.
    pub session_keys: Vec<(String, Secret)>,
    /// The longest session a caller may ask for (`DurationSeconds`).
    pub max_duration: Duration,
    /// Sessions issued to one web identity or one principal.
    pub issue_rate: crate::quota::gcra::Rate,
    /// Identity token verifications per source address (`unverified_per_second`).
    pub unverified_rate: crate::quota::gcra::Rate,
    pub providers: BTreeMap<String, Arc<Provider>>,
    pub roles: Vec<Role>,
}

/// A role web identities may assume.
#[derive(Debug)]
pub struct Role {
    pub name: String,
    /// `arn:<partition>:iam::<account_id>:role/<name>`.
    pub arn: String,
    /// Who may present tokens for it; `None`: assumed only with a key (`AssumeRole`).
    pub provider: Option<Arc<Provider>>,
    /// Patterns (`*`, `?`) on the token's `sub`; one must match.
    pub subjects: Vec<String>,
    /// Claim path → patterns; every claim must match one of its patterns.
    pub conditions: Vec<(String, Vec<String>)>,
    /// Session tag → claim path.
    pub session_tags: Vec<(String, String)>,
    pub policies: PolicySet,
    pub groups: Vec<String>,
    pub enforce: bool,
    /// Session tags are also taken from AWS's tags claim (`accept_tags_claim`).
    pub accept_tags_claim: bool,
    /// Sessions issued before this are refused (`sessions_not_before`).
    pub sessions_not_before: Option<std::time::SystemTime>,
    /// The session tag whose values are tenants of their own for quotas and metrics.
    pub tenant_tag: Option<String>,
}

/// Sessions last between this and `max_duration`; AWS's bounds.
pub const MIN_DURATION_SECONDS: u64 = 900;
pub const MAX_DURATION_SECONDS: u64 = 43_200;
/// `DurationSeconds` when the caller gives none, as in AWS.
pub const DEFAULT_DURATION_SECONDS: u64 = 3600;

/// Role and session names: IAM's `[\w+=,.@-]`.
pub fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// IAM's tag characters: letters, digits, spaces and `_ . : / = + - @`.
pub fn valid_tag_text(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c))
}
