//! The STS's parsers and session tokens (`src/sts/`) against inputs an attacker controls:
//! the form of a Query API call and the session token of a signed call. The input is a form
//! body, a session token to try, and (split) the names and tags of a session to issue; its
//! last bytes pick one byte of an issued token to change. Asserts:
//! - any form parses or is refused without a panic, and one that parses has one reading: its
//!   parameters, encoded again, parse to the same parameters; a web-identity request read
//!   from it keeps within its bounds (duration, session name);
//! - arbitrary text never opens as a session (nothing here shows the fuzzer a whole token);
//! - a session issued opens, under the issuing keys and under a rotation that keeps them, to
//!   exactly what went in, with the same access key id and secret;
//! - an issued token with any one byte changed does not open, nor does it under other keys.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use swf_warden::secret::Secret;
use swf_warden::sts::query::{Action, Form, RoleRequest};
use swf_warden::sts::session::{Session, SessionKeys};

struct Keys {
    issuing: SessionKeys,
    rotated: SessionKeys,
    stranger: SessionKeys,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let set = |list: &[(&str, &str)]| {
            let owned: Vec<(String, Secret)> = list
                .iter()
                .map(|(id, s)| (id.to_string(), Secret::new(s.repeat(32))))
                .collect();
            SessionKeys::new(&owned)
        };
        Keys {
            issuing: set(&[("s1", "a")]),
            rotated: set(&[("s2", "b"), ("s1", "a")]),
            stranger: set(&[("s1", "c")]),
        }
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Text of at most `max` bytes from `bytes`, cut at a character boundary.
fn text(bytes: &[u8], max: usize) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let mut end = lossy.len().min(max);
    while !lossy.is_char_boundary(end) {
        end -= 1;
    }
    lossy[..end].to_owned()
}

fuzz_target!(|data: &[u8]| {
    // The form.
    if let Ok(form) = Form::parse(data) {
        let mut again = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form.params() {
            again.append_pair(k, v);
        }
        let reparsed = Form::parse(again.finish().as_bytes()).expect("a re-encoded form parses");
        assert!(form.params().eq(reparsed.params()), "one reading");
        let max = Duration::from_secs(7200);
        for action in [Action::AssumeRoleWithWebIdentity, Action::AssumeRole] {
            if let Ok(request) = RoleRequest::from_form(&form, action, max) {
                assert!(request.duration >= Duration::from_secs(900) && request.duration <= max);
                assert!((2..=64).contains(&request.session_name.len()));
            }
        }
    }
    let k = keys();
    // Arbitrary text as a session token.
    let token = String::from_utf8_lossy(data);
    assert!(k.issuing.open(&token, now()).is_err(), "forged: {token:?}");

    // A session made of the input, issued and opened.
    let parts: Vec<&[u8]> = data.split(|b| *b == b'|').collect();
    let tags: BTreeMap<String, String> = parts
        .iter()
        .skip(2)
        .take(50)
        .map(|p| {
            let (k, v) = p.split_at(p.len() / 2);
            (text(k, 128), text(v, 256))
        })
        .collect();
    let session = Session {
        role: text(parts.first().copied().unwrap_or_default(), 64),
        name: text(parts.get(1).copied().unwrap_or_default(), 64),
        expires: now() + Duration::from_secs(3600),
        issued: now(),
        tags,
    };
    let issued = k.issuing.issue(&session);
    for opener in [&k.issuing, &k.rotated] {
        let (opened, id, secret) = opener
            .open(&issued.session_token, now())
            .expect("an issued session opens");
        assert_eq!(opened, session);
        assert_eq!(id, issued.access_key_id);
        assert_eq!(secret.expose(), issued.secret_access_key.expose());
    }
    assert!(k.stranger.open(&issued.session_token, now()).is_err());
    // One byte changed.
    if let [.., at_hi, at_lo, with] = data {
        let mut bytes = issued.session_token.clone().into_bytes();
        let at = usize::from(u16::from_be_bytes([*at_hi, *at_lo])) % bytes.len();
        let new = if *with == bytes[at] { with.wrapping_add(1) } else { *with };
        bytes[at] = new;
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        if changed != issued.session_token {
            assert!(k.issuing.open(&changed, now()).is_err(), "changed at {at}");
        }
    }
});
