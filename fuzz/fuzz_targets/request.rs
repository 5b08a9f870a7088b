//! The request path short of the network, on arbitrary requests: `NAME:VALUE` lines, a blank
//! line, then the body. The header lines go through the verifier as they are (it must not
//! panic). The body, with every `@TOKEN@` in it replaced by a task token the proxy sealed (so
//! that the token operations get past resolution; a `token:VALUE` line gives the upstream token
//! inside it), is then sent as the operation of the `x-amz-target` line (or one picked by the
//! body's first byte), correctly signed, through `handler::prepare_only`: steps 1 to 4 of the
//! handler, returning the body it would forward. Asserts:
//! - a body the strict parser accepts has one reading: its members, written again, are
//!   accepted again as the same members, and no two names at any depth fold alike;
//! - a caller whose policies deny everything never gets a body to forward;
//! - a caller allowed everything gets one exactly when the body parses, its resource resolves
//!   and its decisions pass (nothing else refuses, nothing else lets through);
//! - what is forwarded re-parses to what was authorized: the same members, with the sealed
//!   task token replaced by the upstream token inside it;
//! - the resource authorized is the one the forwarded body names, read here from the member
//!   the operation's resource comes from (`domain`, `name`, `resourceArn`), and for a token
//!   operation is the domain the token was sealed to, whose upstream token is what is sent on.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use swf_warden::app::App;
use swf_warden::handler::{self, Peer};
use swf_warden::resolve;
use swf_warden::secret::Secret;
use swf_warden::sigv4::signer::Signer;
use swf_warden::sigv4::{Credential, Verifier};
use swf_warden::swf::{self, Operation, ResourceSource};

/// The domain every `@TOKEN@` is sealed to.
const TOKEN_DOMAIN: &str = "tenant-fuzz";
const PLACEHOLDER: &[u8] = b"@TOKEN@";
const HOST: &str = "127.0.0.1:8080";
const PRINCIPAL_ARN: &str = "arn:aws:iam::123456789012:user/u";

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A proxy generation: a caller allowed everything and one denied everything.
struct Harness {
    app: App,
    allowed: Signer,
    denied: Signer,
}

impl Harness {
    fn get() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(|| {
            // `config::load` reads files; they are needed only while it runs.
            let dir = std::env::temp_dir().join(format!("swf-warden-fuzz-request-{}", std::process::id()));
            std::fs::create_dir_all(dir.join("policies")).unwrap();
            let statement = |effect: &str| {
                format!("Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"{effect}\"\nAction = \"swf:*\"\nResource = \"*\"\n")
            };
            std::fs::write(dir.join("policies/everything.toml"), statement("Allow")).unwrap();
            std::fs::write(dir.join("policies/nothing.toml"), statement("Deny")).unwrap();
            std::fs::write(
                dir.join("config.toml"),
                "[listen]\naddress = \"127.0.0.1:0\"\n\
                 [service]\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\n\
                 [upstream]\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id = \"AKIDUPSTREAM\"\nsecret_access_key = \"u\"\n\
                 [task_tokens]\nkeys = [{ id = \"k1\", secret = \"fuzz-token-key-0123456789abcdefghij\" }]\n\
                 [audit]\npath = \"-\"\n[policies]\ndir = \"policies\"\n\
                 [[principal]]\nname = \"allowed\"\naccess_key_id = \"AKIAFUZZALLOWED00001\"\nsecret_access_key = \"allowed-secret\"\npolicies = [\"everything\"]\n\
                 [[principal]]\nname = \"denied\"\naccess_key_id = \"AKIAFUZZDENIED000001\"\nsecret_access_key = \"denied-secret\"\npolicies = [\"everything\", \"nothing\"]\n",
            )
            .unwrap();
            let config = swf_warden::config::load(&dir.join("config.toml"));
            let _ = std::fs::remove_dir_all(&dir);
            let config = config.unwrap_or_else(|e| panic!("harness config: {e:?}"));
            let signer = |key: &str, secret: &str| Signer::new(key, Secret::new(secret), None, "us-east-1");
            Harness {
                app: App::standalone(config).expect("harness app"),
                allowed: signer("AKIAFUZZALLOWED00001", "allowed-secret"),
                denied: signer("AKIAFUZZDENIED000001", "denied-secret"),
            }
        })
    }

    /// Steps 1 to 4 for `body` sent as `op`, signed by `signer`: the body to forward, if any.
    fn prepare(&self, signer: &Signer, op: Operation, body: &[u8]) -> Option<Bytes> {
        let target = format!("SimpleWorkflowService.{}", op.name());
        let signature = signer.sign(HOST.as_bytes(), target.as_bytes(), body, now());
        let request = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("content-type", "application/x-amz-json-1.0")
            .header("host", HOST)
            .header("x-amz-date", signature.amz_date)
            .header("x-amz-target", target)
            .header("authorization", signature.authorization)
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let peer = Peer {
            addr: "127.0.0.1:50000".parse().unwrap(),
            secure: false,
        };
        handler::prepare_only(&self.app, &parts, Bytes::copy_from_slice(body), peer, now()).ok()
    }
}

