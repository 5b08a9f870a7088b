//! Configuration tests: the shipped example loads, and a broken file reports every error with
//! its line.

use super::*;
use crate::swf::Operation;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The line of the first diagnostic that mentions `needle`.
fn line_of_error(errors: &[Diagnostic], needle: &str) -> usize {
    errors
        .iter()
        .find(|d| d.message.contains(needle))
        .unwrap_or_else(|| panic!("no error mentions {needle:?}: {errors:#?}"))
        .line
}

#[test]
fn shipped_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.principals.len(), 2);
    assert_eq!(
        config.service.domain_arn("x"),
        "arn:aws:swf:us-east-1:123456789012:/domain/x"
    );
    let a = &config.principals[0];
    assert_eq!(a.arn, "arn:aws:iam::123456789012:user/tenant-a-worker");
    let names: Vec<&str> = a.policies.policy_names().collect();
    assert_eq!(names, ["tenant-a", "guardrails"]);
    assert_eq!(config.token_keys[0].0, "k1");
    assert_eq!(config.upstream.timeout, Duration::from_secs(30));
    assert_eq!(config.upstream.poll_timeout, Duration::from_secs(70));
}

/// A folder with the shipped example's policies, and the example's text, for edited copies.
fn example_copy() -> (tempfile::TempDir, String) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    for entry in std::fs::read_dir(example.with_file_name("policies")).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(
                entry.path(),
                dir.path().join("policies").join(entry.file_name()),
            )
            .unwrap();
        }
    }
    (dir, text)
}

#[test]
fn workers_are_counted_from_the_cpus_unless_given() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    assert_eq!(load(&example).unwrap().listen.workers, None);
    let (dir, text) = example_copy();
    let with = |workers: &str| {
        let edited = text.replacen("[listen]\n", &format!("[listen]\nworkers = {workers}\n"), 1);
        assert_ne!(edited, text, "the example has a [listen] section");
        write(dir.path(), "c.toml", &edited)
    };
    assert_eq!(load(&with("3")).unwrap().listen.workers, Some(3));
    let errors = load(&with("0")).unwrap_err().0;
    let error = errors
        .iter()
        .find(|d| d.message.contains("`workers` must be between 1 and 1024"))
        .unwrap_or_else(|| panic!("{errors:#?}"));
    let line = text.lines().position(|l| l == "[listen]").unwrap() + 2;
    assert_eq!(error.line, line);
}

const POLICY: &str = "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"*\"\n";

const BROKEN: &str = r#"[listen]
address = "127.0.0.1:8080"
adress = "typo"

[service]
region = "us-east-1"
account_id = "123"

[upstream]
endpoint = "http://127.0.0.1:5000"
access_key_id = "AKIDUPSTREAM"
secret_access_key = "inline"
secret_access_key_env = "ALSO_ENV"

[task_tokens]
keys = [{ id = "k1", secret_file = "missing-key-file" }]

[policies]
dir = "policies"

[[group]]
name = "workers"
policies = ["no-such-policy"]

[[principal]]
name = "a"
access_key_id = "AKIATENANTA000000001"
secret_access_key_env = "SWF_WARDEN_TEST_UNSET_VARIABLE"
groups = ["no-such-group"]
policies = ["allow"]

[[principal]]
name = "b"
access_key_id = "AKIATENANTA000000001"
secret_access_key = "s"
colour = "blue"

[[principal]]
name = "c"
access_key_id = "AKIATENANTC000000001"
secret_access_key = "s"

[surprise]
x = 1
"#;

#[test]
fn broken_config_reports_every_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    write(&dir.path().join("policies"), "allow.toml", POLICY);
    let path = write(dir.path(), "c.toml", BROKEN);
    let errors = load(&path).unwrap_err().0;
    let at = |needle: &str| line_of_error(&errors, needle);
    assert_eq!(at("unknown field `adress`"), 3);
    assert_eq!(at("12 digits"), 7);
    assert_eq!(at("give exactly one of `secret_access_key`"), 11);
    assert_eq!(at("missing-key-file"), 16);
    assert_eq!(at("unknown policy `no-such-policy`"), 23);
    assert_eq!(at("SWF_WARDEN_TEST_UNSET_VARIABLE"), 28);
    assert_eq!(at("unknown group `no-such-group`"), 29);
    assert_eq!(at("unknown field `colour`"), 36);
    assert_eq!(at("unknown section `surprise`"), 43);
    assert!(errors.iter().all(|d| d.file == path));
    // The duplicate key is reported on the second principal, whose other error (`colour`)
    // stops its section; a third principal with a valid duplicate is caught:
    let dup = BROKEN
        .replace("colour = \"blue\"\n", "")
        .replace("AKIATENANTC000000001", "AKIATENANTA000000001");
    let path = write(dir.path(), "d.toml", &dup);
    let errors = load(&path).unwrap_err().0;
    let dups: Vec<_> = errors
        .iter()
        .filter(|d| d.message.contains("given to two principals"))
        .collect();
    assert_eq!(dups.len(), 2, "{errors:#?}");
    assert_eq!(dups[0].line, 34);
}

