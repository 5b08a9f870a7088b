//! The proxy as its tenants' STS: a pod's service-account token (a real RS256 JWT) is
//! exchanged for a role session; the session works only in its namespace's domain under one
//! policy for all namespaces; every forged, expired or foreign token and session is refused
//! with STS's or SWF's error, on record, with nothing forwarded; two replicas with the same
//! session keys accept each other's sessions.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::oidc::*;
use common::*;
use serde_json::{json, Value};

async fn start() -> Proxy {
    Proxy::start_configured(|c| c + &sts_config(), &[NAMESPACE_POLICY]).await
}

/// Asks `proxy` for a session of `swf-worker` with `token`.
async fn assume(proxy: &Proxy, token: &str, session: &str) -> (u16, String) {
    send_xml(assume_request(
        proxy.addr,
        &[
            ("RoleArn", ROLE_ARN),
            ("RoleSessionName", session),
            ("WebIdentityToken", token),
        ],
    ))
    .await
}

fn records_with(proxy: &Proxy, decision: &str) -> Vec<Value> {
    proxy
        .audit()
        .into_iter()
        .filter(|r| r["decision"] == decision)
        .collect()
}

#[tokio::test]
async fn a_pod_gets_a_session_that_works_only_in_its_namespace() {
    let proxy = start().await;
    let (status, xml) = assume(&proxy, &token("tenant-a"), "pod-1").await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(
        xml_field(&xml, "Arn").as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/swf-worker/pod-1")
    );
    assert_eq!(
        xml_field(&xml, "SubjectFromWebIdentityToken").as_deref(),
        Some("system:serviceaccount:tenant-a:swf-worker")
    );
    assert_eq!(xml_field(&xml, "Audience").as_deref(), Some(AUDIENCE));
    let (key, secret, session) = credentials(&xml);
    assert!(key.starts_with("ASIA"), "{key}");
    let sealed = URL_SAFE_NO_PAD.decode(&session["swfs1.".len()..]).unwrap();
    let plain = |text: &str| sealed.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(
        !plain("tenant-a") && !plain("swf-worker") && !plain("pod-1"),
        "the session token hides its role, name and tags"
    );

    let a = proxy.client_with_session(&key, &secret, &session);
    let task = poll_token(&a, "tenant-a", "work").await;
    a.record_activity_task_heartbeat()
        .task_token(&task)
        .send()
        .await
        .expect("a heartbeat in its own namespace's domain");
    let err = describe_refused(&a, "tenant-b").await;
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    let message = format!("{:?}", err);
    assert!(
        message.contains("arn:aws:sts::123456789012:assumed-role/swf-worker/pod-1"),
        "the assumed-role ARN in the message: {message}"
    );
    assert_eq!(
        proxy.upstream.operations(),
        ["PollForActivityTask", "RecordActivityTaskHeartbeat"],
        "the refused call never reached the upstream"
    );

    let issued = records_with(&proxy, "issued");
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(issued[0]["resource"], ROLE_ARN);
    assert!(
        issued[0]["principal"].is_null(),
        "a web identity is no principal"
    );
    assert_eq!(issued[0]["issued"]["accessKeyId"], key.as_str());
    assert_eq!(
        issued[0]["issued"]["arn"],
        "arn:aws:sts::123456789012:assumed-role/swf-worker/pod-1"
    );
    assert_eq!(
        issued[0]["webIdentity"],
        json!({"issuer": ISSUER, "subject": "system:serviceaccount:tenant-a:swf-worker"})
    );
    let denied = records_with(&proxy, "implicitDeny");
    assert_eq!(denied.len(), 1);
    assert_eq!(
        denied[0]["principal"]["arn"],
        "arn:aws:sts::123456789012:assumed-role/swf-worker/pod-1"
    );
    assert_eq!(denied[0]["principal"]["name"], "swf-worker");
    let log = std::fs::read_to_string(proxy.audit_path()).unwrap();
    assert!(!log.contains(&secret), "no secret on record");
    assert!(!log.contains(&session), "no session token on record");
}

