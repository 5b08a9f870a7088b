//! Loading and validating the configuration (SPEC, "Configuration"). Everything is checked
//! before a port is bound, and every error is reported at once, with file and line: each
//! section (and each `[[group]]`/`[[principal]]`) is deserialized on its own so that one
//! mistake does not hide the next, then cross-references, secrets and files are checked.

mod raw;

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
use crate::tokens;

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
    pub admin: Option<SocketAddr>,
    pub enforce: bool,
    pub limits: Limits,
    pub log: Log,
    pub policies: BTreeMap<String, Arc<Policy>>,
    /// Where the policies were read from (watched for changes).
    pub policy_dir: PathBuf,
    pub principals: Vec<Principal>,
    /// Warnings found while loading (`check` prints them, `serve` logs them).
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug)]
pub struct Listen {
    pub address: SocketAddr,
    /// `(certificate chain, private key)` PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub region: String,
    pub account_id: String,
    pub partition: String,
    pub max_clock_skew: Duration,
}

impl Service {
    /// `arn:<partition>:swf:<region>:<account>:/domain/<name>`.
    pub fn domain_arn(&self, domain: &str) -> String {
        format!(
            "arn:{}:swf:{}:{}:/domain/{domain}",
            self.partition, self.region, self.account_id
        )
    }
}

#[derive(Debug)]
pub struct Upstream {
    pub endpoint: http::Uri,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Every call but the polls.
    pub timeout: Duration,
    /// `PollForActivityTask` and `PollForDecisionTask`, which SWF holds open up to 60 s.
    pub poll_timeout: Duration,
}

/// Connection and request limits (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    /// Also how long an HTTP/1.1 keep-alive connection may sit idle.
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub drain_timeout: Duration,
}

/// Process logs (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub json: bool,
    pub level: String,
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
}

/// Collects diagnostics against one source file.
struct Ctx<'a> {
    file: &'a Path,
    dir: &'a Path,
    source: &'a str,
    errors: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::at(self.file, self.source, span.start, message));
    }

    /// Deserializes one section, recording its error (with span) on failure.
    fn section<T: DeserializeOwned>(&mut self, value: Spanned<DeValue<'_>>) -> Option<T> {
        let span = value.span();
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(v) => Some(v),
            Err(e) => {
                let at = e.span().unwrap_or(span);
                self.error(at, e.message().to_owned());
                None
            }
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
            self.errors.push(
                Diagnostic::at(
                    self.file,
                    self.source,
                    v.span().start,
                    format!(
                        "`{key}` is given inline; outside trials use `{key}_env` or `{key}_file`"
                    ),
                )
                .warning(),
            );
            return Some(Secret::new(v.get_ref().as_str()));
        }
        if let Some(name) = env {
            return match std::env::var(name.get_ref()) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
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
            return match std::fs::read_to_string(&full) {
                Ok(v) if !v.trim_end_matches(['\r', '\n']).is_empty() => {
                    Some(Secret::new(v.trim_end_matches(['\r', '\n'])))
                }
                Ok(_) => {
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
    groups: Vec<raw::Group>,
    principals: Vec<raw::Principal>,
    /// Which required sections were present (even if they failed to deserialize).
    present: BTreeSet<&'static str>,
}

const REQUIRED: [&str; 4] = ["listen", "service", "upstream", "task_tokens"];

/// Reads, parses and validates the configuration at `path`.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
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
    };
    let sections = read_sections(&mut ctx);
    let config = validate(&mut ctx, sections);
    // `ctx.errors` holds warnings too: the load fails only on an error.
    match config {
        Some(mut c) if !ctx.errors.iter().any(Diagnostic::is_error) => {
            c.warnings = ctx.errors;
            Ok(c)
        }
        _ => Err(Diagnostics(ctx.errors)),
    }
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
            "group" | "principal" => {
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
                        s.groups.extend(ctx.section::<raw::Group>(item));
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
    let listen = s.listen.and_then(|l| listen(ctx, l));
    let service = s.service.and_then(|v| service(ctx, v));
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
    let audit = crate::audit::Settings {
        path: (audit_raw.path.get_ref() != "-").then(|| ctx.relative(audit_raw.path.get_ref())),
        include_allowed: audit_raw.include_allowed,
        fsync,
    };
    let admin = s.admin.and_then(|a| ctx.socket_addr(&a.address));
    let policies_raw = s.policies.unwrap_or_default();
    let limits = limits(ctx, s.limits.unwrap_or_default());
    let log = log(ctx, s.log.unwrap_or_default());

    let policy_dir = ctx.relative(policies_raw.dir.get_ref());
    let policies = if policy_dir.is_dir() {
        let (policies, errors) = policy::load_dir(&policy_dir);
        ctx.errors.extend(errors);
        for policy in policies.values() {
            ctx.errors.extend(policy::analysis::analyze(policy));
        }
        policies
    } else {
        ctx.error(
            policies_raw.dir.span(),
            format!("policy folder `{}` does not exist", policy_dir.display()),
        );
        BTreeMap::new()
    };
    let groups = groups(ctx, &s.groups, &policies);
    let principals = principals(
        ctx,
        &s.principals,
        &groups,
        &policies,
        service.as_ref(),
        policies_raw.enforce,
    );

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
        policies,
        policy_dir,
        principals,
        warnings: Vec::new(),
    })
}

