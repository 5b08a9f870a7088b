//! Test harness: a fake SWF upstream that checks the proxy's re-signing and records what it
//! receives, the real proxy started in-process on port 0, the AWS SDK for Rust as client, and
//! a raw signer for requests no SDK would send.

#![allow(dead_code)]

pub mod credential_source;
pub mod decisions;
pub mod oidc;
pub mod raw_upstream;
pub mod redis_server;
pub mod sdk_sign;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use swf_warden::runtime::Runtime;
use swf_warden::secret::Secret;
use swf_warden::sigv4::{Credential, Verifier};
use tokio::net::TcpListener;

pub const ACCOUNT: &str = "123456789012";
pub const UPSTREAM_KEY: &str = "AKIDUPSTREAM";
pub const UPSTREAM_SECRET: &str = "upstream-secret";

/// A principal of the test configuration.
#[derive(Clone, Copy)]
pub struct Tenant {
    pub name: &'static str,
    pub key: &'static str,
    pub secret: &'static str,
}

pub const TENANT_A: Tenant = Tenant {
    name: "tenant-a-worker",
    key: "AKIATENANTA000000001",
    secret: "secret-a",
};
pub const TENANT_B: Tenant = Tenant {
    name: "tenant-b-worker",
    key: "AKIATENANTB000000001",
    secret: "secret-b",
};
/// Allowed everything everywhere, except what the `tenants` guardrail denies.
pub const OPERATOR: Tenant = Tenant {
    name: "operator",
    key: "AKIAOPERATOR00000001",
    secret: "secret-op",
};
/// Allowed every action on every resource, in shadow mode nothing; used for the all-operations test.
pub const ROOT: Tenant = Tenant {
    name: "root",
    key: "AKIAROOT000000000001",
    secret: "secret-root",
};
/// In no group, with no policy: everything is implicitly denied.
pub const NOBODY: Tenant = Tenant {
    name: "nobody",
    key: "AKIANOBODY0000000001",
    secret: "secret-nobody",
};

pub fn domain_arn(domain: &str) -> String {
    format!("arn:aws:swf:us-east-1:{ACCOUNT}:/domain/{domain}")
}

/// One call the fake upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub operation: String,
    pub body: Value,
    pub headers: http::HeaderMap,
}

/// The credentials a fake upstream accepts at a moment: for an access key id, its secret and
/// the session token that must come with it, if the key is valid now.
pub type UpstreamKeys = Arc<dyn Fn(&str) -> Option<(String, Option<String>)> + Send + Sync>;

/// A fake SWF endpoint on loopback (clones share it).
#[derive(Clone)]
pub struct FakeSwf {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Requests refused because their signature did not verify with the keys valid then.
    pub refused: Arc<std::sync::atomic::AtomicUsize>,
    /// Calls on the task list `held` wait for a permit.
    gate: Arc<tokio::sync::Semaphore>,
}

impl FakeSwf {
    pub async fn start() -> FakeSwf {
        FakeSwf::start_accepting(Arc::new(|key: &str| {
            (key == UPSTREAM_KEY).then(|| (UPSTREAM_SECRET.to_owned(), None))
        }))
        .await
    }

