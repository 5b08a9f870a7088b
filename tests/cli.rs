//! The `swf-warden` binary: exit codes, configuration errors on stderr, and a real start and
//! stop with the shipped example configuration.

use std::io::{BufRead, BufReader};
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
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("swf-warden listening"))
        .expect("the proxy reports its address");
    assert!(listening.contains("127.0.0.1:"), "{listening}");
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
