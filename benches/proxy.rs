//! Micro-benchmarks of the request path (issue 6): SigV4 verification of a heartbeat, policy
//! decisions at 10, 1,000 and 100,000 statements (with Cedar deciding an equivalent policy set
//! as the reference), token seal and unseal, the whole handler without the network, and the
//! quota check among 10 and 10,000 principals, and a role session's heartbeat and lookup.
//! Run: `cargo bench --bench proxy`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use swf_warden::handler::Peer;
use swf_warden::policy::{document, Action, Caller, Context, Policy, PolicySet};
use swf_warden::secret::Secret;
use swf_warden::sigv4::{Credential, Verifier};
use swf_warden::swf::Operation;
use swf_warden::tokens::{TokenKey, TokenSealer};

#[path = "../tests/common/sdk_sign.rs"]
mod sdk_sign;

const KEY: &str = "AKIABENCHTENANT00001";
const SECRET: &str = "bench-tenant-secret";
const TOKEN_KEY: &str = "bench-token-key-0123456789abcdefghij";

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A heartbeat signed by aws-sigv4, as an SDK would send it.
fn heartbeat(token: &str) -> (http::request::Parts, Bytes) {
    heartbeat_as(KEY, SECRET, None, token)
}

/// A heartbeat signed with `key` and `secret`, and with a session's token if given.
fn heartbeat_as(
    key: &str,
    secret: &str,
    session: Option<&str>,
    token: &str,
) -> (http::request::Parts, Bytes) {
    let body = Bytes::from(format!(r#"{{"taskToken":"{token}","details":"42%"}}"#));
    let mut extra = vec![("x-amz-user-agent", "aws-sdk-rust/1.0 api/swf/1.0")];
    extra.extend(session.map(|s| ("x-amz-security-token", s)));
    let headers = sdk_sign::signed_headers(&sdk_sign::Call {
        key,
        secret,
        region: "us-east-1",
        service: "swf",
        time: at(),
        host: "127.0.0.1:8080",
        target: "SimpleWorkflowService.RecordActivityTaskHeartbeat",
        extra: &extra,
        body: &body,
    });
    let mut builder = http::Request::builder().method("POST").uri("/");
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(()).unwrap();
    (request.into_parts().0, body)
}

struct Holder(Credential);
impl AsRef<Credential> for Holder {
    fn as_ref(&self) -> &Credential {
        &self.0
    }
}

fn sigv4(c: &mut Criterion) {
    let sealer = TokenSealer::new(vec![TokenKey::new("k1", &Secret::new(TOKEN_KEY))]);
    let (parts, body) = heartbeat(&sealer.seal("tenant-1", &"t".repeat(600)));
    let verifier = Verifier::swf("us-east-1", Duration::from_secs(900));
    let holder = Holder(Credential::new(KEY, Secret::new(SECRET)));
    c.bench_function("sigv4/verify_heartbeat", |b| {
        b.iter(|| {
            verifier
                .verify(&parts, &body, at(), |k| (k == KEY).then_some(&holder))
                .unwrap()
        })
    });
}

/// `n` statements of realistic shape: tenants with three statements each on their own
/// domain, wildcards in actions and region.
fn warden_policies(n: usize) -> PolicySet {
    let mut toml = String::from("Version = \"2012-10-17\"\n");
    for i in 0..n {
        let tenant = i / 3;
        let actions = match i % 3 {
            0 => {
                r#"["swf:PollForActivityTask", "swf:RecordActivityTaskHeartbeat", "swf:RespondActivityTask*"]"#
            }
            1 => {
                r#"["swf:PollForDecisionTask", "swf:RespondDecisionTaskCompleted", "swf:Schedule*"]"#
            }
            _ => r#"["swf:Describe*", "swf:List*", "swf:Count*"]"#,
        };
        toml.push_str(&format!(
            "[[Statement]]\nSid = \"S{i}\"\nEffect = \"Allow\"\nAction = {actions}\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-{tenant}\"\n"
        ));
    }
    let doc = document::parse_toml(Path::new("bench.toml"), &toml).unwrap();
    let mut set = PolicySet::default();
    set.add(Arc::new(
        Policy::compile("bench", Path::new("bench.toml"), doc).unwrap(),
    ));
    set
}

/// The same permissions in Cedar: one `permit` per statement.
fn cedar_policies(n: usize) -> cedar_policy::PolicySet {
    let mut text = String::new();
    for i in 0..n {
        let tenant = i / 3;
        let actions = match i % 3 {
            0 => {
                r#"Action::"PollForActivityTask", Action::"RecordActivityTaskHeartbeat", Action::"RespondActivityTaskCompleted", Action::"RespondActivityTaskFailed", Action::"RespondActivityTaskCanceled""#
            }
            1 => {
                r#"Action::"PollForDecisionTask", Action::"RespondDecisionTaskCompleted", Action::"ScheduleActivityTask", Action::"ScheduleLambdaFunction""#
            }
            _ => {
                r#"Action::"DescribeDomain", Action::"ListDomains", Action::"CountPendingActivityTasks""#
            }
        };
        text.push_str(&format!(
            "@id(\"S{i}\") permit(principal == User::\"tenant-{tenant}\", action in [{actions}], resource == Domain::\"tenant-{tenant}\");\n"
        ));
    }
    cedar_policy::PolicySet::from_str(&text).unwrap()
}

fn decisions(c: &mut Criterion) {
    let tags = BTreeMap::new();
    let mut group = c.benchmark_group("policy/decision");
    for n in [10usize, 1_000, 100_000] {
        let set = warden_policies(n);
        let tenant = n / 6;
        let resource = format!("arn:aws:swf:us-east-1:123456789012:/domain/tenant-{tenant}");
        let name = format!("tenant-{tenant}");
        let arn = format!("arn:aws:iam::123456789012:user/{name}");
        let ctx = Context {
            caller: Caller {
                name: &name,
                arn: &arn,
                tags: &tags,
                session: None,
            },
            action: Action::Operation(Operation::RecordActivityTaskHeartbeat),
            input: None,
            source_ip: None,
            now: at(),
            secure_transport: false,
            region: "us-east-1",
            overrides: None,
        };
        assert_eq!(set.evaluate(&resource, &ctx).kind.as_str(), "allowed");
        group.bench_with_input(BenchmarkId::new("swf-warden", n), &n, |b, _| {
            b.iter(|| set.evaluate(&resource, &ctx))
        });
    }
    for n in [10usize, 1_000] {
        let policies = cedar_policies(n);
        let tenant = n / 6;
        let request = cedar_policy::Request::new(
            cedar_policy::EntityUid::from_str(&format!("User::\"tenant-{tenant}\"")).unwrap(),
            cedar_policy::EntityUid::from_str("Action::\"RecordActivityTaskHeartbeat\"").unwrap(),
            cedar_policy::EntityUid::from_str(&format!("Domain::\"tenant-{tenant}\"")).unwrap(),
            cedar_policy::Context::empty(),
            None,
        )
        .unwrap();
        let authorizer = cedar_policy::Authorizer::new();
        let entities = cedar_policy::Entities::empty();
        assert_eq!(
            authorizer
                .is_authorized(&request, &policies, &entities)
                .decision(),
            cedar_policy::Decision::Allow
        );
        group.bench_with_input(BenchmarkId::new("cedar", n), &n, |b, _| {
            b.iter(|| authorizer.is_authorized(&request, &policies, &entities))
        });
    }
    group.finish();
}

/// `[tracing]` absent: what a call pays for tracing (SPEC: one branch).
fn tracing_off(c: &mut Criterion) {
    let headers = http::HeaderMap::new();
    c.bench_function("trace/off", |b| {
        b.iter(|| swf_warden::telemetry::start(&headers, "9e4a1f0c-0000-4000-8000-000000000001"))
    });
}

fn tokens(c: &mut Criterion) {
    let sealer = TokenSealer::new(vec![TokenKey::new("k1", &Secret::new(TOKEN_KEY))]);
    let upstream = "AAAAKgAAAAIAAAAAAAAAA".repeat(30);
    let sealed = sealer.seal("tenant-1", &upstream);
    c.bench_function("tokens/seal", |b| {
        b.iter(|| sealer.seal("tenant-1", &upstream))
    });
    c.bench_function("tokens/unseal", |b| {
        b.iter(|| sealer.unseal(&sealed).unwrap())
    });
}

fn handler(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/tenant.toml"),
        "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"Own\"\nEffect = \"Allow\"\nAction = [\"swf:RecordActivityTaskHeartbeat\", \"swf:Poll*\"]\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-1\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[listen]\naddress = \"127.0.0.1:0\"\n[service]\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\n\
             [upstream]\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id = \"AKIDUPSTREAM\"\nsecret_access_key = \"u\"\n\
             [task_tokens]\nkeys = [{{ id = \"k1\", secret = \"{TOKEN_KEY}\" }}]\n[audit]\npath = \"audit.log\"\n\
             [[principal]]\nname = \"tenant-1\"\naccess_key_id = \"{KEY}\"\nsecret_access_key = \"{SECRET}\"\npolicies = [\"tenant\"]\n\
             [sts]\nsession_keys = [{{ id = \"s1\", secret = \"{TOKEN_KEY}\" }}]\n\
             [[oidc_provider]]\nname = \"cluster\"\nissuer = \"https://cluster.test\"\naudiences = [\"swf-warden\"]\njwks_file = \"jwks.json\"\n\
             [[role]]\nname = \"worker\"\nprovider = \"cluster\"\nsubjects = [\"*\"]\npolicies = [\"tenant\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("jwks.json"),
        format!(
            "{{\"keys\": [{}]}}",
            include_str!("../tests/fixtures/oidc/rsa-2048.jwk.json")
        ),
    )
    .unwrap();
    let config = swf_warden::config::load(&dir.path().join("config.toml")).unwrap();
    let app = swf_warden::app::App::standalone(config).unwrap();
    let (parts, body) = heartbeat(&app.sealer.seal("tenant-1", &"t".repeat(600)));
    let peer = Peer {
        addr: "127.0.0.1:50000".parse().unwrap(),
        secure: false,
    };
    swf_warden::handler::prepare_only(&app, &parts, body.clone(), peer, at()).unwrap();
    c.bench_function("handler/heartbeat_without_network", |b| {
        b.iter(|| {
            swf_warden::handler::prepare_only(&app, &parts, body.clone(), peer, at()).unwrap()
        })
    });

    // A refused heartbeat (the token is another domain's): what a denial costs before its
    // record is written, with the record's `context` (issue 27, on by default) and without.
    let (parts, body) = heartbeat(&app.sealer.seal("tenant-2", &"t".repeat(600)));
    for (name, record_context) in [
        ("handler/denied_heartbeat_without_network", true),
        ("handler/denied_heartbeat_without_network_no_context", false),
    ] {
        let text = std::fs::read_to_string(dir.path().join("config.toml"))
            .unwrap()
            .replace(
                "path = \"audit.log\"",
                &format!("path = \"audit.log\"\nrecord_context = {record_context}"),
            );
        std::fs::write(dir.path().join("denial.toml"), text).unwrap();
        let config = swf_warden::config::load(&dir.path().join("denial.toml")).unwrap();
        let app = swf_warden::app::App::standalone(config).unwrap();
        swf_warden::handler::prepare_only(&app, &parts, body.clone(), peer, at()).unwrap_err();
        c.bench_function(name, |b| {
            b.iter(|| {
                swf_warden::handler::prepare_only(&app, &parts, body.clone(), peer, at())
                    .unwrap_err()
            })
        });
    }

    // The same heartbeat from a role session (issue 14): the session's principal is opened
    // once, then found by its access key id.
    let sts = app.sts.as_ref().unwrap();
    let session = sts.keys.issue(&swf_warden::sts::session::Session {
        role: "worker".into(),
        name: "pod-1".into(),
        expires: at() + Duration::from_secs(3600),
        issued: at(),
        tags: BTreeMap::from([("namespace".to_owned(), "tenant-1".to_owned())]),
    });
    let (parts, body) = heartbeat_as(
        &session.access_key_id,
        session.secret_access_key.expose(),
        Some(&session.session_token),
        &app.sealer.seal("tenant-1", &"t".repeat(600)),
    );
    swf_warden::handler::prepare_only(&app, &parts, body.clone(), peer, at()).unwrap();
    c.bench_function("handler/heartbeat_without_network_session", |b| {
        b.iter(|| {
            swf_warden::handler::prepare_only(&app, &parts, body.clone(), peer, at()).unwrap()
        })
    });
    let token = session.session_token.as_bytes();
    c.bench_function("sts/session_principal_cached", |b| {
        b.iter(|| {
            app.principal(&session.access_key_id, Some(token), at())
                .unwrap()
        })
    });
    c.bench_function("sts/session_open", |b| {
        b.iter(|| sts.keys.open(&session.session_token, at()).unwrap())
    });
}

/// The quota check of an admitted heartbeat in local mode (issue 13): one rate bucket and one
/// cap on calls in flight per principal, among 10 and 10,000 principals' slots, the calls
/// going round every principal.
fn quotas(c: &mut Criterion) {
    use std::sync::atomic::AtomicU64;
    use swf_warden::quota::{Per, Quotas, Registry, Spec};

    let spec = Arc::new(Spec {
        name: "heartbeats".into(),
        operations: vec![Operation::RecordActivityTaskHeartbeat],
        principals: vec!["*".into()],
        groups: Vec::new(),
        per: Per::Principal,
        rate: Some((1e6, 10_000_000)),
        max_in_flight: Some(1_000),
        origin: "bench".into(),
    });
    let quotas = Quotas::new(vec![spec], None);
    let registry = Registry::default();
    let op = Operation::RecordActivityTaskHeartbeat.index();
    let mut group = c.benchmark_group("quota/admit_heartbeat");
    for n in [10usize, 10_000] {
        let meters: Vec<_> = (0..n)
            .map(|i| {
                quotas.meters(&registry, &format!("tenant-{i}"), &[], |_| {
                    Arc::new(AtomicU64::new(0))
                })
            })
            .collect();
        let mut next = 0;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                next = (next + 1) % n;
                let admitted = ready(quotas.admit(&meters[next][op], Some("tenant")));
                drop(admitted.expect("within the quota"));
            })
        });
    }
    group.finish();
}

