//! `[upstream]`: the SWF endpoint, its timeouts, and where the proxy's own credentials come
//! from (SPEC, "Upstream credentials"): a static key pair (`credentials = "static"`, the
//! default when a key is given) or the AWS SDK's default provider chain (`"chain"`, the
//! default otherwise), with a role assumed on top (`role_arn`, `external_id`,
//! `session_name`).

use std::time::Duration;

use toml::Spanned;

use super::sections::{http_url, valid_region};
use super::{raw, Ctx, Service, Upstream};
use crate::credentials::{AssumeRole, Part, Settings, Source};

/// `session_name` when none is given.
pub const DEFAULT_SESSION_NAME: &str = "swf-warden";

pub(super) fn upstream(
    ctx: &mut Ctx<'_>,
    u: raw::Upstream,
    service: Option<&Service>,
) -> Option<Upstream> {
    let endpoint = http_url(
        ctx,
        &u.endpoint,
        false,
        "an endpoint such as `https://swf.us-east-1.amazonaws.com`",
    );
    // Checked before anything can end this section early: every mistake is reported.
    let source = source(ctx, &u);
    let assume = assume_role(ctx, &u);
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
        credentials: Settings {
            source: source?,
            assume: assume?,
            region: region.clone(),
        },
        region,
        ca_file,
        connect_timeout: Duration::from_secs(*u.connect_timeout_seconds.get_ref()),
        timeout: Duration::from_secs(*u.timeout_seconds.get_ref()),
        poll_timeout: Duration::from_secs(*u.poll_timeout_seconds.get_ref()),
    })
}