#[tokio::test]
async fn another_namespace_gets_its_own_domain_from_the_same_policy() {
    let proxy = start().await;
    let (_, xml) = assume(&proxy, &token("tenant-b"), "pod-b").await;
    let (key, secret, session) = credentials(&xml);
    let b = proxy.client_with_session(&key, &secret, &session);
    b.describe_domain().name("tenant-b").send().await.unwrap();
    let err = describe_refused(&b, "tenant-a").await;
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    assert_eq!(proxy.upstream.operations(), ["DescribeDomain"]);
}

#[tokio::test]
async fn get_caller_identity_names_sessions_and_users() {
    let proxy = start().await;
    let (_, xml) = assume(&proxy, &token("tenant-a"), "pod-1").await;
    let (key, secret, session) = credentials(&xml);
    let (status, xml) = send_xml(caller_identity_request(
        proxy.addr,
        &key,
        &secret,
        Some(&session),
    ))
    .await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(
        xml_field(&xml, "Arn").as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/swf-worker/pod-1")
    );
    assert_eq!(
        xml_field(&xml, "UserId").as_deref(),
        Some("swf-worker:pod-1")
    );
    assert_eq!(xml_field(&xml, "Account").as_deref(), Some("123456789012"));
    let (status, xml) = send_xml(caller_identity_request(
        proxy.addr,
        TENANT_A.key,
        TENANT_A.secret,
        None,
    ))
    .await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(
        xml_field(&xml, "Arn").as_deref(),
        Some("arn:aws:iam::123456789012:user/tenant-a-worker")
    );
    // A wrong secret: STS's name for the failure.
    let (status, xml) = send_xml(caller_identity_request(
        proxy.addr,
        &key,
        "wrong",
        Some(&session),
    ))
    .await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (403, Some("SignatureDoesNotMatch"))
    );
    assert_eq!(proxy.upstream.count(), 0);
}

/// Every forged or unfit web identity: refused with its STS error, on record, no session.
#[tokio::test]
async fn forged_and_unfit_web_identities_are_refused_and_recorded() {
    let proxy = start().await;
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let good = claims("tenant-a", "swf-worker");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        sign_token(&c, Some("rsa-1"))
    };
    let hs256_with_public_key = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let jwks = std::fs::read(jwks_path()).unwrap();
        jsonwebtoken::encode(
            &header,
            &good,
            &jsonwebtoken::EncodingKey::from_secret(&jwks),
        )
        .unwrap()
    };
    let tampered = {
        let token = token("tenant-a");
        let parts: Vec<&str> = token.split('.').collect();
        let mut other = good.clone();
        other["kubernetes.io"]["namespace"] = json!("tenant-b");
        format!("{}.{}.{}", parts[0], b64(&other), parts[2])
    };
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "rsa-1"})),
                b64(&good)
            ),
            ROLE_ARN,
            400,
            "InvalidIdentityToken",
        ),
        (
            "HS256 keyed with the public key",
            hs256_with_public_key,
            ROLE_ARN,
            400,
            "InvalidIdentityToken",
        ),
        (
            "another audience",
            with(&|c| c["aud"] = json!("sts.amazonaws.com")),
            ROLE_ARN,
            400,
            "InvalidIdentityToken",
        ),
        (
            "another issuer",
            with(&|c| c["iss"] = json!("https://evil.test")),
            ROLE_ARN,
            400,
            "InvalidIdentityToken",
        ),
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 3600)),
            ROLE_ARN,
            400,
            "ExpiredTokenException",
        ),
        (
            "not valid yet",
            with(&|c| c["nbf"] = json!(now() + 3600)),
            ROLE_ARN,
            400,
            "InvalidIdentityToken",
        ),
        (
            "an unknown kid",
            sign_token(&good, Some("rsa-9")),
            ROLE_ARN,
            400,
            "InvalidIdentityToken",
        ),
        (
            "a tampered payload",
            tampered,
            ROLE_ARN,
            400,
            "InvalidIdentityToken",
        ),
        (
            "another service account",
            sign_token(&claims("tenant-a", "default"), Some("rsa-1")),
            ROLE_ARN,
            403,
            "AccessDenied",
        ),
        (
            "an unknown role",
            token("tenant-a"),
            "arn:aws:iam::123456789012:role/admin",
            403,
            "AccessDenied",
        ),
        (
            "session tags too large for a header",
            with(&|c| {
                let tags: serde_json::Map<String, Value> = (0..40)
                    .map(|i| (format!("tag{i}"), json!(["v".repeat(250)])))
                    .collect();
                c["https://aws.amazon.com/tags"] = json!({ "principal_tags": tags });
            }),
            ROLE_ARN,
            403,
            "IDPRejectedClaim",
        ),
        (
            "no namespace claim",
            with(&|c| {
                c.as_object_mut().unwrap().remove("kubernetes.io");
            }),
            ROLE_ARN,
            403,
            "IDPRejectedClaim",
        ),
    ];
    for (what, token, role, status, code) in &cases {
        let (got, xml) = send_xml(assume_request(
            proxy.addr,
            &[
                ("RoleArn", role),
                ("RoleSessionName", "pod-1"),
                ("WebIdentityToken", token),
            ],
        ))
        .await;
        assert_eq!(got, *status, "{what}: {xml}");
        assert_eq!(
            xml_field(&xml, "Code").as_deref(),
            Some(*code),
            "{what}: {xml}"
        );
        assert!(
            xml_field(&xml, "AccessKeyId").is_none(),
            "{what}: no credentials"
        );
        let id = xml_field(&xml, "RequestId").unwrap();
        let record = proxy.audit_for(&id);
        assert_eq!(record["decision"], "authFailed", "{what}: {record}");
        assert_eq!(record["errorCode"], *code, "{what}");
        assert_eq!(record["action"], "sts:AssumeRoleWithWebIdentity", "{what}");
    }
    let denied = proxy
        .audit()
        .into_iter()
        .find(|r| r["errorCode"] == "AccessDenied" && r["resource"] == ROLE_ARN)
        .unwrap();
    assert_eq!(
        denied["webIdentity"]["subject"], "system:serviceaccount:tenant-a:default",
        "a verified identity the role does not trust is named"
    );
    assert!(records_with(&proxy, "issued").is_empty());
    assert_eq!(proxy.upstream.count(), 0);
}