    /// A fake upstream that verifies every request's signature with `keys` as they are when
    /// it arrives.
    pub async fn start_accepting(keys: UpstreamKeys) -> FakeSwf {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let store = received.clone();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let held = gate.clone();
        let counted = refused.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let store = store.clone();
                let held = held.clone();
                let (keys, counted) = (keys.clone(), counted.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let store = store.clone();
                        let held = held.clone();
                        let (keys, counted) = (keys.clone(), counted.clone());
                        async move { Ok::<_, Infallible>(answer(req, store, held, keys, counted).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeSwf {
            addr,
            received,
            refused,
            gate,
        }
    }

    /// Lets `n` calls held on the task list `held` be answered.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    pub fn calls(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// The operations received, in order.
    pub fn operations(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.operation).collect()
    }
}

/// `config` with its `[upstream] endpoint = …` line replaced by `lines`.
pub fn replace_endpoint(config: &str, lines: &str) -> String {
    config
        .lines()
        .map(|line| {
            if line.starts_with("endpoint = ") {
                lines
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    store: Arc<Mutex<Vec<Received>>>,
    gate: Arc<tokio::sync::Semaphore>,
    keys: UpstreamKeys,
    refused: Arc<std::sync::atomic::AtomicUsize>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    // The proxy must sign for the upstream with its own credentials, as AWS would verify:
    // with the keys valid as the request arrives, and their session token signed.
    let verifier = Verifier::swf("us-east-1", Duration::from_secs(300));
    struct Holder(Credential);
    impl AsRef<Credential> for Holder {
        fn as_ref(&self) -> &Credential {
            &self.0
        }
    }
    let verified = verifier.verify_with(&parts, &body, SystemTime::now(), |key, token| {
        let (secret, expected) =
            keys(key).ok_or(swf_warden::error::ProxyError::UnrecognizedClient)?;
        if expected.as_deref().map(str::as_bytes) != token {
            return Err(swf_warden::error::ProxyError::UnrecognizedClient);
        }
        Ok(Box::new(Holder(Credential::new(key, Secret::new(secret)))))
    });
    if let Err(e) = verified {
        refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut r = Response::new(Full::new(Bytes::from(e.body())));
        *r.status_mut() = http::StatusCode::FORBIDDEN;
        return r;
    }
    let operation = parts.headers["x-amz-target"]
        .to_str()
        .unwrap()
        .trim_start_matches("SimpleWorkflowService.")
        .to_owned();
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut calls = store.lock().unwrap();
        calls.push(Received {
            operation: operation.clone(),
            body: input.clone(),
            headers: parts.headers.clone(),
        });
        calls.len()
    };
    let task_list = input["taskList"]["name"].as_str().unwrap_or("");
    if task_list == "slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if task_list == "held" {
        gate.acquire().await.unwrap().forget();
    }
    let domain = input["domain"].as_str().unwrap_or("");
    // Upstream tokens carry characters that need care in JSON and URLs.
    let token = format!("UPSTREAM+{domain}/{task_list}/{n}==");
    if task_list == "verbatim" {
        // JSON as no serializer writes it: passed on untouched, it arrives as sent.
        return Response::new(Full::new(Bytes::from_static(VERBATIM)));
    }
    if task_list == "garbage" {
        // An answer that is not JSON, with an upstream token in it.
        let text = format!("<html>taskToken {token}</html>");
        return Response::new(Full::new(Bytes::from(text)));
    }
    let output = match operation.as_str() {
        "PollForActivityTask" if task_list == "empty" => json!({"startedEventId": 0}),
        "PollForActivityTask" => json!({
            "taskToken": token,
            "activityId": "activity-1",
            "startedEventId": 7,
            "workflowExecution": {"workflowId": "wf-1", "runId": "run-1"},
            "activityType": {"name": "work", "version": "1"},
            "input": "payload"
        }),
        "PollForDecisionTask" => json!({
            "taskToken": token,
            "startedEventId": 3,
            "previousStartedEventId": 0,
            "workflowExecution": {"workflowId": "wf-1", "runId": "run-1"},
            "workflowType": {"name": "flow", "version": "1"},
            "events": [{"eventId": 1, "eventTimestamp": 1700000000.0, "eventType": "WorkflowExecutionStarted"}]
        }),
        "RecordActivityTaskHeartbeat" => {
            let token = input["taskToken"].as_str().unwrap_or("");
            json!({"cancelRequested": token.contains("/cancel/")})
        }
        // Two pages of domains, the tenants' among others'.
        "ListDomains" => {
            let info =
                |name: &str| json!({"name": name, "status": "REGISTERED", "arn": domain_arn(name)});
            if input["nextPageToken"] == "page-2" {
                json!({"domainInfos": [info("tenant-b"), info("other-3")]})
            } else {
                json!({"domainInfos": [info("other-1"), info("tenant-a"), info("other-2")], "nextPageToken": "page-2"})
            }
        }
        _ => json!({}),
    };
    let output = if task_list == "large" {
        // An answer far over a megabyte (a decision task's history can be).
        let mut output = output;
        output["input"] = Value::String("x".repeat(LARGE_INPUT_BYTES));
        output
    } else {
        output
    };
    let mut response = Response::new(Full::new(Bytes::from(output.to_string())));
    let headers = response.headers_mut();
    if task_list == "hop" {
        // Hop-by-hop headers, meant for the proxy's connection only.
        for (name, value) in HOP_BY_HOP {
            headers.insert(*name, value.parse().unwrap());
        }
    }
    headers.insert(
        "content-type",
        "application/x-amz-json-1.0".parse().unwrap(),
    );
    headers.insert("x-amzn-requestid", format!("upstream-{n}").parse().unwrap());
    response
}

/// What the fake upstream answers any call on the task list `verbatim`.
pub const VERBATIM: &[u8] = b"{ \"count\" :  7,\n  \"truncated\":false }";

/// The size of the `input` of a poll answer on the task list `large`.
pub const LARGE_INPUT_BYTES: usize = 3 * 1024 * 1024;

/// What the fake upstream adds to its answers on the task list `hop`.
pub const HOP_BY_HOP: &[(&str, &str)] = &[
    ("keep-alive", "timeout=5, max=1000"),
    ("proxy-connection", "keep-alive"),
    ("trailer", "x-checksum"),
    ("te", "trailers"),
    ("upgrade", "websocket"),
];

/// The proxy under test, on a loopback port, with its own config folder.
pub struct Proxy {
    pub addr: SocketAddr,
    pub upstream: FakeSwf,
    pub dir: tempfile::TempDir,
    pub runtime: Arc<Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const TOKEN_KEY: &str = "test-token-key-0123456789abcdefghij";

fn config_text(upstream: SocketAddr, extra_upstream: &str) -> String {
    format!(
        r#"
[listen]
address = "127.0.0.1:0"

[service]
region = "us-east-1"
account_id = "{ACCOUNT}"

[upstream]
endpoint = "http://{upstream}"
access_key_id = "{UPSTREAM_KEY}"
secret_access_key = "{UPSTREAM_SECRET}"
{extra_upstream}

[task_tokens]
keys = [{{ id = "k1", secret = "{TOKEN_KEY}" }}]

[audit]
path = "audit.log"

[limits]
max_body_bytes = 65536

[policies]
dir = "policies"

[[group]]
name = "tenants"
policies = ["guardrails"]

[[principal]]
name = "{a}"
access_key_id = "{ak}"
secret_access_key = "{asec}"
groups = ["tenants"]
policies = ["tenant-a"]

[[principal]]
name = "{b}"
access_key_id = "{bk}"
secret_access_key = "{bsec}"
groups = ["tenants"]
policies = ["tenant-b"]

[[principal]]
name = "{op}"
access_key_id = "{opk}"
secret_access_key = "{opsec}"
groups = ["tenants"]
policies = ["everything"]

[[principal]]
name = "{root}"
access_key_id = "{rootk}"
secret_access_key = "{rootsec}"
policies = ["everything"]

[[principal]]
name = "{nobody}"
access_key_id = "{nobodyk}"
secret_access_key = "{nobodysec}"
"#,
        a = TENANT_A.name,
        ak = TENANT_A.key,
        asec = TENANT_A.secret,
        b = TENANT_B.name,
        bk = TENANT_B.key,
        bsec = TENANT_B.secret,
        op = OPERATOR.name,
        opk = OPERATOR.key,
        opsec = OPERATOR.secret,
        root = ROOT.name,
        rootk = ROOT.key,
        rootsec = ROOT.secret,
        nobody = NOBODY.name,
        nobodyk = NOBODY.key,
        nobodysec = NOBODY.secret,
    )
}

const POLICIES: &[(&str, &str)] = &[
    (
        "tenant-a.toml",
        "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"OwnDomain\"\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-a\"\n",
    ),
    (
        "tenant-b.json",
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "OwnDomain", "Effect": "Allow", "Action": "swf:*", "Resource": "arn:aws:swf:*:123456789012:/domain/tenant-b"}]}"#,
    ),
    (
        "guardrails.toml",
        "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"NeverTerminate\"\nEffect = \"Deny\"\nAction = \"swf:TerminateWorkflowExecution\"\nResource = \"*\"\n",
    ),
    ("everything.toml", "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"All\"\nEffect = \"Allow\"\nAction = \"*\"\nResource = \"*\"\n"),
];

impl Proxy {
    pub async fn start() -> Proxy {
        Proxy::start_with("").await
    }