#[test]
fn missing_sections_and_bad_policies_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    write(
        &dir.path().join("policies"),
        "bad.json",
        "{\"Statement\": [{\"Effect\": \"Maybe\", \"Action\": \"*\", \"Resource\": \"*\"}]}",
    );
    let path = write(dir.path(), "c.toml", "[listen]\naddress = \"nowhere\"\n");
    let errors = load(&path).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for needle in [
        "`[service]`",
        "`[upstream]`",
        "`[task_tokens]`",
        "not an address",
        "bad.json:1:",
        "`Effect` must be",
    ] {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "{needle}: {text:#?}"
        );
    }
}

#[test]
fn secrets_from_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    write(dir.path(), "upstream.secret", "from-file\n");
    write(dir.path(), "token.key", &"k".repeat(40));
    // SAFETY of the test: the variable name is unique to this test.
    std::env::set_var("SWF_WARDEN_TEST_TENANT_SECRET", "from-env");
    let text = r#"
[listen]
address = "127.0.0.1:0"
[service]
region = "eu-west-1"
account_id = "123456789012"
[upstream]
endpoint = "https://swf.eu-west-1.amazonaws.com"
access_key_id = "AKIDUPSTREAM"
secret_access_key_file = "upstream.secret"
[task_tokens]
keys = [{ id = "new", secret_file = "token.key" }, { id = "old", secret = "oooooooooooooooooooooooooooooooooooo" }]
[[principal]]
name = "a"
access_key_id = "AKIATENANTA000000001"
secret_access_key_env = "SWF_WARDEN_TEST_TENANT_SECRET"
"#;
    let config = load(&write(dir.path(), "c.toml", text)).unwrap_or_else(|d| panic!("{d}"));
    let crate::credentials::Source::Static {
        secret_access_key, ..
    } = &config.upstream.credentials.source
    else {
        panic!("static credentials: {:?}", config.upstream.credentials);
    };
    assert_eq!(secret_access_key.value.expose(), "from-file");
    assert_eq!(
        secret_access_key.file.as_deref(),
        Some(dir.path().join("upstream.secret").as_path()),
        "read again when it changes"
    );
    assert_eq!(config.upstream.region, "eu-west-1");
    assert_eq!(config.principals[0].secret_access_key.expose(), "from-env");
    assert_eq!(config.token_keys.len(), 2);
    assert_eq!(config.token_keys[0].0, "new");
    assert!(config.audit.path.is_none());
    // Debug output of the whole config never shows a secret.
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("from-file") && !debug.contains("from-env") && !debug.contains("ooooo")
    );
}

#[test]
fn short_token_keys_and_unsupported_unsealed_mode_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let text = r#"
[listen]
address = "127.0.0.1:0"
[service]
region = "us-east-1"
account_id = "123456789012"
[upstream]
endpoint = "ftp://example"
access_key_id = "AKIDUPSTREAM"
secret_access_key = "x"
[task_tokens]
keys = [{ id = "k.1", secret = "short" }]
unsealed = "allow"
"#;
    let errors = load(&write(dir.path(), "c.toml", text)).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for needle in [
        "not an endpoint",
        "key id `k.1`",
        "at least 32 bytes",
        "`unsealed` must be",
    ] {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "{needle}: {text:#?}"
        );
    }
}

#[test]
fn strict_input_settings_have_swf_defaults_and_are_checked() {
    let (dir, text) = example_copy();
    let config = load(&write(dir.path(), "a.toml", &text)).unwrap();
    assert_eq!(config.limits.max_body_bytes, 1_048_576, "SWF's 1 MB");
    assert_eq!(config.limits.max_decisions, 1000);
    assert_eq!(config.audit.unauthenticated_per_second, 100);
    assert!(config.service.hosts.is_empty());

    let edited =
        text.replacen(
            "[service]",
            "[service]\nhosts = [\"SWF.example.internal:8443\", \"bad host\", \"u@x\"]",
            1,
        )
        .replacen(
            "[audit]",
            "[audit]\nunauthenticated_per_second = 2000000",
            1,
        ) + "\n[limits]\nmax_decisions = 0\n";
    let errors = load(&write(dir.path(), "b.toml", &edited)).unwrap_err().0;
    let line_of = |needle: &str| edited.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let at = |needle: &str| line_of_error(&errors, needle);
    assert_eq!(at("`bad host` is not a host"), line_of("hosts ="));
    assert_eq!(at("`u@x` is not a host"), line_of("hosts ="));
    assert_eq!(
        at("`unauthenticated_per_second` must be between 0 and 1000000"),
        line_of("unauthenticated_per_second")
    );
    assert_eq!(
        at("`max_decisions` must be between 1 and 100000"),
        line_of("max_decisions")
    );

    let pinned = text.replacen(
        "[service]",
        "[service]\nhosts = [\"SWF.example.internal:8443\"]",
        1,
    );
    let config = load(&write(dir.path(), "c.toml", &pinned)).unwrap();
    assert_eq!(config.service.hosts, ["swf.example.internal:8443"]);
}

