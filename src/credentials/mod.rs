//! The proxy's own upstream credentials (SPEC, "Upstream credentials"): a static key pair, or
//! the AWS SDK for Rust's default provider chain (`aws-config`: environment, profiles and
//! SSO, web identity as EKS IRSA sets it, container credentials as ECS and EKS Pod Identity
//! set them, EC2 instance profiles over IMDSv2), optionally with a role assumed on top.
//!
//! The credentials in use are an [`Identity`] behind an `ArcSwapOption` ([`Credentials`]):
//! the signer takes the current one with one atomic load, no lock and no allocation, and a
//! call never waits on IMDS or STS while valid credentials are held. A background task
//! ([`refresh`]) renews them ahead of their expiry; a failed refresh keeps the current ones
//! until they expire (logged once per failure streak, counted, shown on `/readyz`). With no
//! valid credentials a call is refused (`503`), never forwarded unsigned or with expired
//! ones. Static secrets given as files are read again when the files change.

mod refresh;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use http::HeaderValue;

use crate::secret::Secret;
use crate::sigv4::signer::Signer;

pub use refresh::start;

/// How the proxy gets its upstream credentials (`[upstream] credentials` and the keys beside
/// it), as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub source: Source,
    /// A role assumed with the source's credentials (another account's, say).
    pub assume: Option<AssumeRole>,
    /// The region STS is asked in (the upstream's).
    pub region: String,
}

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A key pair as configured; parts given as files are read again when they change.
    Static {
        access_key_id: Part,
        secret_access_key: Part,
        session_token: Option<Part>,
    },
    /// The AWS SDK for Rust's default credential chain.
    Chain,
}

/// One part of a static key: its value, and the file it was read from, if it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub value: Secret,
    pub file: Option<PathBuf>,
}

/// A role to assume (`role_arn`, `external_id`, `session_name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

impl Settings {
    /// What the credentials come from, in words for logs, errors and `/readyz`.
    pub fn describe(&self) -> String {
        let source = match &self.source {
            Source::Static {
                access_key_id,
                secret_access_key,
                ..
            } => match &secret_access_key.file {
                Some(file) => format!(
                    "the static key {} (secret from {})",
                    access_key_id.value.expose(),
                    file.display()
                ),
                None => format!("the static key {}", access_key_id.value.expose()),
            },
            Source::Chain => "the AWS SDK's default credential chain (environment, profile, web identity, container, EC2 instance profile)".to_owned(),
        };
        match &self.assume {
            Some(role) => format!("role {} assumed with {source}", role.role_arn),
            None => source,
        }
    }
}

/// Credentials the upstream requests are signed with.
pub struct Identity {
    pub signer: Signer,
    /// `x-amz-security-token`, for temporary credentials.
    pub session_token: Option<HeaderValue>,
    /// When they stop being valid (`None`: not before they are replaced).
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("access_key_id", &self.signer.access_key_id())
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Credentials that sign for `region`.
    pub fn new(
        access_key_id: &str,
        secret: Secret,
        session_token: Option<&str>,
        expires: Option<SystemTime>,
        region: &str,
    ) -> Result<Identity, String> {
        let header = session_token
            .map(|token| {
                let mut value = HeaderValue::from_str(token)
                    .map_err(|_| "the session token cannot be sent as a header".to_owned())?;
                value.set_sensitive(true);
                Ok::<_, String>(value)
            })
            .transpose()?;
        // It goes into every upstream request's Authorization header.
        if access_key_id.is_empty()
            || access_key_id.len() > 128
            || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err("the access key id is not 1 to 128 letters and digits".into());
        }
        Ok(Identity {
            signer: Signer::new(
                access_key_id,
                secret,
                session_token.map(Secret::new),
                region,
            ),
            session_token: header,
            expires,
        })
    }

    /// Whether the credentials may still sign at `now`.
    pub fn valid_at(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// Why there are no credentials to sign with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("the upstream credentials have not been obtained yet")]
    NotYet,
    #[error("the upstream credentials expired at {0} and could not be renewed")]
    Expired(String),
}

/// How the last refreshes went, for `/readyz`.
#[derive(Debug, Default, Clone)]
struct Status {
    /// The error of the current failure streak, if one is going on.
    failing: Option<String>,
    /// When credentials were last obtained.
    obtained: Option<SystemTime>,
}

/// The upstream credentials of the running proxy: what the signer reads, and how they came.
pub struct Credentials {
    settings: Settings,
    current: ArcSwapOption<Identity>,
    status: Mutex<Status>,
    /// Completes once a first attempt has ended (credentials, or the error).
    first: tokio::sync::watch::Sender<Option<Result<(), String>>>,
    counters: Arc<Counters>,
}