#[tokio::test]
async fn malformed_sts_calls_get_sts_errors() {
    let proxy = start().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("RoleArn", ROLE_ARN), ("RoleSessionName", "pod-1")],
            "ValidationError",
        ),
        (
            vec![
                ("RoleArn", ROLE_ARN),
                ("RoleSessionName", "p"),
                ("WebIdentityToken", "abcd"),
            ],
            "ValidationError",
        ),
        (
            vec![
                ("RoleArn", ROLE_ARN),
                ("RoleSessionName", "pod-1"),
                ("WebIdentityToken", "abcd"),
                ("DurationSeconds", "43200"),
            ],
            "ValidationError",
        ),
        (
            vec![
                ("RoleArn", ROLE_ARN),
                ("RoleSessionName", "pod-1"),
                ("WebIdentityToken", "abcd"),
                ("Policy", "{}"),
            ],
            "ValidationError",
        ),
    ];
    for (form, code) in cases {
        let (status, xml) = send_xml(assume_request(proxy.addr, &form)).await;
        assert_eq!(
            (status, xml_field(&xml, "Code").as_deref()),
            (400, Some(code)),
            "{form:?}: {xml}"
        );
    }
    let mut request = assume_request(proxy.addr, &[]);
    *request.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(
        b"Action=AssumeRoleWithSAML&Version=2011-06-15",
    ));
    let (status, xml) = send_xml(request).await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (400, Some("InvalidAction"))
    );
    assert_eq!(proxy.upstream.count(), 0);
}