#[test]
fn a_tls_listener_without_hosts_is_warned_about() {
    let (dir, text) = example_copy();
    let tls = text.replacen(
        "[listen]",
        "[listen]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"",
        1,
    );
    let warned = |text: &str| {
        let diagnostics = match load(&write(dir.path(), "t.toml", text)) {
            Ok(config) => config.warnings,
            Err(d) => d.0,
        };
        diagnostics
            .iter()
            .any(|d| !d.is_error() && d.message.contains("without `[service] hosts`"))
    };
    assert!(warned(&tls));
    assert!(!warned(&text), "a plain listener needs no pinning");
    assert!(!warned(&tls.replacen(
        "[service]",
        "[service]\nhosts = [\"swf.example.internal\"]",
        1
    )));
}

/// The example configuration in a folder of its own (with its policies), edited by `edit`.
fn example_edited(dir: &Path, edit: impl FnOnce(String) -> String) -> (PathBuf, String) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let policies = dir.join("policies");
    if !policies.is_dir() {
        std::fs::create_dir(&policies).unwrap();
        for entry in std::fs::read_dir(example.with_file_name("policies")).unwrap() {
            let entry = entry.unwrap();
            if entry.path().is_file() {
                std::fs::copy(entry.path(), policies.join(entry.file_name())).unwrap();
            }
        }
    }
    let text = edit(std::fs::read_to_string(&example).unwrap());
    (write(dir, "c.toml", &text), text)
}

/// The upstream's key id goes into every upstream request's Authorization header: one that
/// could end the header (and add another) is refused at its line, as is an empty one.
#[test]
fn an_upstream_key_id_that_is_not_letters_and_digits_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [r#""AKID\r\nx-injected: 1""#, r#""AKID UPSTREAM""#, r#""""#] {
        let (path, text) = example_edited(dir.path(), |t| {
            t.replacen(
                r#"access_key_id = "AKIDUPSTREAM""#,
                &format!("access_key_id = {bad}"),
                1,
            )
        });
        let errors = load(&path).unwrap_err().0;
        assert_eq!(
            line_of_error(
                &errors,
                "the upstream's `access_key_id` must be 1 to 128 letters and digits"
            ),
            text.lines().position(|l| l.contains(bad)).unwrap() + 1,
            "{bad}: {errors:#?}"
        );
    }
}

/// `text` with `lines` in its `[limits]` section (added at the end if it has none).
fn with_limits(text: String, lines: &str) -> String {
    if text.contains("\n[limits]\n") {
        text.replacen("\n[limits]\n", &format!("\n[limits]\n{lines}"), 1)
    } else {
        format!("{text}\n[limits]\n{lines}")
    }
}

#[test]
fn connection_limits_have_defaults_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = example_edited(dir.path(), |t| t);
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert!(!config.listen.h2c, "cleartext HTTP/2 is off by default");
    let l = &config.limits;
    let secs = Duration::from_secs;
    assert_eq!(
        (
            l.header_read_timeout,
            l.idle_timeout,
            l.body_read_timeout,
            l.write_timeout
        ),
        (secs(10), secs(60), secs(10), secs(30))
    );
    assert_eq!(l.max_concurrent_streams, 100);
    assert_eq!(l.max_connections_per_ip, None);

    let (path, _) = example_edited(dir.path(), |t| {
        with_limits(
            t.replacen("[listen]\n", "[listen]\nh2c = true\n", 1),
            "idle_timeout_seconds = 5\nbody_read_timeout_seconds = 2\nwrite_timeout_seconds = 7\nmax_concurrent_streams = 20\nmax_connections_per_ip = 64\n",
        )
    });
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert!(config.listen.h2c);
    let l = &config.limits;
    assert_eq!(
        (l.idle_timeout, l.body_read_timeout, l.write_timeout),
        (secs(5), secs(2), secs(7))
    );
    assert_eq!(l.max_concurrent_streams, 20);
    assert_eq!(l.max_connections_per_ip, Some(64));

    let (path, text) = example_edited(dir.path(), |t| {
        with_limits(
            t,
            "idle_timeout_seconds = 0\nbody_read_timeout_seconds = 3601\nwrite_timeout_seconds = 0\nmax_concurrent_streams = 0\nmax_connections_per_ip = 0\n",
        )
    });
    let errors = load(&path).unwrap_err().0;
    for (key, range) in [
        ("idle_timeout_seconds", "1 and 3600"),
        ("body_read_timeout_seconds", "1 and 3600"),
        ("write_timeout_seconds", "1 and 3600"),
        ("max_concurrent_streams", "1 and 10000"),
        ("max_connections_per_ip", "1 and 1000000"),
    ] {
        let error = errors
            .iter()
            .find(|d| d.message == format!("`{key}` must be between {range}"))
            .unwrap_or_else(|| panic!("{key}: {errors:#?}"));
        let line = text
            .lines()
            .position(|l| l.starts_with(&format!("{key} = ")))
            .unwrap()
            + 1;
        assert_eq!(
            (error.file.as_path(), error.line),
            (path.as_path(), line),
            "{key}"
        );
    }

    let (path, text) = example_edited(dir.path(), |t| {
        t.replacen("[listen]\n", "[listen]\nh2c = \"yes\"\n", 1)
    });
    let errors = load(&path).unwrap_err().0;
    let line = text.lines().position(|l| l.starts_with("h2c = ")).unwrap() + 1;
    assert!(
        errors.iter().any(|d| d.line == line),
        "h2c must be a boolean: {errors:#?}"
    );
}

