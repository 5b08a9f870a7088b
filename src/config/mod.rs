//! Loading and validating the configuration (SPEC, "Configuration"). Everything is checked
//! before a port is bound, and every error is reported at once, with file and line: each
//! section (and each `[[group]]`/`[[principal]]`) is deserialized on its own so that one
//! mistake does not hide the next, then cross-references, secrets and files are checked.

mod quota;
mod raw;
mod sections;
pub mod sts;
mod upstream;

use sections::{groups, limits, listen, log, principals, service, task_tokens, tracing};
use upstream::upstream;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::policy::{self, Policy, PolicySet};
use crate::secret::Secret;

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub listen: Listen,
    pub service: Service,
    pub upstream: Upstream,
    /// `(id, secret)`; the first seals.
    pub token_keys: Vec<(String, Secret)>,
    pub audit: crate::audit::Settings,
    pub admin: Option<Admin>,
    pub enforce: bool,
    pub limits: Limits,
    pub log: Log,
    /// `[tracing]`: OpenTelemetry traces, when configured.
    pub tracing: Option<crate::telemetry::Settings>,
    pub policies: BTreeMap<String, Arc<Policy>>,
    /// Where the policies were read from (watched for changes).
    pub policy_dir: PathBuf,
    pub principals: Vec<Principal>,
    /// `[[quota]]`, in file order.
    pub quotas: Vec<Arc<crate::quota::Spec>>,
    /// `[quota_store]` with `backend = "redis"`; `None`: each replica counts alone.
    pub quota_store: Option<crate::quota::redis::Settings>,
    /// `ListDomains` answers list only the domains the caller may describe.
    pub filter_list_domains: bool,
    /// `[sts]` with its providers and roles; `None`: the listener answers SWF only.
    pub sts: Option<sts::Sts>,
    /// Warnings found while loading (`check` prints them, `serve` logs them).
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug)]
pub struct Listen {
    pub address: SocketAddr,
    /// `(certificate chain, private key)` PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Worker threads serving calls; `None`: one per CPU the process may use.
    pub workers: Option<usize>,
    /// Cleartext HTTP/2 with prior knowledge on a plain listener.
    pub h2c: bool,
}

/// `[admin]`: the admin listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin {
    pub address: SocketAddr,
    /// Connections it serves at once; more wait in the kernel's backlog, holding no descriptor.
    pub max_connections: usize,
}

/// `[admin] max_connections` when not given.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

pub use crate::swf::Service;

pub use crate::forward::Upstream;

/// Connection and request limits (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Decisions in one `RespondDecisionTaskCompleted`, each authorized on its own.
    pub max_decisions: usize,
    pub max_header_bytes: usize,
    /// From accept to a complete first request head (TLS handshake included); from its first
    /// byte to a complete head for each later HTTP/1.1 request.
    pub header_read_timeout: Duration,
    /// Client connections, and calls in flight beyond one per connection.
    pub max_connections: usize,
    pub drain_timeout: Duration,
    /// A connection with no call in flight is closed after this.
    pub idle_timeout: Duration,
    /// The whole request body must arrive within this.
    pub body_read_timeout: Duration,
    /// An answer the client does not take within this is dropped with its connection.
    pub write_timeout: Duration,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Connections and calls in flight per source address; `None`: no such cap.
    pub max_connections_per_ip: Option<usize>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // SWF's documented maximum request size.
            max_body_bytes: 1024 * 1024,
            max_decisions: 1000,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 16384,
            drain_timeout: Duration::from_secs(75),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_concurrent_streams: 100,
            max_connections_per_ip: None,
        }
    }
}

/// Process logs (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub json: bool,
    pub level: String,
    /// One line per call at `info` (the access log).
    pub access: bool,
}

#[derive(Debug)]
pub struct Principal {
    pub name: String,
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub policies: PolicySet,
    pub tags: BTreeMap<String, String>,
    pub enforce: bool,
    /// The groups it is in (quotas match them).
    pub groups: Vec<String>,
}

/// Collects diagnostics against one source file.
struct Ctx<'a> {
    file: &'a Path,
    dir: &'a Path,
    source: &'a str,
    errors: Vec<Diagnostic>,
    /// Policies and groups whose own definition failed: a reference to one is not another
    /// error.
    broken_policies: BTreeSet<String>,
    broken_groups: BTreeSet<String>,
    /// Where secrets are given inline: one warning names them all.
    inline_secrets: Vec<Range<usize>>,
    /// False for the policy tools (`load_policies`): secrets given by environment variable
    /// or file are not read.
    read_secrets: bool,
}

