//! The `swf-warden` binary: exit codes, configuration errors on stderr, and a real start and
//! stop with the shipped example configuration.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_swf-warden");

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let no_args = Command::new(BIN).output().unwrap();
    assert_eq!(no_args.status.code(), Some(64));
    let unknown = Command::new(BIN).args(["frobnicate"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(64));
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("serve"));
}

#[test]
fn broken_config_exits_64_listing_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[listen]\naddress = \"127.0.0.1:0\"\nbogus = 1\n\n[service]\nregion = \"us-east-1\"\naccount_id = \"x\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = path.display().to_string();
    assert!(
        stderr.contains(&format!("{shown}:3:1: error: unknown field `bogus`")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{shown}:7:")), "{stderr}");
    assert!(
        stderr.contains("`[upstream]`") && stderr.contains("`[task_tokens]`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("listening"),
        "nothing was started: {stderr}"
    );
}

#[test]
fn port_in_use_is_a_runtime_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = example_with_address(dir.path(), &taken.local_addr().unwrap().to_string());
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn starts_with_the_example_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_with_address(dir.path(), "127.0.0.1:0");
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next_line_with = |needle: &str| loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    };
    let listening = next_line_with("swf-warden listening");
    let port: String = listening
        .split("127.0.0.1:")
        .nth(1)
        .expect("the proxy reports its address")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();

    // Sends raw bytes, returns the whole answer (the proxy closes after it).
    let exchange = |request: String| {
        let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };

    // One call, unsigned and carrying a task token: one access line, in the audit log's words,
    // without the token.
    let body = r#"{"taskToken":"sw1.not-a-real-token-SECRETTEXT"}"#;
    let answer = exchange(format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: SimpleWorkflowService.RecordActivityTaskHeartbeat\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let access = next_line_with("swf_warden::access");
    assert!(
        !access.contains('\u{1b}'),
        "no colour codes in a log that is not a terminal: {access}"
    );
    for field in [
        " call request_id=",
        "principal=-",
        // What a call asks is taken as known once its caller is (as in the audit log).
        "operation=-",
        "decision=authFailed",
        "status=400",
        "upstream_ms=0.000",
        "proxy_ms=",
    ] {
        assert!(access.contains(field), "{field}: {access}");
    }
    assert!(!access.contains("SECRETTEXT"), "{access}");

    // A request the HTTP layer refuses before it exists (two lengths) is a call on the access
    // log too, with the status the client got.
    let answer = exchange(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
            .to_owned(),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let access = next_line_with("swf_warden::access");
    assert!(
        access.contains("decision=invalidRequest") && access.contains("status=400"),
        "{access}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// The shipped example with its policies, listening on `address`, admin disabled.
fn example_with_address(dir: &std::path::Path, address: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("config.example.toml"))
        .unwrap()
        .replace(
            "address = \"127.0.0.1:8080\"",
            &format!("address = \"{address}\""),
        )
        .replace("[admin]\naddress = \"127.0.0.1:9090\"\n", "")
        .replace(
            "dir = \"policies\"",
            &format!("dir = \"{}\"", root.join("policies").display()),
        );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_passes_the_example_with_warnings_only() {
    let (code, out, _) = run(&["check", "--config", "config.example.toml"]);
    assert_eq!(code, Some(0), "{out}");
    let example = std::fs::read_to_string("config.example.toml").unwrap();
    let lines: Vec<String> = example
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("secret_access_key = ") || l.contains("secret = \""))
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    assert_eq!(lines.len(), 4, "the example gives four secrets inline");
    // One warning names them all, at the first.
    assert!(
        out.contains(&format!(
            "config.example.toml:{}:21: warning: 4 secrets are given inline (lines {});",
            lines[0],
            lines.join(", ")
        )),
        "{out}"
    );
    // And the upstream's own secret, the most powerful of all, is named on its own.
    assert!(
        out.contains(&format!(
            "config.example.toml:{}:21: warning: the upstream's secret is given inline",
            lines[0]
        )),
        "{out}"
    );
    assert_eq!(out.matches("warning:").count(), 2, "{out}");
    assert!(
        out.contains("ok (3 policies, 2 principals, 2 warning(s))"),
        "{out}"
    );
    let (code, quiet, _) = run(&["check", "--quiet", "--config", "config.example.toml"]);
    assert_eq!(code, Some(0), "{quiet}");
    assert!(!quiet.contains("warning:"), "{quiet}");
}

#[test]
fn check_reports_policy_errors_with_line_and_column_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_with_address(dir.path(), "127.0.0.1:0");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for name in ["tenant-a.toml", "tenant-b.json", "guardrails.toml"] {
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies")
                .join(name),
            policies.join(name),
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        &format!(
            "dir = \"{}\"",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies")
                .display()
        ),
        "dir = \"policies\"",
    );
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        policies.join("tenant-b.json"),
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Sid\": \"X\", \"Effect\": \"Allow\", \"Action\": \"swf:PollForActivityTasks\", \"Resource\": \"arn:aws:sqs:*:*:q\"}\n  ]\n}\n",
    )
    .unwrap();
    let (code, out, _) = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{out}");
    assert!(
        !out.contains("can never match"),
        "no warning that follows from an error: {out}"
    );
    let file = policies.join("tenant-b.json").display().to_string();
    assert!(
        out.contains(&format!(
            "{file}:4:47: error: statement `X`: unknown action `swf:PollForActivityTasks`"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("{file}:4:87: error: statement `X`: resource `arn:aws:sqs:*:*:q` is for the service `sqs`")), "{out}");
    // `serve` refuses the same configuration before binding.
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
}

#[test]
fn explain_shows_the_deciding_statement_with_file_and_line() {
    let (code, out, _) = run(&[
        "explain",
        "--config",
        "config.example.toml",
        "--principal",
        "tenant-a-worker",
        "--action",
        "swf:TerminateWorkflowExecution",
        "--domain",
        "tenant-a",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("decision: explicitDeny"), "{out}");
    assert!(
        out.contains("decided by guardrails NeverTerminate at "),
        "{out}"
    );
    assert!(out.contains("policies/guardrails.toml:11"), "{out}");
    let (code, out, _) = run(&[
        "explain",
        "--config",
        "config.example.toml",
        "--principal",
        "tenant-b-worker",
        "--action",
        "swf:PollForActivityTask",
        "--domain",
        "tenant-a",
        "--context",
        "swf:taskList.name=work",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("decision: implicitDeny"), "{out}");
    assert!(
        out.contains("quotas: none is met (a refused call spends nothing)"),
        "{out}"
    );
    // An allowed call lists each quota it meets, where it is defined and what it allows.
    let (code, out, _) = run(&[
        "explain",
        "--config",
        "config.example.toml",
        "--principal",
        "tenant-a-worker",
        "--action",
        "swf:RecordActivityTaskHeartbeat",
        "--domain",
        "tenant-a",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("decision: allowed"), "{out}");
    let example = std::fs::read_to_string("config.example.toml").unwrap();
    let line = example
        .lines()
        .position(|l| l == "name = \"heartbeats\"")
        .unwrap()
        + 1;
    assert!(
        out.contains(&format!("quotas (each must admit the call):\n  heartbeats at config.example.toml:{line}: 50/s (burst 100), per principal")),
        "{out}"
    );
    assert!(!out.contains("polls at"), "{out}");
    let (code, _, err) = run(&[
        "explain",
        "--config",
        "config.example.toml",
        "--principal",
        "nobody",
        "--action",
        "swf:ListDomains",
        "--domain",
        "x",
    ]);
    assert_eq!(code, Some(64));
    assert!(err.contains("unknown principal `nobody`"), "{err}");
}

#[test]
fn test_command_passes_the_shipped_cases_and_fails_a_wrong_one() {
    let (code, out, _) = run(&[
        "test",
        "--config",
        "config.example.toml",
        "policies/tests/example.toml",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("8 passed, 0 failed"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("wrong.toml");
    std::fs::write(
        &cases,
        "[[case]]\nname = \"a wrong expectation\"\nprincipal = \"tenant-a-worker\"\naction = \"swf:PollForActivityTask\"\ndomain = \"tenant-b\"\nexpect = \"allowed\"\n",
    )
    .unwrap();
    let (code, out, _) = run(&[
        "test",
        "--config",
        "config.example.toml",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL")
            && out.contains("expected allowed")
            && out.contains("got implicitDeny"),
        "{out}"
    );
    assert!(
        out.contains("decision: implicitDeny"),
        "the explanation is printed: {out}"
    );
    assert!(out.contains("0 passed, 1 failed"), "{out}");

    // Every case runs: one that cannot (an unknown principal) and one that fails do not stop
    // the next, and expectations are shown in policy terms.
    std::fs::write(
        &cases,
        r#"[[case]]
name = "x"
principal = "ghost"
action = "swf:ListDomains"
domain = "d"
expect = "allowed"

[[case]]
name = "terminate is allowed"
principal = "tenant-a-worker"
action = "swf:TerminateWorkflowExecution"
domain = "tenant-a"
expect = "allowed"
statements = [{ policy = "tenant-a", sid = "OwnDomain" }]

[[case]]
name = "own domain"
principal = "tenant-a-worker"
action = "swf:DescribeDomain"
domain = "tenant-a"
expect = "allowed"
"#,
    )
    .unwrap();
    let (code, out, _) = run(&[
        "test",
        "--config",
        "config.example.toml",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("wrong.toml:1:1: error: case `x`: unknown principal `ghost`"),
        "{out}"
    );
    assert!(
        out.contains("expected allowed by statement `OwnDomain` of policy `tenant-a`, got explicitDeny by statement `NeverTerminate` of policy `guardrails`"),
        "{out}"
    );
    assert!(out.contains("1 passed, 2 failed"), "{out}");
}

/// Checks a Kubernetes example: the ConfigMap's files pulled out of `deploy/FILE`, its
/// absolute paths pointed at a scratch folder holding `policies` and the `secrets` it names
/// (and, under `jwks/`, the test identity provider's key set). Returns `check`'s output.
fn check_kubernetes_example(
    file: &str,
    policies: &[&str],
    secrets: &[&str],
) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(file),
    )
    .unwrap();
    let block = |key: &str| -> String {
        let start = yaml.find(&format!("  {key}: |\n")).unwrap() + key.len() + 6;
        yaml[start..]
            .lines()
            .take_while(|l| l.starts_with("    ") || l.is_empty())
            .map(|l| l.get(4..).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    for sub in ["policies", "secrets", "jwks"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    for policy in policies {
        std::fs::write(dir.path().join("policies").join(policy), block(policy)).unwrap();
    }
    for secret in secrets {
        std::fs::write(
            dir.path().join("secrets").join(secret),
            "0123456789abcdef0123456789abcdef-secret",
        )
        .unwrap();
    }
    let jwk = include_str!("fixtures/oidc/rsa-2048.jwk.json");
    std::fs::write(
        dir.path().join("jwks/cluster-jwks.json"),
        format!("{{\"keys\": [{jwk}]}}"),
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        block("config.toml").replace("/etc/swf-warden", &root),
    )
    .unwrap();
    let (code, out, err) = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    (dir, config, out)
}

#[test]
fn the_kubernetes_example_configuration_checks() {
    let (_, _, out) = check_kubernetes_example(
        "kubernetes.yaml",
        &["orders.toml"],
        &["token-key-k1", "orders-worker"],
    );
    assert!(
        out.contains("ok (1 policies, 1 principals, 0 warning(s))"),
        "{out}"
    );
}

#[test]
fn the_kubernetes_sts_example_configuration_checks() {
    let (dir, config, out) = check_kubernetes_example(
        "kubernetes-sts.yaml",
        &["namespace-domains.toml"],
        &["token-key-k1", "session-key-s1"],
    );
    assert!(
        out.contains("ok (1 policies, 0 principals, 0 warning(s))"),
        "{out}"
    );
    // One policy for every namespace: explain it for a session tagged `orders`.
    let config = config.to_str().unwrap();
    let explain = |domain: &str| {
        run(&[
            "explain",
            "--config",
            config,
            "--role",
            "swf-worker",
            "--tag",
            "namespace=orders",
            "--session",
            "pod-1",
            "--action",
            "swf:PollForActivityTask",
            "--domain",
            domain,
        ])
    };
    let (code, out, err) = explain("orders");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("allowed"), "{out}");
    assert!(out.contains("OwnNamespaceDomain"), "{out}");
    assert!(
        out.contains("arn:aws:sts::123456789012:assumed-role/swf-worker/pod-1"),
        "{out}"
    );
    let (_, out, _) = explain("payments");
    assert!(out.contains("implicitDeny"), "{out}");
    let (code, _, err) = run(&[
        "explain",
        "--config",
        config,
        "--role",
        "nobody",
        "--action",
        "swf:ListDomains",
        "--resource",
        "*",
    ]);
    assert_eq!(code, Some(64));
    assert!(err.contains("unknown role `nobody`"), "{err}");
    // The same as test cases.
    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        "[[case]]\nname = \"own namespace\"\nrole = \"swf-worker\"\ntags = { namespace = \"orders\" }\naction = \"swf:RecordActivityTaskHeartbeat\"\ndomain = \"orders\"\nexpect = \"allowed\"\nstatements = [{ policy = \"namespace-domains\", sid = \"OwnNamespaceDomain\" }]\n\n\
         [[case]]\nname = \"another namespace\"\nrole = \"swf-worker\"\ntags = { namespace = \"orders\" }\naction = \"swf:RecordActivityTaskHeartbeat\"\ndomain = \"payments\"\nexpect = \"implicitDeny\"\n\n\
         [[case]]\nname = \"never terminate\"\nrole = \"swf-worker\"\ntags = { namespace = \"orders\" }\naction = \"swf:TerminateWorkflowExecution\"\ndomain = \"orders\"\nexpect = \"explicitDeny\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&["test", "--config", config, cases.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("3 passed, 0 failed"), "{out}");
}
