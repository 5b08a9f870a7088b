//! Policy loading (TOML and IAM JSON) and evaluation on arbitrary documents: never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use swf_warden::policy::{document, Policy, PolicySet};
use swf_warden::swf::Operation;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for doc in [document::parse_toml(Path::new("p.toml"), text), document::parse_json(Path::new("p.json"), text)] {
        let Ok(doc) = doc else { continue };
        let mut set = PolicySet::default();
        set.add(std::sync::Arc::new(Policy::new("p", Path::new("p"), doc)));
        for op in Operation::ALL {
            for resource in ["arn:aws:swf:us-east-1:123456789012:/domain/d", "*", "not-an-arn", ""] {
                let _ = set.evaluate(*op, resource);
            }
        }
    }
});