impl Ctx<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::at(self.file, self.source, span.start, message));
    }

    fn error_count(&self) -> usize {
        self.errors.iter().filter(|d| d.is_error()).count()
    }

    fn warning(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::at(self.file, self.source, span.start, message).warning());
    }

    /// Deserializes one section (or one `[[group]]`/`[[principal]]`), recording every error
    /// with its span: a key that fails is reported, dropped, and the rest read again, so that
    /// one mistake hides no other. `None` when a required key failed.
    fn section<T: DeserializeOwned>(&mut self, mut value: Spanned<DeValue<'_>>) -> Option<T> {
        let span = value.span();
        let mut dropped: Vec<String> = Vec::new();
        loop {
            // With keys dropped the load fails anyway; what remains is still checked.
            let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            let at = error.span().unwrap_or(span.clone());
            // A required key dropped for its own error is then missing: already reported.
            let message = error.message();
            if dropped
                .iter()
                .any(|k| message == format!("missing field `{k}`"))
            {
                return None;
            }
            self.error(at.clone(), message.to_owned());
            let DeValue::Table(table) = value.get_mut() else {
                return None;
            };
            let inside = |r: Range<usize>| r.start <= at.start && at.start < r.end.max(r.start + 1);
            let key = table
                .iter()
                .find(|(k, v)| inside(k.span()) || inside(v.span()))
                .map(|(k, _)| k.get_ref().to_string())?;
            *table = std::mem::take(table)
                .into_iter()
                .filter(|(k, _)| k.get_ref() != key.as_str())
                .collect();
            dropped.push(key);
        }
    }

    fn relative(&self, path: &str) -> PathBuf {
        self.dir.join(path)
    }

    /// Resolves a secret given inline, from the environment or from a file: exactly one.
    fn secret(
        &mut self,
        owner: Range<usize>,
        key: &str,
        inline: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        required: bool,
    ) -> Option<Secret> {
        self.secret_from(owner, key, inline, env, file, required)
            .map(|(secret, _)| secret)
    }

    /// A secret given one of three ways, and the file it was read from, if it was.
    fn secret_from(
        &mut self,
        owner: Range<usize>,
        key: &str,
        inline: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        required: bool,
    ) -> Option<(Secret, Option<PathBuf>)> {
        let given = [inline.is_some(), env.is_some(), file.is_some()]
            .iter()
            .filter(|g| **g)
            .count();
        if given > 1 {
            self.error(
                owner,
                format!("give exactly one of `{key}`, `{key}_env` and `{key}_file`"),
            );
            return None;
        }
        if let Some(v) = inline {
            self.inline_secrets.push(v.span());
            return Some((Secret::new(v.get_ref().as_str()), None));
        }
        if !self.read_secrets && (env.is_some() || file.is_some()) {
            return Some((unread_secret(key), None));
        }
        if let Some(name) = env {
            return match std::env::var(name.get_ref()) {
                Ok(v) if !v.is_empty() => Some((Secret::new(v), None)),
                _ => {
                    self.error(
                        name.span(),
                        format!(
                            "environment variable `{}` is not set or empty",
                            name.get_ref()
                        ),
                    );
                    None
                }
            };
        }
        if let Some(path) = file {
            let full = self.relative(path.get_ref());
            return match crate::secret::read_file(&full) {
                Ok(Some(v)) => Some((v, Some(full))),
                Ok(None) => {
                    self.error(
                        path.span(),
                        format!("secret file `{}` is empty", full.display()),
                    );
                    None
                }
                Err(e) => {
                    self.error(
                        path.span(),
                        format!("cannot read secret file `{}`: {e}", full.display()),
                    );
                    None
                }
            };
        }
        if required {
            self.error(
                owner,
                format!("one of `{key}`, `{key}_env` and `{key}_file` is required"),
            );
        }
        None
    }

    fn socket_addr(&mut self, value: &Spanned<String>) -> Option<SocketAddr> {
        value
            .get_ref()
            .parse()
            .map_err(|_| {
                self.error(
                    value.span(),
                    format!(
                        "`{}` is not an address such as `127.0.0.1:8080`",
                        value.get_ref()
                    ),
                )
            })
            .ok()
    }

    fn existing_file(&mut self, value: &Spanned<String>) -> Option<PathBuf> {
        let path = self.relative(value.get_ref());
        if path.is_file() {
            Some(path)
        } else {
            self.error(
                value.span(),
                format!("file `{}` does not exist", path.display()),
            );
            None
        }
    }
}