/// Sessions nobody issued, or issued by other keys, or past their expiry, or not signed.
#[tokio::test]
async fn forged_expired_and_unsigned_sessions_are_refused() {
    let proxy = start().await;
    let (_, xml) = assume(&proxy, &token("tenant-a"), "pod-1").await;
    let (key, secret, session) = credentials(&xml);
    let mint = |secret_key: &str, expires: std::time::SystemTime| {
        let keys = swf_warden::sts::session::SessionKeys::new(&[(
            "s1".to_owned(),
            swf_warden::secret::Secret::new(secret_key),
        )]);
        keys.issue(&swf_warden::sts::session::Session {
            role: "swf-worker".into(),
            name: "pod-1".into(),
            expires,
            tags: [("namespace".to_owned(), "tenant-a".to_owned())].into(),
        })
    };
    let hour = std::time::Duration::from_secs(3600);
    let later = std::time::SystemTime::now() + hour;
    let foreign = mint("another-session-key-0123456789abcdefgh", later);
    let expired = mint(SESSION_KEY, std::time::SystemTime::now() - hour);
    let mut tampered = session.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other = mint(SESSION_KEY, later);
    // Sealed by the proxy's own key, for a role the configuration does not have (removed).
    let orphan = swf_warden::sts::session::SessionKeys::new(&[(
        "s1".to_owned(),
        swf_warden::secret::Secret::new(SESSION_KEY),
    )])
    .issue(&swf_warden::sts::session::Session {
        role: "removed-role".into(),
        name: "pod-1".into(),
        expires: later,
        tags: Default::default(),
    });
    let cases = [
        (
            "a session of a role no longer configured",
            orphan.access_key_id.clone(),
            orphan.secret_access_key.expose().to_owned(),
            orphan.session_token.clone(),
            "UnrecognizedClientException",
        ),
        (
            "a tampered session token",
            key.clone(),
            secret.clone(),
            tampered,
            "UnrecognizedClientException",
        ),
        (
            "a session sealed by another key set",
            foreign.access_key_id.clone(),
            foreign.secret_access_key.expose().to_owned(),
            foreign.session_token.clone(),
            "UnrecognizedClientException",
        ),
        (
            "an expired session",
            expired.access_key_id.clone(),
            expired.secret_access_key.expose().to_owned(),
            expired.session_token.clone(),
            "ExpiredTokenException",
        ),
        (
            "a good token under another session's key",
            other.access_key_id.clone(),
            other.secret_access_key.expose().to_owned(),
            session.clone(),
            "UnrecognizedClientException",
        ),
        (
            "a static key with a session token",
            TENANT_A.key.to_owned(),
            TENANT_A.secret.to_owned(),
            session.clone(),
            "UnrecognizedClientException",
        ),
    ];
    for (what, key, secret, token, code) in cases {
        let client = proxy.client_with_session(&key, &secret, &token);
        let err = describe_refused(&client, "tenant-a").await;
        assert_eq!(sdk_code(&err), code, "{what}");
        let record = proxy.audit_for(&sdk_request_id(&err));
        assert_eq!(record["errorCode"], code, "{what}");
    }
    // The session token sent but left out of the signature.
    let mut raw = Raw::new(TENANT_A, "DescribeDomain", &json!({"name": "tenant-a"}));
    raw.key = Box::leak(key.into_boxed_str());
    raw.secret = Box::leak(secret.into_boxed_str());
    let mut request = raw.build(proxy.addr);
    request
        .headers_mut()
        .insert("x-amz-security-token", session.parse().unwrap());
    let answer = proxy.send(request).await;
    assert_eq!(answer.error_type(), "UnrecognizedClientException");
    assert_eq!(proxy.upstream.count(), 0, "nothing forwarded");
}

#[tokio::test]
async fn two_replicas_with_the_same_keys_accept_each_others_sessions() {
    let one = start().await;
    let two = start().await;
    let (_, xml) = assume(&one, &token("tenant-a"), "pod-1").await;
    let (key, secret, session) = credentials(&xml);
    two.client_with_session(&key, &secret, &session)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .expect("the other replica accepts the session");
    assert_eq!(two.upstream.operations(), ["DescribeDomain"]);
    // A replica with other session keys does not.
    let stranger = Proxy::start_configured(
        |c| c + &sts_config().replace(SESSION_KEY, "stranger-session-key-0123456789abcdef"),
        &[NAMESPACE_POLICY],
    )
    .await;
    let err = describe_refused(
        &stranger.client_with_session(&key, &secret, &session),
        "tenant-a",
    )
    .await;
    assert_eq!(sdk_code(&err), "UnrecognizedClientException");
}