/// The credential source: `credentials` as given, or `static` when a key is given, else
/// `chain`.
fn source(ctx: &mut Ctx<'_>, u: &raw::Upstream) -> Option<Source> {
    let key_given = u.access_key_id.is_some() || u.access_key_id_file.is_some();
    let static_parts: [(&str, Option<std::ops::Range<usize>>); 8] = [
        ("access_key_id", u.access_key_id.as_ref().map(Spanned::span)),
        (
            "access_key_id_file",
            u.access_key_id_file.as_ref().map(Spanned::span),
        ),
        (
            "secret_access_key",
            u.secret_access_key.as_ref().map(Spanned::span),
        ),
        (
            "secret_access_key_env",
            u.secret_access_key_env.as_ref().map(Spanned::span),
        ),
        (
            "secret_access_key_file",
            u.secret_access_key_file.as_ref().map(Spanned::span),
        ),
        ("session_token", u.session_token.as_ref().map(Spanned::span)),
        (
            "session_token_env",
            u.session_token_env.as_ref().map(Spanned::span),
        ),
        (
            "session_token_file",
            u.session_token_file.as_ref().map(Spanned::span),
        ),
    ];
    let chain = match &u.credentials {
        None => !key_given,
        Some(c) if c.get_ref() == "chain" => true,
        Some(c) if c.get_ref() == "static" => false,
        Some(c) => {
            ctx.error(
                c.span(),
                format!(
                    "`credentials` must be \"chain\" or \"static\", not `{}`",
                    c.get_ref()
                ),
            );
            return None;
        }
    };
    if chain {
        let mut ok = true;
        for (key, span) in static_parts {
            if let Some(span) = span {
                ctx.error(
                    span,
                    format!("`{key}` is for static credentials: with `credentials = \"chain\"` the AWS SDK's providers give the keys"),
                );
                ok = false;
            }
        }
        return ok.then_some(Source::Chain);
    }
    let owner = u
        .access_key_id
        .as_ref()
        .or(u.credentials.as_ref())
        .map_or_else(|| u.endpoint.span(), Spanned::span);
    let access_key_id = match (&u.access_key_id, &u.access_key_id_file) {
        (Some(_), Some(file)) => {
            ctx.error(
                file.span(),
                "give exactly one of `access_key_id` and `access_key_id_file`",
            );
            None
        }
        (None, None) => {
            ctx.error(
                owner.clone(),
                "static credentials need `access_key_id` (or `access_key_id_file`) and `secret_access_key[_env|_file]`",
            );
            None
        }
        (Some(id), None) => {
            // A key id is no secret: given inline, it is simply the value.
            if valid_key_id(id.get_ref()) {
                Some(Part {
                    value: crate::secret::Secret::new(id.get_ref().as_str()),
                    file: None,
                })
            } else {
                // It goes into the Authorization header of every upstream request.
                ctx.error(
                    id.span(),
                    "the upstream's `access_key_id` must be 1 to 128 letters and digits",
                );
                None
            }
        }
        (None, Some(file)) => ctx
            .secret_from(
                owner.clone(),
                "access_key_id",
                &None,
                &None,
                &u.access_key_id_file,
                true,
            )
            .and_then(|(value, path)| {
                if valid_key_id(value.expose()) {
                    Some(Part { value, file: path })
                } else {
                    ctx.error(
                        file.span(),
                        "the key id in `access_key_id_file` must be 1 to 128 letters and digits",
                    );
                    None
                }
            }),
    };
    let secret = ctx
        .secret_from(
            owner.clone(),
            "secret_access_key",
            &u.secret_access_key,
            &u.secret_access_key_env,
            &u.secret_access_key_file,
            true,
        )
        .map(|(value, file)| Part { value, file });
    if let Some(inline) = &u.secret_access_key {
        ctx.warning(
            inline.span(),
            "the upstream's secret is given inline: it may do anything on every tenant's domains; give it as `secret_access_key_file` (an agent may then rotate it in place) or use `credentials = \"chain\"`",
        );
    }
    let session_token = ctx
        .secret_from(
            owner,
            "session_token",
            &u.session_token,
            &u.session_token_env,
            &u.session_token_file,
            false,
        )
        .map(|(value, file)| Part { value, file });
    Some(Source::Static {
        access_key_id: access_key_id?,
        secret_access_key: secret?,
        session_token,
    })
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `role_arn`, `external_id`, `session_name`, checked as STS checks them.
fn assume_role(ctx: &mut Ctx<'_>, u: &raw::Upstream) -> Option<Option<AssumeRole>> {
    let Some(arn) = &u.role_arn else {
        for (key, value) in [
            ("external_id", &u.external_id),
            ("session_name", &u.session_name),
        ] {
            if let Some(v) = value {
                ctx.error(v.span(), format!("`{key}` goes with `role_arn`"));
            }
        }
        return Some(None);
    };
    let mut ok = true;
    if !valid_role_arn(arn.get_ref()) {
        ctx.error(
            arn.span(),
            format!(
                "`{}` is not a role ARN such as `arn:aws:iam::210987654321:role/swf-warden`",
                arn.get_ref()
            ),
        );
        ok = false;
    }
    let text = |v: &str, min: usize, max: usize, extra: &[u8]| {
        (min..=max).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b) || extra.contains(&b))
    };
    if let Some(id) = &u.external_id {
        if !text(id.get_ref(), 2, 1224, b":/") {
            ctx.error(
                id.span(),
                "`external_id` must be 2 to 1224 of letters, digits and _ + = , . @ : / -",
            );
            ok = false;
        }
    }
    let session_name = match &u.session_name {
        Some(name) if !text(name.get_ref(), 2, 64, b"") => {
            ctx.error(
                name.span(),
                "`session_name` must be 2 to 64 of letters, digits and _ + = , . @ -",
            );
            ok = false;
            String::new()
        }
        Some(name) => name.get_ref().clone(),
        None => DEFAULT_SESSION_NAME.to_owned(),
    };
    ok.then(|| {
        Some(AssumeRole {
            role_arn: arn.get_ref().clone(),
            external_id: u.external_id.as_ref().map(|e| e.get_ref().clone()),
            session_name,
        })
    })
}

/// `arn:<partition>:iam::<12 digits>:role/<path and name>`.
fn valid_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    prefix == "arn"
        && valid_region(partition)
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(|r| {
            !r.is_empty() && r.len() <= 512 && !r.bytes().any(|b| b.is_ascii_control() || b == b' ')
        })
}
