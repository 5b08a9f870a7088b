//! Task token sealing (`src/tokens.rs`) against a forger who controls every byte it sends.
//! The input is both a token to try and, split in two, a domain and upstream token to seal;
//! its last three bytes also pick one byte of a sealed token to change and what to change it
//! to. Asserts:
//! - arbitrary text never opens, unless it is byte-identical to a token this process sealed
//!   (replaying a seal is not forging one);
//! - what the current key seals, and what the older key of the rotation list sealed, opens to
//!   exactly the domain and upstream token that went in;
//! - a token sealed under a key the sealer does not hold does not open: one with an id the
//!   sealer does not know, and one with a known id but another secret;
//! - a sealed token with any one byte changed, in its text or in its decoded bytes, does not
//!   open.
#![no_main]

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use swf_warden::secret::Secret;
use swf_warden::tokens::{TokenKey, TokenSealer};

struct Sealers {
    /// Seals with `k1`, opens `k1` and `k0`: the proxy mid-rotation.
    current: TokenSealer,
    /// The older key alone: what the proxy sealed with before `k1` was added.
    older: TokenSealer,
    /// `k1` as an id, another secret: a deployment the proxy does not trust.
    impostor: TokenSealer,
    /// Hashes of the tokens this process sealed under keys `current` holds, most recent last.
    sealed: Mutex<Recent>,
    hasher: RandomState,
}

/// A bounded record of sealed tokens. A token must have been seen whole to be replayed, and
/// nothing here shows the fuzzer a whole token, so forgetting the oldest cannot hide a forgery
/// in practice; it keeps a long run's memory flat.
#[derive(Default)]
struct Recent {
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

const REMEMBERED: usize = 1 << 20;

impl Sealers {
    fn get() -> &'static Sealers {
        static SEALERS: OnceLock<Sealers> = OnceLock::new();
        SEALERS.get_or_init(|| {
            let key = |id: &str, secret: &str| TokenKey::new(id, &Secret::new(secret.repeat(32)));
            Sealers {
                current: TokenSealer::new(vec![key("k1", "a"), key("k0", "b")]),
                older: TokenSealer::new(vec![key("k0", "b")]),
                impostor: TokenSealer::new(vec![key("k1", "c")]),
                sealed: Mutex::default(),
                hasher: RandomState::new(),
            }
        })
    }

    /// Seals with `sealer` and remembers the token as one of ours.
    fn seal(&self, sealer: &TokenSealer, domain: &str, token: &str) -> String {
        let sealed = sealer.seal(domain, token);
        let hash = self.hasher.hash_one(&sealed);
        let mut recent = self.sealed.lock().unwrap();
        if recent.set.insert(hash) {
            recent.order.push_back(hash);
            if recent.order.len() > REMEMBERED {
                let oldest = recent.order.pop_front().unwrap();
                recent.set.remove(&oldest);
            }
        }
        sealed
    }

    fn sealed_here(&self, text: &str) -> bool {
        let hash = self.hasher.hash_one(text);
        self.sealed.lock().unwrap().set.contains(&hash)
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let s = Sealers::get();

    // A random input that opens is a forged seal.
    if s.current.unseal(text).is_ok() {
        assert!(s.sealed_here(text), "forged: {text:?} opens");
    }
    assert!(
        s.older.unseal(text).is_err() || s.sealed_here(text),
        "forged: {text:?} opens"
    );

    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (domain, token) = text.split_at(mid);
    // The proxy seals only domains SWF accepts: at most 256 characters.
    if domain.chars().count() > 256 {
        return;
    }
    let (pos, delta) = match data {
        [.., a, b, d] => (u16::from_le_bytes([*a, *b]) as usize, (*d).max(1)),
        _ => (data.len(), 1),
    };

    let by_current = s.seal(&s.current, domain, token);
    let by_older = s.seal(&s.older, domain, token);
    for sealed in [&by_current, &by_older] {
        let opened = s
            .current
            .unseal(sealed)
            .expect("a token under a held key opens");
        assert_eq!(opened.domain, domain);
        assert_eq!(opened.upstream_token, token);
        assert_changed_byte_refused(&s.current, sealed, pos, delta);
    }
    assert!(
        s.older.unseal(&by_current).is_err(),
        "opened under a key it does not hold"
    );
    let by_impostor = s.impostor.seal(domain, token);
    assert!(
        s.current.unseal(&by_impostor).is_err(),
        "opened under a secret it does not hold"
    );
});

/// Changes byte `pos` (wrapped) of `sealed` by `delta` (not zero), once in the text and once
/// in the decoded bytes, and asserts that neither opens.
fn assert_changed_byte_refused(sealer: &TokenSealer, sealed: &str, pos: usize, delta: u8) {
    let mut text = sealed.as_bytes().to_vec();
    let i = pos % text.len();
    text[i] ^= delta;
    // A change that leaves UTF-8 cannot be presented as a token at all.
    if let Ok(changed) = std::str::from_utf8(&text) {
        assert!(
            sealer.unseal(changed).is_err(),
            "text byte {i} ^ {delta:#04x} of {sealed} still opens"
        );
    }
    let mut raw = URL_SAFE_NO_PAD
        .decode(&sealed[4..])
        .expect("a sealed token is base64url");
    let i = pos % raw.len();
    raw[i] ^= delta;
    let changed = format!("sw1.{}", URL_SAFE_NO_PAD.encode(&raw));
    assert!(
        sealer.unseal(&changed).is_err(),
        "decoded byte {i} ^ {delta:#04x} of {sealed} still opens"
    );
}
