//! Signing a `POST /` SWF call exactly as an AWS SDK does, with AWS's own `aws-sigv4`. Shared
//! by the tests (`common::Raw`) and, through `#[path]`, the verifier's unit tests, the
//! micro-benchmarks and the benchmark clients in `examples/`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

/// What to sign.
pub struct Call<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
    /// `host:port`, as the `Host` header carries it.
    pub host: &'a str,
    pub target: &'a str,
    /// More headers to send and sign, after the three every call carries.
    pub extra: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The call's headers: `content-type`, `host`, `x-amz-target` and the extra ones, then the
/// ones the signer adds (`x-amz-date`, `authorization`).
pub fn signed_headers(call: &Call<'_>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-type", "application/x-amz-json-1.0"),
        ("host", call.host),
        ("x-amz-target", call.target),
    ];
    headers.extend_from_slice(call.extra);
    let identity = Credentials::new(call.key, call.secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(call.region)
        .name(call.service)
        .time(call.time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let uri = format!("http://{}/", call.host);
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.iter().copied(),
        SignableBody::Bytes(call.body),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    headers
        .into_iter()
        .chain(instructions.headers())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}