/// Sections read from the file, each `None` where it was missing or failed.
#[derive(Default)]
struct Sections {
    listen: Option<raw::Listen>,
    service: Option<raw::Service>,
    upstream: Option<raw::Upstream>,
    task_tokens: Option<raw::TaskTokens>,
    audit: Option<raw::Audit>,
    admin: Option<raw::Admin>,
    policies: Option<raw::Policies>,
    limits: Option<raw::Limits>,
    log: Option<raw::Log>,
    tracing: Option<raw::Tracing>,
    groups: Vec<raw::Group>,
    principals: Vec<raw::Principal>,
    quotas: Vec<raw::Quota>,
    quota_store: Option<raw::QuotaStore>,
    sts: Option<raw::Sts>,
    oidc_providers: Vec<raw::OidcProvider>,
    roles: Vec<raw::Role>,
    /// Which required sections were present (even if they failed to deserialize).
    present: BTreeSet<&'static str>,
}

const REQUIRED: [&str; 4] = ["listen", "service", "upstream", "task_tokens"];

/// Reads, parses and validates the configuration at `path`.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with(path, true)
}

/// Loads the configuration for the policy tools (`explain`, `test`, `policy …`), which decide
/// but never serve: everything is validated as `load` does, except that secrets given by
/// environment variable or file are not read (a CI job checking a policy change needs no
/// production secret). Never used to serve.
pub fn load_policies(path: &Path) -> Result<Config, Diagnostics> {
    load_with(path, false)
}

fn load_with(path: &Path, read_secrets: bool) -> Result<Config, Diagnostics> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::file(
            path,
            format!("cannot read configuration: {e}"),
        )])
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut ctx = Ctx {
        file: path,
        dir,
        source: &source,
        errors: Vec::new(),
        broken_policies: BTreeSet::new(),
        broken_groups: BTreeSet::new(),
        inline_secrets: Vec::new(),
        read_secrets,
    };
    let sections = read_sections(&mut ctx);
    let config = validate(&mut ctx, sections);
    inline_secrets_warning(&mut ctx);
    // `ctx.errors` holds warnings too: the load fails only on an error.
    match config {
        Some(mut c) if !ctx.errors.iter().any(Diagnostic::is_error) => {
            c.warnings = ctx.errors;
            Ok(c)
        }
        _ => Err(Diagnostics(ctx.errors)),
    }
}

/// What stands for a secret the policy tools do not read: shaped to pass the checks its real
/// value must (a Redis URL, a key id, a key's length), used for nothing.
fn unread_secret(key: &str) -> Secret {
    Secret::new(match key {
        "url" => "redis://127.0.0.1/",
        "access_key_id" => "UNREAD",
        _ => "unread-by-the-policy-tools-unread-by-the-policy-tools-unread-by",
    })
}

/// One warning for every secret given inline, at the first, naming the lines of all.
fn inline_secrets_warning(ctx: &mut Ctx<'_>) {
    let Some(first) = ctx.inline_secrets.first().cloned() else {
        return;
    };
    let lines: Vec<String> = ctx
        .inline_secrets
        .iter()
        .map(|s| crate::diag::line_col(ctx.source, s.start).0.to_string())
        .collect();
    let (count, lines) = match lines.as_slice() {
        [one] => ("a secret is".to_owned(), format!("line {one}")),
        many => (
            format!("{} secrets are", many.len()),
            format!("lines {}", many.join(", ")),
        ),
    };
    ctx.warning(
        first,
        format!("{count} given inline ({lines}); outside trials give each as `…_env` or `…_file`"),
    );
}

