//! The proxy with no secret of its own (SPEC, "Upstream credentials"): the binary, started
//! with `credentials = "chain"` and nothing else, gets its upstream credentials from the AWS
//! SDK for Rust's real providers pointed at loopback stand-ins (IMDSv2, the container
//! credentials endpoint with an authorization token file, web identity exchanged at a second
//! swf-warden's own STS, a role assumed on top), and signs every upstream request with
//! credentials valid when it is sent (the fake upstream checks each one against what was
//! issued). Rotation under load fails no call; a provider gone leaves the last credentials in
//! use until they expire, then `503` on record and nothing forwarded; back again, calls
//! succeed without a restart; down at start, the binary says so and exits.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::credential_source::{CredentialServer, Ledger, CONTAINER_PATH};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_swf-warden");

/// The binary under test.
struct Warden {
    child: Child,
    port: u16,
    admin: u16,
    dir: tempfile::TempDir,
    log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Warden {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary in front of `upstream` with `upstream_lines` in `[upstream]` and only
/// `env` in its environment (no profile, no key, no IMDS unless given).
fn launch(upstream: SocketAddr, upstream_lines: &str, env: &[(&str, String)]) -> Warden {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/tenant-a.toml"),
        "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-a\"\n",
    )
    .unwrap();
    let (port, admin) = (free_port(), free_port());
    let config = format!(
        r#"[listen]
address = "127.0.0.1:{port}"
[service]
region = "us-east-1"
account_id = "123456789012"
[upstream]
endpoint = "http://{upstream}"
{upstream_lines}
[task_tokens]
keys = [{{ id = "k1", secret = "{TOKEN_KEY}" }}]
[audit]
path = "audit.log"
[admin]
address = "127.0.0.1:{admin}"
[policies]
dir = "policies"
[[principal]]
name = "{}"
access_key_id = "{}"
secret_access_key = "{}"
policies = ["tenant-a"]
"#,
        TENANT_A.name, TENANT_A.key, TENANT_A.secret
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--config"])
        .arg(dir.path().join("config.toml"))
        .env_clear()
        .env("HOME", dir.path())
        .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("no-credentials"),
        )
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Warden {
        child,
        port,
        admin,
        dir,
        log,
    }
}

impl Warden {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `/readyz`: status and body.
    async fn readyz(&self) -> Option<(u16, String)> {
        let request = http::Request::get(format!("http://127.0.0.1:{}/readyz", self.admin))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .ok()?
            .to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Waits until the proxy is ready (its first credentials in hand).
    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(self.readyz().await, Some((200, _))) {
            assert!(
                Instant::now() < deadline,
                "not ready: {:?}",
                self.readyz().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn client(&self) -> aws_sdk_swf::Client {
        let http = aws_smithy_http_client::Builder::new().build_http();
        sdk_client(&self.endpoint(), TENANT_A.key, TENANT_A.secret, http)
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A poll and a heartbeat through the proxy.
async fn heartbeat_cycle(client: &aws_sdk_swf::Client) {
    let token = poll_token(client, "tenant-a", "work").await;
    client
        .record_activity_task_heartbeat()
        .task_token(token)
        .send()
        .await
        .expect("a heartbeat");
}

fn imds_env(server: &CredentialServer) -> Vec<(&'static str, String)> {
    vec![("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url())]
}

/// IMDSv2 credentials that change every 2 s, during 20 s of heartbeats from four callers:
/// no call fails, and every upstream request was signed with credentials valid when it came.
#[tokio::test]
async fn instance_credentials_rotating_under_load_fail_no_call() {
    let ledger = Ledger::rotating(Duration::from_secs(2), Duration::from_secs(6));
    let server = CredentialServer::start(ledger.clone(), "unused").await;
    let upstream = FakeSwf::start_accepting(ledger.keys()).await;
    let warden = launch(upstream.addr, "credentials = \"chain\"", &imds_env(&server));
    warden.ready().await;
    let client = warden.client();
    let token = poll_token(&client, "tenant-a", "work").await;
    let end = Instant::now() + Duration::from_secs(20);
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, token) = (client.clone(), token.clone());
        callers.spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while Instant::now() < end {
                match client
                    .record_activity_task_heartbeat()
                    .task_token(&token)
                    .send()
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(format!("{e:?}")),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, failed)
        });
    }
    let mut calls = 0;
    while let Some(done) = callers.join_next().await {
        let (ok, failed) = done.unwrap();
        assert!(failed.is_empty(), "failed calls: {failed:#?}");
        calls += ok;
    }
    assert!(calls > 100, "{calls} calls");
    assert_eq!(
        upstream.refused.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "every upstream request verified with credentials valid when it came"
    );
    let keys: std::collections::BTreeSet<String> = upstream
        .calls()
        .iter()
        .filter_map(|c| {
            let auth = c.headers.get("authorization")?.to_str().ok()?;
            let credential = auth.split("Credential=").nth(1)?;
            Some(credential.split('/').next()?.to_owned())
        })
        .collect();
    assert!(
        keys.len() >= 5,
        "the credentials changed while the calls went on: {keys:?}"
    );
    assert_eq!(
        upstream.count() as u32,
        calls + 1,
        "every call reached the upstream once"
    );
}

/// Container credentials (ECS task roles, EKS Pod Identity): a full URI on loopback and an
/// authorization token read from a file.
#[tokio::test]
async fn container_credentials_with_an_authorization_token_file() {
    let ledger = Ledger::rotating(Duration::from_secs(300), Duration::from_secs(900));
    let server = CredentialServer::start(ledger.clone(), "pod-identity-token").await;
    let upstream = FakeSwf::start_accepting(ledger.keys()).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, "pod-identity-token").unwrap();
    let warden = launch(
        upstream.addr,
        "",
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{}{CONTAINER_PATH}", server.url()),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ],
    );
    warden.ready().await;
    heartbeat_cycle(&warden.client()).await;
    assert_eq!(
        upstream.operations(),
        ["PollForActivityTask", "RecordActivityTaskHeartbeat"]
    );
    assert_eq!(
        upstream.refused.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let (_, body) = warden.readyz().await.unwrap();
    assert!(
        body.contains("default credential chain") && body.contains("ASIASTANDIN"),
        "{body}"
    );
}

/// The proxy's own web identity (EKS IRSA: `AWS_ROLE_ARN` and a token file), exchanged at a
/// second swf-warden's STS, which is also the upstream: it verifies each call against the
/// session it issued, and forwards it.
#[tokio::test]
async fn web_identity_sessions_from_another_proxys_sts() {
    use common::oidc::*;
    let b = Proxy::start_configured(|c| c + &sts_config(), &[NAMESPACE_POLICY]).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token("tenant-a")).unwrap();
    let warden = launch(
        b.addr,
        "credentials = \"chain\"",
        &[
            ("AWS_ROLE_ARN", ROLE_ARN.to_owned()),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("AWS_ROLE_SESSION_NAME", "proxy-a".into()),
            ("AWS_ENDPOINT_URL_STS", b.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ],
    );
    warden.ready().await;
    heartbeat_cycle(&warden.client()).await;
    assert_eq!(
        b.upstream.operations(),
        ["PollForActivityTask", "RecordActivityTaskHeartbeat"]
    );
    // B saw the calls signed with the session it issued to A.
    let issued: Vec<_> = b
        .audit()
        .into_iter()
        .filter(|r| r["decision"] == "issued")
        .collect();
    assert!(!issued.is_empty());
    assert_eq!(
        issued[0]["issued"]["arn"],
        "arn:aws:sts::123456789012:assumed-role/swf-worker/proxy-a"
    );
}

/// A role assumed on top of the chain (the proxy's identity in one account, SWF in another):
/// here keys from the environment assume a role at the second proxy's STS.
#[tokio::test]
async fn a_role_assumed_on_top_of_the_chain() {
    let cross = "\n[[principal]]\nname = \"proxy-a\"\naccess_key_id = \"AKIAPROXYA0000000001\"\nsecret_access_key = \"proxy-a-secret\"\npolicies = [\"assume-cross\"]\n\
                 [[role]]\nname = \"cross-account\"\npolicies = [\"tenant-a\"]\n";
    let assume = (
        "assume-cross.toml",
        "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Allow\"\nAction = \"sts:AssumeRole\"\nResource = \"arn:aws:iam::123456789012:role/cross-account\"\n",
    );
    let b = Proxy::start_configured(
        |c| c + "\n[sts]\nsession_keys = [{ id = \"s1\", secret = \"test-session-key-0123456789abcdefghij\" }]\n" + cross,
        &[assume],
    )
    .await;
    let mut warden = launch(
        b.addr,
        "credentials = \"chain\"\nrole_arn = \"arn:aws:iam::123456789012:role/cross-account\"\nexternal_id = \"unused-by-this-sts\"\nsession_name = \"proxy-a\"",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAPROXYA0000000001".into()),
            ("AWS_SECRET_ACCESS_KEY", "proxy-a-secret".into()),
            ("AWS_ENDPOINT_URL_STS", b.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ],
    );
    // This STS refuses an ExternalId (it checks none): the start fails, naming the role.
    let exit = wait_exit(&mut warden, Duration::from_secs(60)).await;
    assert_eq!(exit, Some(1));
    let log = log_lines(&warden);
    assert!(
        log.iter().any(|l| l.contains("cross-account")
            && l.contains("upstream credentials")
            && l.contains("ExternalId")),
        "{log:#?}"
    );
    drop(warden);

    let warden = launch(
        b.addr,
        "credentials = \"chain\"\nrole_arn = \"arn:aws:iam::123456789012:role/cross-account\"\nsession_name = \"proxy-a\"",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAPROXYA0000000001".into()),
            ("AWS_SECRET_ACCESS_KEY", "proxy-a-secret".into()),
            ("AWS_ENDPOINT_URL_STS", b.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ],
    );
    warden.ready().await;
    heartbeat_cycle(&warden.client()).await;
    let issued: Vec<_> = b
        .audit()
        .into_iter()
        .filter(|r| r["decision"] == "issued")
        .collect();
    assert_eq!(issued[0]["action"], "sts:AssumeRole");
    assert_eq!(issued[0]["principal"]["name"], "proxy-a");
    assert_eq!(
        b.upstream.operations(),
        ["PollForActivityTask", "RecordActivityTaskHeartbeat"]
    );
}

/// Waits for the binary to exit: its code, or `None` if it still runs after `wait`.
async fn wait_exit(warden: &mut Warden, wait: Duration) -> Option<i32> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(status) = warden.child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Collects the binary's log lines so far (and until it exits, if it is exiting).
fn log_lines(warden: &Warden) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = warden.log.recv_timeout(Duration::from_millis(500)) {
        lines.push(line);
    }
    lines
}

/// The provider gone: the credentials in hand serve until they expire; then calls are
/// answered `503` and recorded, and nothing is forwarded; `/readyz` says why. The provider
/// back: calls succeed again without a restart.
#[tokio::test]
async fn credentials_gone_then_back() {
    let ledger = Ledger::rotating(Duration::from_secs(1), Duration::from_secs(4));
    let server = CredentialServer::start(ledger.clone(), "unused").await;
    let upstream = FakeSwf::start_accepting(ledger.keys()).await;
    let warden = launch(upstream.addr, "credentials = \"chain\"", &imds_env(&server));
    warden.ready().await;
    let client = warden.client();
    let token = poll_token(&client, "tenant-a", "work").await;
    let heartbeat = || {
        client
            .record_activity_task_heartbeat()
            .task_token(&token)
            .send()
    };
    heartbeat().await.expect("with credentials");

    ledger.set_down(true);
    let last_expiry = ledger.issued().last().unwrap().until;
    // Calls go on with the last credentials, then fail once they have expired.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut served = 0;
    let refused = loop {
        assert!(Instant::now() < deadline, "calls never failed");
        match heartbeat().await {
            Ok(_) => served += 1,
            Err(e) => break e,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(served > 0, "the credentials in hand served on");
    assert!(std::time::SystemTime::now() >= last_expiry - Duration::from_secs(1));
    assert_eq!(sdk_code(&refused), "ServiceUnavailableException");
    let id = sdk_request_id(&refused);
    let record = warden
        .audit()
        .into_iter()
        .find(|r| r["requestId"] == id.as_str())
        .expect("the refused call is on record");
    assert_eq!(record["errorCode"], "ServiceUnavailableException");
    assert!(
        record["message"].as_str().unwrap().contains("credentials"),
        "{record}"
    );
    let forwarded = upstream.count();
    assert!(heartbeat().await.is_err());
    assert_eq!(
        upstream.count(),
        forwarded,
        "nothing forwarded without credentials"
    );
    assert_eq!(
        upstream.refused.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let (status, body) = warden.readyz().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no valid upstream credentials"), "{body}");

    // The provider back: calls succeed again, without a restart.
    ledger.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(40);
    while heartbeat().await.is_err() {
        assert!(Instant::now() < deadline, "the credentials never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(warden.readyz().await.unwrap().0, 200);
    assert_eq!(
        upstream.refused.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

/// A provider that is down at start: the binary says which, and exits 1 without binding.
#[tokio::test]
async fn a_provider_down_at_start_is_a_startup_error() {
    let ledger = Ledger::rotating(Duration::from_secs(1), Duration::from_secs(4));
    ledger.set_down(true);
    let server = CredentialServer::start(ledger, "unused").await;
    let upstream = FakeSwf::start().await;
    let mut warden = launch(upstream.addr, "credentials = \"chain\"", &imds_env(&server));
    let exit = wait_exit(&mut warden, Duration::from_secs(90)).await;
    assert_eq!(exit, Some(1));
    let log = log_lines(&warden);
    assert!(
        log.iter().any(|l| l.contains("upstream credentials from the AWS SDK's default credential chain")),
        "{log:#?}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", warden.port)).is_err(),
        "nothing was bound"
    );
}

/// Static keys given as files, rotated in place by an agent: the new key signs from the next
/// check of the files on, without a reload.
#[tokio::test]
async fn static_keys_from_files_are_read_again_when_they_change() {
    let accepted = Arc::new(std::sync::Mutex::new((
        "AKIDFIRST".to_owned(),
        "first-secret".to_owned(),
    )));
    let keys = accepted.clone();
    let upstream = FakeSwf::start_accepting(Arc::new(move |key: &str| {
        let (id, secret) = keys.lock().unwrap().clone();
        (key == id).then_some((secret, None))
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (id_file, secret_file) = (dir.path().join("id"), dir.path().join("secret"));
    std::fs::write(&id_file, "AKIDFIRST\n").unwrap();
    std::fs::write(&secret_file, "first-secret\n").unwrap();
    let warden = launch(
        upstream.addr,
        &format!(
            "access_key_id_file = \"{}\"\nsecret_access_key_file = \"{}\"",
            id_file.display(),
            secret_file.display()
        ),
        &[],
    );
    warden.ready().await;
    let client = warden.client();
    heartbeat_cycle(&client).await;
    // The agent rotates the key; the upstream takes only the new one from now on.
    std::fs::write(&id_file, "AKIDSECOND\n").unwrap();
    std::fs::write(&secret_file, "second-secret\n").unwrap();
    *accepted.lock().unwrap() = ("AKIDSECOND".to_owned(), "second-secret".to_owned());
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the new key was never used");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, body) = warden.readyz().await.unwrap();
    assert!(body.contains("AKIDSECOND"), "{body}");
}