/// The review's broken file: five mistakes in the configuration and two in a policy it names.
/// Every one is reported in one run at its own line, and nothing else is (no error caused by
/// another: the failed policy is not also "unknown", the principal with an unknown key is still
/// checked).
#[test]
fn every_mistake_is_reported_once_at_its_own_line() {
    let (dir, text) = example_copy();
    let edits = [
        // [service]: a type error.
        (
            "max_clock_skew_seconds = 900",
            "max_clock_skew_seconds = \"900\"",
        ),
        // [upstream]: under SWF's 60 s hold.
        ("poll_timeout_seconds = 70 ", "poll_timeout_seconds = 30 "),
        // [[principal]] A: an unknown key, a bad name, B's access key.
        (
            "name = \"tenant-a-worker\"",
            "name = \"tenant a!\"\ncolour = \"red\"",
        ),
        (
            "access_key_id = \"AKIATENANTA000000001\"",
            "access_key_id = \"AKIATENANTB000000001\"",
        ),
    ];
    let mut edited = text.clone();
    for (from, to) in edits {
        assert!(edited.contains(from), "the example holds {from:?}");
        edited = edited.replacen(from, to, 1);
    }
    let path = write(dir.path(), "c.toml", &edited);
    let policy = dir.path().join("policies/tenant-a.toml");
    let source = std::fs::read_to_string(&policy).unwrap();
    let broken_policy = source
        .replace("Effect = \"Allow\"", "Effect = \"Alow\"")
        .replace(
            "Action = \"swf:*\"",
            "Action = [\"swf:*\", \"swf:PollForActivityTaskz\"]",
        );
    std::fs::write(&policy, &broken_policy).unwrap();

    let errors = load(&path).unwrap_err().0;
    let line_in = |text: &str, needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?}"))
            + 1
    };
    let mut found: Vec<(String, usize)> = errors
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            (
                d.file.file_name().unwrap().to_string_lossy().into_owned(),
                d.line,
            )
        })
        .collect();
    found.sort();
    let mut expected = vec![
        (
            "c.toml".to_owned(),
            line_in(&edited, "max_clock_skew_seconds"),
        ),
        (
            "c.toml".to_owned(),
            line_in(&edited, "poll_timeout_seconds"),
        ),
        ("c.toml".to_owned(), line_in(&edited, "tenant a!")),
        ("c.toml".to_owned(), line_in(&edited, "colour")),
        (
            "c.toml".to_owned(),
            edited
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains("AKIATENANTB000000001"))
                .nth(1)
                .map(|(i, _)| i + 1)
                .unwrap(),
        ),
        ("tenant-a.toml".to_owned(), line_in(&broken_policy, "Alow")),
        ("tenant-a.toml".to_owned(), line_in(&broken_policy, "Taskz")),
    ];
    expected.sort();
    assert_eq!(found, expected, "{errors:#?}");
}

/// A required key with a value of the wrong type is one error at that value, not also a
/// "missing field" for the key the reader set aside.
#[test]
fn a_required_key_of_the_wrong_type_is_one_error() {
    let (dir, text) = example_copy();
    let edited = text.replacen("region = \"us-east-1\"", "region = 5", 1);
    assert_ne!(edited, text);
    let path = write(dir.path(), "c.toml", &edited);
    let errors: Vec<Diagnostic> = load(&path)
        .unwrap_err()
        .0
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    let line = edited.lines().position(|l| l == "region = 5").unwrap() + 1;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, line, "{errors:#?}");
    assert!(!errors[0].message.contains("missing"), "{errors:#?}");
}

