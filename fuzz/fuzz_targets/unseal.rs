//! Task token unsealing on arbitrary text never panics and never opens a token it did not
//! seal; anything sealed opens to exactly what went in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swf_warden::secret::Secret;
use swf_warden::tokens::{TokenKey, TokenSealer};

fuzz_target!(|data: &[u8]| {
    let sealer = TokenSealer::new(vec![
        TokenKey::new("k1", &Secret::new("a".repeat(32))),
        TokenKey::new("k0", &Secret::new("b".repeat(32))),
    ]);
    if let Ok(text) = std::str::from_utf8(data) {
        // A random input that opens would be a forged seal.
        assert!(sealer.unseal(text).is_err() || text.starts_with("sw1."));
        let mut mid = text.len() / 2;
        while !text.is_char_boundary(mid) {
            mid -= 1;
        }
        let (domain, token) = text.split_at(mid);
        if domain.len() <= 256 {
            let sealed = sealer.seal(domain, token);
            let opened = sealer.unseal(&sealed).expect("own seal opens");
            assert_eq!(opened.domain, domain);
            assert_eq!(opened.upstream_token, token);
        }
    }
});
