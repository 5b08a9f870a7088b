//! The policy corpus (tests/cases/policy): IAM JSON policies from the rules and examples of
//! AWS's IAM User Guide and the SWF Developer Guide, each case stating the decision, the
//! statements that decide it, and why. One test runs every file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use swf_warden::policy::{analysis, document, Action, Caller, Context, Policy, PolicySet};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/policy");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusFile {
    description: String,
    principal: Who,
    policies: BTreeMap<String, String>,
    case: Vec<Case>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Who {
    name: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    action: String,
    domain: Option<String>,
    resource: Option<String>,
    principal: Option<Who>,
    input: Option<toml::Table>,
    #[serde(default)]
    context: BTreeMap<String, toml::Value>,
    expect: String,
    statements: Option<Vec<BTreeMap<String, String>>>,
    reason: String,
}

fn files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn policies(file: &Path, corpus: &CorpusFile) -> PolicySet {
    let mut set = PolicySet::default();
    for (name, json) in &corpus.policies {
        let path = PathBuf::from(format!("{}#{name}", file.display()));
        let doc = document::parse_json(&path, json).unwrap_or_else(|d| panic!("{d:?}"));
        let policy = Policy::compile(name, &path, doc).unwrap_or_else(|d| panic!("{d:?}"));
        let errors: Vec<_> = analysis::analyze(&policy)
            .into_iter()
            .filter(|d| d.is_error())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        set.add(Arc::new(policy));
    }
    set
}

#[test]
fn corpus() {
    let mut total = 0;
    let mut failures = Vec::new();
    for file in files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let corpus: CorpusFile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!corpus.description.is_empty());
        let set = policies(&file, &corpus);
        for case in &corpus.case {
            total += 1;
            assert!(
                !case.reason.is_empty(),
                "{}: every case states its reason",
                case.name
            );
            let who = case
                .principal
                .clone()
                .unwrap_or_else(|| corpus.principal.clone());
            let arn = format!("arn:aws:iam::123456789012:user/{}", who.name);
            let action = Action::all()
                .find(|a| a.iam_action() == case.action)
                .unwrap_or_else(|| panic!("{}", case.action));
            let resource = match (&case.domain, &case.resource) {
                (Some(d), None) => format!("arn:aws:swf:us-east-1:123456789012:/domain/{d}"),
                (None, Some(r)) => r.clone(),
                _ => panic!("{}: give a domain or a resource", case.name),
            };
            let input = case
                .input
                .as_ref()
                .map(|t| serde_json::to_value(t).unwrap());
            let overrides: BTreeMap<String, Vec<String>> = case
                .context
                .iter()
                .map(|(k, v)| {
                    let values = match v {
                        toml::Value::Array(items) => items
                            .iter()
                            .map(|i| i.as_str().unwrap().to_owned())
                            .collect(),
                        other => vec![other.as_str().unwrap().to_owned()],
                    };
                    (k.to_ascii_lowercase(), values)
                })
                .collect();
            let ctx = Context {
                caller: Caller {
                    name: &who.name,
                    arn: &arn,
                    tags: &who.tags,
                    session: None,
                },
                action,
                input: input.as_ref().and_then(|v| v.as_object()),
                source_ip: None,
                now: std::time::SystemTime::now(),
                secure_transport: false,
                region: "us-east-1",
                overrides: Some(&overrides),
            };
            let decision = set.evaluate(&resource, &ctx);
            let mut got: Vec<(String, String)> = decision
                .statements
                .iter()
                .map(|s| {
                    (
                        s.policy.to_string(),
                        s.sid.as_deref().unwrap_or("").to_owned(),
                    )
                })
                .collect();
            got.sort();
            let mut want: Option<Vec<(String, String)>> = case.statements.as_ref().map(|list| {
                list.iter()
                    .map(|s| {
                        (
                            s["policy"].clone(),
                            s.get("sid").cloned().unwrap_or_default(),
                        )
                    })
                    .collect()
            });
            if let Some(w) = want.as_mut() {
                w.sort();
            }
            let ok =
                decision.kind.as_str() == case.expect && want.as_ref().is_none_or(|w| *w == got);
            if !ok {
                let (_, explanation) = swf_warden::policy::explain::explain(&set, &resource, &ctx);
                failures.push(format!(
                    "{} / {}: expected {} {:?}, got {} {:?} ({})\n{explanation}",
                    file.file_name().unwrap().to_string_lossy(),
                    case.name,
                    case.expect,
                    want,
                    decision.kind.as_str(),
                    got,
                    case.reason
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 50, "the corpus has {total} cases");
    println!("policy corpus: {total} cases passed");
}
