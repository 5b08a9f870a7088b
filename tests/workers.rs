//! The binary's worker threads: calls spread over several workers are served and, on
//! SIGTERM, every worker stops taking connections but finishes the calls it holds.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::raw_upstream::{Mode, RawUpstream};
use common::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_swf-warden");

/// Tenant A of the shipped example configuration.
const EXAMPLE_TENANT_A: Tenant = Tenant {
    name: "tenant-a-worker",
    key: "AKIATENANTA000000001",
    secret: "tenant-a-secret-for-local-trials",
};

/// Waits until `check` holds; the deadline only guards against a hung test.
async fn wait_until(mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "condition not reached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refused(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_every_worker_finish_its_calls() {
    let upstream = RawUpstream::start(Mode::Hold).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    for name in ["tenant-a.toml", "tenant-b.json", "guardrails.toml"] {
        std::fs::copy(
            root.join("policies").join(name),
            dir.path().join("policies").join(name),
        )
        .unwrap();
    }
    let (port, admin) = (free_port(), free_port());
    let config = std::fs::read_to_string(root.join("config.example.toml"))
        .unwrap()
        .replacen("[listen]\n", "[listen]\nworkers = 2\n", 1)
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin}"))
        .replace(
            "http://127.0.0.1:5000",
            &format!("http://{}", upstream.addr),
        );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("config.toml"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(|| !refused(port)).await;

    // Four calls on four connections, dealt out to the two workers in turn.
    let addr = ([127, 0, 0, 1], port).into();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let request = Raw::new(
                EXAMPLE_TENANT_A,
                "DescribeDomain",
                &json!({"name": "tenant-a"}),
            );
            tokio::spawn(send(request.build(addr)))
        })
        .collect();
    wait_until(|| upstream.requests() == 4).await;

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    wait_until(|| refused(port)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the proxy waits for its calls"
    );

    upstream.release(4);
    for call in calls {
        let answer = call.await.unwrap();
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["domainInfo"]["name"], "tenant-a");
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