/// The line (1-based) of the `nth` line of `text` that contains `needle`.
/// Each `(message, line)` is an error at that line.
fn assert_errors_at(errors: &[Diagnostic], expected: &[(&str, usize)]) {
    for (message, line) in expected {
        let found = errors
            .iter()
            .find(|d| d.message.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in {errors:#?}"));
        assert_eq!((found.line, found.is_error()), (*line, true), "{message}");
    }
}

fn nth_line(text: &str, needle: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} #{nth}"))
        .0
        + 1
}

#[test]
fn the_example_quotas_load_with_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = example_edited(dir.path(), |t| {
        format!("{t}\n[[quota]]\nname = \"sparse\"\nactions = [\"swf:describe*\"]\nprincipals = [\"*\"]\nrate_per_second = 2.5\n")
    });
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.quota_store, None, "the local backend");
    let names: Vec<&str> = config.quotas.iter().map(|q| &*q.name).collect();
    assert_eq!(names, ["heartbeats", "polls", "sparse"]);
    let heartbeats = &config.quotas[0];
    assert_eq!(heartbeats.rate, Some((50.0, 100)));
    assert_eq!(
        heartbeats.operations,
        [Operation::RecordActivityTaskHeartbeat]
    );
    let polls = &config.quotas[1];
    assert_eq!(polls.max_in_flight, Some(20));
    assert_eq!(
        polls.operations,
        [
            Operation::PollForActivityTask,
            Operation::PollForDecisionTask
        ]
    );
    let sparse = &config.quotas[2];
    assert_eq!(sparse.per, crate::quota::Per::Principal, "the default key");
    assert_eq!(sparse.rate, Some((2.5, 3)), "a second's worth, rounded up");
    assert_eq!(
        sparse.operations.len(),
        4,
        "IAM action names are case-insensitive: {:?}",
        sparse.operations
    );
    assert!(sparse.origin.ends_with(&format!(
        ":{}",
        nth_line(&std::fs::read_to_string(&path).unwrap(), "\"sparse\"", 0)
    )));
}

#[test]
fn every_quota_mistake_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = r#"
[[quota]]
name = "bad name!"
actions = ["swf:RecordActivityTaskHeartbeet", "swf:ScheduleActivityTask"]
groups = ["nobody-has-this-group"]
per = "tenant"
rate_per_second = 0
max_in_flight = 0

[[quota]]
name = "heartbeats"
actions = []
principals = ["*"]
burst = 10

[[quota]]
name = "nobody"
actions = ["swf:*"]
per = "all"
rate_per_second = 5
"#;
    let (path, text) = example_edited(dir.path(), |t| format!("{t}{broken}"));
    let errors = load(&path).unwrap_err().0;
    let at = |needle: &str, nth: usize| nth_line(&text, needle, nth);
    let expected = [
        ("quota name `bad name!` must be", at("bad name!", 0)),
        (
            "unknown action `swf:RecordActivityTaskHeartbeet`",
            at("Heartbeet", 0),
        ),
        (
            "`swf:ScheduleActivityTask` is a decision",
            at("Heartbeet", 0),
        ),
        ("unknown group `nobody-has-this-group`", at("nobody-has", 0)),
        ("`per` must be", at("\"tenant\"", 0)),
        (
            "`rate_per_second` must be more than 0",
            at("rate_per_second = 0", 0),
        ),
        (
            "`max_in_flight` must be between 1 and",
            at("max_in_flight = 0", 0),
        ),
        (
            "quota `heartbeats` is defined twice",
            at("name = \"heartbeats\"", 1),
        ),
        ("`actions` is empty", at("actions = []", 0)),
        ("`burst` without `rate_per_second`", at("burst = 10", 1)),
        (
            "quota `nobody` applies to no one",
            at("name = \"nobody\"", 0),
        ),
    ];
    assert_errors_at(&errors, &expected);
    assert_eq!(
        errors.iter().filter(|d| d.is_error()).count(),
        expected.len() + 1,
        "the second quota also limits nothing, and nothing else is reported: {errors:#?}"
    );
}

#[test]
fn a_quota_no_principal_can_meet_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"
[[quota]]
name = "ghosts"
actions = ["swf:PollFor*"]
principals = ["ghost-*"]
max_in_flight = 1

[[principal]]
name = "auditor"
access_key_id = "AKIAAUDITOR000000001"
secret_access_key = "auditor-secret-for-local-trials"

