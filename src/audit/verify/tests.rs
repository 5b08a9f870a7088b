use super::*;
use crate::audit::chain::State;
use crate::audit::checkpoint::{generate, SigningKey};

/// A log of `n` records with a checkpoint every `every` lines (and one at the end), signed by
/// `key`: its lines, and the public key.
fn log(n: u64, every: u64) -> (Vec<Vec<u8>>, PublicKey, SigningKey) {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = generate().unwrap();
    std::fs::write(dir.path().join("k1.key"), private).unwrap();
    let key = SigningKey::read("k1", &dir.path().join("k1.key")).unwrap();
    let mut state = State::genesis("log-1".into());
    let mut lines = vec![state.chain(br#""log":{"id":"log-1","started":"t"}}"#)];
    let mut since = 1;
    for i in 0..n {
        lines.push(
            state.chain(format!(r#""decision":"implicitDeny","requestId":"r{i}"}}"#).as_bytes()),
        );
        since += 1;
        if since >= every || i + 1 == n {
            let c = key.sign(
                &state.log,
                state.seq,
                &state.hash,
                "2026-12-06T00:00:00.000Z".into(),
            );
            let fields = serde_json::to_vec(&serde_json::json!({ "checkpoint": c })).unwrap();
            lines.push(state.chain(&fields[1..]));
            since = 0;
        }
    }
    (lines, PublicKey::parse(&public).unwrap(), key)
}

fn options(key: &PublicKey) -> Options {
    Options {
        keys: HashMap::from([("k1".to_owned(), key.clone())]),
        ..Options::default()
    }
}

fn run(files: &[(&str, Vec<u8>)], options: &Options) -> Report {
    verify(
        files
            .iter()
            .map(|(name, bytes)| {
                let reader: Box<dyn BufRead> = Box::new(std::io::Cursor::new(bytes.clone()));
                (name.to_string(), reader)
            })
            .collect(),
        options,
    )
}

fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = lines.join(&b'\n');
    out.push(b'\n');
    out
}

#[test]
fn a_whole_log_is_intact_and_rotated_files_are_ordered() {
    let (lines, key, _) = log(30, 10);
    let report = run(&[("audit.log", joined(&lines))], &options(&key));
    assert!(report.intact(), "{}", report.text());
    assert_eq!(report.lines, lines.len() as u64);
    assert_eq!(report.checkpoints, 4);
    assert_eq!(report.log.as_deref(), Some("log-1"));
    // Split in three, given in any order.
    let report = run(
        &[
            ("audit.log", joined(&lines[20..])),
            ("audit.log.2", joined(&lines[..8])),
            ("audit.log.1", joined(&lines[8..20])),
        ],
        &options(&key),
    );
    assert!(report.intact(), "{}", report.text());
    assert_eq!(report.files[0].file, "audit.log.2");
    assert!(report.text().ends_with("intact\n"));
}

#[test]
fn each_tampering_is_named_with_its_seq() {
    let (lines, key, _) = log(30, 10);
    let opts = options(&key);
    let check = |edited: Vec<Vec<u8>>, kind: Kind, seq: u64| {
        let report = run(&[("audit.log", joined(&edited))], &opts);
        let f = report
            .failure
            .clone()
            .unwrap_or_else(|| panic!("not caught: {}", report.text()));
        assert_eq!((f.kind, f.seq), (kind, Some(seq)), "{}", report.text());
    };
    // One byte changed in the record with seq 5.
    let mut changed = lines.clone();
    let at = changed[4].len() - 3;
    changed[4][at] ^= 1;
    check(changed, Kind::Changed, 5);
    // A line removed.
    let mut removed = lines.clone();
    removed.remove(6);
    check(removed, Kind::Removed, 8);
    // A forged line inserted (its own seq and prev made up as well as may be).
    let mut inserted = lines.clone();
    let mut forger = State {
        log: "log-1".into(),
        seq: 6,
        hash: hash_hex(&lines[5]),
    };
    inserted.insert(6, forger.chain(br#""decision":"allowed"}"#));
    check(inserted, Kind::Inserted, 7);
    // Two lines swapped.
    let mut swapped = lines.clone();
    swapped.swap(9, 10);
    check(swapped, Kind::Reordered, 11);
}

#[test]
fn a_recomputed_chain_is_caught_by_the_checkpoints() {
    let (lines, key, _) = log(30, 10);
    // Someone without the key edits seq 3 and rechains everything after it.
    let mut state = State {
        log: "log-1".into(),
        seq: 2,
        hash: hash_hex(&lines[1]),
    };
    let mut forged: Vec<Vec<u8>> = lines[..2].to_vec();
    for (i, line) in lines[2..].iter().enumerate() {
        let text = String::from_utf8(line.clone()).unwrap();
        let fields = &text[text.find(",\"prev\":\"").unwrap() + 75..];
        let fields = if i == 0 {
            fields.replace("implicitDeny", "allowed")
        } else {
            fields.to_owned()
        };
        forged.push(state.chain(fields.as_bytes()));
    }
    let report = run(&[("audit.log", joined(&forged))], &options(&key));
    let f = report.failure.unwrap();
    assert_eq!(f.kind, Kind::BadSignature, "{}", f.message);
}

#[test]
fn unknown_keys_missing_files_and_a_cut_tail_are_caught() {
    let (lines, key, _) = log(30, 10);
    let (_, other) = generate().unwrap();
    let wrong = Options {
        keys: HashMap::from([("k2".to_owned(), PublicKey::parse(&other).unwrap())]),
        ..Options::default()
    };
    let report = run(&[("audit.log", joined(&lines))], &wrong);
    assert_eq!(report.failure.unwrap().kind, Kind::UnknownKey);
    // The first lines gone: caught, unless the files are said to begin where they do.
    let report = run(&[("audit.log", joined(&lines[5..]))], &options(&key));
    let f = report.failure.unwrap();
    assert_eq!((f.kind, f.seq), (Kind::Removed, Some(6)), "{}", f.message);
    let expired = Options {
        from: Some(6),
        ..options(&key)
    };
    assert!(run(&[("audit.log", joined(&lines[5..]))], &expired).intact());
    // A rotated file missing between two others.
    let report = run(
        &[
            ("audit.log.2", joined(&lines[..8])),
            ("audit.log", joined(&lines[20..])),
        ],
        &options(&key),
    );
    let f = report.failure.unwrap();
    assert_eq!(
        (f.kind, f.seq),
        (Kind::MissingFile, Some(21)),
        "{}",
        f.message
    );
    // The tail cut after the checkpoint a monitor kept.
    let kept = lines
        .iter()
        .rposition(|l| l.windows(12).any(|w| w == b"\"checkpoint\""))
        .unwrap();
    let monitor = Options {
        monitor: Some(lines[kept].clone()),
        ..options(&key)
    };
    assert!(run(&[("audit.log", joined(&lines))], &monitor).intact());
    let report = run(&[("audit.log", joined(&lines[..kept - 3]))], &monitor);
    assert_eq!(report.failure.unwrap().kind, Kind::Truncated);
}

#[test]
fn a_torn_line_from_a_crash_is_no_tampering() {
    let (lines, key, _) = log(10, 100);
    // The crash cut seq 5 short; the restart closed it and wrote seq 5 again.
    let mut text = joined(&lines[..4]);
    text.extend_from_slice(&lines[4][..30]);
    text.push(b'\n');
    text.extend_from_slice(&joined(&lines[4..]));
    let report = run(&[("audit.log", text)], &options(&key));
    assert!(report.intact(), "{}", report.text());
    assert_eq!(report.torn.len(), 1);
    assert_eq!(report.torn[0].seq, 5);
    // Cut at the very end, before any restart.
    let mut text = joined(&lines[..4]);
    text.extend_from_slice(&lines[4][..50]);
    let report = run(&[("audit.log", text)], &options(&key));
    assert!(report.intact(), "{}", report.text());
    // Garbage is no torn line.
    let mut text = joined(&lines[..4]);
    text.extend_from_slice(b"{\"seq\":99\n");
    text.extend_from_slice(&joined(&lines[4..]));
    assert_eq!(
        run(&[("audit.log", text)], &options(&key))
            .failure
            .unwrap()
            .kind,
        Kind::Inserted
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// One change to a log: a byte changed, a line deleted, a line inserted (a copy of
    /// another, or bytes of any kind), two lines swapped.
    #[derive(Debug, Clone)]
    enum Edit {
        Flip { line: usize, at: usize, bit: u8 },
        Delete { line: usize },
        InsertCopy { line: usize, of: usize },
        InsertBytes { line: usize, bytes: Vec<u8> },
        Swap { a: usize, b: usize },
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), any::<usize>(), 0u8..8).prop_map(|(line, at, bit)| Edit::Flip {
                line,
                at,
                bit
            }),
            any::<usize>().prop_map(|line| Edit::Delete { line }),
            (any::<usize>(), any::<usize>()).prop_map(|(line, of)| Edit::InsertCopy { line, of }),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..80)
            )
                .prop_map(|(line, bytes)| Edit::InsertBytes {
                    line,
                    bytes: bytes.into_iter().filter(|&b| b != b'\n').collect()
                }),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap { a, b }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Whatever one edit does to a signed log whose last checkpoint a monitor kept, the
        /// log is no longer intact.
        #[test]
        fn any_edit_deletion_or_insertion_is_detected(n in 3u64..40, every in 2u64..15, edit in edit()) {
            let (lines, key, _) = log(n, every);
            let monitor = Options { monitor: Some(lines.last().unwrap().clone()), ..options(&key) };
            let mut edited = lines.clone();
            let len = edited.len();
            let changed = match edit.clone() {
                Edit::Flip { line, at, bit } => {
                    let line = line % len;
                    let at = at % edited[line].len();
                    edited[line][at] ^= 1 << bit;
                    true
                }
                Edit::Delete { line } => {
                    edited.remove(line % len);
                    true
                }
                Edit::InsertCopy { line, of } => {
                    let copy = edited[of % len].clone();
                    edited.insert(line % (len + 1), copy);
                    true
                }
                Edit::InsertBytes { line, bytes } => {
                    if bytes.is_empty() { false } else { edited.insert(line % (len + 1), bytes); true }
                }
                Edit::Swap { a, b } => {
                    let (a, b) = (a % len, b % len);
                    edited.swap(a, b);
                    edited[a] != edited[b]
                }
            };
            prop_assume!(changed && edited != lines);
            let report = run(&[("audit.log", joined(&edited))], &monitor);
            prop_assert!(!report.intact(), "{:?} not caught:\n{}", edit, report.text());
        }
    }
}