/// Whether no object at any depth of `value` has two member names equal under folding.
fn single_reading(value: &Value) -> bool {
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
        Value::Object(map) => {
            let mut folded: Vec<String> = map.keys().map(|k| fold(k)).collect();
            folded.sort();
            folded.windows(2).all(|w| w[0] != w[1]) && map.values().all(single_reading)
        }
        Value::Array(items) => items.iter().all(single_reading),
        _ => true,
    }
}

struct Holder(Credential);
impl AsRef<Credential> for Holder {
    fn as_ref(&self) -> &Credential {
        &self.0
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let (head, body) = (&data[..split], data.get(split + 2..).unwrap_or(&[]));
    let mut builder = http::Request::builder().method("POST").uri("/");
    let mut target = Vec::new();
    let mut upstream_token =
        "AAAAKgAAAAEAAAAAAAAAAm upstream/token+\"odd\"\\chars\u{1}\u{2028}".to_owned();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name == b"token" {
            upstream_token = String::from_utf8_lossy(value).into_owned();
        }
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        if name == "x-amz-target" {
            target = value.as_bytes().to_vec();
        }
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();

    let verifier = Verifier::swf("us-east-1", Duration::from_secs(900));
    let holder = Holder(Credential::new("AKIDEXAMPLE", Secret::new("secret")));
    let _ = verifier.verify(&parts, body, now(), |_| Some(&holder));

    let h = Harness::get();
    let op = swf::operation(&target).unwrap_or(
        Operation::ALL[body.first().copied().unwrap_or(0) as usize % Operation::ALL.len()],
    );
    let sealed = h.app.sealer.seal(TOKEN_DOMAIN, &upstream_token);
    let body = replace_all(body, PLACEHOLDER, sealed.as_bytes());

    let allowed = h.prepare(&h.allowed, op, &body);
    assert!(
        h.prepare(&h.denied, op, &body).is_none(),
        "forwarded under an explicit deny"
    );

    let parsed = swf::parse(op, &body);
    if let Ok(parsed) = &parsed {
        let again = serde_json::to_vec(&parsed.input).expect("members serialize");
        let reparsed = swf::parse(op, &again).expect("accepted members are accepted again");
        assert_eq!(reparsed.input, parsed.input);
        // A lax reader (case-insensitive, Unicode-folded) finds one member per name at every
        // depth of an accepted body: no two of its names fold alike.
        assert!(
            single_reading(&Value::Object(parsed.input.clone())),
            "{parsed:?}"
        );
    }
    let resolved = parsed
        .as_ref()
        .ok()
        .and_then(|p| resolve::resolve(&h.app.service, &h.app.sealer, p, PRINCIPAL_ARN).ok());
    let passes = match (&parsed, &resolved) {
        (Ok(p), Some(r)) => {
            assert!(r.resource.starts_with("arn:"));
            resolve::decisions(p, h.app.max_decisions).is_ok()
        }
        _ => false,
    };
    assert_eq!(
        allowed.is_some(),
        passes,
        "allowed everything, forwarded: {}, checks pass: {passes}",
        allowed.is_some()
    );

    let (Some(forwarded), Ok(parsed), Some(resolved)) = (allowed, parsed, resolved) else {
        return;
    };
    let mut authorized = parsed.input.clone();
    if let Some(upstream) = &resolved.upstream_token {
        authorized.insert("taskToken".into(), Value::String(upstream.clone()));
    }
    let sent_on = swf::parse(op, &forwarded).expect("the forwarded body parses");
    assert_eq!(
        sent_on.input, authorized,
        "forwarded members differ from the authorized ones"
    );
    // The resource authorized is the one the forwarded body names (for a token operation: the
    // domain sealed into the token the client sent, whose upstream token is what goes on).
    let service = &h.app.service;
    let named = |member: &str| match sent_on.input.get(member) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("authorized {op:?} without a string `{member}`: {other:?}"),
    };
    let expected = match op.resource_source() {
        ResourceSource::Domain => service.domain_arn(&named("domain")),
        ResourceSource::DomainName => service.domain_arn(&named("name")),
        ResourceSource::AllDomains => service.domain_arn("*"),
        ResourceSource::ResourceArn => named("resourceArn"),
        ResourceSource::TaskToken => {
            assert_eq!(
                named("taskToken"),
                upstream_token,
                "forwarded another upstream token"
            );
            service.domain_arn(TOKEN_DOMAIN)
        }
    };
    assert_eq!(
        resolved.resource, expected,
        "authorized another resource than the forwarded body names"
    );
});