/// A CI job trades its key for a short session of a role its policies allow it to assume.
const ASSUME_CI: (&str, &str) = (
    "assume-ci.toml",
    "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"MayDeploy\"\nEffect = \"Allow\"\nAction = \"sts:AssumeRole\"\nResource = \"arn:aws:iam::123456789012:role/ci-deployer\"\n",
);
const CI_ROLE: &str = "arn:aws:iam::123456789012:role/ci-deployer";

async fn start_with_ci_role() -> Proxy {
    Proxy::start_configured(
        |c| {
            c.replacen(
                "policies = [\"tenant-a\"]",
                "policies = [\"tenant-a\", \"assume-ci\"]",
                1,
            ) + &sts_config()
                + "\n[[role]]\nname = \"ci-deployer\"\npolicies = [\"tenant-a\"]\n"
        },
        &[NAMESPACE_POLICY, ASSUME_CI],
    )
    .await
}

#[tokio::test]
async fn a_principal_assumes_a_role_its_policies_allow() {
    let proxy = start_with_ci_role().await;
    let (status, xml) = send_xml(sts_request(
        proxy.addr,
        TENANT_A.key,
        TENANT_A.secret,
        None,
        "AssumeRole",
        &[
            ("RoleArn", CI_ROLE),
            ("RoleSessionName", "build-42"),
            ("DurationSeconds", "900"),
        ],
    ))
    .await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.starts_with("<AssumeRoleResponse "), "{xml}");
    assert_eq!(
        xml_field(&xml, "Arn").as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/ci-deployer/build-42")
    );
    let (key, secret, session) = credentials(&xml);
    let ci = proxy.client_with_session(&key, &secret, &session);
    ci.describe_domain().name("tenant-a").send().await.unwrap();
    let err = describe_refused(&ci, "tenant-b").await;
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    let issued = records_with(&proxy, "issued");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["action"], "sts:AssumeRole");
    assert_eq!(issued[0]["principal"]["name"], TENANT_A.name, "who asked");
    assert_eq!(
        issued[0]["issued"]["accessKeyId"],
        key.as_str(),
        "what it got"
    );
    assert!(issued[0]["webIdentity"].is_null());

    // No role chaining: a session cannot assume a role.
    let (status, xml) = send_xml(sts_request(
        proxy.addr,
        &key,
        &secret,
        Some(&session),
        "AssumeRole",
        &[("RoleArn", CI_ROLE), ("RoleSessionName", "again")],
    ))
    .await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (403, Some("AccessDenied")),
        "{xml}"
    );
}

#[tokio::test]
async fn assume_role_is_refused_without_a_policy_allowing_it_or_a_role() {
    let proxy = start_with_ci_role().await;
    let assume = |tenant: Tenant, role: &'static str| {
        send_xml(sts_request(
            proxy.addr,
            tenant.key,
            tenant.secret,
            None,
            "AssumeRole",
            &[("RoleArn", role), ("RoleSessionName", "build-42")],
        ))
    };
    let (status, xml) = assume(TENANT_B, CI_ROLE).await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (403, Some("AccessDenied")),
        "{xml}"
    );
    let message = xml_field(&xml, "Message").unwrap();
    assert!(
        message.contains("is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/ci-deployer"),
        "{message}"
    );
    let record = proxy.audit_for(&xml_field(&xml, "RequestId").unwrap());
    assert_eq!(record["decision"], "implicitDeny");
    assert_eq!(record["errorCode"], "AccessDenied");
    assert_eq!(record["action"], "sts:AssumeRole");
    assert_eq!(record["principal"]["name"], TENANT_B.name);
    // Allowed everything, but the role does not exist, or takes web identities only.
    for role in ["arn:aws:iam::123456789012:role/nothing", ROLE_ARN] {
        let (status, xml) = assume(OPERATOR, role).await;
        assert_eq!(
            (status, xml_field(&xml, "Code").as_deref()),
            (403, Some("AccessDenied")),
            "{role}: {xml}"
        );
    }
    // A role with no provider takes no web identity.
    let (status, xml) = send_xml(assume_request(
        proxy.addr,
        &[
            ("RoleArn", CI_ROLE),
            ("RoleSessionName", "pod-1"),
            ("WebIdentityToken", &token("tenant-a")),
        ],
    ))
    .await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (403, Some("AccessDenied")),
        "{xml}"
    );
    // Unsigned.
    let mut unsigned = assume_request(proxy.addr, &[]);
    *unsigned.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(
        b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/ci-deployer&RoleSessionName=x1",
    ));
    let (status, xml) = send_xml(unsigned).await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (403, Some("MissingAuthenticationToken")),
        "{xml}"
    );
    assert!(records_with(&proxy, "issued").is_empty());
    assert_eq!(proxy.upstream.count(), 0);
}