/// Signing the upstream request of a heartbeat (issue 25): with a static key, and with
/// temporary credentials (a session token, as the default chain gives them), both read from
/// where the refresher keeps them.
fn upstream_signing(c: &mut Criterion) {
    use swf_warden::credentials::{self, Part, Settings, Source};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[listen]\naddress = \"127.0.0.1:0\"\n[service]\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\n\
             [upstream]\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id = \"AKIDUPSTREAM\"\nsecret_access_key = \"u\"\n\
             [task_tokens]\nkeys = [{{ id = \"k1\", secret = \"{TOKEN_KEY}\" }}]\n"
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let config = swf_warden::config::load(&dir.path().join("config.toml")).unwrap();
    let body = format!(r#"{{"taskToken":"{}","details":"42%"}}"#, "t".repeat(600));
    let part = |v: &str| Part {
        value: Secret::new(v),
        file: None,
    };
    for (name, token) in [
        ("forward/sign_heartbeat_static_key", None),
        (
            "forward/sign_heartbeat_temporary_credentials",
            Some("IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ".repeat(8)),
        ),
    ] {
        let settings = Settings {
            source: Source::Static {
                access_key_id: part("AKIDUPSTREAM"),
                secret_access_key: part("upstream-secret"),
                session_token: token.as_deref().map(part),
            },
            assume: None,
            region: "us-east-1".into(),
        };
        let forwarder = swf_warden::forward::Forwarder::new(
            &config.upstream,
            credentials::start(settings, Default::default()),
        )
        .unwrap();
        let op = Operation::RecordActivityTaskHeartbeat;
        c.bench_function(name, |b| {
            b.iter(|| forwarder.sign_only(op, body.as_bytes()).unwrap())
        });
    }
}

/// The audit chain's cost per record (issue 26): a denial's record serialized (what writing
/// it cost before the chain), then chained (`seq`, `prev`, the line's SHA-256), and one
/// checkpoint's signature (made once per `checkpoint_every` lines, 1,000 by default).
fn audit_chain(c: &mut Criterion) {
    use swf_warden::audit::{chain::State, Outcome, PrincipalRef, Record};
    let record = Record {
        event_time: swf_warden::audit::now_rfc3339(),
        request_id: "3c90f1fe-6b1d-4c4a-0000-00000000002a".into(),
        decision: Outcome::ImplicitDeny,
        error_code: Some("OperationNotPermittedFault"),
        cause: Some("OPERATION_NOT_PERMITTED"),
        principal: Some(PrincipalRef {
            name: "tenant-b-worker".into(),
            arn: "arn:aws:iam::123456789012:user/tenant-b-worker".into(),
            access_key_id: "AKIATENANTB000000001".into(),
        }),
        action: Some("swf:PollForActivityTask"),
        resource: Some("arn:aws:swf:us-east-1:123456789012:/domain/tenant-a".into()),
        matched_statements: Vec::new(),
        source_ip: "127.0.0.1".into(),
        user_agent: Some("aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0".into()),
        message: Some("User: arn:aws:iam::123456789012:user/tenant-b-worker is not authorized to perform: swf:PollForActivityTask on resource: arn:aws:swf:us-east-1:123456789012:/domain/tenant-a because no identity-based policy allows the swf:PollForActivityTask action".into()),
        task_token_fingerprint: None,
        quota: None,
        suppressed: None,
        issued: None,
        web_identity: None,
        // What `[audit] record_context` (on by default) adds to a denial's record.
        context: Some(swf_warden::audit::RecordContext {
            keys: [
                ("aws:CurrentTime", "2026-12-06T17:22:45.920Z"),
                ("aws:EpochTime", "1796577765"),
                ("aws:PrincipalArn", "arn:aws:iam::123456789012:user/tenant-b-worker"),
                ("aws:PrincipalType", "User"),
                ("aws:RequestedRegion", "us-east-1"),
                ("aws:SecureTransport", "false"),
                ("aws:SourceIp", "127.0.0.1"),
                ("aws:userid", "tenant-b-worker"),
                ("aws:username", "tenant-b-worker"),
                ("swf:taskList.name", "workers"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
            .collect(),
            decisions: Vec::new(),
        }),
    };
    c.bench_function("audit/serialize_record", |b| {
        b.iter(|| serde_json::to_vec(&record).unwrap())
    });
    let mut state = State::genesis("bench".into());
    c.bench_function("audit/serialize_and_chain_record", |b| {
        b.iter(|| {
            let fields = serde_json::to_vec(&record).unwrap();
            let line = state.line(&fields[1..]);
            state.advance(&line);
            line
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = swf_warden::audit::checkpoint::generate().unwrap();
    std::fs::write(dir.path().join("k1.key"), private).unwrap();
    let key =
        swf_warden::audit::checkpoint::SigningKey::read("k1", &dir.path().join("k1.key")).unwrap();
    c.bench_function("audit/checkpoint_signature", |b| {
        b.iter(|| {
            key.sign(
                &state.log,
                state.seq,
                &state.hash,
                "2026-12-06T00:00:00.000Z".into(),
            )
        })
    });
}

/// The value of a future that completes without waiting (the local quota check never waits).
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("the local quota check waited"),
    }
}

criterion_group!(
    benches,
    sigv4,
    decisions,
    tokens,
    handler,
    quotas,
    upstream_signing,
    audit_chain,
    tracing_off
);
criterion_main!(benches);
