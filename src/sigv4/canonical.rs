//! SigV4's pure functions: the canonical request (hashed as it is written, no buffer), the
//! string to sign, and the derived signing key. Tested against AWS's published example.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// HMAC-SHA256; a keyed instance holds the key's inner and outer hash states, so cloning
/// one saves the two key blocks every fresh HMAC would hash.
pub type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key`, ready to clone for each message.
pub fn keyed(key: &[u8]) -> HmacSha256 {
    // An HMAC key may have any length, so `new_from_slice` cannot fail here.
    HmacSha256::new_from_slice(key).expect("hmac accepts any key length")
}

/// One signed header: its lowercase name and every value it carried, in order.
pub struct CanonicalHeader<'a> {
    pub name: &'a str,
    pub values: Vec<&'a [u8]>,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// HMAC-SHA256.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&k_secret, date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Hex SHA-256 of the canonical request:
/// `METHOD\nPATH\nQUERY\nname:value\n…\n\nsigned;headers\npayload-hash`.
pub fn canonical_request_hash(
    method: &str,
    path: &str,
    query: &str,
    headers: &[CanonicalHeader<'_>],
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    let mut h = CanonicalHasher::new(method, path, query);
    for header in headers {
        h.header(header.name, header.values.iter().copied());
    }
    let hex = h.finish(signed_headers, payload_hash.as_bytes());
    String::from_utf8_lossy(&hex).into_owned()
}

/// The canonical request, hashed as it is written: no buffer, no allocation.
pub struct CanonicalHasher(Sha256);

impl CanonicalHasher {
    pub fn new(method: &str, path: &str, query: &str) -> CanonicalHasher {
        let mut h = Sha256::new();
        for part in [method, "\n", path, "\n", query, "\n"] {
            h.update(part.as_bytes());
        }
        CanonicalHasher(h)
    }

    /// One signed header with every value it carried, joined by commas; false if it had none.
    pub fn header<'v>(&mut self, name: &str, values: impl Iterator<Item = &'v [u8]>) -> bool {
        let h = &mut self.0;
        h.update(name.as_bytes());
        h.update(b":");
        let mut any = false;
        for value in values {
            if any {
                h.update(b",");
            }
            update_trimmed(h, value);
            any = true;
        }
        h.update(b"\n");
        any
    }

    /// The hex hash, given the signed header list and the payload's hex hash.
    pub fn finish(mut self, signed_headers: &str, payload_hash: &[u8]) -> [u8; 64] {
        for part in [&b"\n"[..], signed_headers.as_bytes(), b"\n", payload_hash] {
            self.0.update(part);
        }
        hex64(&self.0.finalize().into())
    }
}

/// Lowercase hex of 32 bytes, on the stack.
pub fn hex64(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(bytes, &mut out);
    out
}

/// The signature bytes of the string to sign, fed piece by piece to HMAC under the (keyed)
/// signing key.
pub fn signature_bytes(
    signing_key: &HmacSha256,
    amz_date: &str,
    scope: &str,
    canonical_request_hash: &[u8],
) -> [u8; 32] {
    let mut mac = signing_key.clone();
    for part in [
        &b"AWS4-HMAC-SHA256\n"[..],
        amz_date.as_bytes(),
        b"\n",
        scope.as_bytes(),
        b"\n",
        canonical_request_hash,
    ] {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Feeds a header value with leading/trailing whitespace removed and inner runs of
/// whitespace collapsed to one space, as SigV4's canonical form requires.
fn update_trimmed(h: &mut Sha256, value: &[u8]) {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    let mut in_space = false;
    let mut run_start = start;
    for i in start..end {
        if is_space(&value[i]) {
            if !in_space {
                h.update(&value[run_start..i]);
                h.update(b" ");
                in_space = true;
            }
        } else if in_space {
            run_start = i;
            in_space = false;
        }
    }
    if !in_space {
        h.update(&value[run_start..end]);
    }
}

/// The SigV4 string to sign.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request_hash: &str) -> String {
    format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{canonical_request_hash}")
}

/// Hex signature of `string_to_sign` under `signing_key`.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(signing_key, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (IAM `ListUsers`, 2015-08-30), from the SigV4 reference.
    #[test]
    fn matches_aws_documented_example() {
        let headers = [
            CanonicalHeader {
                name: "content-type",
                values: vec![b"application/x-www-form-urlencoded; charset=utf-8"],
            },
            CanonicalHeader {
                name: "host",
                values: vec![b"iam.amazonaws.com"],
            },
            CanonicalHeader {
                name: "x-amz-date",
                values: vec![b"20150830T123600Z"],
            },
        ];
        let creq = canonical_request_hash(
            "GET",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &headers,
            "content-type;host;x-amz-date",
            &sha256_hex(b""),
        );
        assert_eq!(
            creq,
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/iam/aws4_request",
            &creq,
        );
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            signature(&key, &sts),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    fn trimmed(value: &str) -> String {
        // Hash the header alone and compare with the hash of the expected text.
        let mut a = Sha256::new();
        update_trimmed(&mut a, value.as_bytes());
        hex::encode(a.finalize())
    }

    #[test]
    fn trims_and_collapses_whitespace() {
        for (raw, expected) in [
            ("  a   b  c ", "a b c"),
            ("\tvalue\t", "value"),
            ("", ""),
            ("   ", ""),
            ("x", "x"),
            ("a \t b", "a b"),
        ] {
            assert_eq!(trimmed(raw), sha256_hex(expected.as_bytes()), "{raw:?}");
        }
    }
}
