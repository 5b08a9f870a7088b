//! Obtaining and renewing the upstream credentials, off the request path: through the AWS
//! SDK for Rust's own providers (`aws-config`), never a copy of them, in a task of its own.
//!
//! Credentials with an expiry are renewed ahead of it: when a quarter of their lifetime is
//! left, and at least [`EARLIEST`] ahead (at most five minutes ahead). A failed attempt is tried again after 1 s, then twice as
//! long each time up to [`MAX_RETRY`]; the current credentials serve meanwhile, until they
//! expire. Credentials without an expiry are fetched again every [`NO_EXPIRY_RECHECK`]. Static
//! keys given as files are read again when a file changes.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use super::{Counters, Credentials, Identity, Part, Settings, Source};

/// The longest one attempt to obtain credentials may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between two attempts after failures.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How often credentials without an expiry are fetched again.
const NO_EXPIRY_RECHECK: Duration = Duration::from_secs(15 * 60);
/// The least ahead of their expiry credentials are renewed.
const EARLIEST: Duration = Duration::from_secs(1);
/// How often files holding static keys are checked for changes.
const FILE_CHECK: Duration = Duration::from_secs(2);

/// The credentials for `settings`, with what keeps them current started: static keys are in
/// place at once (and their files watched); others are being fetched when this returns
/// ([`Credentials::first_attempt`] waits for them). Needs a Tokio runtime for anything but
/// static keys from the configuration itself.
pub fn start(settings: Settings, counters: Arc<Counters>) -> Arc<Credentials> {
    let credentials = Arc::new(Credentials::new(settings.clone(), counters));
    match (&settings.source, &settings.assume) {
        (Source::Static { .. }, None) => {
            match static_identity(&settings) {
                Ok(identity) => credentials.store(identity),
                Err(e) => credentials.failed(&e),
            }
            let files = static_files(&settings.source);
            if !files.is_empty() {
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(watch_files(Arc::downgrade(&credentials), files));
                    }
                    Err(_) => tracing::warn!(
                        "no runtime to watch the upstream key files: they are read once"
                    ),
                }
            }
        }
        _ => {
            let weak = Arc::downgrade(&credentials);
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let provider = provider(&settings).await;
                        renew(weak, provider).await;
                    });
                }
                Err(_) => credentials.failed("no runtime to fetch credentials on"),
            }
        }
    }
    credentials
}

/// A static source's key id, secret and session token, as its parts (files) now read.
type KeyPair = (
    crate::secret::Secret,
    crate::secret::Secret,
    Option<crate::secret::Secret>,
);

fn read_static(source: &Source) -> Result<KeyPair, String> {
    let Source::Static {
        access_key_id,
        secret_access_key,
        session_token,
    } = source
    else {
        return Err("not a static key".into());
    };
    let read = |part: &Part| match &part.file {
        None => Ok(part.value.clone()),
        Some(path) => match crate::secret::read_file(path) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(format!("`{}` is empty", path.display())),
            Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
        },
    };
    let token = session_token.as_ref().map(read).transpose()?;
    Ok((read(access_key_id)?, read(secret_access_key)?, token))
}

/// The key pair of a static source, as its parts now read.
fn static_identity(settings: &Settings) -> Result<Identity, String> {
    let (key, secret, token) = read_static(&settings.source)?;
    Identity::new(
        key.expose(),
        secret,
        token.as_ref().map(crate::secret::Secret::expose),
        None,
        &settings.region,
    )
}

fn static_files(source: &Source) -> Vec<PathBuf> {
    match source {
        Source::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => [
            Some(access_key_id),
            Some(secret_access_key),
            session_token.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|part| part.file.clone())
        .collect(),
        Source::Chain => Vec::new(),
    }
}

