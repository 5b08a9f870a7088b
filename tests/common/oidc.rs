//! A test identity provider: service-account tokens signed with the checked-in test RSA key
//! (`tests/fixtures/oidc`, never used anywhere else), its key set, the proxy's STS settings
//! trusting it, and STS Query API calls as the SDKs send them.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://cluster.test";
pub const AUDIENCE: &str = "swf-warden";
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/swf-worker";
pub const SESSION_KEY: &str = "test-session-key-0123456789abcdefghij";
const RSA_PEM: &str = include_str!("../fixtures/oidc/rsa-2048.pem");
const RSA_JWK: &str = include_str!("../fixtures/oidc/rsa-2048.jwk.json");

/// The provider's key set, written once per test process.
pub fn jwks_path() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("swf-warden-test-jwks-{}.json", std::process::id()));
        let jwk: Value = serde_json::from_str(RSA_JWK).unwrap();
        std::fs::write(&path, json!({ "keys": [jwk] }).to_string()).unwrap();
        path
    })
    .clone()
}

/// `[sts]`, the provider and the `swf-worker` role: any namespace's `swf-worker` service
/// account, tagged with its namespace, under one policy for all (`NAMESPACE_POLICY`).
pub fn sts_config() -> String {
    format!(
        r#"
[sts]
session_keys = [{{ id = "s1", secret = "{SESSION_KEY}" }}]
max_duration_seconds = 7200

[[oidc_provider]]
name = "cluster"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
jwks_file = "{}"

[[role]]
name = "swf-worker"
provider = "cluster"
subjects = ["system:serviceaccount:*:swf-worker"]
session_tags = {{ namespace = "kubernetes.io.namespace" }}
accept_tags_claim = true
groups = ["tenants"]
policies = ["namespace-domains"]
"#,
        jwks_path().display()
    )
}

/// Each namespace's sessions may work in the domain named after it.
pub const NAMESPACE_POLICY: (&str, &str) = (
    "namespace-domains.toml",
    "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"OwnNamespace\"\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/${aws:PrincipalTag/namespace}\"\n",
);

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of a projected service-account token for `account` in `namespace`.
pub fn claims(namespace: &str, account: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": [AUDIENCE],
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
        "iat": now(),
        "nbf": now(),
        "exp": now() + 3600,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": account, "uid": "00000000-0000-0000-0000-000000000001"}
        }
    })
}

/// `claims` signed RS256 with the provider's key, under `kid`.
pub fn sign_token(claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// `claims` under a header written as given (fields the library's header type lacks, such
/// as `crit`), signed RS256 with the provider's key.
pub fn sign_with_header(header: &Value, claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

/// A good token for `namespace`'s `swf-worker`.
pub fn token(namespace: &str) -> String {
    sign_token(&claims(namespace, "swf-worker"), Some("rsa-1"))
}

/// An unsigned `AssumeRoleWithWebIdentity` form post to `addr`.
pub fn assume_request(addr: std::net::SocketAddr, form: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("Action", "AssumeRoleWithWebIdentity");
    body.append_pair("Version", "2011-06-15");
    for (k, v) in form {
        body.append_pair(k, v);
    }
    Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(Full::new(Bytes::from(body.finish())))
        .unwrap()
}

/// A signed `GetCallerIdentity` call, as an SDK's STS client sends it.
pub fn caller_identity_request(
    addr: std::net::SocketAddr,
    key: &str,
    secret: &str,
    token: Option<&str>,
) -> Request<Full<Bytes>> {
    sts_request(addr, key, secret, token, "GetCallerIdentity", &[])
}

/// A signed STS call of `action` with `form`, as an SDK's STS client sends it.
pub fn sts_request(
    addr: std::net::SocketAddr,
    key: &str,
    secret: &str,
    token: Option<&str>,
    action: &str,
    form: &[(&str, &str)],
) -> Request<Full<Bytes>> {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("Action", action);
    body.append_pair("Version", "2011-06-15");
    for (k, v) in form {
        body.append_pair(k, v);
    }
    let body = body.finish().into_bytes();
    let host = addr.to_string();
    let headers = [
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("host", host.as_str()),
    ];
    let identity = Credentials::new(key, secret, token.map(str::to_owned), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let uri = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut builder = Request::builder().method("POST").uri(uri);
    for (name, value) in headers.into_iter().chain(instructions.headers()) {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(Bytes::from(body))).unwrap()
}

/// An STS answer: status and XML text.
pub async fn send_xml(request: Request<Full<Bytes>>) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let response = client.request(request).await.expect("proxy answers");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The text of the first `<tag>` in `xml`.
pub fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_owned())
}

/// Credentials from an `AssumeRoleWithWebIdentity` answer: key, secret, token.
pub fn credentials(xml: &str) -> (String, String, String) {
    (
        xml_field(xml, "AccessKeyId").expect("AccessKeyId"),
        xml_field(xml, "SecretAccessKey").expect("SecretAccessKey"),
        xml_field(xml, "SessionToken").expect("SessionToken"),
    )
}
