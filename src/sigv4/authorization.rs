//! Strict, borrowed parsing of the SigV4 `Authorization` header:
//! `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex`.
//!
//! Anything that is not exactly that shape is refused; nothing here touches secrets.

use crate::error::ProxyError;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The parts of a well-formed `Authorization` header, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    pub scope: Scope<'a>,
    /// The whole `DATE/REGION/SERVICE/TERMINATOR` text, as signed.
    pub scope_text: &'a str,
    /// Lowercase header names, sorted and unique.
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

/// The credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope<'a> {
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
}

impl<'a> Authorization<'a> {
    /// The signed header names, in order.
    pub fn signed_header_names(&self) -> impl Iterator<Item = &'a str> {
        self.signed_headers.split(';')
    }

    pub fn signs(&self, name: &str) -> bool {
        self.signed_header_names().any(|h| h == name)
    }
}

fn incomplete(message: impl Into<String>) -> ProxyError {
    ProxyError::IncompleteSignature(message.into())
}

/// Parses the header value. Errors are `IncompleteSignatureException`, as in AWS.
pub fn parse(value: &[u8]) -> Result<Authorization<'_>, ProxyError> {
    let value = std::str::from_utf8(value)
        .map_err(|_| incomplete("Authorization header is not valid UTF-8."))?;
    let (algorithm, rest) = value
        .split_once(' ')
        .ok_or_else(|| incomplete("Authorization header is malformed."))?;
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'.",
            crate::error::excerpt(algorithm)
        )));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_start_matches(' ');
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| incomplete("Authorization header is malformed."))?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(incomplete("Authorization header has an unknown parameter.")),
        };
        if slot.replace(val).is_some() {
            return Err(incomplete(format!(
                "Authorization header repeats the '{key}' parameter."
            )));
        }
    }
    let mut missing = Vec::new();
    for (name, slot) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if slot.is_none_or(|v| v.is_empty()) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(missing.join(" ")));
    }
    let (credential, signed_headers, signature) = (
        credential.unwrap_or_default(),
        signed_headers.unwrap_or_default(),
        signature.unwrap_or_default(),
    );

    let (access_key_id, scope_text) = credential.split_once('/').ok_or_else(|| {
        incomplete(
            "Credential should be of the form 'ACCESS_KEY/DATE/REGION/SERVICE/aws4_request'.",
        )
    })?;
    let parts: Vec<&str> = scope_text.split('/').collect();
    let [date, region, service, terminator] = parts[..] else {
        return Err(incomplete(
            "Credential should be of the form 'ACCESS_KEY/DATE/REGION/SERVICE/aws4_request'.",
        ));
    };
    if access_key_id.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err(incomplete(
            "Credential should be of the form 'ACCESS_KEY/DATE/REGION/SERVICE/aws4_request'.",
        ));
    }

    check_signed_headers(signed_headers)?;
    Ok(Authorization {
        access_key_id,
        scope: Scope {
            date,
            region,
            service,
            terminator,
        },
        scope_text,
        signed_headers,
        signature,
    })
}

/// SignedHeaders must be lowercase header names, sorted, without repeats: that is how every
/// SDK writes them, and it makes the canonical header block unambiguous.
fn check_signed_headers(list: &str) -> Result<(), ProxyError> {
    let mut previous: Option<&str> = None;
    for name in list.split(';') {
        let valid = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
            });
        if !valid {
            return Err(incomplete(
                "SignedHeaders must be lowercase header names separated by ';'.",
            ));
        }
        if previous.is_some_and(|p| p >= name) {
            return Err(incomplete("SignedHeaders must be sorted and unique."));
        }
        previous = Some(name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/swf/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    fn kind(err: ProxyError) -> &'static str {
        err.wire().short_name()
    }

    #[test]
    fn parses_a_well_formed_header() {
        let a = parse(GOOD.as_bytes()).unwrap();
        assert_eq!(a.access_key_id, "AKIDEXAMPLE");
        assert_eq!(a.scope.date, "20150830");
        assert_eq!(a.scope.region, "us-east-1");
        assert_eq!(a.scope.service, "swf");
        assert_eq!(a.scope.terminator, "aws4_request");
        assert_eq!(a.scope_text, "20150830/us-east-1/swf/aws4_request");
        assert!(a.signs("host") && !a.signs("hos"));
        assert_eq!(a.signature.len(), 64);
    }

    /// Header names may carry digits, `-`, `_` and `.` (all HTTP token characters SDKs use).
    #[test]
    fn signed_header_names_take_digits_dashes_underscores_and_dots() {
        let header = GOOD.replace(
            "SignedHeaders=content-type;host;",
            "SignedHeaders=content-type;host;x-1.b;x-1_b;",
        );
        let a = parse(header.as_bytes()).unwrap();
        assert!(a.signs("x-1.b") && a.signs("x-1_b"));
        for name in ["x-1 b", "x-1:b", "x-1/b"] {
            let header = GOOD.replace(
                "SignedHeaders=content-type;",
                &format!("SignedHeaders=content-type;{name};"),
            );
            assert!(parse(header.as_bytes()).is_err(), "{name}");
        }
    }

    #[test]
    fn refuses_malformed_headers() {
        let cases = [
            "",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA1 Credential=A/20150830/us-east-1/swf/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/swf/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830//swf/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request/x, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request, Credential=B/20150830/us-east-1/swf/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request, SignedHeaders=host, Signature=00, Extra=1",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request, SignedHeaders=Host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request, SignedHeaders=x-amz-date;host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request, SignedHeaders=host;host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request, SignedHeaders=host;;x, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request, SignedHeaders=, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request SignedHeaders=host Signature=00",
        ];
        for case in cases {
            let err = parse(case.as_bytes()).expect_err(case);
            assert_eq!(kind(err), "IncompleteSignatureException", "{case}");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn missing_parameters_are_all_named() {
        let err = parse(b"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/swf/aws4_request")
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("'Signature'") && msg.contains("'SignedHeaders'"),
            "{msg}"
        );
    }
}
