//! `swf-warden explain`: the decision for one principal (or role session), action and resource, the statements
//! that decided it with file and line, how each condition and variable evaluated, and the
//! quotas an allowed call would then meet.

use std::path::Path;

use super::{EXIT_OK, EXIT_USAGE};

pub struct Args<'a> {
    pub config: &'a Path,
    pub principal: Option<&'a str>,
    /// A session of this role instead, with `tags` (`KEY=VALUE`) and `session` as its name.
    pub role: Option<&'a str>,
    pub session: Option<&'a str>,
    pub tags: &'a [String],
    pub action: &'a str,
    pub domain: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub context: &'a [String],
}

pub fn run(args: &Args<'_>) -> u8 {
    let Some(config) = super::load(args.config) else {
        return EXIT_USAGE;
    };
    let query = (|| {
        Ok::<_, String>(super::Query {
            subject: super::subject(&config, args.principal, args.role, args.session, args.tags)?,
            action: super::action(args.action)?,
            resource: super::resource(&config, args.domain, args.resource)?,
            context: super::context(args.context)?,
        })
    })();
    let query = match query {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let (decision, text) = query.evaluate(crate::policy::explain::explain, &config.service.region);
    print!("{text}");
    if decision.kind == crate::policy::DecisionKind::Allowed {
        print!("{}", quotas(&config, &query));
    } else {
        print!("\nquotas: none is met (a refused call spends nothing)\n");
    }
    EXIT_OK
}

/// The quotas an allowed call meets, each with where it is defined.
fn quotas(config: &crate::config::Config, query: &super::Query<'_>) -> String {
    let crate::policy::Action::Operation(op) = query.action else {
        return String::new();
    };
    let p = &query.subject;
    let meets: Vec<String> = config
        .quotas
        .iter()
        .filter(|q| q.covers(op) && q.applies_to(&p.name, p.groups))
        .map(|q| format!("  {} at {}: {}\n", q.name, q.origin, q.describe()))
        .collect();
    if meets.is_empty() {
        "\nquotas: none applies\n".to_owned()
    } else {
        format!("\nquotas (each must admit the call):\n{}", meets.concat())
    }
}
