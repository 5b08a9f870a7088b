//! Background work of a running proxy: reload on SIGHUP and when the configuration or a policy
//! file changes, reopen the audit log on SIGUSR1 (logrotate), and flush the audit log once a
//! second in `fsync = "interval"` mode, with the flood summaries and the checkpoint that are
//! due. SIGXFSZ (a write past the file-size limit) is taken here so that it does not end the
//! process: the write fails instead, and the audit log answers it as a full disk. Every task
//! ends at shutdown.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};

use crate::audit::Fsync;
use crate::runtime::Runtime;

/// How often the configuration files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Starts the background tasks. Signal handlers are registered before this returns.
pub fn spawn(
    runtime: Arc<Runtime>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut user1 = signal(SignalKind::user_defined1())?;
    // Its default action ends the process; handled, the write returns EFBIG.
    let mut file_size = signal(SignalKind::from_raw(libc::SIGXFSZ))?;
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut watch = tokio::time::interval(WATCH_INTERVAL);
        let mut flush = tokio::time::interval(Duration::from_secs(1));
        let mut seen = fingerprint(&runtime);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    reload(&runtime).await;
                    seen = fingerprint(&runtime);
                }
                _ = file_size.recv() => {}
                _ = user1.recv() => match runtime.audit.reopen() {
                    Ok(()) => tracing::info!("SIGUSR1: audit log reopened"),
                    Err(e) => tracing::error!(error = %e, "SIGUSR1: could not reopen the audit log"),
                },
                _ = watch.tick() => {
                    let now = fingerprint(&runtime);
                    if now != seen {
                        seen = now;
                        tracing::info!("configuration files changed: reloading");
                        reload(&runtime).await;
                    }
                }
                _ = flush.tick() => {
                    if let Err(e) = runtime.audit.flush_summaries(false) {
                        tracing::error!(error = %e, "could not write the audit flood summaries");
                    }
                    if let Err(e) = runtime.audit.checkpoint_if_due(false) {
                        tracing::error!(error = %e, "could not write the audit checkpoint");
                    }
                    if runtime.audit.fsync_mode() == Fsync::Interval {
                        if let Err(e) = runtime.audit.sync() {
                            tracing::error!(error = %e, "could not flush the audit log");
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

async fn reload(runtime: &Arc<Runtime>) {
    let runtime = runtime.clone();
    // Loading reads files and derives keys: off the request threads.
    let _ = tokio::task::spawn_blocking(move || runtime.reload()).await;
}

/// Modification times and sizes of the configuration file and of every file in the policy
/// folder of the current generation.
fn fingerprint(runtime: &Runtime) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out = vec![stat(runtime.config_path())];
    if let Ok(entries) = std::fs::read_dir(&runtime.app().policy_dir) {
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        out.extend(files.iter().map(|p| stat(p)));
    }
    out
}

fn stat(path: &Path) -> (PathBuf, Option<SystemTime>, u64) {
    let meta = std::fs::metadata(path).ok();
    (
        path.to_owned(),
        meta.as_ref().and_then(|m| m.modified().ok()),
        meta.map_or(0, |m| m.len()),
    )
}
