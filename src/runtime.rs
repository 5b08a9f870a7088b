//! The running proxy across configuration generations: the current [`App`] behind an
//! `ArcSwap` (each call takes a snapshot, so a reload never disturbs a call in flight), the
//! audit log and metrics that outlive reloads, and the reload itself.
//!
//! A reload loads and validates everything (principals, groups, policies, token keys,
//! upstream, audit settings) exactly as at start; a broken set is refused with its errors
//! logged and the last good set keeps serving. Listener settings (addresses, TLS, limits, log)
//! take effect on restart only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::app::{App, StartupError};
use crate::audit::AuditLog;
use crate::config::{self, Config};
use crate::metrics::Metrics;

/// The process's state.
pub struct Runtime {
    current: ArcSwap<App>,
    pub audit: Arc<AuditLog>,
    pub metrics: Arc<Metrics>,
    config_path: PathBuf,
    /// Serializes reloads; holds the last reload's error, if it failed.
    last_reload: Mutex<Option<String>>,
}

impl Runtime {
    /// Builds the first generation.
    pub fn start(config: Config) -> Result<Runtime, StartupError> {
        let audit = Arc::new(
            AuditLog::open(config.audit.clone())
                .map_err(|e| StartupError::audit(&config.audit, e))?,
        );
        let metrics = Arc::new(Metrics::default());
        let config_path = config.path.clone();
        let app = App::new(config, audit.clone(), metrics.clone())?;
        Ok(Runtime {
            current: ArcSwap::from_pointee(app),
            audit,
            metrics,
            config_path,
            last_reload: Mutex::new(None),
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
        let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.build().map(|app| self.current.store(Arc::new(app)));
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
        *last = result.as_ref().err().cloned();
        result
    }

    fn build(&self) -> Result<App, String> {
        let config = config::load(&self.config_path).map_err(|d| d.to_string())?;
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        self.audit
            .reconfigure(config.audit.clone())
            .map_err(|e| format!("audit log: {e}"))?;
        App::new(config, self.audit.clone(), self.metrics.clone()).map_err(|e| e.to_string())
    }

    /// The last reload's outcome, for `/readyz`: `None` when none failed. A failed reload does
    /// not make the proxy unready: it keeps serving the previous, valid configuration.
    pub fn last_reload_error(&self) -> Option<String> {
        self.last_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
