//! A role session's call costs no allocation beyond a static key's: the handler short of the
//! network (`handler::prepare_only`) is run for the same heartbeat signed both ways, with a
//! global allocator that counts this thread's allocations. (Speed is measured by criterion,
//! `cargo bench --bench proxy -- sts`; this counts, which cannot flake.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::sdk_sign;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed to the system allocator unchanged; the count is a plain
// thread-local cell that needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations_of(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const KEY: &str = "AKIAALLOCTENANT00001";
const SECRET: &str = "alloc-tenant-secret";
const TOKEN_KEY: &str = "alloc-token-key-0123456789abcdefghij";

fn heartbeat(
    key: &str,
    secret: &str,
    session: Option<&str>,
    token: &str,
) -> (http::request::Parts, Bytes) {
    let body = Bytes::from(format!(r#"{{"taskToken":"{token}","details":"42%"}}"#));
    let extra: Vec<(&str, &str)> = session
        .map(|s| ("x-amz-security-token", s))
        .into_iter()
        .collect();
    let headers = sdk_sign::signed_headers(&sdk_sign::Call {
        key,
        secret,
        region: "us-east-1",
        service: "swf",
        time: SystemTime::now(),
        host: "127.0.0.1:8080",
        target: "SimpleWorkflowService.RecordActivityTaskHeartbeat",
        extra: &extra,
        body: &body,
    });
    let mut builder = http::Request::builder().method("POST").uri("/");
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    (builder.body(()).unwrap().into_parts().0, body)
}

#[test]
fn a_session_heartbeat_allocates_no_more_than_a_static_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/tenant.toml"),
        "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/${aws:PrincipalTag/namespace}\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[listen]\naddress = \"127.0.0.1:0\"\n[service]\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\n\
             [upstream]\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id = \"AKIDUPSTREAM\"\nsecret_access_key = \"u\"\n\
             [task_tokens]\nkeys = [{{ id = \"k1\", secret = \"{TOKEN_KEY}\" }}]\n[audit]\npath = \"audit.log\"\n\
             [[principal]]\nname = \"tenant-1\"\naccess_key_id = \"{KEY}\"\nsecret_access_key = \"{SECRET}\"\npolicies = [\"tenant\"]\ntags = {{ namespace = \"tenant-1\" }}\n\
             [sts]\nsession_keys = [{{ id = \"s1\", secret = \"{TOKEN_KEY}\" }}]\n\
             [[oidc_provider]]\nname = \"cluster\"\nissuer = \"https://cluster.test\"\naudiences = [\"swf-warden\"]\njwks_file = \"{}\"\n\
             [[role]]\nname = \"worker\"\nprovider = \"cluster\"\nsubjects = [\"*\"]\npolicies = [\"tenant\"]\n",
            common::oidc::jwks_path().display()
        ),
    )
    .unwrap();
    let config = swf_warden::config::load(&dir.path().join("config.toml")).unwrap();
    let app = swf_warden::app::App::standalone(config).unwrap();
    let session = app
        .sts
        .as_ref()
        .unwrap()
        .keys
        .issue(&swf_warden::sts::session::Session {
            role: "worker".into(),
            name: "pod-1".into(),
            expires: swf_warden::sts::truncate_to_second(
                SystemTime::now() + Duration::from_secs(3600),
            ),
            issued: swf_warden::sts::truncate_to_second(SystemTime::now()),
            tags: [("namespace".to_owned(), "tenant-1".to_owned())].into(),
        });
    let task_token = app.sealer.seal("tenant-1", &"t".repeat(600));
    let peer = swf_warden::handler::Peer {
        addr: "127.0.0.1:50000".parse().unwrap(),
        secure: false,
    };
    let (static_parts, static_body) = heartbeat(KEY, SECRET, None, &task_token);
    let (session_parts, session_body) = heartbeat(
        &session.access_key_id,
        session.secret_access_key.expose(),
        Some(&session.session_token),
        &task_token,
    );
    let now = SystemTime::now();
    let prepare = |parts: &http::request::Parts, body: &Bytes| {
        swf_warden::handler::prepare_only(&app, parts, body.clone(), peer, now).unwrap();
    };
    // Once each first: the signing keys are derived and the session's principal opened.
    prepare(&static_parts, &static_body);
    let first = allocations_of(|| prepare(&session_parts, &session_body));
    let by_static_key = allocations_of(|| prepare(&static_parts, &static_body));
    let by_session = allocations_of(|| prepare(&session_parts, &session_body));
    eprintln!("allocations per heartbeat: static key {by_static_key}, session {by_session}, a session's first call {first}");
    assert!(by_static_key > 0, "the counter counts");
    assert!(
        by_session <= by_static_key,
        "a session's call allocates {by_session} times, a static key's {by_static_key}"
    );
    assert!(
        first > by_session,
        "the first call opened the session ({first} allocations)"
    );
}

/// The upstream credentials are read without a lock and without an allocation: signing an
/// upstream request through the forwarder (credentials taken from where the refresher keeps
/// them) allocates exactly what the signature and the head themselves need, for a static key
/// and for temporary credentials with a session token (as the chain gives them; signing the
/// token's header is one allocation more, in the signature itself).
#[test]
fn upstream_credentials_cost_no_allocation_to_read() {
    use swf_warden::credentials::{self, Part, Settings, Source};
    use swf_warden::secret::Secret;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[listen]\naddress = \"127.0.0.1:0\"\n[service]\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\n\
             [upstream]\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id = \"AKIDUPSTREAM\"\nsecret_access_key_env = \"PATH\"\n\
             [task_tokens]\nkeys = [{{ id = \"k1\", secret = \"{TOKEN_KEY}\" }}]\n"
        ),
    )
    .unwrap();
    let config = swf_warden::config::load(&config_path).unwrap();
    let part = |v: &str| Part {
        value: Secret::new(v),
        file: None,
    };
    let body = br#"{"taskToken":"t","details":"42%"}"#;
    let op = swf_warden::swf::Operation::RecordActivityTaskHeartbeat;
    for token in [None, Some("a-session-token-as-the-chain-gives-one")] {
        let settings = Settings {
            source: Source::Static {
                access_key_id: part("AKIDUPSTREAM"),
                secret_access_key: part("upstream-secret"),
                session_token: token.map(part),
            },
            assume: None,
            region: "us-east-1".into(),
        };
        let creds = credentials::start(settings, Default::default());
        let forwarder =
            swf_warden::forward::Forwarder::new(&config.upstream, creds.clone()).unwrap();
        // Once first: the day's signing key is derived.
        forwarder.sign_only(op, body).unwrap();
        let through_forwarder = allocations_of(|| {
            forwarder.sign_only(op, body).unwrap();
        });
        // What the signature and the head need, from an identity already in hand.
        let identity = creds.current(SystemTime::now()).unwrap();
        let signer_alone = allocations_of(|| {
            let signature = identity.signer.sign(
                b"127.0.0.1:9",
                b"SimpleWorkflowService.RecordActivityTaskHeartbeat",
                body,
                SystemTime::now(),
            );
            swf_warden::forward::h1::request_head(
                &[("authorization", signature.authorization.as_bytes())],
                body.len(),
            );
        });
        eprintln!(
            "upstream signing allocations (session token: {}): through the forwarder {through_forwarder}, signature and head alone {signer_alone}",
            token.is_some()
        );
        assert_eq!(
            through_forwarder, signer_alone,
            "reading the credentials in use allocates nothing"
        );
    }
}
