//! Who a call is from: a [`Principal`] (a `[[principal]]`'s static key, or one session of a
//! `[[role]]`), with what decides and meters its calls. Below `app` (which builds the static
//! ones) and `sts` (which opens the sessions), so that neither reaches into the other.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::audit::PrincipalRef;
use crate::metrics::PrincipalCounters;
use crate::policy::PolicySet;
use crate::quota::{Meter, Meters};
use crate::sigv4::Credential;

/// A tenant identity the proxy issued credentials to.
#[derive(Debug)]
pub struct Principal {
    pub name: String,
    pub arn: String,
    pub credential: Credential,
    pub policies: PolicySet,
    pub tags: BTreeMap<String, String>,
    /// `false`: shadow mode for this principal.
    pub enforce: bool,
    pub groups: Vec<String>,
    /// The quotas its calls meet, by operation.
    pub quotas: Arc<Meters>,
    pub counters: Arc<PrincipalCounters>,
    /// A role session's particulars; `None` for a static key's principal.
    pub session: Option<SessionInfo>,
}

/// What makes a role's principal one session of it.
#[derive(Debug)]
pub struct SessionInfo {
    /// `arn:…:iam::…:role/<name>` (`aws:PrincipalArn`).
    pub role_arn: String,
    /// `RoleSessionName`.
    pub name: String,
    pub expires: std::time::SystemTime,
    /// The session token the principal was opened from.
    pub token: String,
}

impl AsRef<Credential> for Principal {
    fn as_ref(&self) -> &Credential {
        &self.credential
    }
}

impl Principal {
    /// The quotas a call of `op` meets.
    pub fn meters(&self, op: crate::swf::Operation) -> &[Meter] {
        self.quotas.get(op.index()).map_or(&[], |m| &m[..])
    }

    pub fn audit_ref(&self) -> PrincipalRef {
        PrincipalRef {
            name: self.name.clone(),
            arn: self.arn.clone(),
            access_key_id: self.credential.access_key_id.clone(),
        }
    }
}
