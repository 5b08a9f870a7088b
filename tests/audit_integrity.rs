//! The audit log proves itself (SPEC, "Audit integrity"): logs written by the binary under
//! load, rotated by SIGUSR1 and by the shipped logrotate configuration, signed at checkpoints,
//! verify as intact with `swf-warden audit verify`; each tampering (a byte changed, a line
//! deleted, a forged line inserted, two lines swapped, the chain recomputed without the key, a
//! checkpoint under an unknown key, the tail cut after a checkpoint a monitor kept, a rotated
//! file missing) is caught and named with its `seq`; and 200 `kill -9` restarts under load
//! leave a log that verifies, with at most one torn line per crash, never called tampering.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, Raw, TENANT_A};

const BIN: &str = env!("CARGO_BIN_EXE_swf-warden");

struct Warden {
    child: Child,
    port: u16,
    admin: u16,
}

impl Drop for Warden {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the configuration into `dir` (policies, tenant A) with `audit` lines in `[audit]`.
fn configure(dir: &Path, audit: &str) -> (PathBuf, u16, u16) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/tenant-a.toml"),
        "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-a\"\n",
    )
    .unwrap();
    let (port, admin) = (free_port(), free_port());
    let config = format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[service]\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\n\
         [upstream]\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id = \"AKIDUPSTREAM\"\nsecret_access_key_env = \"HOME\"\n\
         [task_tokens]\nkeys = [{{ id = \"k1\", secret = \"{}\" }}]\n\
         [audit]\npath = \"audit.log\"\n{audit}\n[admin]\naddress = \"127.0.0.1:{admin}\"\n[log]\nlevel = \"warn\"\naccess = false\n\
         [[principal]]\nname = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\npolicies = [\"tenant-a\"]\n",
        common::TOKEN_KEY,
        TENANT_A.name,
        TENANT_A.key,
        TENANT_A.secret
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    (path, port, admin)
}

fn start(config: &Path, port: u16, admin: u16) -> Warden {
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the proxy did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Warden { child, port, admin }
}

/// A signed call of tenant A that its policy refuses (each one an audit record), as raw
/// HTTP/1.1 bytes; valid for the clock skew allowed, and sent again and again.
fn refused_call(port: u16) -> Vec<u8> {
    let input = serde_json::json!({"name": "tenant-b"});
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let request = Raw::new(TENANT_A, "DescribeDomain", &input).build(addr);
    let mut bytes = b"POST / HTTP/1.1\r\n".to_vec();
    for (name, value) in request.headers() {
        bytes.extend_from_slice(format!("{name}: {}\r\n", value.to_str().unwrap()).as_bytes());
    }
    let body = input.to_string();
    bytes.extend_from_slice(format!("content-length: {}\r\n\r\n{body}", body.len()).as_bytes());
    bytes
}

/// Sends `n` refused calls on one connection, waiting for each answer.
fn refuse(port: u16, n: usize) {
    let call = refused_call(port);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..n {
        stream.write_all(&call).unwrap();
        read_answer(&mut reader).expect("an answer");
    }
}

/// Reads one answer (head and `content-length` body).
fn read_answer(reader: &mut impl BufRead) -> Option<()> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()
}

