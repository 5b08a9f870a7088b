//! The audit verifier's line reader on any bytes (`audit::verify`): one to three files cut
//! from the input, verified without keys. It never panics, it reads the same bytes the same
//! way twice, a report is intact only with every line accounted for, and a valid log stays
//! valid when split into files anywhere on a line boundary.
#![no_main]

use std::io::BufRead;

use libfuzzer_sys::fuzz_target;
use swf_warden::audit::chain::State;
use swf_warden::audit::verify::{verify, Options};

fn run(files: &[&[u8]]) -> swf_warden::audit::verify::Report {
    verify(
        files
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let reader: Box<dyn BufRead> = Box::new(std::io::Cursor::new(bytes.to_vec()));
                (format!("f{i}"), reader)
            })
            .collect(),
        &Options::default(),
    )
}

fuzz_target!(|data: &[u8]| {
    // Any bytes, in up to three files cut where the first two bytes say.
    let (cuts, rest) = data.split_at(data.len().min(2));
    let a = cuts.first().map_or(0, |&c| usize::from(c) * rest.len() / 256);
    let b = cuts.get(1).map_or(rest.len(), |&c| a + usize::from(c) * (rest.len() - a) / 256);
    let files = [&rest[..a], &rest[a..b], &rest[b..]];
    let report = run(&files);
    assert_eq!(report, run(&files), "one reading");
    if report.intact() {
        let lines: u64 = report.files.iter().map(|f| f.lines).sum();
        assert_eq!(lines, report.lines);
    }
    // A valid log of the input's lines as records, split at a line boundary, verifies.
    let mut state = State::genesis("fuzz".into());
    let mut log = state.chain(br#""log":{"id":"fuzz"}}"#);
    log.push(b'\n');
    for chunk in rest.chunks(7).take(50) {
        let record = serde_json::json!({ "requestId": String::from_utf8_lossy(chunk) });
        let fields = serde_json::to_vec(&record).unwrap();
        log.extend_from_slice(&state.chain(&fields[1..]));
        log.push(b'\n');
    }
    let boundaries: Vec<usize> = log.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1).collect();
    let cut = boundaries[a % boundaries.len()];
    let report = run(&[&log[cut..], &log[..cut]]);
    assert!(report.intact(), "{}", report.text());
});
