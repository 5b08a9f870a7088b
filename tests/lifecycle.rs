//! The binary's lifecycle: reload on SIGHUP and on a file change (seen on `/readyz` and
//! `/metrics`), audit log reopened on SIGUSR1, JSON logs carrying the request id.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_swf-warden");

struct Running {
    child: Child,
    dir: tempfile::TempDir,
    proxy: u16,
    admin: u16,
    log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &str) -> Running {
    launch(|text| text + extra, None)
}

/// Starts the binary with the shipped example edited by `edit`, under a limit of `nofile`
/// file descriptors when given.
fn launch(edit: impl FnOnce(String) -> String, nofile: Option<u32>) -> Running {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for name in ["tenant-a.toml", "tenant-b.json", "guardrails.toml"] {
        std::fs::copy(root.join("policies").join(name), policies.join(name)).unwrap();
    }
    let (proxy, admin) = (free_port(), free_port());
    let text = std::fs::read_to_string(root.join("config.example.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{proxy}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin}"));
    std::fs::write(dir.path().join("config.toml"), edit(text)).unwrap();
    let mut command = match nofile {
        None => Command::new(BIN),
        Some(n) => {
            let mut c = Command::new("bash");
            c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN]);
            c
        }
    };
    let mut child = command
        .args(["serve", "--config"])
        .arg(dir.path().join("config.toml"))
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let running = Running {
        child,
        dir,
        proxy,
        admin,
        log,
    };
    wait_until(|| get(running.admin, "/healthz").is_some_and(|(s, _)| s == 200));
    running
}

/// Polls `check` until it holds; the deadline only guards against a hung test.
fn wait_until(mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "condition not reached");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
}

fn signal(child: &Child, name: &str) {
    assert!(Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

fn policy(dir: &Path) -> PathBuf {
    dir.join("policies").join("tenant-a.toml")
}

#[test]
fn reload_on_sighup_and_on_file_change() {
    let r = start("");
    let broken = "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Sometimes\"\n";
    let good = std::fs::read_to_string(policy(r.dir.path())).unwrap();

    std::fs::write(policy(r.dir.path()), broken).unwrap();
    signal(&r.child, "HUP");
    wait_until(|| {
        get(r.admin, "/readyz").is_some_and(|(_, b)| b.contains("the last reload failed"))
    });
    let (status, body) = get(r.admin, "/readyz").unwrap();
    assert_eq!(
        status, 200,
        "still ready: the previous configuration serves"
    );
    assert!(
        body.contains("tenant-a.toml") && body.contains("`Effect` must be"),
        "{body}"
    );
    assert!(get(r.admin, "/metrics")
        .unwrap()
        .1
        .contains("swf_warden_last_reload_success 0"));

    // Put the good policy back without a signal: the file watcher reloads it.
    std::fs::write(policy(r.dir.path()), good).unwrap();
    wait_until(|| {
        get(r.admin, "/readyz").is_some_and(|(_, b)| {
            b.starts_with("ready\ngeneration 2, loaded ") && !b.contains("failed")
        })
    });
    let metrics = get(r.admin, "/metrics").unwrap().1;
    assert!(
        metrics.contains("swf_warden_last_reload_success 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("swf_warden_reloads_total{outcome=\"success\"} 1"),
        "{metrics}"
    );
    let _ = r.proxy;
}

#[test]
fn sigusr1_reopens_the_audit_log() {
    let r = start("");
    let audit = r.dir.path().join("audit.log");
    let deny = || {
        // An unauthenticated call is refused and audited.
        let mut s = TcpStream::connect(("127.0.0.1", r.proxy)).unwrap();
        s.write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.contains("MissingAuthenticationTokenException"));
    };
    deny();
    std::fs::rename(&audit, r.dir.path().join("audit.log.1")).unwrap();
    signal(&r.child, "USR1");
    wait_until(|| audit.exists());
    deny();
    let records = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"decision\""))
            .count()
    };
    assert_eq!(records(&r.dir.path().join("audit.log.1")), 1);
    assert_eq!(records(&audit), 1);
    // The chain goes on from the moved file into the new one.
    let new = std::fs::read_to_string(&audit).unwrap();
    assert!(new.starts_with("{\"seq\":3,"), "{new}");
}

#[test]
fn json_logs_carry_the_request_id() {
    let r = start("\n[log]\nformat = \"json\"\nlevel = \"debug\"\n");
    let mut s = TcpStream::connect(("127.0.0.1", r.proxy)).unwrap();
    // A valid shape that fails the upstream: the forwarder logs a warning inside the call.
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("x-amzn-requestid: "))
        .unwrap()
        .trim()
        .to_owned();
    signal(&r.child, "TERM");
    let mut lines = Vec::new();
    while let Ok(line) = r.log.recv_timeout(Duration::from_secs(20)) {
        lines.push(line);
    }
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains(&id)),
        "some line names the request id {id}: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("tenant-a-secret-for-local-trials")),
        "no secret in the logs"
    );
}

