//! `swf-warden explain`: the decision for one principal, action and resource, the statements
//! that decided it with file and line, and how each condition and variable evaluated.

use std::path::Path;

use super::{EXIT_OK, EXIT_USAGE};

pub struct Args<'a> {
    pub config: &'a Path,
    pub principal: &'a str,
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
            principal: super::principal(&config, args.principal)?,
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
    let (_, text) = query.evaluate(crate::policy::explain::explain, &config.service.region);
    print!("{text}");
    EXIT_OK
}
