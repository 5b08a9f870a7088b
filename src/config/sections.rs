//! Validating each section of the configuration: addresses, region and account, upstream,
//! task token keys, limits, logs, groups and principals, with every error pointing at its line.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::{raw, Ctx, Limits, Listen, Log, Principal, Service};
use crate::policy::{Policy, PolicySet};
use crate::secret::Secret;
use crate::tokens;

pub(super) fn bounded(
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

pub(super) fn limits(ctx: &mut Ctx<'_>, l: raw::Limits) -> Limits {
    const GIB: u64 = 1024 * 1024 * 1024;
    let d = Limits::default();
    let secs = |d: Duration| d.as_secs();
    Limits {
        max_body_bytes: bounded(
            ctx,
            &l.max_body_bytes,
            "max_body_bytes",
            d.max_body_bytes as u64,
            1..=GIB,
        ) as usize,
        max_decisions: bounded(
            ctx,
            &l.max_decisions,
            "max_decisions",
            d.max_decisions as u64,
            1..=100_000,
        ) as usize,
        max_header_bytes: bounded(
            ctx,
            &l.max_header_bytes,
            "max_header_bytes",
            d.max_header_bytes as u64,
            8192..=1024 * 1024,
        ) as usize,
        header_read_timeout: Duration::from_secs(bounded(
            ctx,
            &l.header_read_timeout_seconds,
            "header_read_timeout_seconds",
            secs(d.header_read_timeout),
            1..=3600,
        )),
        max_connections: bounded(
            ctx,
            &l.max_connections,
            "max_connections",
            d.max_connections as u64,
            1..=1_000_000,
        ) as usize,
        drain_timeout: Duration::from_secs(bounded(
            ctx,
            &l.drain_timeout_seconds,
            "drain_timeout_seconds",
            secs(d.drain_timeout),
            0..=3600,
        )),
        idle_timeout: Duration::from_secs(bounded(
            ctx,
            &l.idle_timeout_seconds,
            "idle_timeout_seconds",
            secs(d.idle_timeout),
            1..=3600,
        )),
        body_read_timeout: Duration::from_secs(bounded(
            ctx,
            &l.body_read_timeout_seconds,
            "body_read_timeout_seconds",
            secs(d.body_read_timeout),
            1..=3600,
        )),
        write_timeout: Duration::from_secs(bounded(
            ctx,
            &l.write_timeout_seconds,
            "write_timeout_seconds",
            secs(d.write_timeout),
            1..=3600,
        )),
        max_concurrent_streams: bounded(
            ctx,
            &l.max_concurrent_streams,
            "max_concurrent_streams",
            u64::from(d.max_concurrent_streams),
            1..=10_000,
        ) as u32,
        max_connections_per_ip: l.max_connections_per_ip.is_some().then(|| {
            bounded(
                ctx,
                &l.max_connections_per_ip,
                "max_connections_per_ip",
                1,
                1..=1_000_000,
            ) as usize
        }),
    }
}

/// An `http` or `https` URL with a host, no user name or password (they would go out in the
/// `Host` header and into messages) and no query (nor a path unless `path_allowed`), else an
/// error at its line saying it is not `what`.
pub(super) fn http_url(
    ctx: &mut Ctx<'_>,
    value: &Spanned<String>,
    path_allowed: bool,
    what: &str,
) -> Option<http::Uri> {
    match value.get_ref().parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http") | Some("https"))
                && uri.authority().is_some_and(|a| !a.as_str().contains('@'))
                && (path_allowed || matches!(uri.path(), "" | "/"))
                && uri.query().is_none() =>
        {
            Some(uri)
        }
        _ => {
            ctx.error(value.span(), format!("`{}` is not {what}", value.get_ref()));
            None
        }
    }
}

/// `[tracing]`: where spans go and how many calls are traced.
pub(super) fn tracing(ctx: &mut Ctx<'_>, t: raw::Tracing) -> Option<crate::telemetry::Settings> {
    let endpoint = http_url(
        ctx,
        &t.otlp_endpoint,
        true,
        "an OTLP/HTTP collector URL such as `http://127.0.0.1:4318`",
    );
    let sample_ratio = match &t.sample_ratio {
        None => 1.0,
        Some(r) if (0.0..=1.0).contains(&r.get_ref().value()) => r.get_ref().value(),
        Some(r) => {
            ctx.error(
                r.span(),
                "`sample_ratio` must be between 0 and 1".to_owned(),
            );
            1.0
        }
    };
    let service_name = match &t.service_name {
        None => "swf-warden".to_owned(),
        Some(n) if !n.get_ref().is_empty() && n.get_ref().len() <= 256 => n.get_ref().clone(),
        Some(n) => {
            ctx.error(
                n.span(),
                "`service_name` must be 1 to 256 characters".to_owned(),
            );
            String::new()
        }
    };
    let ca_file = match &t.ca_file {
        Some(c)
            if endpoint
                .as_ref()
                .is_some_and(|e| e.scheme_str() == Some("http")) =>
        {
            ctx.error(
                c.span(),
                "`ca_file` is for an https `otlp_endpoint`".to_owned(),
            );
            None
        }
        Some(c) => Some(ctx.existing_file(c)?),
        None => None,
    };
    Some(crate::telemetry::Settings {
        otlp_endpoint: endpoint?,
        sample_ratio,
        service_name,
        ca_file,
    })
}

