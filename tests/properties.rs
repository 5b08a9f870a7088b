//! Property tests: the wildcard matcher against an obviously-correct reference, sealed tokens
//! round-trip, and no single bit flip in a sealed token is accepted.

use base64::Engine;
use proptest::prelude::*;
use serde_json::Value;
use swf_warden::policy::wildcard;
use swf_warden::secret::Secret;
use swf_warden::tokens::{TokenKey, TokenSealer};

/// IAM wildcard semantics, written as directly as possible (exponential, fine for short input).
fn reference(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| reference(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && reference(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
    }
}

fn sealer() -> TokenSealer {
    TokenSealer::new(vec![
        TokenKey::new("k2", &Secret::new("new-key-new-key-new-key-new-key-new")),
        TokenKey::new("k1", &Secret::new("old-key-old-key-old-key-old-key-old")),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn wildcard_matches_the_reference(pattern in "[ab*?ö\\[{\\\\]{0,10}", text in "[abö\\[{\\\\]{0,10}") {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        prop_assert_eq!(wildcard::matches(&pattern, &text), reference(&p, &t), "{} ~ {}", pattern, text);
    }

    #[test]
    fn sealed_tokens_round_trip(domain in "\\PC{1,64}", token in "\\PC{0,300}") {
        let s = sealer();
        let sealed = s.seal(&domain, &token);
        prop_assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        let opened = s.unseal(&sealed).unwrap();
        prop_assert_eq!(opened.domain, domain);
        prop_assert_eq!(opened.upstream_token, token);
    }

    #[test]
    fn any_bit_flip_is_refused(domain in "[a-z-]{1,32}", token in "[A-Za-z0-9+/=]{1,200}", index in any::<prop::sample::Index>(), bit in 0u8..8) {
        let s = sealer();
        let sealed = s.seal(&domain, &token);
        // Flip a bit of the text as sent...
        let mut text = sealed.clone().into_bytes();
        let i = index.index(text.len());
        text[i] ^= 1 << bit;
        if let Ok(text) = String::from_utf8(text) {
            prop_assert!(s.unseal(&text).is_err(), "text bit {} of byte {}", bit, i);
        }
        // ...and of the sealed bytes inside it.
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut raw = engine.decode(&sealed[4..]).unwrap();
        let j = index.index(raw.len());
        raw[j] ^= 1 << bit;
        let forged = format!("sw1.{}", engine.encode(&raw));
        prop_assert!(s.unseal(&forged).is_err(), "raw bit {} of byte {}", bit, j);
    }
}

/// A member name a lax upstream might read as a modeled one: exact, case variants, and the
/// Unicode case-folding decoys (`ı`, `ſ`, `K`).
fn name_variants(modeled: &'static str) -> Vec<String> {
    // The exact name most often, so that many bodies are valid.
    let mut out = vec![modeled.to_owned(); 12];
    out.extend([modeled.to_uppercase(), modeled.to_lowercase()]);
    let mut first_upper = modeled.to_owned();
    first_upper[..1].make_ascii_uppercase();
    out.push(first_upper);
    out.push(modeled.replacen('i', "\u{131}", 1));
    out.push(modeled.replacen('s', "\u{17f}", 1));
    out.push(modeled.replacen('k', "\u{212a}", 1));
    out
}

/// A JSON object written member by member, so that repeated and decoy members survive.
fn object(members: &[(String, String)]) -> String {
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// How a lax reader folds a member name.
fn folded(name: &str) -> String {
    name.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\u{131}' => 'i',
            '\u{17f}' => 's',
            other => other,
        })
        .collect()
}

/// What a lax reader finds under `modeled` among `members`: the first or the last match.
fn lax<'a>(members: &'a [(String, String)], modeled: &str, last: bool) -> Option<&'a String> {
    let mut matches = members
        .iter()
        .filter(|(k, _)| folded(k) == folded(modeled))
        .map(|(_, v)| v);
    if last {
        matches.next_back()
    } else {
        matches.next()
    }
}

/// Any `PollForActivityTask` body the proxy accepts has exactly one reading: whatever a lax
/// upstream takes (case-insensitive, Unicode-folded, first or last of equals) is what the
/// policy saw, and the bytes forwarded re-parse to the same members.
#[test]
fn an_accepted_body_has_one_reading() {
    use proptest::test_runner::{Config, TestRunner};
    use swf_warden::swf::{self, Operation};

    let member = |modeled: &'static str, values: Vec<&'static str>| {
        (
            prop::sample::select(name_variants(modeled)),
            prop::sample::select(values),
        )
    };
    let task_list = prop::collection::vec(
        member("name", vec!["\"public-tl\"", "\"private-tl\""]),
        1..3,
    )
    .prop_map(|m| {
        object(
            &m.into_iter()
                .map(|(k, v)| (k, v.to_owned()))
                .collect::<Vec<_>>(),
        )
    });
    let top = prop::collection::vec(
        prop_oneof![
            member("domain", vec!["\"tenant-a\"", "\"tenant-c\""])
                .prop_map(|(k, v)| (k, v.to_owned())),
            (prop::sample::select(name_variants("taskList")), task_list),
            member("identity", vec!["\"w\""]).prop_map(|(k, v)| (k, v.to_owned())),
        ],
        2..5,
    );
    let mut runner = TestRunner::new(Config {
        cases: 5000,
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = std::cell::Cell::new(0);
    runner
        .run(&top, |members| {
            let body = object(&members);
            let Ok(request) = swf::parse(Operation::PollForActivityTask, body.as_bytes()) else {
                return Ok(());
            };
            accepted.set(accepted.get() + 1);
            let seen_domain = request.input["domain"].to_string();
            let seen_list = request.input["taskList"]["name"].to_string();
            for last in [false, true] {
                prop_assert_eq!(
                    lax(&members, "domain", last),
                    Some(&seen_domain),
                    "{}",
                    body
                );
                let list = lax(&members, "taskList", last).unwrap();
                let list: Value = serde_json::from_str(list).unwrap();
                prop_assert_eq!(list["name"].to_string(), seen_list.clone(), "{}", body);
            }
            let forwarded: Value = serde_json::from_slice(body.as_bytes()).unwrap();
            prop_assert_eq!(&forwarded, &Value::Object(request.input.clone()));
            // Inside `taskList` too, no two member names fold alike.
            let inner: Vec<String> = request.input["taskList"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| folded(k))
                .collect();
            prop_assert_eq!(inner, vec!["name".to_owned()], "{}", body);
            Ok(())
        })
        .unwrap();
    // About 3% of the generated bodies are valid; far fewer would mean the check was vacuous.
    assert!(
        accepted.get() > 60,
        "only {} bodies were accepted",
        accepted.get()
    );
}