#[tokio::test]
async fn a_principal_in_shadow_mode_gets_no_session_its_policies_would_not_grant() {
    let shadow = "\n[[principal]]\nname = \"shadow\"\naccess_key_id = \"AKIASHADOW0000000001\"\nsecret_access_key = \"secret-shadow\"\npolicies = []\nenforce = false\n";
    let proxy = Proxy::start_configured(
        |c| {
            c + shadow
                + &sts_config()
                + "\n[[role]]\nname = \"ci-deployer\"\npolicies = [\"tenant-a\"]\n"
        },
        &[NAMESPACE_POLICY],
    )
    .await;
    let (status, xml) = send_xml(sts_request(
        proxy.addr,
        "AKIASHADOW0000000001",
        "secret-shadow",
        None,
        "AssumeRole",
        &[("RoleArn", CI_ROLE), ("RoleSessionName", "build-1")],
    ))
    .await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (403, Some("AccessDenied")),
        "{xml}"
    );
    assert_eq!(
        records_with(&proxy, "wouldDeny").len(),
        1,
        "the denial it would have had"
    );
    assert!(records_with(&proxy, "issued").is_empty());
}

#[tokio::test]
async fn a_signed_sts_call_with_an_expired_session_is_told_so() {
    let proxy = start().await;
    let keys = swf_warden::sts::session::SessionKeys::new(&[(
        "s1".to_owned(),
        swf_warden::secret::Secret::new(SESSION_KEY),
    )]);
    let expired = keys.issue(&swf_warden::sts::session::Session {
        role: "swf-worker".into(),
        name: "pod-1".into(),
        expires: std::time::SystemTime::now() - std::time::Duration::from_secs(60),
        tags: Default::default(),
    });
    let (status, xml) = send_xml(caller_identity_request(
        proxy.addr,
        &expired.access_key_id,
        expired.secret_access_key.expose(),
        Some(&expired.session_token),
    ))
    .await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (403, Some("ExpiredToken")),
        "{xml}"
    );
}

/// A valid token cannot mint sessions (nor issue records) without bound: each web identity
/// gets `issue_burst` at once and `issues_per_minute` after; others are not held back.
#[tokio::test]
async fn sessions_issued_to_one_identity_are_rationed() {
    let proxy = Proxy::start_configured(
        |c| {
            c + &sts_config().replace(
                "max_duration_seconds = 7200",
                "max_duration_seconds = 7200\nissues_per_minute = 1\nissue_burst = 2",
            )
        },
        &[NAMESPACE_POLICY],
    )
    .await;
    let pod = token("tenant-a");
    for _ in 0..2 {
        assert_eq!(assume(&proxy, &pod, "pod-1").await.0, 200);
    }
    let (status, xml) = assume(&proxy, &pod, "pod-1").await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (400, Some("Throttling")),
        "{xml}"
    );
    let record = proxy.audit_for(&xml_field(&xml, "RequestId").unwrap());
    assert_eq!(record["decision"], "throttled");
    assert_eq!(record["quota"], "sts-issue");
    assert_eq!(
        record["webIdentity"]["subject"],
        "system:serviceaccount:tenant-a:swf-worker"
    );
    assert_eq!(records_with(&proxy, "issued").len(), 2);
    // Another identity has its own ration.
    assert_eq!(assume(&proxy, &token("tenant-b"), "pod-b").await.0, 200);
}