fn signal(child: &Child, name: &str) {
    assert!(Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

fn stop(mut warden: Warden) {
    signal(&warden.child, "TERM");
    let status = warden.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// `swf-warden audit verify --json` on `files` with `args`: exit code and the report.
fn verify(args: &[String], files: &[PathBuf]) -> (i32, serde_json::Value) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--json"])
        .args(args)
        .args(files)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

fn keygen(dir: &Path, id: &str) -> (PathBuf, PathBuf) {
    let out = Command::new(BIN)
        .args(["audit", "keygen", "--out"])
        .arg(dir)
        .args(["--id", id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir.join(format!("{id}.key")), dir.join(format!("{id}.pub")))
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut text = lines.join(&b'\n');
    text.push(b'\n');
    std::fs::write(path, text).unwrap();
}

fn seq(line: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(line).unwrap()["seq"]
        .as_u64()
        .unwrap()
}

#[test]
fn tampering_with_a_real_log_is_caught_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "k1");
    let (config, port, admin) = configure(
        dir.path(),
        &format!(
            "signing_key_file = \"{}\"\nkey_id = \"k1\"\ncheckpoint_every = 20\ncheckpoint_path = \"kept-checkpoint.json\"",
            key.display()
        ),
    );
    let warden = start(&config, port, admin);
    let audit = dir.path().join("audit.log");
    // Three files: two rotations by SIGUSR1 (as logrotate's postrotate sends it).
    refuse(warden.port, 70);
    std::fs::rename(&audit, dir.path().join("audit.log.2")).unwrap();
    signal(&warden.child, "USR1");
    refuse(warden.port, 70);
    std::fs::rename(&audit, dir.path().join("audit.log.1")).unwrap();
    signal(&warden.child, "USR1");
    refuse(warden.port, 70);
    // What a monitor elsewhere keeps: the newest checkpoint, from the admin listener.
    let mut stream = TcpStream::connect(("127.0.0.1", warden.admin)).unwrap();
    stream
        .write_all(b"GET /audit/checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let kept = dir.path().join("monitor.json");
    std::fs::write(&kept, answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    stop(warden);

    let files: Vec<PathBuf> = ["audit.log", "audit.log.1", "audit.log.2"]
        .iter()
        .map(|f| dir.path().join(f))
        .collect();
    let key_arg = vec![format!("--public-key=k1={}", public.display())];
    let with_monitor = [
        key_arg.clone(),
        vec![format!("--checkpoint={}", kept.display())],
    ]
    .concat();
    let (code, report) = verify(&with_monitor, &files);
    assert_eq!(code, 0, "{report}");
    assert!(report["intact"].as_bool().unwrap());
    assert_eq!(
        report["lines"].as_u64(),
        Some(seq(lines(&files[0]).last().unwrap()))
    );
    assert!(report["checkpoints"].as_u64().unwrap() >= 10, "{report}");
    // The checkpoint written at shutdown is also the one in checkpoint_path.
    let copied = std::fs::read(dir.path().join("kept-checkpoint.json")).unwrap();
    assert_eq!(
        copied.strip_suffix(b"\n").unwrap(),
        lines(&files[0]).last().unwrap().as_slice()
    );

    let middle = &files[1];
    let original = lines(middle);
    let first = seq(&original[0]);
    let tamper = |edit: &dyn Fn(&mut Vec<Vec<u8>>), args: &[String], kind: &str, at: u64| {
        let mut edited = original.clone();
        edit(&mut edited);
        write_lines(middle, &edited);
        let (code, report) = verify(args, &files);
        write_lines(middle, &original);
        assert_eq!(code, 1, "{kind}: {report}");
        let failure = &report["failure"];
        assert_eq!(failure["kind"], kind, "{report}");
        assert_eq!(failure["seq"].as_u64(), Some(at), "{report}");
    };
    // One byte changed in the record with seq first+4 (a letter of its message, so that it
    // is still JSON): the line after it no longer follows.
    tamper(
        &|l| {
            let message = l[4]
                .windows(11)
                .position(|w| w == b"\"message\":\"")
                .expect("a message");
            l[4][message + 12] ^= 0x01;
        },
        &key_arg,
        "changed",
        first + 4,
    );
    tamper(
        &|l| {
            l.remove(6);
        },
        &key_arg,
        "removed",
        first + 7,
    );
    tamper(
        &|l| {
            // A forged record, with the seq and prev it would need, made up by hand.
            let mut forged = l[6].clone();
            let text = String::from_utf8(forged.clone())
                .unwrap()
                .replace("implicitDeny", "allowed");
            forged = text.into_bytes();
            l.insert(7, forged);
        },
        &key_arg,
        "inserted",
        first + 6,
    );
    tamper(&|l| l.swap(9, 10), &key_arg, "reordered", first + 10);
    // The whole chain recomputed after an edit, by someone without the key.
    let recompute = |l: &mut Vec<Vec<u8>>| {
        let mut prev = String::new();
        for (i, line) in l.iter_mut().enumerate() {
            let mut value: serde_json::Value = serde_json::from_slice(line).unwrap();
            if i == 3 {
                value["decision"] = "allowed".into();
            }
            if i > 0 {
                value["prev"] = prev.clone().into();
            }
            *line = serde_json::to_vec(&value).unwrap();
            prev = swf_warden::audit::chain::hash_hex(line);
        }
    };
    let mut recomputed = original.clone();
    recompute(&mut recomputed);
    // The first file's link to it breaks too, but the newest one's: rechain everything after.
    write_lines(middle, &recomputed);
    let (code, report) = verify(&key_arg, &files[1..]);
    write_lines(middle, &original);
    assert_eq!(code, 1);
    assert_eq!(report["failure"]["kind"], "badSignature", "{report}");
    // A checkpoint under a key nobody gave.
    let (_, other) = keygen(&dir.path().join("other"), "k2");
    let (code, report) = verify(&[format!("--public-key=k2={}", other.display())], &files);
    assert_eq!(code, 1);
    assert_eq!(report["failure"]["kind"], "unknownKey", "{report}");
    // The tail cut after the checkpoint the monitor kept.
    let newest = lines(&files[0]);
    write_lines(&files[0], &newest[..newest.len() - 25]);
    let (code, report) = verify(&with_monitor, &files);
    write_lines(&files[0], &newest);
    assert_eq!(code, 1);
    assert_eq!(report["failure"]["kind"], "truncated", "{report}");
    // A rotated file missing.
    let (code, report) = verify(&key_arg, &[files[0].clone(), files[2].clone()]);
    assert_eq!(code, 1);
    assert_eq!(report["failure"]["kind"], "missingFile", "{report}");
    assert_eq!(
        report["failure"]["seq"].as_u64(),
        Some(seq(&lines(&files[0])[0]))
    );
    // In words, as an auditor reads it.
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .args(&key_arg)
        .arg(&files[0])
        .arg(&files[2])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("INVALID:") && text.contains("a file is missing"),
        "{text}"
    );
}

#[test]
fn kill_9_restarts_under_load_leave_a_log_that_verifies() {
    const KILLS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let (config, port, admin) = configure(dir.path(), "");
    let audit = dir.path().join("audit.log");
    let call = refused_call(port);
    let stop = Arc::new(AtomicBool::new(false));
    // Two callers refused as fast as they are answered, across every restart.
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, call) = (stop.clone(), call.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    while !stop.load(Ordering::Relaxed)
                        && stream.write_all(&call).is_ok()
                        && read_answer(&mut reader).is_some()
                    {}
                }
            })
        })
        .collect();
    let size = || std::fs::metadata(&audit).map_or(0, |m| m.len());
    for _ in 0..KILLS {
        let warden = start(&config, port, admin);
        // Killed while records are being written.
        let grown = size() + 2_000;
        let deadline = Instant::now() + Duration::from_secs(10);
        while size() < grown {
            assert!(Instant::now() < deadline, "no records were written");
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut warden = warden;
        signal(&warden.child, "KILL");
        let _ = warden.child.wait();
    }
    // Once more, stopped cleanly.
    let warden = start(&config, port, admin);
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().unwrap();
    }
    self::stop(warden);
    let (code, report) = verify(&[], std::slice::from_ref(&audit));
    assert_eq!(code, 0, "{report}");
    let torn = report["torn"].as_array().unwrap().len();
    assert!(torn <= KILLS, "{torn} torn lines for {KILLS} crashes");
    // Each run wrote at least 2,000 bytes of records (a few lines) before its kill.
    assert!(
        report["lines"].as_u64().unwrap() > KILLS as u64 * 4,
        "{report}"
    );
    eprintln!(
        "{KILLS} kill -9 restarts: {} lines, {torn} torn lines",
        report["lines"]
    );
}

