//! The request parser, headers and body to resolved request: `NAME:VALUE` lines, a blank
//! line, then the body. Runs the verifier on the headers, then the operation, the strict body
//! parser and the resource resolution on the body, as the handler does. Never panics; a body
//! the strict parser accepts has one reading: its members, written again, are accepted again
//! as the same members (what is forwarded re-parses to what was authorized).
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use swf_warden::config::Service;
use swf_warden::secret::Secret;
use swf_warden::sigv4::{Credential, Verifier};
use swf_warden::swf::{self, Operation};
use swf_warden::tokens::{TokenKey, TokenSealer};
use swf_warden::resolve;

/// Whether no object at any depth of `value` has two member names equal under folding.
fn single_reading(value: &serde_json::Value) -> bool {
    let fold = |k: &str| -> String {
        k.chars()
            .flat_map(char::to_lowercase)
            .map(|c| match c {
                '\u{131}' => 'i',
                '\u{17f}' => 's',
                c => c,
            })
            .collect()
    };
    match value {
        serde_json::Value::Object(map) => {
            let mut folded: Vec<String> = map.keys().map(|k| fold(k)).collect();
            folded.sort();
            folded.windows(2).all(|w| w[0] != w[1]) && map.values().all(single_reading)
        }
        serde_json::Value::Array(items) => items.iter().all(single_reading),
        _ => true,
    }
}

struct Holder(Credential);
impl AsRef<Credential> for Holder {
    fn as_ref(&self) -> &Credential {
        &self.0
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.windows(2).position(|w| w == b"\n\n").unwrap_or(data.len());
    let (head, body) = (&data[..split], data.get(split + 2..).unwrap_or(&[]));
    let mut builder = http::Request::builder().method("POST").uri("/");
    let mut target = Vec::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name), http::HeaderValue::from_bytes(value)) else { continue };
        if name == "x-amz-target" {
            target = value.as_bytes().to_vec();
        }
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(()) else { return };
    let (parts, ()) = request.into_parts();

    let verifier = Verifier::swf("us-east-1", Duration::from_secs(900));
    let holder = Holder(Credential::new("AKIDEXAMPLE", Secret::new("secret")));
    let _ = verifier.verify(&parts, body, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000), |_| Some(&holder));

    let op = swf::operation(&target).unwrap_or(Operation::ALL[body.first().copied().unwrap_or(0) as usize % Operation::ALL.len()]);
    let Ok(parsed) = swf::parse(op, body) else { return };
    let again = serde_json::to_vec(&parsed.input).expect("members serialize");
    let reparsed = swf::parse(op, &again).expect("accepted members are accepted again");
    assert_eq!(reparsed.input, parsed.input);
    // A lax reader (case-insensitive, Unicode-folded) finds one member per name at every
    // depth of an accepted body: no two of its names fold alike.
    assert!(single_reading(&serde_json::Value::Object(parsed.input.clone())), "{parsed:?}");
    let service = Service {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        partition: "aws".into(),
        max_clock_skew: Duration::from_secs(900),
        hosts: Vec::new(),
    };
    let sealer = TokenSealer::new(vec![TokenKey::new("k1", &Secret::new("k".repeat(32)))]);
    if let Ok(resolved) = resolve::resolve(&service, &sealer, &parsed, "arn:aws:iam::123456789012:user/u") {
        assert!(resolved.resource.starts_with("arn:") || op.resource_source() == swf::ResourceSource::ResourceArn);
    }
    let _ = resolve::decisions(&parsed, 1000);
});
