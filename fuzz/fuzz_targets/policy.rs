//! Policy loading (TOML and IAM JSON), compilation, analysis and evaluation (conditions and
//! variables included) on arbitrary documents: never panics.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use swf_warden::policy::{analysis, document, Action, Caller, Context, Policy, PolicySet};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let tags = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
    let input = serde_json::json!({"taskList": {"name": "work"}, "tagList": ["a", "b"], "name": "n"});
    for doc in [document::parse_toml(Path::new("p.toml"), text), document::parse_json(Path::new("p.json"), text)] {
        let Ok(doc) = doc else { continue };
        let Ok(policy) = Policy::compile("p", Path::new("p"), doc) else { continue };
        let _ = analysis::analyze(&policy);
        let mut set = PolicySet::default();
        set.add(std::sync::Arc::new(policy));
        for action in Action::all() {
            let ctx = Context {
                caller: Caller { name: "alice", arn: "arn:aws:iam::123456789012:user/alice", tags: &tags },
                action,
                input: input.as_object(),
                source_ip: Some("10.0.0.1".parse().unwrap()),
                now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                secure_transport: true,
                region: "us-east-1",
                overrides: None,
            };
            for resource in ["arn:aws:swf:us-east-1:123456789012:/domain/d", "*", "not-an-arn", ""] {
                let _ = set.evaluate(resource, &ctx);
            }
        }
    }
});