fn read_sections(ctx: &mut Ctx<'_>) -> Sections {
    let mut s = Sections::default();
    let root = match DeTable::parse(ctx.source) {
        Ok(root) => root,
        Err(e) => {
            ctx.error(e.span().unwrap_or(0..0), e.message().to_owned());
            return s;
        }
    };
    for (key, value) in root.into_inner() {
        let name = key.get_ref().to_string();
        match name.as_str() {
            "listen" => s.listen = ctx.section(value),
            "service" => s.service = ctx.section(value),
            "upstream" => s.upstream = ctx.section(value),
            "task_tokens" => s.task_tokens = ctx.section(value),
            "audit" => s.audit = ctx.section(value),
            "admin" => s.admin = ctx.section(value),
            "policies" => s.policies = ctx.section(value),
            "limits" => s.limits = ctx.section(value),
            "log" => s.log = ctx.section(value),
            "tracing" => s.tracing = ctx.section(value),
            "quota_store" => s.quota_store = ctx.section(value),
            "sts" => s.sts = ctx.section(value),
            "group" | "principal" | "quota" | "oidc_provider" | "role" => {
                let span = value.span();
                let DeValue::Array(items) = value.into_inner() else {
                    ctx.error(
                        span,
                        format!("`{name}` must be an array of tables: write `[[{name}]]`"),
                    );
                    continue;
                };
                for item in items.iter().cloned() {
                    if name == "group" {
                        let group_name = match item.get_ref() {
                            DeValue::Table(t) => t
                                .iter()
                                .find(|(k, _)| k.get_ref() == "name")
                                .and_then(|(_, v)| v.get_ref().as_str().map(str::to_owned)),
                            _ => None,
                        };
                        let group = ctx.section::<raw::Group>(item);
                        if let (None, Some(n)) = (&group, group_name) {
                            ctx.broken_groups.insert(n);
                        }
                        s.groups.extend(group);
                    } else if name == "quota" {
                        s.quotas.extend(ctx.section::<raw::Quota>(item));
                    } else if name == "oidc_provider" {
                        s.oidc_providers
                            .extend(ctx.section::<raw::OidcProvider>(item));
                    } else if name == "role" {
                        s.roles.extend(ctx.section::<raw::Role>(item));
                    } else {
                        s.principals.extend(ctx.section::<raw::Principal>(item));
                    }
                }
            }
            _ => ctx.error(key.span(), format!("unknown section `{name}`")),
        }
        if let Some(r) = REQUIRED.iter().find(|r| **r == name) {
            s.present.insert(r);
        }
    }
    for r in REQUIRED {
        if !s.present.contains(r) {
            ctx.error(0..0, format!("missing required section `[{r}]`"));
        }
    }
    s
}

fn validate(ctx: &mut Ctx<'_>, s: Sections) -> Option<Config> {
    let tls_cert = s
        .listen
        .as_ref()
        .and_then(|l| l.tls_cert.as_ref().map(Spanned::span));
    let listen = s.listen.and_then(|l| listen(ctx, l));
    let service = s.service.and_then(|v| service(ctx, v));
    if let (Some(at), Some(service)) = (tls_cert, &service) {
        if service.hosts.is_empty() {
            ctx.warning(
                at,
                "a TLS listener without `[service] hosts` accepts requests signed for any host: a request captured at another deployment that shares these keys can be replayed here",
            );
        }
    }
    let upstream = s.upstream.and_then(|u| upstream(ctx, u, service.as_ref()));
    let token_keys = s.task_tokens.and_then(|t| task_tokens(ctx, t));
    let audit_raw = s.audit.unwrap_or_default();
    let fsync = match audit_raw
        .fsync
        .as_ref()
        .map(|f| (f.get_ref().as_str(), f.span()))
    {
        None | Some(("interval", _)) => crate::audit::Fsync::Interval,
        Some(("always", _)) => crate::audit::Fsync::Always,
        Some(("never", _)) => crate::audit::Fsync::Never,
        Some((other, span)) => {
            ctx.error(
                span,
                format!("`fsync` must be \"always\", \"interval\" or \"never\", not `{other}`"),
            );
            crate::audit::Fsync::Interval
        }
    };
    let checkpoints = checkpoints(ctx, &audit_raw);
    let audit = crate::audit::Settings {
        path: (audit_raw.path.get_ref() != "-").then(|| ctx.relative(audit_raw.path.get_ref())),
        include_allowed: audit_raw.include_allowed,
        fsync,
        unauthenticated_per_second: sections::bounded(
            ctx,
            &audit_raw.unauthenticated_per_second,
            "unauthenticated_per_second",
            u64::from(crate::audit::flood::DEFAULT_PER_SECOND),
            0..=1_000_000,
        ) as u32,
        checkpoints,
        record_context: audit_raw.record_context,
    };
    let admin = s.admin.and_then(|a| {
        let max_connections = sections::bounded(
            ctx,
            &a.max_connections,
            "max_connections",
            ADMIN_MAX_CONNECTIONS as u64,
            1..=4096,
        ) as usize;
        Some(Admin {
            address: ctx.socket_addr(&a.address)?,
            max_connections,
        })
    });
    let policies_raw = s.policies.unwrap_or_default();
    let limits = limits(ctx, s.limits.unwrap_or_default());
    let log = log(ctx, s.log.unwrap_or_default());
    let tracing = s.tracing.and_then(|t| tracing(ctx, t));

    let policy_dir = ctx.relative(policies_raw.dir.get_ref());
    let policies = if policy_dir.is_dir() {
        let loaded = policy::load_dir(&policy_dir);
        ctx.errors.extend(loaded.diagnostics);
        ctx.broken_policies = loaded.failed;
        loaded.policies
    } else {
        ctx.error(
            policies_raw.dir.span(),
            format!("policy folder `{}` does not exist", policy_dir.display()),
        );
        BTreeMap::new()
    };
    let groups = groups(ctx, &s.groups, &policies);
    let group_names = groups.keys().cloned().collect();
    let quotas = quota::quotas(ctx, &s.quotas, &group_names);
    let quota_store = quota::store(ctx, s.quota_store.unwrap_or_default());
    let principals = principals(
        ctx,
        &s.principals,
        &groups,
        &policies,
        service.as_ref(),
        policies_raw.enforce,
    );
    let sts = sts::sts(
        ctx,
        s.sts,
        &s.oidc_providers,
        &s.roles,
        &groups,
        &policies,
        service.as_ref(),
        &principals,
        policies_raw.enforce,
    );
    let roles = sts.as_ref().map_or(&[][..], |s| &s.roles[..]);
    quota::unreachable(ctx, &s.quotas, &quotas, &principals, roles);

    Some(Config {
        path: ctx.file.to_owned(),
        listen: listen?,
        service: service?,
        upstream: upstream?,
        token_keys: token_keys?,
        audit,
        admin,
        enforce: policies_raw.enforce,
        limits,
        log,
        tracing,
        policies,
        policy_dir,
        principals,
        quotas,
        quota_store,
        filter_list_domains: policies_raw.filter_list_domains,
        sts,
        warnings: Vec::new(),
    })
}