[[quota]]
name = "registrations"
actions = ["swf:RegisterDomain"]
principals = ["auditor"]
max_in_flight = 1
"#;
    let (path, text) = example_edited(dir.path(), |t| format!("{t}{extra}"));
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    let warning = |needle: &str| {
        config
            .warnings
            .iter()
            .find(|d| d.message.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {:#?}", config.warnings))
            .line
    };
    assert_eq!(
        warning("quota `ghosts` matches no principal"),
        nth_line(&text, "\"ghosts\"", 0)
    );
    assert_eq!(
        warning("quota `registrations` applies to is allowed any of its actions"),
        nth_line(&text, "\"registrations\"", 0)
    );
    assert!(
        !config
            .warnings
            .iter()
            .any(|d| d.message.contains("`heartbeats`")),
        "the example's quotas can be met: {:#?}",
        config.warnings
    );
}

#[test]
fn the_quota_store_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = |lines: &str| {
        let lines = lines.to_owned();
        example_edited(dir.path(), move |t| {
            t.replacen(
                "backend = \"local\"",
                &format!("backend = \"redis\"\n{lines}"),
                1,
            )
        })
    };
    let (path, _) = store("url = \"redis://127.0.0.1:6379/2\"");
    let settings = load(&path)
        .unwrap_or_else(|d| panic!("{d}"))
        .quota_store
        .unwrap();
    assert_eq!(settings.on_error, crate::quota::redis::OnError::Local);
    assert_eq!(settings.timeout, Duration::from_millis(50));
    assert_eq!(settings.lease, Duration::from_millis(50));
    assert_eq!(settings.url.expose(), "redis://127.0.0.1:6379/2");

    let (path, text) = store(
        "url = \"http://127.0.0.1:6379\"\non_error = \"retry\"\ntimeout_ms = 0\nlease_ms = 5000",
    );
    let errors = load(&path).unwrap_err().0;
    for (message, needle) in [
        ("the Redis URL must be", "http://127.0.0.1:6379"),
        (
            "`on_error` must be \"local\", \"allow\" or \"deny\", not `retry`",
            "retry",
        ),
        ("`timeout_ms` must be between 1 and 10000", "timeout_ms"),
        ("`lease_ms` must be between 0 and 1000", "lease_ms"),
    ] {
        assert_eq!(
            line_of_error(&errors, message),
            nth_line(&text, needle, 0),
            "{message}"
        );
    }

    let (path, text) = store("");
    let errors = load(&path).unwrap_err().0;
    assert_eq!(
        line_of_error(&errors, "url"),
        nth_line(&text, "backend = \"redis\"", 0),
        "a Redis store needs its URL"
    );

    let (path, text) = example_edited(dir.path(), |t| {
        t.replacen(
            "backend = \"local\"",
            "backend = \"local\"\non_error = \"deny\"",
            1,
        )
    });
    let errors = load(&path).unwrap_err().0;
    assert_eq!(
        line_of_error(&errors, "`on_error` is a setting of `backend = \"redis\"`"),
        nth_line(&text, "on_error = \"deny\"", 0)
    );
    let (path, text) = example_edited(dir.path(), |t| {
        t.replacen("backend = \"local\"", "backend = \"memcached\"", 1)
    });
    assert_eq!(
        line_of_error(&load(&path).unwrap_err().0, "`backend` must be"),
        nth_line(&text, "memcached", 0)
    );
}

#[test]
fn every_sts_mistake_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let short = include_str!("../../tests/fixtures/oidc/rsa-1024.jwk.json");
    write(dir.path(), "weak.json", &format!("{{\"keys\": [{short}]}}"));
    let broken = r#"
[sts]
session_keys = [{ id = "s1", secret = "short" }]
max_duration_seconds = 60
issue_burst = 0

[[oidc_provider]]
name = "cluster"
issuer = "http://insecure.test"
audiences = []
jwks_file = "missing-jwks.json"

[[oidc_provider]]
name = "weak"
issuer = "https://weak.test"
audiences = ["swf-warden"]
jwks_file = "weak.json"

[[role]]
name = "bad role!"
provider = "nowhere"
subjects = []
session_tags = { "bad*tag" = "claim" }
groups = ["no-such-group"]
policies = ["no-such-policy"]
"#;
    let (path, text) = example_edited(dir.path(), |t| format!("{t}{broken}"));
    let errors = load(&path).unwrap_err().0;
    let at = |needle: &str| nth_line(&text, needle, 0);
    let expected = [
        (
            "session key `s1` must be at least 32 bytes",
            at("secret = \"short\""),
        ),
        (
            "`issue_burst` must be between 1 and 1000000",
            at("issue_burst"),
        ),
        (
            "`max_duration_seconds` must be between 3600 and 43200",
            at("max_duration_seconds"),
        ),
        (
            "issuer `http://insecure.test` must be an https:// URL",
            at("http://insecure"),
        ),
        ("`audiences` needs at least one", at("audiences = []")),
        ("missing-jwks.json` does not exist", at("missing-jwks")),
        ("an RSA key of 1024 bits is too short", at("weak.json")),
        ("role name `bad role!` must be", at("bad role!")),
        ("unknown identity provider `nowhere`", at("\"nowhere\"")),
        ("`subjects` needs at least one pattern", at("subjects = []")),
        ("session tag key `bad*tag` must be", at("bad*tag")),
        ("unknown group `no-such-group`", at("no-such-group")),
        ("unknown policy `no-such-policy`", at("no-such-policy")),
    ];
    assert_errors_at(&errors, &expected);
    assert_eq!(
        errors.iter().filter(|d| d.is_error()).count(),
        expected.len(),
        "nothing else is reported: {errors:#?}"
    );
}

#[test]
fn roles_and_providers_need_the_sts_section() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[[role]]\nname = \"r\"\nprovider = \"p\"\nsubjects = [\"*\"]\n";
    let (path, text) = example_edited(dir.path(), |t| format!("{t}{extra}"));
    let errors = load(&path).unwrap_err().0;
    assert_eq!(
        line_of_error(&errors, "`[[role]]` needs an `[sts]` section"),
        nth_line(&text, "name = \"r\"", 0)
    );
}