pub(super) fn log(ctx: &mut Ctx<'_>, l: raw::Log) -> Log {
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
    Log {
        json,
        level,
        access: l.access.unwrap_or(true),
    }
}

pub(super) fn listen(ctx: &mut Ctx<'_>, l: raw::Listen) -> Option<Listen> {
    let address = ctx.socket_addr(&l.address);
    let workers = l
        .workers
        .is_some()
        .then(|| bounded(ctx, &l.workers, "workers", 1, 1..=1024) as usize);
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
        workers,
        h2c: l.h2c,
    })
}

pub(super) fn service(ctx: &mut Ctx<'_>, v: raw::Service) -> Option<Service> {
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
    let mut hosts = Vec::with_capacity(v.hosts.len());
    for host in &v.hosts {
        match host.get_ref().parse::<http::uri::Authority>() {
            Ok(authority)
                if authority.as_str() == host.get_ref() && !host.get_ref().contains('@') =>
            {
                hosts.push(host.get_ref().to_ascii_lowercase());
            }
            _ => {
                ctx.error(
                    host.span(),
                    format!(
                        "`{}` is not a host such as `swf.example.internal` or `swf.example.internal:8443`",
                        host.get_ref()
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then(|| Service {
        region: v.region.into_inner(),
        account_id: v.account_id.into_inner(),
        partition: v.partition.into_inner(),
        max_clock_skew: Duration::from_secs(skew),
        hosts,
    })
}

pub(super) fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub(super) fn task_tokens(ctx: &mut Ctx<'_>, t: raw::TaskTokens) -> Option<Vec<(String, Secret)>> {
    if t.unsealed.get_ref() != "deny" {
        ctx.error(t.unsealed.span(), format!("`unsealed` must be \"deny\", not `{}`: a token the proxy did not seal names no domain to authorize", t.unsealed.get_ref()));
    }
    keyring(ctx, &t.keys, "keys", "task token key")
}

/// A list of sealing keys (`[task_tokens] keys`, `[sts] session_keys`): at least one, ids
/// valid and distinct, secrets of at least [`tokens::MIN_SECRET_LEN`] bytes. `field` names
/// the list and `what` one key in errors.
pub(super) fn keyring(
    ctx: &mut Ctx<'_>,
    list: &Spanned<Vec<Spanned<raw::TokenKey>>>,
    field: &str,
    what: &str,
) -> Option<Vec<(String, Secret)>> {
    if list.get_ref().is_empty() {
        ctx.error(
            list.span(),
            format!("`{field}` needs at least one key: the first seals, all open"),
        );
        return None;
    }
    let mut keys = Vec::new();
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for key in list.get_ref() {
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
                        "{what} `{id}` must be at least {} bytes",
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

pub(super) fn policy_refs(
    ctx: &mut Ctx<'_>,
    names: &[Spanned<String>],
    policies: &BTreeMap<String, Arc<Policy>>,
    set: &mut PolicySet,
) {
    for name in names {
        match policies.get(name.get_ref()) {
            Some(p) => set.add(p.clone()),
            // A policy whose file failed to load is already reported.
            None if ctx.broken_policies.contains(name.get_ref()) => {}
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

/// The policies named, then those of the groups named (a principal's or a role's), each once.
pub(super) fn effective_policies(
    ctx: &mut Ctx<'_>,
    names: &[Spanned<String>],
    in_groups: &[Spanned<String>],
    groups: &BTreeMap<String, PolicySet>,
    policies: &BTreeMap<String, Arc<Policy>>,
) -> PolicySet {
    let mut set = PolicySet::default();
    policy_refs(ctx, names, policies, &mut set);
    for g in in_groups {
        match groups.get(g.get_ref()) {
            Some(group) => {
                for policy in group.policies() {
                    set.add(policy.clone());
                }
            }
            // A group whose own entry failed is already reported.
            None if ctx.broken_groups.contains(g.get_ref()) => {}
            None => ctx.error(g.span(), format!("unknown group `{}`", g.get_ref())),
        }
    }
    set
}

pub(super) fn groups(
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

pub(super) fn principals(
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
        let set = effective_policies(ctx, &p.policies, &p.groups, groups, policies);
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
                groups: p.groups.iter().map(|g| g.get_ref().clone()).collect(),
            });
        }
    }
    out
}
