//! `swf-warden check`: load and validate the configuration and every policy, print every error
//! and warning with file, line and column (errors only with `--quiet`); exit 64 on any error,
//! 0 with warnings only.

use std::path::Path;

use super::{EXIT_OK, EXIT_USAGE};

pub fn run(config: &Path, quiet: bool) -> u8 {
    match crate::config::load(config) {
        Ok(loaded) => {
            for w in loaded.warnings.iter().filter(|_| !quiet) {
                println!("{w}");
            }
            println!(
                "{}: ok ({} policies, {} principals, {} warning(s))",
                config.display(),
                loaded.policies.len(),
                loaded.principals.len(),
                loaded.warnings.len()
            );
            EXIT_OK
        }
        Err(diagnostics) => {
            for d in diagnostics.0.iter().filter(|d| d.is_error() || !quiet) {
                println!("{d}");
            }
            let errors = diagnostics.0.iter().filter(|d| d.is_error()).count();
            println!(
                "{}: {errors} error(s), {} warning(s)",
                config.display(),
                diagnostics.0.len() - errors
            );
            EXIT_USAGE
        }
    }
}