/// The shipped `deploy/logrotate.conf`, run by the real `logrotate` (its path and signal
/// pointed at this proxy): three rotations while records are written, the middle one
/// compressed (`compress`, `delaycompress`), and the chain goes on through every file.
#[test]
fn the_shipped_logrotate_configuration_keeps_the_chain() {
    let logrotate = ["/usr/sbin/logrotate", "/usr/bin/logrotate"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("logrotate is installed (.ci/run installs it: apt-get install logrotate)");
    let dir = tempfile::tempdir().unwrap();
    let (config, port, admin) = configure(dir.path(), "");
    let warden = start(&config, port, admin);
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/logrotate.conf"),
    )
    .unwrap();
    let audit = dir.path().join("audit.log");
    let rotation = shipped
        .replace(
            "/var/log/swf-warden/audit.log",
            &audit.display().to_string(),
        )
        .replace(
            "systemctl kill --signal=SIGUSR1 swf-warden.service",
            &format!("kill -USR1 {}", warden.child.id()),
        );
    assert!(
        rotation.contains("kill -USR1"),
        "the shipped file names the signal"
    );
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(&conf, rotation).unwrap();
    for round in 0..3 {
        refuse(warden.port, 30);
        let status = Command::new(logrotate)
            .arg("-f")
            .arg("-s")
            .arg(dir.path().join("logrotate.state"))
            .arg(&conf)
            .status()
            .unwrap();
        assert!(status.success(), "round {round}");
        // The proxy reopens the file on the signal: wait for it to exist again.
        refuse(warden.port, 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !audit.exists() {
            assert!(Instant::now() < deadline, "the audit log was not reopened");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    refuse(warden.port, 10);
    stop(warden);
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("audit.log")
                && p.extension().is_none_or(|e| e != "chain")
        })
        .collect();
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "gz")),
        "a compressed rotation: {files:?}"
    );
    let (code, report) = verify(&[], &files);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["files"].as_array().unwrap().len(), 4, "{report}");
    assert!(report["lines"].as_u64().unwrap() > 100, "{report}");
}