#[test]
fn a_role_may_not_take_a_principals_name() {
    let dir = tempfile::tempdir().unwrap();
    let jwk = include_str!("../../tests/fixtures/oidc/rsa-2048.jwk.json");
    write(dir.path(), "jwks.json", &format!("{{\"keys\": [{jwk}]}}"));
    let extra = "\n[sts]\nsession_keys = [{ id = \"s1\", secret = \"0123456789abcdef0123456789abcdef\" }]\n\
                 [[oidc_provider]]\nname = \"p\"\nissuer = \"https://p.test\"\naudiences = [\"a\"]\njwks_file = \"jwks.json\"\n\
                 [[role]]\nname = \"tenant-a-worker\"\nprovider = \"p\"\nsubjects = [\"*\"]\n";
    let (path, text) = example_edited(dir.path(), |t| format!("{t}{extra}"));
    let errors = load(&path).unwrap_err().0;
    assert_eq!(
        line_of_error(
            &errors,
            "role `tenant-a-worker` has the name of a principal"
        ),
        nth_line(&text, "name = \"tenant-a-worker\"", 1)
    );
}

#[test]
fn the_second_reviews_settings_have_defaults_and_are_checked_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let jwk = include_str!("../../tests/fixtures/oidc/rsa-2048.jwk.json");
    write(dir.path(), "jwks.json", &format!("{{\"keys\": [{jwk}]}}"));
    let (path, _) = example_edited(dir.path(), |t| t);
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        config.admin.map(|a| a.max_connections),
        Some(ADMIN_MAX_CONNECTIONS)
    );
    let sts = "\n[sts]\nsession_keys = [{ id = \"s1\", secret = \"0123456789abcdef0123456789abcdef\" }]\n\
               unverified_per_second = 0\n\
               [[oidc_provider]]\nname = \"p\"\nissuer = \"https://p.test\"\naudiences = [\"a\"]\njwks_file = \"jwks.json\"\n\
               [[oidc_provider]]\nname = \"twin\"\nissuer = \"https://p.test\"\naudiences = [\"b\"]\njwks_file = \"jwks.json\"\n\
               [[role]]\nname = \"r\"\nprovider = \"p\"\nsubjects = [\"*\"]\nsession_tags = { ns = \"k.ns\" }\n\
               tenant_tag = \"team\"\nsessions_not_before = \"yesterday\"\n\
               [[role]]\nname = \"by-key\"\naccept_tags_claim = true\n";
    let (path, text) = example_edited(dir.path(), |t| {
        format!("{t}{sts}").replace("[admin]\n", "[admin]\nmax_connections = 0\n")
    });
    let errors = load(&path).unwrap_err().0;
    let at = |needle: &str| nth_line(&text, needle, 0);
    let expected = [
        (
            "`max_connections` must be between 1 and 4096",
            at("max_connections = 0"),
        ),
        (
            "`unverified_per_second` must be between 1 and 1000000",
            at("unverified_per_second"),
        ),
        (
            "issuer `https://p.test` is given to two providers",
            nth_line(&text, "issuer = \"https://p.test\"", 1),
        ),
        (
            "`tenant_tag` `team` is not one of this role's `session_tags`",
            at("tenant_tag"),
        ),
        (
            "`sessions_not_before` `yesterday` is not an RFC 3339 time",
            at("sessions_not_before"),
        ),
        (
            "`accept_tags_claim` reads a provider's tokens",
            at("name = \"by-key\""),
        ),
    ];
    assert_errors_at(&errors, &expected);
    assert_eq!(
        errors.iter().filter(|d| d.is_error()).count(),
        expected.len(),
        "nothing else is reported: {errors:#?}"
    );
    let good = sts
        .replace("unverified_per_second = 0\n", "")
        .replace(
            "tenant_tag = \"team\"",
            "tenant_tag = \"ns\"\naccept_tags_claim = true",
        )
        .replace("\"yesterday\"", "\"2026-01-31T12:00:00Z\"")
        .replace(
            "issuer = \"https://p.test\"\naudiences = [\"b\"]",
            "issuer = \"https://q.test\"\naudiences = [\"b\"]",
        )
        .replace(
            "name = \"by-key\"\naccept_tags_claim = true\n",
            "name = \"by-key\"\n",
        );
    let (path, _) = example_edited(dir.path(), |t| format!("{t}{good}"));
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    let sts = config.sts.unwrap();
    let role = sts.roles.iter().find(|r| r.name == "r").unwrap();
    assert_eq!(role.tenant_tag.as_deref(), Some("ns"));
    assert!(role.accept_tags_claim);
    assert_eq!(
        role.sessions_not_before,
        Some(std::time::UNIX_EPOCH + Duration::from_secs(1_769_860_800))
    );
    assert_eq!(
        sts.unverified_rate,
        crate::quota::gcra::Rate::new(100.0, 100)
    );
}

