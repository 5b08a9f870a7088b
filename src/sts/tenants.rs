//! Tenants inside one role (`[[role]] tenant_tag`, SPEC "Fair share"): each value of the
//! named session tag (a Kubernetes namespace, say) gets its own quota buckets (for
//! `per = "principal"`) and its own per-principal metrics under `<role>/<value>`, so that
//! namespaces sharing one role never share a bucket. Quotas still apply by the role's name
//! and groups; only where they count differs.
//!
//! A tenant's meters are made on its first session and kept for the generation; the quota
//! slots themselves live in the process's registry and outlive reloads, as a principal's do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::metrics::PrincipalCounters;
use crate::quota::Meters;

/// Tenants whose meters are kept; sessions of further tenants share the role's.
pub const MAX_TENANTS: usize = 10_000;

type Made = (Arc<Meters>, Arc<PrincipalCounters>);

/// The tenants of one role.
pub struct Tenants {
    /// The meters and counters of the tenant named `<role>/<value>`.
    make: Box<dyn Fn(&str) -> Made + Send + Sync>,
    role: String,
    /// What sessions of tenants past [`MAX_TENANTS`] share.
    shared: Made,
    known: Mutex<HashMap<String, Made>>,
    warned: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Tenants {
    /// The tenants of `role`; `make(name)` builds a tenant's meters and counters, `shared`
    /// are the role's own.
    pub fn new(
        role: &str,
        shared: Made,
        make: impl Fn(&str) -> Made + Send + Sync + 'static,
    ) -> Tenants {
        Tenants {
            make: Box::new(make),
            role: role.to_owned(),
            shared,
            known: Mutex::new(HashMap::new()),
            warned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The name a tenant goes by in quotas and metrics.
    pub fn name(role: &str, value: &str) -> String {
        format!("{role}/{value}")
    }

    /// The meters and counters of the tenant `value`.
    pub fn of(&self, value: &str) -> Made {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(made) = known.get(value) {
            return made.clone();
        }
        if known.len() >= MAX_TENANTS {
            if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(role = %self.role, "more than {MAX_TENANTS} tenants: sessions of further ones share the role's quotas");
            }
            return self.shared.clone();
        }
        let made = (self.make)(&Tenants::name(&self.role, value));
        known.insert(value.to_owned(), made.clone());
        made
    }
}