/// `[audit]`'s signed checkpoints: a signing key (and its id, by default the key file's
/// stem), how often, and where the newest is also written.
fn checkpoints(ctx: &mut Ctx<'_>, a: &raw::Audit) -> Option<crate::audit::Checkpoints> {
    let Some(file) = &a.signing_key_file else {
        for (key, span) in [
            ("key_id", a.key_id.as_ref().map(Spanned::span)),
            (
                "checkpoint_every",
                a.checkpoint_every.as_ref().map(Spanned::span),
            ),
            (
                "checkpoint_seconds",
                a.checkpoint_seconds.as_ref().map(Spanned::span),
            ),
            (
                "checkpoint_path",
                a.checkpoint_path.as_ref().map(Spanned::span),
            ),
        ] {
            if let Some(span) = span {
                ctx.error(
                    span,
                    format!("`{key}` goes with `signing_key_file`: checkpoints are signed"),
                );
            }
        }
        return None;
    };
    // A private key, like any secret, is not looked for by the policy tools.
    let path = if ctx.read_secrets {
        ctx.existing_file(file)?
    } else {
        ctx.relative(file.get_ref())
    };
    let id = match &a.key_id {
        Some(id) if crate::tokens::valid_key_id(id.get_ref()) => id.get_ref().clone(),
        Some(id) => {
            ctx.error(
                id.span(),
                format!(
                    "key id `{}` must be 1 to 32 of A-Z a-z 0-9 _ -",
                    id.get_ref()
                ),
            );
            return None;
        }
        None => path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| crate::tokens::valid_key_id(s))
            .unwrap_or("k1")
            .to_owned(),
    };
    let key = match crate::audit::checkpoint::SigningKey::read(&id, &path) {
        Ok(key) => key,
        Err(e) => {
            ctx.error(file.span(), e);
            return None;
        }
    };
    let every = sections::bounded(
        ctx,
        &a.checkpoint_every,
        "checkpoint_every",
        crate::audit::CHECKPOINT_EVERY,
        1..=10_000_000,
    );
    let seconds = sections::bounded(
        ctx,
        &a.checkpoint_seconds,
        "checkpoint_seconds",
        crate::audit::CHECKPOINT_SECONDS,
        1..=86_400,
    );
    Some(crate::audit::Checkpoints {
        key: Arc::new(key),
        every,
        interval: Duration::from_secs(seconds),
        path: a
            .checkpoint_path
            .as_ref()
            .map(|p| ctx.relative(p.get_ref())),
    })
}

/// A bounded setting with its default.
#[cfg(test)]
mod tests;