    /// Starts with extra lines in `[upstream]` (e.g. `timeout_seconds = 1`).
    pub async fn start_with(extra_upstream: &str) -> Proxy {
        let upstream = FakeSwf::start().await;
        Proxy::start_against(upstream, extra_upstream).await
    }

    pub async fn start_against(upstream: FakeSwf, extra_upstream: &str) -> Proxy {
        Proxy::start_full(upstream, extra_upstream, None).await
    }

    /// Starts serving TLS with `acceptor`.
    pub async fn start_tls(acceptor: tokio_rustls::TlsAcceptor) -> Proxy {
        Proxy::start_full(FakeSwf::start().await, "", Some(acceptor)).await
    }

    async fn start_full(
        upstream: FakeSwf,
        extra_upstream: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Proxy {
        let text = config_text(upstream.addr, extra_upstream);
        Proxy::launch(upstream, text, &[], tls).await
    }

    /// Starts with the standard configuration edited by `edit` (for example, principals
    /// appended) and `policies` written beside the standard ones.
    pub async fn start_configured(
        edit: impl FnOnce(String) -> String,
        policies: &[(&str, &str)],
    ) -> Proxy {
        let upstream = FakeSwf::start().await;
        let text = edit(config_text(upstream.addr, ""));
        Proxy::launch(upstream, text, policies, None).await
    }

    /// Like `start_configured`, serving TLS with `acceptor`.
    pub async fn start_tls_configured(
        edit: impl FnOnce(String) -> String,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Proxy {
        Proxy::start_tls_with(edit, &[], acceptor).await
    }

    /// Like `start_tls_configured`, with more policy files.
    pub async fn start_tls_with(
        edit: impl FnOnce(String) -> String,
        policies: &[(&str, &str)],
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Proxy {
        let upstream = FakeSwf::start().await;
        let text = edit(config_text(upstream.addr, ""));
        Proxy::launch(upstream, text, policies, Some(acceptor)).await
    }

    async fn launch(
        upstream: FakeSwf,
        config: String,
        extra_policies: &[(&str, &str)],
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        for (name, text) in POLICIES.iter().chain(extra_policies) {
            std::fs::write(dir.path().join("policies").join(name), text).unwrap();
        }
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        let config = swf_warden::config::load(&path).unwrap_or_else(|d| panic!("{d}"));
        let options =
            swf_warden::server::Options::proxy(tls, config.listen.h2c, config.limits.clone());
        let runtime = Arc::new(Runtime::start(config).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(swf_warden::server::run(
            listener,
            runtime.clone(),
            options,
            async {
                let _ = stopped.await;
            },
        ));
        Proxy {
            addr,
            upstream,
            dir,
            runtime,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Asks the server to shut down and waits until it has drained.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    /// Every audit record written so far (the lines with a `decision`: not the log's first
    /// line, nor checkpoints).
    pub fn audit(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("each audit line is whole JSON"))
            .filter(|r| r.get("decision").is_some())
            .collect()
    }

    /// The audit record of `request_id`.
    pub fn audit_for(&self, request_id: &str) -> Value {
        self.audit()
            .into_iter()
            .find(|r| r["requestId"] == request_id)
            .unwrap_or_else(|| panic!("no audit record for {request_id}"))
    }

    /// An AWS SDK client signing as `tenant`.
    pub fn client(&self, tenant: Tenant) -> aws_sdk_swf::Client {
        self.client_with(tenant.key, tenant.secret)
    }

    pub fn client_with(&self, key: &str, secret: &str) -> aws_sdk_swf::Client {
        let http = aws_smithy_http_client::Builder::new().build_http();
        sdk_client(&self.endpoint(), key, secret, http)
    }

    /// A client signing with temporary credentials (a role session's).
    pub fn client_with_session(&self, key: &str, secret: &str, token: &str) -> aws_sdk_swf::Client {
        let config = aws_sdk_swf::Config::builder()
            .behavior_version(aws_sdk_swf::config::BehaviorVersion::latest())
            .region(aws_sdk_swf::config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(
                key,
                secret,
                Some(token.to_owned()),
                None,
                "test",
            ))
            .retry_config(aws_sdk_swf::config::retry::RetryConfig::disabled())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_swf::Client::from_conf(config)
    }

    /// Sends a raw request and returns status, headers and JSON body.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> RawResponse {
        send(request).await
    }
}

/// An AWS SDK client for `endpoint`, signing with `key`/`secret`, retries off so that every
/// error surfaces as the proxy sent it.
pub fn sdk_client(
    endpoint: &str,
    key: &str,
    secret: &str,
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
) -> aws_sdk_swf::Client {
    let config = aws_sdk_swf::Config::builder()
        .behavior_version(aws_sdk_swf::config::BehaviorVersion::latest())
        .region(aws_sdk_swf::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .retry_config(aws_sdk_swf::config::retry::RetryConfig::disabled())
        .http_client(http)
        .build();
    aws_sdk_swf::Client::from_conf(config)
}

/// A raw answer.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl RawResponse {
    /// The short error type, checked against both the header and the body.
    pub fn error_type(&self) -> String {
        let header = self
            .headers
            .get("x-amzn-errortype")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = self.body["__type"]
            .as_str()
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap_or("")
            .to_owned();
        assert_eq!(header, body, "x-amzn-ErrorType and __type disagree");
        header
    }

    pub fn request_id(&self) -> String {
        self.headers["x-amzn-requestid"]
            .to_str()
            .unwrap()
            .to_owned()
    }
}

pub async fn send(request: Request<Full<Bytes>>) -> RawResponse {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let response = client.request(request).await.expect("proxy answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Inputs for a raw signed request.
pub struct Raw<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
    pub target: &'a str,
    pub body: Vec<u8>,
}

impl<'a> Raw<'a> {
    pub fn new(tenant: Tenant, operation: &str, body: &Value) -> Raw<'a> {
        Raw {
            key: tenant.key,
            secret: tenant.secret,
            region: "us-east-1",
            service: "swf",
            time: SystemTime::now(),
            target: Box::leak(format!("SimpleWorkflowService.{operation}").into_boxed_str()),
            body: body.to_string().into_bytes(),
        }
    }

    /// Signs with aws-sigv4 exactly as an SDK would, for the proxy at `addr`.
    pub fn build(&self, addr: SocketAddr) -> Request<Full<Bytes>> {
        let host = addr.to_string();
        let headers = sdk_sign::signed_headers(&sdk_sign::Call {
            key: self.key,
            secret: self.secret,
            region: self.region,
            service: self.service,
            time: self.time,
            host: &host,
            target: self.target,
            extra: &[],
            body: &self.body,
        });
        let mut builder = Request::builder()
            .method("POST")
            .uri(format!("http://{host}/"));
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(Bytes::from(self.body.clone())))
            .unwrap()
    }
}

/// A `PollForActivityTask` call on `task_list` in `domain`, ready to send.
pub fn activity_poll(
    client: &aws_sdk_swf::Client,
    domain: &str,
    task_list: &str,
) -> aws_sdk_swf::operation::poll_for_activity_task::builders::PollForActivityTaskFluentBuilder {
    client.poll_for_activity_task().domain(domain).task_list(
        aws_sdk_swf::types::TaskList::builder()
            .name(task_list)
            .build()
            .unwrap(),
    )
}

/// `DescribeDomain` of `domain`, which must fail: the SDK's error.
pub async fn describe_refused(
    client: &aws_sdk_swf::Client,
    domain: &str,
) -> aws_sdk_swf::error::SdkError<
    aws_sdk_swf::operation::describe_domain::DescribeDomainError,
    aws_sdk_swf::config::http::HttpResponse,
> {
    client
        .describe_domain()
        .name(domain)
        .send()
        .await
        .expect_err("DescribeDomain must be refused")
}

/// Polls `task_list` in `domain` through the SDK and returns the (sealed) task token.
pub async fn poll_token(client: &aws_sdk_swf::Client, domain: &str, task_list: &str) -> String {
    let task = activity_poll(client, domain, task_list)
        .send()
        .await
        .expect("poll allowed");
    task.task_token().to_owned()
}

/// The service error code an SDK call failed with.
pub fn sdk_code<E, R>(err: &aws_sdk_swf::error::SdkError<E, R>) -> String
where
    E: aws_sdk_swf::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match err {
        aws_sdk_swf::error::SdkError::ServiceError(e) => e.err().code().unwrap_or("").to_owned(),
        other => panic!("expected a service error, got {other:?}"),
    }
}

/// The request id an SDK error carries.
pub fn sdk_request_id<E, R>(err: &aws_sdk_swf::error::SdkError<E, R>) -> String
where
    E: aws_sdk_swf::error::ProvideErrorMetadata
        + aws_sdk_swf::operation::RequestId
        + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match err {
        aws_sdk_swf::error::SdkError::ServiceError(e) => {
            e.err().request_id().unwrap_or("").to_owned()
        }
        other => panic!("expected a service error, got {other:?}"),
    }
}

/// Waits until `ready()` holds, checking every few milliseconds; fails the test after 10 s,
/// so that a regression fails instead of hanging the suite.
pub async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