/// The metrics of the upstream credentials, kept by `metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// `swf_warden_upstream_credential_refresh_failures_total`.
    pub refresh_failures: AtomicU64,
    /// `swf_warden_upstream_credentials_expiry_seconds`: Unix time; 0 without an expiry.
    pub expiry: AtomicU64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("settings", &self.settings.describe())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    fn new(settings: Settings, counters: Arc<Counters>) -> Credentials {
        Credentials {
            settings,
            current: ArcSwapOption::empty(),
            status: Mutex::new(Status::default()),
            first: tokio::sync::watch::channel(None).0,
            counters,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The credentials to sign with at `now`.
    pub fn current(&self, now: SystemTime) -> Result<Arc<Identity>, Unavailable> {
        match self.current.load_full() {
            Some(identity) if identity.valid_at(now) => Ok(identity),
            Some(identity) => Err(Unavailable::Expired(rfc3339(
                identity.expires.unwrap_or(UNIX_EPOCH),
            ))),
            None => Err(Unavailable::NotYet),
        }
    }

    /// Waits (at most `wait`) for the first attempt to obtain credentials: `Ok` once there
    /// are some, else why not.
    pub async fn first_attempt(&self, wait: Duration) -> Result<(), String> {
        let mut seen = self.first.subscribe();
        let outcome = tokio::time::timeout(wait, async {
            match seen.wait_for(Option::is_some).await {
                Ok(done) => done.clone().unwrap_or(Ok(())),
                Err(_) => Err("the credentials task ended".to_owned()),
            }
        })
        .await;
        outcome.unwrap_or_else(|_| {
            Err(format!(
                "no credentials from {} within {} s",
                self.settings.describe(),
                wait.as_secs()
            ))
        })
    }

    /// Replaces the credentials in use.
    fn store(&self, identity: Identity) {
        let expiry = identity
            .expires
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        self.counters.expiry.store(expiry, Ordering::Relaxed);
        self.current.store(Some(Arc::new(identity)));
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.failing.take().is_some() {
            tracing::info!(source = %self.settings.describe(), "upstream credentials renewed again");
        }
        status.obtained = Some(SystemTime::now());
        drop(status);
        self.first.send_if_modified(|first| {
            let unset = first.is_none();
            if unset {
                *first = Some(Ok(()));
            }
            unset
        });
    }

    /// A refresh failed: counted, logged once per streak; the current credentials stay.
    fn failed(&self, error: &str) {
        self.counters
            .refresh_failures
            .fetch_add(1, Ordering::Relaxed);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.failing.is_none() {
            let expires = self
                .current
                .load()
                .as_ref()
                .and_then(|i| i.expires)
                .map_or("never".to_owned(), rfc3339);
            tracing::warn!(
                source = %self.settings.describe(),
                %error,
                current_expire = %expires,
                "could not renew the upstream credentials; the current ones serve until they expire"
            );
        }
        status.failing = Some(error.to_owned());
        drop(status);
        self.first.send_if_modified(|first| {
            let unset = first.is_none();
            if unset {
                *first = Some(Err(error.to_owned()));
            }
            unset
        });
    }

    /// The key id the settings name, if they name one.
    fn settings_key_id(&self) -> &str {
        match &self.settings.source {
            Source::Static { access_key_id, .. } => access_key_id.value.expose(),
            Source::Chain => "",
        }
    }

    /// `/readyz`'s lines about the credentials, and whether they can sign now.
    pub fn readiness(&self, now: SystemTime) -> (bool, String) {
        let status = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = format!("upstream credentials: {}", self.settings.describe());
        let ready = match self.current.load().as_ref() {
            Some(identity) => {
                // A static key names itself; others name the key they gave.
                if !matches!(
                    (&self.settings.source, &self.settings.assume),
                    (Source::Static { .. }, None)
                ) || identity.signer.access_key_id() != self.settings_key_id()
                {
                    out.push_str(&format!("; key {}", identity.signer.access_key_id()));
                }
                match identity.expires {
                    Some(at) => out.push_str(&format!(
                        ", expire {} (in {} s)",
                        rfc3339(at),
                        at.duration_since(now).map_or(0, |d| d.as_secs())
                    )),
                    None => out.push_str(", no expiry"),
                }
                identity.valid_at(now)
            }
            None => {
                out.push_str("; none obtained yet");
                false
            }
        };
        if let Some(error) = &status.failing {
            out.push_str(&format!("\nthe last renewal failed: {error}"));
        }
        if !ready {
            out.push_str("\nno valid upstream credentials: calls are answered 503");
        }
        out.push('\n');
        (ready, out)
    }
}

/// RFC 3339 UTC, whole seconds.
fn rfc3339(t: SystemTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from(t)
        .format(&format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