#[test]
fn upstream_credentials_come_from_the_chain_unless_a_key_is_given() {
    use crate::credentials::{AssumeRole, Source};
    let dir = tempfile::tempdir().unwrap();
    let upstream = |lines: &'static str| {
        move |t: String| {
            let start = t.find("[upstream]").unwrap();
            let end = t[start..].find("\n[").unwrap() + start;
            format!(
                "{}[upstream]\nendpoint = \"https://swf.us-east-1.amazonaws.com\"\n{lines}\n{}",
                &t[..start],
                &t[end + 1..]
            )
        }
    };
    // Nothing given: the chain.
    let (path, _) = example_edited(dir.path(), upstream(""));
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.upstream.credentials.source, Source::Chain);
    assert_eq!(config.upstream.credentials.assume, None);
    // A role on top, with the default session name.
    let (path, _) = example_edited(
        dir.path(),
        upstream("credentials = \"chain\"\nrole_arn = \"arn:aws:iam::210987654321:role/swf-warden\"\nexternal_id = \"tenant-platform\""),
    );
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        config.upstream.credentials.assume,
        Some(AssumeRole {
            role_arn: "arn:aws:iam::210987654321:role/swf-warden".into(),
            external_id: Some("tenant-platform".into()),
            session_name: "swf-warden".into(),
        })
    );
    // A key given: static, its id from a file too.
    write(dir.path(), "upstream-id", "AKIDFROMFILE\n");
    write(dir.path(), "upstream-secret", "s3cret\n");
    let (path, _) = example_edited(
        dir.path(),
        upstream(
            "access_key_id_file = \"upstream-id\"\nsecret_access_key_file = \"upstream-secret\"",
        ),
    );
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    let Source::Static { access_key_id, .. } = &config.upstream.credentials.source else {
        panic!("{:?}", config.upstream.credentials);
    };
    assert_eq!(access_key_id.value.expose(), "AKIDFROMFILE");
    assert!(
        !config
            .warnings
            .iter()
            .any(|w| w.message.contains("upstream")),
        "{:?}",
        config.warnings
    );

    // Every mistake, each at its line.
    let (path, text) = example_edited(
        dir.path(),
        upstream("credentials = \"instance\"\nrole_arn = \"arn:aws:iam::12345:user/x\"\nsession_name = \"x\""),
    );
    let errors = load(&path).unwrap_err().0;
    let at = |needle: &str| nth_line(&text, needle, 0);
    assert_errors_at(
        &errors,
        &[
            (
                "`credentials` must be \"chain\" or \"static\", not `instance`",
                at("credentials = "),
            ),
            ("is not a role ARN", at("role_arn")),
            ("`session_name` must be 2 to 64", at("session_name")),
        ],
    );
    let (path, text) = example_edited(
        dir.path(),
        upstream("credentials = \"chain\"\naccess_key_id = \"AKIDX\"\nexternal_id = \"abc\""),
    );
    let errors = load(&path).unwrap_err().0;
    let at = |needle: &str| nth_line(&text, needle, 0);
    assert_errors_at(
        &errors,
        &[
            (
                "`access_key_id` is for static credentials",
                at("access_key_id"),
            ),
            ("`external_id` goes with `role_arn`", at("external_id")),
        ],
    );
    let (path, text) = example_edited(
        dir.path(),
        upstream("credentials = \"static\"\nsecret_access_key = \"inline\""),
    );
    let errors = load(&path).unwrap_err().0;
    assert_errors_at(
        &errors,
        &[(
            "static credentials need `access_key_id`",
            nth_line(&text, "credentials = ", 0),
        )],
    );
}

#[test]
fn tracing_has_defaults_and_every_mistake_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = example_edited(dir.path(), |t| {
        format!("{t}\n[tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\n")
    });
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    let tracing = config.tracing.expect("[tracing]");
    assert_eq!(tracing.otlp_endpoint, "http://127.0.0.1:4318/");
    assert_eq!(
        (tracing.sample_ratio, tracing.service_name.as_str()),
        (1.0, "swf-warden")
    );
    let (path, text) = example_edited(dir.path(), |t| {
        format!(
            "{t}\n[tracing]\notlp_endpoint = \"udp://collector\"\nsample_ratio = 1.5\n\
             service_name = \"\"\nca_file = \"no-such-ca.pem\"\n"
        )
    });
    let errors = load(&path).unwrap_err().0;
    assert_errors_at(
        &errors,
        &[
            (
                "is not an OTLP/HTTP collector URL",
                nth_line(&text, "udp://collector", 0),
            ),
            (
                "`sample_ratio` must be between 0 and 1",
                nth_line(&text, "sample_ratio = 1.5", 0),
            ),
            (
                "`service_name` must be 1 to 256",
                nth_line(&text, "service_name = \"\"", 0),
            ),
            ("no-such-ca.pem", nth_line(&text, "no-such-ca.pem", 0)),
        ],
    );
    assert!(load(
        &example_edited(dir.path(), |t| format!(
            "{t}\n[tracing]\nsample_ratio = 0.5\n"
        ))
        .0
    )
    .is_err());
}
