//! `[[quota]]` and `[quota_store]` (SPEC, "Fair share"): each quota's action patterns,
//! principals and groups, key and limits checked with every error at its line; then, once the
//! principals are known, a warning for a quota no principal can meet.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::{raw, sections::bounded, Ctx, Principal};
use crate::policy::{wildcard, Action};
use crate::quota::redis::{OnError, Settings};
use crate::quota::{Per, Spec};
use crate::swf::Operation;

/// The operations an action pattern matches (IAM action names are case-insensitive).
fn operations(pattern: &str) -> Vec<Operation> {
    let pattern = pattern.to_ascii_lowercase();
    Operation::ALL
        .iter()
        .copied()
        .filter(|op| wildcard::matches(&pattern, &op.iam_action().to_ascii_lowercase()))
        .collect()
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Validates every `[[quota]]`; a quota with an error is reported and left out.
pub(super) fn quotas(
    ctx: &mut Ctx<'_>,
    raw: &[raw::Quota],
    groups: &BTreeSet<String>,
) -> Vec<Arc<Spec>> {
    let mut out: Vec<Arc<Spec>> = Vec::new();
    let mut names = BTreeSet::new();
    for q in raw {
        let errors_before = ctx.error_count();
        let name = q.name.get_ref();
        if !valid_name(name) {
            ctx.error(
                q.name.span(),
                format!("quota name `{name}` must be 1 to 64 of A-Z a-z 0-9 _ . -"),
            );
        } else if !names.insert(name.clone()) {
            ctx.error(q.name.span(), format!("quota `{name}` is defined twice"));
        }
        let mut ops = Vec::new();
        if q.actions.get_ref().is_empty() {
            ctx.error(
                q.actions.span(),
                "`actions` is empty: the quota would count nothing",
            );
        }
        for pattern in q.actions.get_ref() {
            let matched = operations(pattern.get_ref());
            if matched.is_empty() {
                let decision = crate::policy::actions::DecisionKind::from_name(
                    pattern.get_ref().strip_prefix("swf:").unwrap_or_default(),
                );
                ctx.error(
                    pattern.span(),
                    if decision.is_some() {
                        format!("`{}` is a decision, not a call: quotas count calls (`swf:RespondDecisionTaskCompleted`)", pattern.get_ref())
                    } else {
                        format!("unknown action `{}`: it matches no SWF operation", pattern.get_ref())
                    },
                );
            }
            for op in matched {
                if !ops.contains(&op) {
                    ops.push(op);
                }
            }
        }
        ops.sort();
        if q.principals.is_empty() && q.groups.is_empty() {
            ctx.error(
                q.name.span(),
                format!("quota `{name}` applies to no one: give `principals` (name patterns such as \"*\") or `groups`"),
            );
        }
        for g in &q.groups {
            if !groups.contains(g.get_ref()) && !ctx.broken_groups.contains(g.get_ref()) {
                ctx.error(g.span(), format!("unknown group `{}`", g.get_ref()));
            }
        }
        let per = match &q.per {
            None => Per::Principal,
            Some(p) => Per::parse(p.get_ref()).unwrap_or_else(|| {
                ctx.error(
                    p.span(),
                    format!("`per` must be \"principal\", \"domain\", \"principal+domain\" or \"all\", not `{}`", p.get_ref()),
                );
                Per::Principal
            }),
        };
        let rate = rate(ctx, q);
        let max_in_flight = q
            .max_in_flight
            .as_ref()
            .map(|m| bounded(ctx, &Some(m.clone()), "max_in_flight", 1, 1..=1_000_000) as u32);
        if rate.is_none() && max_in_flight.is_none() && q.rate_per_second.is_none() {
            ctx.error(
                q.name.span(),
                format!("quota `{name}` limits nothing: give `rate_per_second` (and `burst`) or `max_in_flight`"),
            );
        }
        if ctx.error_count() == errors_before {
            let (line, _) = crate::diag::line_col(ctx.source, q.name.span().start);
            out.push(Arc::new(Spec {
                name: Arc::from(name.as_str()),
                operations: ops,
                principals: q.principals.iter().map(|p| p.get_ref().clone()).collect(),
                groups: q.groups.iter().map(|g| g.get_ref().clone()).collect(),
                per,
                rate,
                max_in_flight,
                origin: format!("{}:{line}", ctx.file.display()),
            }));
        }
    }
    out
}

/// `rate_per_second` and `burst`: a positive rate up to a million a second; the burst
/// defaults to one second's worth (at least 1).
fn rate(ctx: &mut Ctx<'_>, q: &raw::Quota) -> Option<(f64, u64)> {
    let Some(r) = &q.rate_per_second else {
        if let Some(b) = &q.burst {
            ctx.error(b.span(), "`burst` without `rate_per_second`");
        }
        return None;
    };
    let per_second = r.get_ref().value();
    if !(per_second.is_finite() && per_second > 0.0 && per_second <= 1_000_000.0) {
        ctx.error(
            r.span(),
            "`rate_per_second` must be more than 0 and at most 1000000",
        );
        return None;
    }
    let default_burst = per_second.ceil().max(1.0) as u64;
    let burst = bounded(ctx, &q.burst, "burst", default_burst, 1..=10_000_000);
    Some((per_second, burst))
}

/// Warns about a quota no principal can meet: none matches it, or none that does may be
/// allowed any of its actions (quotas count only allowed calls).
pub(super) fn unreachable(
    ctx: &mut Ctx<'_>,
    raw: &[raw::Quota],
    quotas: &[Arc<Spec>],
    principals: &[Principal],
    roles: &[super::sts::Role],
) {
    // Role sessions meet quotas under their role's name and groups.
    let subjects: Vec<(&str, &[String], &crate::policy::PolicySet)> = principals
        .iter()
        .map(|p| (p.name.as_str(), &p.groups[..], &p.policies))
        .chain(
            roles
                .iter()
                .map(|r| (r.name.as_str(), &r.groups[..], &r.policies)),
        )
        .collect();
    for spec in quotas {
        let Some(at) = raw
            .iter()
            .find(|q| q.name.get_ref().as_str() == &*spec.name)
            .map(|q| q.name.span())
        else {
            continue;
        };
        let subject: Vec<_> = subjects
            .iter()
            .filter(|(name, groups, _)| spec.applies_to(name, groups))
            .collect();
        if subject.is_empty() {
            ctx.warning(
                at,
                format!(
                    "quota `{}` matches no principal or role: it can never be met",
                    spec.name
                ),
            );
        } else if !subject.iter().any(|(_, _, policies)| {
            spec.operations
                .iter()
                .any(|op| policies.may_allow(Action::Operation(*op)))
        }) {
            ctx.warning(
                at,
                format!("no principal quota `{}` applies to is allowed any of its actions: it can never be met", spec.name),
            );
        }
    }
}

/// `[quota_store]`: `None` for the local backend.
pub(super) fn store(ctx: &mut Ctx<'_>, s: raw::QuotaStore) -> Option<Settings> {
    let backend = s.backend.as_ref().map_or("local", |b| b.get_ref().as_str());
    let redis_only: [(&str, Option<std::ops::Range<usize>>); 6] = [
        ("url", s.url.as_ref().map(Spanned::span)),
        ("url_env", s.url_env.as_ref().map(Spanned::span)),
        ("url_file", s.url_file.as_ref().map(Spanned::span)),
        ("on_error", s.on_error.as_ref().map(Spanned::span)),
        ("timeout_ms", s.timeout_ms.as_ref().map(Spanned::span)),
        ("lease_ms", s.lease_ms.as_ref().map(Spanned::span)),
    ];
    match backend {
        "local" => {
            for (key, span) in redis_only {
                if let Some(span) = span {
                    ctx.error(
                        span,
                        format!("`{key}` is a setting of `backend = \"redis\"`"),
                    );
                }
            }
            return None;
        }
        "redis" => {}
        other => {
            let span = s.backend.as_ref().map_or(0..0, Spanned::span);
            ctx.error(
                span,
                format!("`backend` must be \"local\" or \"redis\", not `{other}`"),
            );
            return None;
        }
    }
    let owner = s.backend.as_ref().map_or(0..0, Spanned::span);
    let url = ctx.secret(owner, "url", &s.url, &s.url_env, &s.url_file, true);
    let on_error = match &s.on_error {
        None => OnError::Local,
        Some(v) => OnError::parse(v.get_ref()).unwrap_or_else(|| {
            ctx.error(
                v.span(),
                format!(
                    "`on_error` must be \"local\", \"allow\" or \"deny\", not `{}`",
                    v.get_ref()
                ),
            );
            OnError::Local
        }),
    };
    let timeout = bounded(ctx, &s.timeout_ms, "timeout_ms", 50, 1..=10_000);
    let lease = bounded(ctx, &s.lease_ms, "lease_ms", 50, 0..=1_000);
    let url = url?;
    let scheme_ok = url.expose().starts_with("redis://")
        || url.expose().starts_with("redis+unix://")
        || url.expose().starts_with("unix://");
    if !scheme_ok || redis::Client::open(url.expose()).is_err() {
        let span = s
            .url
            .as_ref()
            .or(s.url_env.as_ref())
            .or(s.url_file.as_ref())
            .map_or(0..0, Spanned::span);
        ctx.error(
            span,
            "the Redis URL must be `redis://[user:password@]host:port[/db]` or `unix:///path`",
        );
        return None;
    }
    Some(Settings {
        url,
        on_error,
        timeout: Duration::from_millis(timeout),
        lease: Duration::from_millis(lease),
    })
}