#[test]
fn audit_lines_survive_kill_9_whole() {
    let mut r = start("");
    let port = r.proxy;
    // Eight threads refuse calls as fast as they can; the process is killed mid-stream.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { break };
                    let _ = s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
                    let mut out = Vec::new();
                    let _ = s.read_to_end(&mut out);
                }
            })
        })
        .collect();
    let audit = r.dir.path().join("audit.log");
    wait_until(|| std::fs::read_to_string(&audit).is_ok_and(|t| t.lines().count() >= 200));
    signal(&r.child, "KILL");
    let _ = r.child.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.ends_with('\n'), "the file ends with a whole line");
    for line in text.lines().skip(1) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("torn record {line:?}: {e}"));
        assert_eq!(v["decision"], "authFailed");
    }
}

/// Finding 2 of the second review: silent connections to the admin port were accepted
/// without limit and never timed out, until the process had no descriptor left for the
/// proxy's own listener or a reload. The admin listener now has the proxy's header timeout
/// and its own cap (`[admin] max_connections`); connections past the cap wait in the
/// kernel's backlog, holding no descriptor of the process.
#[test]
fn silent_admin_connections_cannot_take_the_listeners_descriptors() {
    const SILENT: usize = 150;
    let r = launch(
        |text| {
            text.replace("[admin]\n", "[admin]\nmax_connections = 16\n")
                + "\n[limits]\nheader_read_timeout_seconds = 1\n"
        },
        Some(128),
    );
    // More silent connections than the process may hold descriptors.
    let silent: Vec<TcpStream> = (0..SILENT)
        .map(|_| TcpStream::connect(("127.0.0.1", r.admin)).unwrap())
        .collect();
    // The proxy's listener still accepts and answers.
    let mut s = TcpStream::connect(("127.0.0.1", r.proxy)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.contains("MissingAuthenticationTokenException"),
        "{out:?}"
    );
    // A reload still opens its files.
    signal(&r.child, "HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = r
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the reload is logged");
        assert!(!line.contains("reload refused"), "{line}");
        if line.contains("configuration reloaded") {
            break;
        }
    }
    // Every silent connection is closed in its turn by the header read timeout.
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0, "closed without an answer"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
}

/// Writes `head` and `body` as one HTTP/1.1 request to `port` and reads the whole answer.
fn exchange(port: u16, head: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Finding 4 of the second review: an unauthenticated STS call's `RoleArn` holding a newline
/// wrote a forged access line, and escape sequences reached the terminal raw. Nothing a caller
/// sent is named as a resource before it is authenticated, and every value is escaped.
#[test]
fn access_lines_cannot_be_forged() {
    let sts = common::oidc::sts_config().replace(
        "policies = [\"namespace-domains\"]",
        "policies = [\"tenant-a\"]",
    );
    let r = launch(|text| text + &sts, None);
    let forged = "swf_warden::access: request_id=forged principal=tenant-b-worker decision=allowed status=200";
    // An unauthenticated STS call whose role ARN carries a whole forged line and a colour.
    let form = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=session&WebIdentityToken=abcd&RoleArn={}",
        form_urlencoded::byte_serialize(format!("arn:aws:iam::123456789012:role/x\n{forged}\u{1b}[31m").as_bytes())
            .collect::<String>()
    );
    let answer = exchange(
        r.proxy,
        &format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", form.len()),
        form.as_bytes(),
    );
    assert!(
        answer.contains("<Code>InvalidIdentityToken</Code>"),
        "{answer}"
    );
    // An authenticated tenant naming a domain that holds a quote and a forged field.
    let tenant = common::Tenant {
        name: "tenant-a-worker",
        key: "AKIATENANTA000000001",
        secret: "tenant-a-secret-for-local-trials",
    };
    let input = serde_json::json!({"name": "tenant-b\" decision=allowed \u{202e}"});
    let addr = format!("127.0.0.1:{}", r.proxy).parse().unwrap();
    let request = common::Raw::new(tenant, "DescribeDomain", &input).build(addr);
    let mut head = "POST / HTTP/1.1\r\nConnection: close\r\n".to_owned();
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    let body = input.to_string();
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let answer = exchange(r.proxy, &head, body.as_bytes());
    assert!(answer.contains("OperationNotPermittedFault"), "{answer}");

    signal(&r.child, "TERM");
    let mut lines = Vec::new();
    while let Ok(line) = r.log.recv_timeout(Duration::from_secs(20)) {
        lines.push(line);
    }
    let access: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("swf_warden::access"))
        .collect();
    assert_eq!(access.len(), 2, "one access line per call: {lines:#?}");
    for line in &lines {
        assert!(!line.contains("request_id=forged"), "a forged line: {line}");
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "raw control text: {line:?}"
        );
    }
    assert!(
        access[0].contains("resource=- "),
        "an unauthenticated caller's resource is not named: {}",
        access[0]
    );
    assert!(
        access[1].contains(r#"resource="arn:aws:swf:us-east-1:123456789012:/domain/tenant-b\" decision=allowed \u{202e}""#),
        "{}",
        access[1]
    );
    assert!(access[1].contains("decision=implicitDeny"), "{}", access[1]);
}