/// Reads the key files again whenever one of them changes (an agent such as Vault's or a CSI
/// driver rotated them), until the credentials are dropped.
async fn watch_files(weak: Weak<Credentials>, files: Vec<PathBuf>) {
    let stamp = |files: &[PathBuf]| -> Vec<Option<(SystemTime, u64)>> {
        files
            .iter()
            .map(|f| {
                let meta = std::fs::metadata(f).ok()?;
                Some((meta.modified().ok()?, meta.len()))
            })
            .collect()
    };
    let mut seen = stamp(&files);
    loop {
        tokio::time::sleep(FILE_CHECK).await;
        let Some(credentials) = weak.upgrade() else {
            return;
        };
        let now = stamp(&files);
        if now == seen {
            continue;
        }
        seen = now;
        match static_identity(&credentials.settings) {
            Ok(identity) => {
                tracing::info!(
                    access_key_id = %identity.signer.access_key_id(),
                    "upstream key files changed: the new key signs from now on"
                );
                credentials.store(identity);
            }
            Err(e) => credentials.failed(&format!("the upstream key files changed: {e}")),
        }
    }
}

/// The SDK's provider for `settings`: the default chain, or static keys, with the role
/// assumed on top when one is set.
async fn provider(settings: &Settings) -> SharedCredentialsProvider {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let region = Region::new(settings.region.clone());
    let base = match &settings.source {
        Source::Chain => {
            let conf = ProviderConfig::default()
                .with_http_client(http.clone())
                .with_region(Some(region.clone()));
            SharedCredentialsProvider::new(
                DefaultCredentialsChain::builder()
                    .configure(conf)
                    .region(region.clone())
                    .build()
                    .await,
            )
        }
        source @ Source::Static { .. } => {
            // Read at every use: the role is assumed with the keys the files hold now.
            let source = source.clone();
            SharedCredentialsProvider::new(
                aws_credential_types::credential_fn::provide_credentials_fn(move || {
                    let source = source.clone();
                    async move { static_credentials(&source) }
                }),
            )
        }
    };
    let Some(role) = &settings.assume else {
        return base;
    };
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(region)
        .credentials_provider(base.clone())
        .load()
        .await;
    let mut builder = AssumeRoleProvider::builder(role.role_arn.clone())
        .session_name(role.session_name.clone())
        .configure(&sdk);
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id.clone());
    }
    SharedCredentialsProvider::new(builder.build_from_provider(base).await)
}

/// A static source's key pair as the SDK's providers take it.
fn static_credentials(source: &Source) -> aws_credential_types::provider::Result {
    let (key, secret, token) = read_static(source)
        .map_err(aws_credential_types::provider::error::CredentialsError::invalid_configuration)?;
    Ok(aws_credential_types::Credentials::new(
        key.expose(),
        secret.expose(),
        token.map(|t| t.expose().to_owned()),
        None,
        "Static",
    ))
}

/// When to renew credentials that expire at `expires`, seen at `now`.
fn renew_at(expires: Option<SystemTime>, now: SystemTime) -> Duration {
    let Some(expires) = expires else {
        return NO_EXPIRY_RECHECK;
    };
    let left = expires.duration_since(now).unwrap_or_default();
    let ahead = (left / 4).clamp(EARLIEST, Duration::from_secs(300));
    left.saturating_sub(ahead).max(EARLIEST.min(left))
}

/// Keeps the credentials current until they are dropped.
async fn renew(weak: Weak<Credentials>, provider: SharedCredentialsProvider) {
    let mut retry = Duration::from_secs(1);
    loop {
        let Some(credentials) = weak.upgrade() else {
            return;
        };
        let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, provider.provide_credentials()).await;
        let obtained = match attempt {
            Ok(Ok(c)) => Identity::new(
                c.access_key_id(),
                crate::secret::Secret::new(c.secret_access_key()),
                c.session_token(),
                c.expiry(),
                &credentials.settings.region,
            ),
            Ok(Err(e)) => {
                Err(aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())
            }
            Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
        };
        let wait = match obtained {
            Ok(identity) => {
                let wait = renew_at(identity.expires, SystemTime::now());
                credentials.store(identity);
                retry = Duration::from_secs(1);
                wait
            }
            Err(e) => {
                credentials.failed(&e);
                let wait = retry;
                retry = (retry * 2).min(MAX_RETRY);
                wait
            }
        };
        let mut gone = credentials.first.subscribe();
        drop(credentials);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            // The credentials were dropped (a reload replaced them): stop.
            () = async { while gone.changed().await.is_ok() {} } => return,
        }
    }
}