/// The status line of the answer to `call` on a new connection (`None`: no answer, the
/// connection closed).
fn status_of(port: u16, call: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(call).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    (!line.is_empty()).then(|| line.trim_end().to_owned())
}

/// A full disk (issue 29's soak: `RLIMIT_FSIZE` makes the audit writes fail as a full disk
/// does, and the kernel sends SIGXFSZ, which by default ends the process): the refusals are
/// answered 503, nothing unrecorded, the proxy lives on, and once the disk has room again the
/// log goes on whole.
#[test]
fn a_full_disk_is_answered_503_and_the_proxy_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let (config, port, admin) = configure(dir.path(), "");
    let warden = start(&config, port, admin);
    refuse(port, 3);
    let size = std::fs::metadata(dir.path().join("audit.log"))
        .unwrap()
        .len();
    let pid = warden.child.id().to_string();
    let limit = |value: &str| {
        assert!(Command::new("prlimit")
            // The soft limit only: raising it again needs no privilege.
            .args([
                &format!("--pid={pid}"),
                &format!("--fsize={value}:unlimited")
            ])
            .status()
            .unwrap()
            .success());
    };
    limit(&size.to_string());
    let call = refused_call(port);
    for _ in 0..3 {
        let status = status_of(port, &call).expect("an answer while the disk is full");
        assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    }
    limit("unlimited");
    let status = status_of(port, &call).expect("an answer once there is room");
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    stop(warden);
    let (code, report) = verify(&[], &[dir.path().join("audit.log")]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["lines"].as_u64(), Some(5), "{report}");
}
