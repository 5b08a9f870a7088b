//! `swf-warden policy replay | diff | suggest` (SPEC, "Policy change impact"): the commands
//! around `impact`, which does the work. Reports go to stdout (a suggested policy too, so that
//! it can be redirected into a file), notes to stderr.

use std::path::{Path, PathBuf};

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
pub use crate::impact::replay::FailOn;
use crate::impact::replay::Replay;
use crate::impact::{diff, record, suggest};

/// What `policy replay` is given.
pub struct ReplayArgs<'a> {
    pub config: &'a Path,
    pub fail_on: Option<FailOn>,
    pub json: bool,
    /// How many changed calls of each kind are shown.
    pub samples: usize,
    pub files: &'a [PathBuf],
}

/// `policy replay --config NEW.toml [--fail-on …] [--json] AUDIT …`.
pub fn replay(args: &ReplayArgs<'_>) -> u8 {
    let Some(config) = super::load(args.config) else {
        return EXIT_USAGE;
    };
    let inputs = match crate::audit::files::open(args.files) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut replay = Replay::new(&config, args.samples);
    if let Err(e) = record::each_line(inputs, |line| replay.line(line)) {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    let report = replay.finish();
    if args.json {
        println!("{}", serde_json::to_value(&report).unwrap_or_default());
    } else {
        print!("{}", report.text());
    }
    match args.fail_on {
        Some(fail_on) if report.fails(fail_on) => EXIT_FAILED,
        _ => EXIT_OK,
    }
}

/// `policy diff --config OLD.toml --against NEW.toml [--fail-on …] [--json]`.
pub fn diff(old: &Path, new: &Path, fail_on: Option<FailOn>, json: bool) -> u8 {
    let (Some(old), Some(new)) = (super::load(old), super::load(new)) else {
        return EXIT_USAGE;
    };
    let report = diff::diff(&old, &new);
    if json {
        println!("{}", serde_json::to_value(&report).unwrap_or_default());
    } else {
        print!("{}", report.text());
    }
    match fail_on {
        Some(fail_on) if report.fails(fail_on) => EXIT_FAILED,
        _ => EXIT_OK,
    }
}

/// What `policy suggest` is given.
pub struct SuggestArgs<'a> {
    pub config: &'a Path,
    pub principal: Option<&'a str>,
    pub role: Option<&'a str>,
    /// `toml` or `json`.
    pub json: bool,
    pub files: &'a [PathBuf],
}

/// `policy suggest --config PATH (--principal NAME | --role NAME) [--format toml|json] AUDIT …`:
/// the policy on stdout, the report on stderr.
pub fn suggest(args: &SuggestArgs<'_>) -> u8 {
    let Some(config) = super::load(args.config) else {
        return EXIT_USAGE;
    };
    let target = match (args.principal, args.role) {
        (Some(name), None) => suggest::Target {
            kind: crate::impact::SubjectKind::Principal,
            name,
        },
        (None, Some(name)) => suggest::Target {
            kind: crate::impact::SubjectKind::Role,
            name,
        },
        _ => {
            eprintln!("error: give exactly one of --principal and --role");
            return EXIT_USAGE;
        }
    };
    let subject = diff::subject(&config, target.kind, target.name);
    if subject.is_none() {
        eprintln!(
            "error: {} `{}` is not in {}",
            target.kind.as_str(),
            target.name,
            args.config.display()
        );
        return EXIT_USAGE;
    }
    let inputs = match crate::audit::files::open(args.files) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut usage = suggest::Usage::default();
    if let Err(e) = record::each_line(inputs, |line| usage.line(line, target)) {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    if usage.records == 0 {
        eprintln!(
            "error: no recorded call of {} `{}` went through: nothing to suggest from",
            target.kind.as_str(),
            target.name
        );
        return EXIT_FAILED;
    }
    let suggestion = suggest::suggest(&config, subject.as_ref(), &usage);
    print!(
        "{}",
        if args.json {
            suggestion.json()
        } else {
            suggestion.toml()
        }
    );
    eprint!("{}", suggestion.report(&usage));
    EXIT_OK
}
