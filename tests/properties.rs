//! Property tests: the wildcard matcher against an obviously-correct reference, sealed tokens
//! round-trip, and no single bit flip in a sealed token is accepted.

use base64::Engine;
use proptest::prelude::*;
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
