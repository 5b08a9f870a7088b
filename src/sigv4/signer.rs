//! Signing the proxy's own requests to the upstream, with the same canonical-request code the
//! verifier uses and a signing key derived once per day. (Our verifier is checked against
//! requests signed by AWS's `aws-sigv4` and the AWS SDK; the fake upstream in the tests
//! verifies this signer's output with that verifier.)

use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::authorization::Scope;
use super::{amz_date, canonical, Credential, SERVICE};
use crate::secret::Secret;

/// The headers a signed upstream request carries.
pub struct Signature {
    pub amz_date: String,
    pub authorization: String,
}

/// The proxy's upstream identity.
#[derive(Debug)]
pub struct Signer {
    credential: Credential,
    region: String,
    session_token: Option<Secret>,
}

impl Signer {
    pub fn new(
        access_key_id: &str,
        secret: Secret,
        session_token: Option<Secret>,
        region: &str,
    ) -> Signer {
        Signer {
            credential: Credential::new(access_key_id, secret),
            region: region.to_owned(),
            session_token,
        }
    }

    /// The access key id it signs as.
    pub fn access_key_id(&self) -> &str {
        &self.credential.access_key_id
    }

    fn session_token(&self) -> Option<&str> {
        self.session_token.as_ref().map(Secret::expose)
    }

    /// Signs `POST /` with `content-type`, `host`, `x-amz-date`, `x-amz-target` (and
    /// `x-amz-security-token` with temporary credentials).
    pub fn sign(&self, host: &[u8], target: &[u8], body: &[u8], now: SystemTime) -> Signature {
        let amz_date = amz_date(now);
        let date = &amz_date[..8];
        let mut scope_text = String::with_capacity(32 + self.region.len());
        for part in [date, "/", &self.region, "/", SERVICE, "/aws4_request"] {
            scope_text.push_str(part);
        }
        let scope = Scope {
            date,
            region: &self.region,
            service: SERVICE,
            terminator: "aws4_request",
        };
        let payload_hash = canonical::hex64(&Sha256::digest(body).into());
        let signed_headers = if self.session_token.is_some() {
            "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        } else {
            "content-type;host;x-amz-date;x-amz-target"
        };
        let mut creq = canonical::CanonicalHasher::new("POST", "/", "");
        creq.header(
            "content-type",
            std::iter::once(&b"application/x-amz-json-1.0"[..]),
        );
        creq.header("host", std::iter::once(host));
        creq.header("x-amz-date", std::iter::once(amz_date.as_bytes()));
        if let Some(token) = self.session_token() {
            creq.header("x-amz-security-token", std::iter::once(token.as_bytes()));
        }
        creq.header("x-amz-target", std::iter::once(target));
        let creq = creq.finish(signed_headers, &payload_hash);
        let key = self.credential.signing_key(&scope, &scope_text);
        let signature = canonical::hex64(&canonical::signature_bytes(
            &key,
            &amz_date,
            &scope_text,
            &creq,
        ));
        let access_key_id = &self.credential.access_key_id;
        // Hex digits are ASCII.
        let signature = std::str::from_utf8(&signature).unwrap_or_default();
        let mut authorization = String::with_capacity(200 + access_key_id.len());
        for part in [
            "AWS4-HMAC-SHA256 Credential=",
            access_key_id,
            "/",
            &scope_text,
            ", SignedHeaders=",
            signed_headers,
            ", Signature=",
            signature,
        ] {
            authorization.push_str(part);
        }
        Signature {
            amz_date,
            authorization,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::Verifier;
    use std::time::{Duration, UNIX_EPOCH};

    struct Holder(Credential);
    impl AsRef<Credential> for Holder {
        fn as_ref(&self) -> &Credential {
            &self.0
        }
    }

    /// The headers aws-sigv4 adds to the request our signer signs in `agrees_with_aws_sigv4`,
    /// sorted by name.
    fn aws_sigv4_headers(
        session_token: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> Vec<(String, String)> {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let identity = Credentials::new(
            "AKIDUPSTREAM",
            "s3cr3t",
            session_token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("swf")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("host", "swf.eu-west-1.amazonaws.com"),
            (
                "x-amz-target",
                "SimpleWorkflowService.RecordActivityTaskHeartbeat",
            ),
        ];
        let signable = SignableRequest::new(
            "POST",
            "https://swf.eu-west-1.amazonaws.com/",
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut theirs: Vec<(String, String)> = instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        theirs.sort();
        theirs
    }

    /// The signer's output matches what aws-sigv4 produces for the same request: the same
    /// headers added, with the same values, and nothing else.
    #[test]
    fn agrees_with_aws_sigv4() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let body = br#"{"taskToken":"t"}"#;
        for token in [None, Some("FQoGZXIvYXdzEJr//session+token/=")] {
            let ours = Signer::new(
                "AKIDUPSTREAM",
                Secret::new("s3cr3t"),
                token.map(Secret::new),
                "eu-west-1",
            )
            .sign(
                b"swf.eu-west-1.amazonaws.com",
                b"SimpleWorkflowService.RecordActivityTaskHeartbeat",
                body,
                now,
            );
            // What the forwarder sends: the signature's two headers, and the token as is.
            let mut expected = vec![
                ("authorization".to_owned(), ours.authorization.clone()),
                ("x-amz-date".to_owned(), ours.amz_date.clone()),
            ];
            if let Some(token) = token {
                expected.push(("x-amz-security-token".to_owned(), token.to_owned()));
                assert!(
                    ours.authorization.contains(
                        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"
                    ),
                    "the token is signed: {}",
                    ours.authorization
                );
            }
            assert_eq!(
                aws_sigv4_headers(token, body, now),
                expected,
                "session token: {token:?}"
            );
        }
    }

    #[test]
    fn the_verifier_accepts_what_the_signer_signs_with_a_session_token() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let signer = Signer::new(
            "AKIDUPSTREAM",
            Secret::new("s"),
            Some(Secret::new("tok")),
            "us-east-1",
        );
        let body = b"{}";
        let sig = signer.sign(b"h:1", b"SimpleWorkflowService.ListDomains", body, now);
        let request = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("content-type", "application/x-amz-json-1.0")
            .header("host", "h:1")
            .header("x-amz-target", "SimpleWorkflowService.ListDomains")
            .header("x-amz-date", &sig.amz_date)
            .header("x-amz-security-token", "tok")
            .header("authorization", &sig.authorization)
            .body(())
            .unwrap();
        let holder = Holder(Credential::new("AKIDUPSTREAM", Secret::new("s")));
        let verifier = Verifier::swf("us-east-1", Duration::from_secs(60));
        let parts = request.into_parts().0;
        assert!(verifier
            .verify_with(&parts, body, now, |_, token| {
                assert_eq!(
                    token,
                    Some(&b"tok"[..]),
                    "the token is handed to the lookup"
                );
                Ok(&holder)
            })
            .is_ok());
        // The static-key path has no session: a token is refused there.
        assert!(matches!(
            verifier.verify(&parts, body, now, |_| Some(&holder)),
            Err(crate::error::ProxyError::UnrecognizedClient)
        ));
    }
}
