//! The running proxy across configuration generations: the current [`App`] behind an
//! `ArcSwap` (each call takes a snapshot, so a reload never disturbs a call in flight), the
//! audit log and metrics that outlive reloads, and the reload itself.
//!
//! A reload loads and validates everything (principals, groups, policies, token keys,
//! upstream, audit settings) exactly as at start; a broken set is refused with its errors
//! logged and the last good set keeps serving. Listener settings (addresses, TLS, limits, log)
//! take effect on restart only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::app::{App, StartupError};
use crate::audit::AuditLog;
use crate::config::{self, Config};
use crate::credentials::Credentials;
use crate::diag::{Diagnostic, Diagnostics};
use crate::metrics::Metrics;

/// A configuration generation as `/readyz` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// 1 at start, one more for each successful reload.
    pub number: u64,
    /// RFC 3339.
    pub loaded_at: String,
    pub principals: usize,
    pub policies: usize,
    pub statements: usize,
}

impl Generation {
    fn of(config: &Config, number: u64) -> Generation {
        Generation {
            number,
            loaded_at: crate::audit::now_rfc3339(),
            principals: config.principals.len(),
            policies: config.policies.len(),
            statements: config
                .policies
                .values()
                .map(|p| p.document.statements.len())
                .sum(),
        }
    }
}

/// What is serving, and how the last reload went.
#[derive(Debug)]
struct Status {
    serving: Generation,
    /// When the last reload failed and its errors, unless a later one succeeded.
    failed: Option<(String, String)>,
    /// Warnings already logged: each is logged once per process, not at every reload.
    warned: BTreeSet<String>,
}

/// The process's state.
pub struct Runtime {
    current: ArcSwap<App>,
    pub audit: Arc<AuditLog>,
    pub metrics: Arc<Metrics>,
    /// The upstream credentials, kept across reloads that do not change where they come from.
    credentials: Mutex<Arc<Credentials>>,
    /// Quota counters, kept across generations.
    quotas: Arc<crate::quota::Registry>,
    config_path: PathBuf,
    /// Serializes reloads; what serves and how the last reload went.
    status: Mutex<Status>,
}

impl Runtime {
    /// Builds the first generation, logging the configuration's warnings.
    pub fn start(config: Config) -> Result<Runtime, StartupError> {
        let mut status = Status {
            serving: Generation::of(&config, 1),
            failed: None,
            warned: BTreeSet::new(),
        };
        warn_once(&mut status.warned, &config.warnings);
        let audit = Arc::new(
            AuditLog::open(config.audit.clone())
                .map_err(|e| StartupError::audit(&config.audit, e))?,
        );
        let metrics = Arc::new(Metrics::default());
        let config_path = config.path.clone();
        let quotas = Arc::new(crate::quota::Registry::default());
        let credentials = crate::credentials::start(
            config.upstream.credentials.clone(),
            metrics.upstream_credentials.clone(),
        );
        let app = App::new(
            config,
            audit.clone(),
            metrics.clone(),
            &quotas,
            credentials.clone(),
        )?;
        Ok(Runtime {
            current: ArcSwap::from_pointee(app),
            audit,
            metrics,
            credentials: Mutex::new(credentials),
            quotas,
            config_path,
            status: Mutex::new(status),
        })
    }

    /// The current generation.
    pub fn app(&self) -> Arc<App> {
        self.current.load_full()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Loads, validates and swaps in the configuration from disk. On any error the current
    /// generation keeps serving and the error is returned (and kept for `/readyz`).
    pub fn reload(&self) -> Result<(), String> {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let next = status.serving.number + 1;
        let result = self
            .build(next, &mut status.warned)
            .map(|(app, generation)| {
                self.current.store(Arc::new(app));
                status.serving = generation;
            });
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.metrics.reload(result.is_ok(), now);
        match &result {
            Ok(()) => {
                tracing::info!(config = %self.config_path.display(), "configuration reloaded")
            }
            Err(e) => {
                tracing::error!(config = %self.config_path.display(), "reload refused, the previous configuration keeps serving:\n{e}")
            }
        }
        status.failed = result
            .as_ref()
            .err()
            .map(|e| (crate::audit::now_rfc3339(), e.clone()));
        result
    }

    /// Loads generation `number`; a refusal carries the errors (warnings are logged apart).
    fn build(
        &self,
        number: u64,
        warned: &mut BTreeSet<String>,
    ) -> Result<(App, Generation), String> {
        let config = config::load(&self.config_path).map_err(|d| {
            Diagnostics(d.0.into_iter().filter(Diagnostic::is_error).collect()).to_string()
        })?;
        warn_once(warned, &config.warnings);
        let generation = Generation::of(&config, number);
        self.audit
            .reconfigure(config.audit.clone())
            .map_err(|e| format!("audit log: {e}"))?;
        let credentials = {
            let mut held = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
            if *held.settings() != config.upstream.credentials {
                // Another source: fetched from now on; calls wait for the first credentials
                // a bounded time (`forward`), and `/readyz` tells how it goes.
                tracing::info!(source = %config.upstream.credentials.describe(), "upstream credentials changed");
                *held = crate::credentials::start(
                    config.upstream.credentials.clone(),
                    self.metrics.upstream_credentials.clone(),
                );
            }
            held.clone()
        };
        let app = App::new(
            config,
            self.audit.clone(),
            self.metrics.clone(),
            &self.quotas,
            credentials,
        )
        .map_err(|e| e.to_string())?;
        Ok((app, generation))
    }

    /// The upstream credentials in use.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the proxy can serve, and what is serving and how the last reload went:
    /// `/readyz`'s status and body. A failed reload does not make the proxy unready: it keeps
    /// serving the previous, valid configuration. No valid upstream credentials does.
    pub fn readiness(&self) -> (bool, String) {
        let (credentials_ok, credentials) = self.credentials().readiness(SystemTime::now());
        let status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let g = &status.serving;
        let mut out = format!(
            "{}\ngeneration {}, loaded {}: {} principals, {} policies, {} statements\n{credentials}",
            if credentials_ok { "ready" } else { "not ready" },
            g.number,
            g.loaded_at,
            g.principals,
            g.policies,
            g.statements
        );
        if let Some((at, errors)) = &status.failed {
            out.push_str(&format!(
                "the last reload failed at {at}; generation {} keeps serving:\n{errors}\n",
                g.number
            ));
        }
        (credentials_ok, out)
    }

    /// The generation serving.
    pub fn generation(&self) -> Generation {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .serving
            .clone()
    }
}

/// Logs each warning not logged before in this process.
fn warn_once(warned: &mut BTreeSet<String>, warnings: &[Diagnostic]) {
    for w in warnings {
        let text = w.to_string();
        if !warned.contains(&text) {
            tracing::warn!("{text}");
            warned.insert(text);
        }
    }
}
