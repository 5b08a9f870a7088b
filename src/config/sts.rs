//! `[sts]`, `[[oidc_provider]]` and `[[role]]` (SPEC, "Temporary credentials"): the session
//! keys, the identity providers with their key sets (read now, so that a bad key set fails
//! the load at its line), and the roles with their trust (provider, subjects, claim
//! conditions), session tags and policies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::sections::{bounded, effective_policies, keyring};
use super::{raw, Ctx, Service};
use crate::policy::{Policy, PolicySet};
use crate::sts::oidc::{KeySet, Provider, Remote};
pub use crate::sts::settings::{
    valid_name, valid_tag_text, Role, Settings as Sts, DEFAULT_DURATION_SECONDS,
    MAX_DURATION_SECONDS, MIN_DURATION_SECONDS,
};

/// Reads the STS sections. `None` when `[sts]` is absent and nothing else refers to it.
#[allow(clippy::too_many_arguments)]
pub(super) fn sts(
    ctx: &mut Ctx<'_>,
    sts: Option<raw::Sts>,
    providers: &[raw::OidcProvider],
    roles: &[raw::Role],
    groups: &BTreeMap<String, PolicySet>,
    policies: &BTreeMap<String, Arc<Policy>>,
    service: Option<&Service>,
    principals: &[super::Principal],
    enforce: bool,
) -> Option<Sts> {
    let Some(sts) = sts else {
        if let Some(p) = providers.first() {
            ctx.error(
                p.name.span(),
                "`[[oidc_provider]]` needs an `[sts]` section with `session_keys`",
            );
        }
        if let Some(r) = roles.first() {
            ctx.error(
                r.name.span(),
                "`[[role]]` needs an `[sts]` section with `session_keys`",
            );
        }
        return None;
    };
    let session_keys = keyring(ctx, &sts.session_keys, "session_keys", "session key");
    let max_duration = bounded(
        ctx,
        &sts.max_duration_seconds,
        "max_duration_seconds",
        DEFAULT_DURATION_SECONDS,
        DEFAULT_DURATION_SECONDS..=MAX_DURATION_SECONDS,
    );
    let per_minute = bounded(
        ctx,
        &sts.issues_per_minute,
        "issues_per_minute",
        60,
        1..=1_000_000,
    );
    let burst = bounded(ctx, &sts.issue_burst, "issue_burst", 10, 1..=1_000_000);
    let unverified = bounded(
        ctx,
        &sts.unverified_per_second,
        "unverified_per_second",
        100,
        1..=1_000_000,
    );
    let mut by_name = BTreeMap::new();
    let mut issuers = BTreeSet::new();
    for p in providers {
        // A token names its issuer before anything of it is verified: one provider each.
        if !issuers.insert(p.issuer.get_ref().clone()) {
            ctx.error(
                p.issuer.span(),
                format!(
                    "issuer `{}` is given to two providers: a token's `iss` must name one",
                    p.issuer.get_ref()
                ),
            );
            continue;
        }
        if let Some(provider) = provider(ctx, p) {
            if by_name
                .insert(provider.name.clone(), Arc::new(provider))
                .is_some()
            {
                ctx.error(
                    p.name.span(),
                    format!("identity provider `{}` is defined twice", p.name.get_ref()),
                );
            }
        }
    }
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for r in roles {
        let name = r.name.get_ref();
        if !valid_name(name, 64) {
            ctx.error(
                r.name.span(),
                format!("role name `{name}` must be 1 to 64 of A-Z a-z 0-9 + = , . @ _ -"),
            );
        } else if !names.insert(name.clone()) {
            ctx.error(r.name.span(), format!("role `{name}` is defined twice"));
        } else if principals.iter().any(|p| &p.name == name) {
            // Quotas, metrics and audit records name a session by its role.
            ctx.error(
                r.name.span(),
                format!("role `{name}` has the name of a principal: quotas, metrics and records would mix them"),
            );
        }
        // Without a provider, a role is assumed only with a key (`AssumeRole`).
        let provider = match &r.provider {
            None => None,
            Some(named) => {
                let found = by_name.get(named.get_ref()).cloned();
                let known = providers
                    .iter()
                    .any(|p| p.name.get_ref() == named.get_ref());
                if found.is_none() && !known {
                    ctx.error(
                        named.span(),
                        format!("unknown identity provider `{}`", named.get_ref()),
                    );
                }
                found
            }
        };
        // A provider named but not loaded is reported (here or at its own section): the role
        // is left out once the rest of it is checked.
        let broken_provider = r.provider.is_some() && provider.is_none();
        let subjects = r.subjects.as_ref().map_or(&[][..], |s| &s.get_ref()[..]);
        match (&r.provider, &r.subjects) {
            (Some(_), None) => ctx.error(
                r.name.span(),
                "a role with a `provider` needs `subjects`: it trusts no token without them",
            ),
            (Some(_), Some(s)) if s.get_ref().is_empty() => ctx.error(
                s.span(),
                "`subjects` needs at least one pattern: a role trusts no token without one",
            ),
            (None, Some(s)) => ctx.error(
                s.span(),
                "`subjects` without a `provider` trusts nothing: name the provider",
            ),
            _ => {}
        }
        if r.provider.is_none() && !r.session_tags.is_empty() {
            ctx.error(
                r.name.span(),
                "`session_tags` come from a provider's tokens: this role has no `provider`",
            );
        }
        let mut conditions = Vec::new();
        for (path, patterns) in &r.conditions {
            if patterns.get_ref().is_empty() {
                ctx.error(
                    patterns.span(),
                    format!("condition on `{path}` needs at least one pattern"),
                );
            }
            conditions.push((
                path.clone(),
                patterns
                    .get_ref()
                    .iter()
                    .map(|p| p.get_ref().clone())
                    .collect(),
            ));
        }
        let mut session_tags = Vec::new();
        for (tag, path) in &r.session_tags {
            if tag.is_empty()
                || tag.len() > crate::sts::session::MAX_TAG_KEY
                || !valid_tag_text(tag)
            {
                ctx.error(
                    path.span(),
                    format!("session tag key `{tag}` must be 1 to 128 of letters, digits, spaces and _ . : / = + - @"),
                );
            }
            if path.get_ref().is_empty() {
                ctx.error(
                    path.span(),
                    format!("session tag `{tag}` needs a claim path"),
                );
            }
            session_tags.push((tag.clone(), path.get_ref().clone()));
        }
        if r.accept_tags_claim && r.provider.is_none() {
            ctx.error(
                r.name.span(),
                "`accept_tags_claim` reads a provider's tokens: this role has no `provider`",
            );
        }
        let sessions_not_before = r.sessions_not_before.as_ref().and_then(|t| {
            time::OffsetDateTime::parse(t.get_ref(), &time::format_description::well_known::Rfc3339)
                .map(std::time::SystemTime::from)
                .map_err(|_| {
                    ctx.error(
                        t.span(),
                        format!(
                            "`sessions_not_before` `{}` is not an RFC 3339 time such as `2026-01-31T12:00:00Z`",
                            t.get_ref()
                        ),
                    )
                })
                .ok()
        });
        if let Some(tag) = &r.tenant_tag {
            if !r.session_tags.contains_key(tag.get_ref()) {
                ctx.error(
                    tag.span(),
                    format!(
                        "`tenant_tag` `{}` is not one of this role's `session_tags`: every session must carry it",
                        tag.get_ref()
                    ),
                );
            }
        }
        let set = effective_policies(ctx, &r.policies, &r.groups, groups, policies);
        let Some(service) = service.filter(|_| !broken_provider) else {
            continue;
        };
        out.push(Role {
            name: name.clone(),
            arn: format!(
                "arn:{}:iam::{}:role/{name}",
                service.partition, service.account_id
            ),
            provider,
            subjects: subjects.iter().map(|s| s.get_ref().clone()).collect(),
            conditions,
            session_tags,
            policies: set,
            groups: r.groups.iter().map(|g| g.get_ref().clone()).collect(),
            enforce: r.enforce.unwrap_or(enforce),
            accept_tags_claim: r.accept_tags_claim,
            sessions_not_before,
            tenant_tag: r.tenant_tag.as_ref().map(|t| t.get_ref().clone()),
        });
    }
    Some(Sts {
        session_keys: session_keys?,
        max_duration: Duration::from_secs(max_duration),
        issue_rate: crate::quota::gcra::Rate::new(per_minute as f64 / 60.0, burst),
        unverified_rate: crate::quota::gcra::Rate::new(unverified as f64, unverified),
        providers: by_name,
        roles: out,
    })
}

