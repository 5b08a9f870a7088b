//! The `Authorization` header parser on arbitrary bytes: never panics, and whatever it
//! accepts has the shape the verifier relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swf_warden::sigv4::authorization;

fuzz_target!(|data: &[u8]| {
    if let Ok(auth) = authorization::parse(data) {
        assert!(!auth.access_key_id.is_empty());
        assert!(!auth.signature.is_empty());
        let names: Vec<&str> = auth.signed_header_names().collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        assert_eq!(auth.scope_text.split('/').count(), 4);
    }
});