/// A bounded setting with its default.
fn bounded(
    ctx: &mut Ctx<'_>,
    value: &Option<Spanned<u64>>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> u64 {
    match value {
        None => default,
        Some(v) if range.contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            ctx.error(
                v.span(),
                format!(
                    "`{name}` must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }
}

fn limits(ctx: &mut Ctx<'_>, l: raw::Limits) -> Limits {
    const GIB: u64 = 1024 * 1024 * 1024;
    Limits {
        max_body_bytes: bounded(
            ctx,
            &l.max_body_bytes,
            "max_body_bytes",
            4 * 1024 * 1024,
            1..=GIB,
        ) as usize,
        max_header_bytes: bounded(
            ctx,
            &l.max_header_bytes,
            "max_header_bytes",
            16 * 1024,
            8192..=1024 * 1024,
        ) as usize,
        header_read_timeout: Duration::from_secs(bounded(
            ctx,
            &l.header_read_timeout_seconds,
            "header_read_timeout_seconds",
            10,
            1..=3600,
        )),
        max_connections: bounded(
            ctx,
            &l.max_connections,
            "max_connections",
            16384,
            1..=1_000_000,
        ) as usize,
        drain_timeout: Duration::from_secs(bounded(
            ctx,
            &l.drain_timeout_seconds,
            "drain_timeout_seconds",
            75,
            0..=3600,
        )),
    }
}

fn log(ctx: &mut Ctx<'_>, l: raw::Log) -> Log {
    let json = match &l.format {
        None => false,
        Some(f) if f.get_ref() == "text" => false,
        Some(f) if f.get_ref() == "json" => true,
        Some(f) => {
            ctx.error(
                f.span(),
                format!(
                    "`format` must be \"text\" or \"json\", not `{}`",
                    f.get_ref()
                ),
            );
            false
        }
    };
    let level = match &l.level {
        None => "info".to_owned(),
        Some(v) if tracing_subscriber::EnvFilter::try_new(v.get_ref()).is_ok() => {
            v.get_ref().clone()
        }
        Some(v) => {
            ctx.error(
                v.span(),
                format!(
                    "`level` `{}` is not a log level or filter such as `info`",
                    v.get_ref()
                ),
            );
            "info".to_owned()
        }
    };
    Log { json, level }
}

fn listen(ctx: &mut Ctx<'_>, l: raw::Listen) -> Option<Listen> {
    let address = ctx.socket_addr(&l.address);
    let tls = match (&l.tls_cert, &l.tls_key) {
        (Some(c), Some(k)) => Some((ctx.existing_file(c), ctx.existing_file(k))),
        (None, None) => None,
        (Some(v), None) | (None, Some(v)) => {
            ctx.error(
                v.span(),
                "`tls_cert` and `tls_key` go together: give both or neither",
            );
            return None;
        }
    };
    let tls = match tls {
        Some((Some(c), Some(k))) => Some((c, k)),
        Some(_) => return None,
        None => None,
    };
    Some(Listen {
        address: address?,
        tls,
    })
}

fn service(ctx: &mut Ctx<'_>, v: raw::Service) -> Option<Service> {
    let mut ok = true;
    if !valid_region(v.region.get_ref()) {
        ctx.error(
            v.region.span(),
            format!(
                "`{}` is not a region name such as `us-east-1`",
                v.region.get_ref()
            ),
        );
        ok = false;
    }
    let account = v.account_id.get_ref();
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        ctx.error(v.account_id.span(), "`account_id` must be 12 digits");
        ok = false;
    }
    if !valid_region(v.partition.get_ref()) {
        ctx.error(
            v.partition.span(),
            "`partition` must be a partition name such as `aws`",
        );
        ok = false;
    }
    let skew = *v.max_clock_skew_seconds.get_ref();
    if skew == 0 || skew > 3600 {
        ctx.error(
            v.max_clock_skew_seconds.span(),
            "`max_clock_skew_seconds` must be between 1 and 3600",
        );
        ok = false;
    }
    ok.then(|| Service {
        region: v.region.into_inner(),
        account_id: v.account_id.into_inner(),
        partition: v.partition.into_inner(),
        max_clock_skew: Duration::from_secs(skew),
    })
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn upstream(ctx: &mut Ctx<'_>, u: raw::Upstream, service: Option<&Service>) -> Option<Upstream> {
    let owner = u.access_key_id.span();
    let endpoint = match u.endpoint.get_ref().parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http") | Some("https"))
                && uri.authority().is_some()
                && matches!(uri.path(), "" | "/")
                && uri.query().is_none() =>
        {
            Some(uri)
        }
        _ => {
            ctx.error(
                u.endpoint.span(),
                format!(
                    "`{}` is not an endpoint such as `https://swf.us-east-1.amazonaws.com`",
                    u.endpoint.get_ref()
                ),
            );
            None
        }
    };
    let secret = ctx.secret(
        owner.clone(),
        "secret_access_key",
        &u.secret_access_key,
        &u.secret_access_key_env,
        &u.secret_access_key_file,
        true,
    );
    let session_token = ctx.secret(
        owner,
        "session_token",
        &u.session_token,
        &u.session_token_env,
        &u.session_token_file,
        false,
    );
    let ca_file = u.ca_file.as_ref().and_then(|c| ctx.existing_file(c));
    if u.ca_file.is_some() && ca_file.is_none() {
        return None;
    }
    let region = match &u.region {
        Some(r) if valid_region(r.get_ref()) => r.get_ref().clone(),
        Some(r) => {
            ctx.error(r.span(), format!("`{}` is not a region name", r.get_ref()));
            return None;
        }
        None => service?.region.clone(),
    };
    if *u.poll_timeout_seconds.get_ref() < 61 {
        ctx.error(
            u.poll_timeout_seconds.span(),
            "`poll_timeout_seconds` must be above 60: SWF holds a long poll open for 60 s",
        );
    }
    for t in [&u.connect_timeout_seconds, &u.timeout_seconds] {
        if *t.get_ref() == 0 {
            ctx.error(t.span(), "timeouts must be at least 1 second");
        }
    }
    Some(Upstream {
        endpoint: endpoint?,
        region,
        access_key_id: u.access_key_id.into_inner(),
        secret_access_key: secret?,
        session_token,
        ca_file,
        connect_timeout: Duration::from_secs(*u.connect_timeout_seconds.get_ref()),
        timeout: Duration::from_secs(*u.timeout_seconds.get_ref()),
        poll_timeout: Duration::from_secs(*u.poll_timeout_seconds.get_ref()),
    })
}

fn task_tokens(ctx: &mut Ctx<'_>, t: raw::TaskTokens) -> Option<Vec<(String, Secret)>> {
    if t.unsealed.get_ref() != "deny" {
        ctx.error(t.unsealed.span(), format!("`unsealed` must be \"deny\", not `{}`: a token the proxy did not seal names no domain to authorize", t.unsealed.get_ref()));
    }
    if t.keys.get_ref().is_empty() {
        ctx.error(
            t.keys.span(),
            "`keys` needs at least one key: the first seals, all open",
        );
        return None;
    }
    let mut keys = Vec::new();
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for key in t.keys.get_ref() {
        let k = key.get_ref();
        let id = k.id.get_ref();
        if !tokens::valid_key_id(id) {
            ctx.error(
                k.id.span(),
                format!("key id `{id}` must be 1 to 32 of A-Z a-z 0-9 _ -"),
            );
            ok = false;
        } else if !seen.insert(id.clone()) {
            ctx.error(k.id.span(), format!("key id `{id}` is used twice"));
            ok = false;
        }
        match ctx.secret(
            key.span(),
            "secret",
            &k.secret,
            &k.secret_env,
            &k.secret_file,
            true,
        ) {
            Some(s) if s.expose().len() >= tokens::MIN_SECRET_LEN => keys.push((id.clone(), s)),
            Some(_) => {
                ctx.error(
                    key.span(),
                    format!(
                        "task token key `{id}` must be at least {} bytes",
                        tokens::MIN_SECRET_LEN
                    ),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(keys)
}

fn policy_refs(
    ctx: &mut Ctx<'_>,
    names: &[Spanned<String>],
    policies: &BTreeMap<String, Arc<Policy>>,
    set: &mut PolicySet,
) {
    for name in names {
        match policies.get(name.get_ref()) {
            Some(p) => set.add(p.clone()),
            None => ctx.error(
                name.span(),
                format!(
                    "unknown policy `{}`: no such file in the policy folder",
                    name.get_ref()
                ),
            ),
        }
    }
}

fn groups(
    ctx: &mut Ctx<'_>,
    raw: &[raw::Group],
    policies: &BTreeMap<String, Arc<Policy>>,
) -> BTreeMap<String, PolicySet> {
    let mut out = BTreeMap::new();
    for g in raw {
        let mut set = PolicySet::default();
        policy_refs(ctx, &g.policies, policies, &mut set);
        if out.insert(g.name.get_ref().clone(), set).is_some() {
            ctx.error(
                g.name.span(),
                format!("group `{}` is defined twice", g.name.get_ref()),
            );
        }
    }
    out
}

fn principals(
    ctx: &mut Ctx<'_>,
    raw: &[raw::Principal],
    groups: &BTreeMap<String, PolicySet>,
    policies: &BTreeMap<String, Arc<Policy>>,
    service: Option<&Service>,
    enforce: bool,
) -> Vec<Principal> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for p in raw {
        let name = p.name.get_ref();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        {
            ctx.error(
                p.name.span(),
                format!("principal name `{name}` must be 1 to 64 of A-Z a-z 0-9 + = , . @ _ -"),
            );
        } else if !names.insert(name.clone()) {
            ctx.error(
                p.name.span(),
                format!("principal `{name}` is defined twice"),
            );
        }
        let akid = p.access_key_id.get_ref();
        if akid.len() < 16 || akid.len() > 128 || !akid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            ctx.error(
                p.access_key_id.span(),
                "`access_key_id` must be 16 to 128 letters and digits",
            );
        } else if !keys.insert(akid.clone()) {
            ctx.error(
                p.access_key_id.span(),
                format!("access key `{akid}` is given to two principals"),
            );
        }
        let secret = ctx.secret(
            p.name.span(),
            "secret_access_key",
            &p.secret_access_key,
            &p.secret_access_key_env,
            &p.secret_access_key_file,
            true,
        );
        let mut set = PolicySet::default();
        policy_refs(ctx, &p.policies, policies, &mut set);
        for g in &p.groups {
            match groups.get(g.get_ref()) {
                Some(group) => {
                    for policy in group.policies() {
                        set.add(policy.clone());
                    }
                }
                None => ctx.error(g.span(), format!("unknown group `{}`", g.get_ref())),
            }
        }
        let arn = match (&p.arn, service) {
            (Some(a), _) => a.get_ref().clone(),
            (None, Some(s)) => format!("arn:{}:iam::{}:user/{name}", s.partition, s.account_id),
            (None, None) => String::new(),
        };
        if let Some(secret) = secret {
            out.push(Principal {
                name: name.clone(),
                arn,
                access_key_id: akid.clone(),
                secret_access_key: secret,
                policies: set,
                tags: p.tags.clone(),
                enforce: p.enforce.unwrap_or(enforce),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