fn provider(ctx: &mut Ctx<'_>, p: &raw::OidcProvider) -> Option<Provider> {
    let issuer = p.issuer.get_ref();
    if !issuer.starts_with("https://") {
        ctx.error(
            p.issuer.span(),
            format!("issuer `{issuer}` must be an https:// URL, as the token's `iss` is"),
        );
    }
    if p.audiences.get_ref().is_empty() {
        ctx.error(
            p.audiences.span(),
            "`audiences` needs at least one: a token for anyone is not a token for this proxy",
        );
    }
    let seconds = |ctx: &mut Ctx<'_>, v: &Option<Spanned<u64>>, name: &str, default: u64| {
        Duration::from_secs(bounded(ctx, v, name, default, 1..=30 * 86_400))
    };
    let refetch_interval = seconds(
        ctx,
        &p.jwks_refetch_interval_seconds,
        "jwks_refetch_interval_seconds",
        60,
    );
    let refresh = seconds(ctx, &p.jwks_refresh_seconds, "jwks_refresh_seconds", 3600);
    let max_stale = seconds(
        ctx,
        &p.jwks_max_stale_seconds,
        "jwks_max_stale_seconds",
        86_400,
    );
    let name = p.name.get_ref().clone();
    let audiences = p
        .audiences
        .get_ref()
        .iter()
        .map(|a| a.get_ref().clone())
        .collect();
    match (&p.jwks_file, &p.jwks_url) {
        (Some(file), None) => {
            if let Some(ca) = &p.ca_file {
                ctx.error(
                    ca.span(),
                    "`ca_file` is for `jwks_url`: a key set file is not fetched",
                );
            }
            let path = ctx.existing_file(file)?;
            let keys = match std::fs::read_to_string(&path) {
                Ok(text) => KeySet::parse(&text),
                Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
            };
            let keys = keys
                .map_err(|e| ctx.error(file.span(), format!("key set: {e}")))
                .ok()?;
            for why in &keys.skipped {
                ctx.warning(file.span(), format!("key set: left out {why}"));
            }
            Some(Provider::new(name, issuer.clone(), audiences, keys, None))
        }
        (None, Some(url)) => {
            let uri = match url.get_ref().parse::<http::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => uri,
                _ => {
                    ctx.error(
                        url.span(),
                        format!("`jwks_url` `{}` must be an https:// URL", url.get_ref()),
                    );
                    return None;
                }
            };
            let roots = match &p.ca_file {
                Some(ca) => {
                    let path = ctx.existing_file(ca)?;
                    match crate::tls::certificates(&path) {
                        Ok(roots) => roots,
                        Err(e) => {
                            ctx.error(ca.span(), format!("CA file: {e}"));
                            return None;
                        }
                    }
                }
                None => Vec::new(),
            };
            let fetcher =
                crate::forward::fetch::Fetcher::new(&uri, Some(roots), Duration::from_secs(10))
                    .map_err(|e| ctx.error(url.span(), e.to_string()))
                    .ok()?;
            let remote = Remote::new(
                url.get_ref().clone(),
                fetcher,
                refetch_interval,
                refresh,
                max_stale,
            );
            Some(Provider::new(
                name,
                issuer.clone(),
                audiences,
                KeySet::default(),
                Some(remote),
            ))
        }
        _ => {
            ctx.error(
                p.name.span(),
                format!(
                    "identity provider `{name}` needs exactly one of `jwks_file` and `jwks_url`"
                ),
            );
            None
        }
    }
}
