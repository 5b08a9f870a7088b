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
            "a critical header extension",
            // Signed as it stands: only the critical extension can refuse it.
            sign_with_header(
                &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
                &good,
            ),
            ROLE_ARN,
            400,
            "InvalidIdentityToken",
        ),
        (
            "a namespace claim that reads two ways",
            with(&|c| c["kubernetes.io.namespace"] = json!("tenant-b")),
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
            issued: std::time::SystemTime::now() - std::time::Duration::from_secs(60),
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
        issued: std::time::SystemTime::now(),
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
        issued: std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
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

/// Sends an STS form from `source` (a loopback address) to `proxy`: status and XML.
async fn form_from(proxy: &Proxy, source: &str, form: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(proxy.addr).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{form}",
        proxy.addr,
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, answer)
}

fn web_identity_form(role: &str, token: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithWebIdentity")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", role)
        .append_pair("RoleSessionName", "pod-1")
        .append_pair("WebIdentityToken", token)
        .finish()
}

/// Finding 9 of the second review: an unknown role answered 403 before the token was read, so
/// a stranger could list the roles that take web identities. The token is verified first:
/// until it verifies, every role answers alike.
#[tokio::test]
async fn a_stranger_cannot_tell_a_known_role_from_an_unknown_one() {
    let proxy = start().await;
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let good = claims("tenant-a", "swf-worker");
    let forged = {
        let signed = token("tenant-a");
        let (head, rest) = signed.rsplit_once('.').unwrap();
        format!("{head}.{}", &rest[..rest.len() - 4]) + "AAAA"
    };
    let tokens = [
        "abcd".to_owned(),
        format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&good)),
        sign_token(&good, Some("rsa-9")),
        forged,
        sign_token(
            &json!({"iss": "https://evil.test", "sub": "x", "aud": AUDIENCE, "exp": now() + 600}),
            Some("rsa-1"),
        ),
    ];
    let strip_id = |xml: &str| {
        let id = xml_field(xml, "RequestId").unwrap();
        xml.replace(&id, "")
    };
    for token in &tokens {
        let known = form_from(&proxy, "127.0.0.1", &web_identity_form(ROLE_ARN, token)).await;
        for role in [
            "arn:aws:iam::123456789012:role/admin",
            "arn:aws:iam::123456789012:role/swf-worker-2",
            "not an arn",
        ] {
            let unknown = form_from(&proxy, "127.0.0.1", &web_identity_form(role, token)).await;
            assert_eq!(known.0, unknown.0, "{token}: {role}");
            let (a, b) = (
                known.1.split("\r\n\r\n").nth(1).unwrap(),
                unknown.1.split("\r\n\r\n").nth(1).unwrap(),
            );
            assert_eq!(strip_id(a), strip_id(b), "{token}: {role}");
        }
    }
    // With a token that verifies, an unknown role is refused as one that does not trust it.
    let (status, xml) = form_from(
        &proxy,
        "127.0.0.1",
        &web_identity_form("arn:aws:iam::123456789012:role/admin", &token("tenant-a")),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(xml_field(&xml, "Code").as_deref(), Some("AccessDenied"));
    assert_eq!(proxy.upstream.count(), 0);
}

/// Finding 5: before any signature is checked an STS call costs little. Forms are at most
/// 64 KiB and 64 parameters, and identity tokens are verified within each source address's
/// allowance (`unverified_per_second`): past it, `Throttling` without verifying, on record;
/// another source is not held back.
#[tokio::test]
async fn sts_calls_cost_little_before_a_signature_is_checked() {
    let proxy = Proxy::start_configured(
        |c| {
            // SWF calls may send up to SWF's own 1 MiB.
            c.replace("max_body_bytes = 65536", "max_body_bytes = 1048576")
                + &sts_config().replace(
                    "max_duration_seconds = 7200",
                    "max_duration_seconds = 7200\nunverified_per_second = 3",
                )
        },
        &[NAMESPACE_POLICY],
    )
    .await;
    // 400 KB: within SWF's limit, far over an STS form's.
    let big = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&{}",
        "a=b&".repeat(100_000)
    );
    let (status, xml) = form_from(&proxy, "127.0.0.1", &big).await;
    assert_eq!(status, 413, "{xml}");
    assert_eq!(
        xml_field(&xml, "Code").as_deref(),
        Some("RequestEntityTooLarge")
    );
    let many = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&{}",
        (0..63)
            .map(|i| format!("p{i}=v"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let (status, xml) = form_from(&proxy, "127.0.0.1", &many).await;
    assert_eq!(
        (status, xml_field(&xml, "Code").as_deref()),
        (400, Some("ValidationError")),
        "{xml}"
    );
    assert!(xml.contains("64 parameters"), "{xml}");

    // A known kid, a forged signature: each costs a verification, within the allowance.
    let forged = {
        let signed = token("tenant-a");
        let (head, rest) = signed.rsplit_once('.').unwrap();
        format!("{head}.{}AAAA", &rest[..rest.len() - 4])
    };
    let mut codes = Vec::new();
    for _ in 0..8 {
        let (_, xml) = form_from(&proxy, "127.0.0.1", &web_identity_form(ROLE_ARN, &forged)).await;
        codes.push(xml_field(&xml, "Code").unwrap());
    }
    assert_eq!(&codes[..3], ["InvalidIdentityToken"; 3], "{codes:?}");
    assert!(codes[3..].iter().all(|c| c == "Throttling"), "{codes:?}");
    let throttled = records_with(&proxy, "throttled");
    assert!(throttled.len() >= 5, "{throttled:?}");
    assert!(throttled
        .iter()
        .all(|r| r["quota"] == "sts-unverified" && r["principal"].is_null()));
    // Another source verifies its own token.
    let (status, xml) = form_from(
        &proxy,
        "127.0.0.2",
        &web_identity_form(ROLE_ARN, &token("tenant-a")),
    )
    .await;
    assert_eq!(status, 200, "{xml}");
}

/// Finding 9: session tags come from AWS's tags claim only where the role accepts them.
#[tokio::test]
async fn the_aws_tags_claim_is_read_only_where_the_role_accepts_it() {
    let team_policy = (
        "team-domains.toml",
        "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Allow\"\nAction = \"swf:DescribeDomain\"\nResource = \"arn:aws:swf:*:123456789012:/domain/team-${aws:PrincipalTag/team}\"\n",
    );
    let roles = sts_config().replace(
        "policies = [\"namespace-domains\"]",
        "policies = [\"namespace-domains\", \"team-domains\"]",
    );
    let strict = roles.replace("accept_tags_claim = true\n", "");
    for (config, accepted) in [(roles, true), (strict, false)] {
        let proxy =
            Proxy::start_configured(|c| c + &config, &[NAMESPACE_POLICY, team_policy]).await;
        let mut c = claims("tenant-a", "swf-worker");
        c["https://aws.amazon.com/tags"] = json!({"principal_tags": {"team": ["red"]}});
        let (status, xml) = assume(&proxy, &sign_token(&c, Some("rsa-1")), "pod-1").await;
        assert_eq!(status, 200, "{xml}");
        let (key, secret, session) = credentials(&xml);
        let client = proxy.client_with_session(&key, &secret, &session);
        let described = client.describe_domain().name("team-red").send().await;
        assert_eq!(
            described.is_ok(),
            accepted,
            "accept_tags_claim = {accepted}: {described:?}"
        );
    }
}

/// Finding 9: `sessions_not_before` revokes every session of the role issued earlier, so a
/// role removed and added again does not bring its old sessions back.
#[tokio::test]
async fn sessions_issued_before_the_roles_cut_off_are_refused() {
    let cutoff = time::OffsetDateTime::now_utc() - time::Duration::seconds(30);
    let cutoff = cutoff
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let config = sts_config().replace(
        "accept_tags_claim = true\n",
        &format!("accept_tags_claim = true\nsessions_not_before = \"{cutoff}\"\n"),
    );
    let proxy = Proxy::start_configured(|c| c + &config, &[NAMESPACE_POLICY]).await;
    let keys = swf_warden::sts::session::SessionKeys::new(&[(
        "s1".to_owned(),
        swf_warden::secret::Secret::new(SESSION_KEY),
    )]);
    let now = std::time::SystemTime::now();
    let session = |issued_ago: u64| {
        keys.issue(&swf_warden::sts::session::Session {
            role: "swf-worker".into(),
            name: "pod-1".into(),
            expires: now + std::time::Duration::from_secs(3600),
            issued: now - std::time::Duration::from_secs(issued_ago),
            tags: [("namespace".to_owned(), "tenant-a".to_owned())].into(),
        })
    };
    let (old, new) = (session(60), session(10));
    let client = |c: &swf_warden::sts::session::Credentials| {
        proxy.client_with_session(
            &c.access_key_id,
            c.secret_access_key.expose(),
            &c.session_token,
        )
    };
    let refused = client(&old)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&refused), "ExpiredTokenException");
    client(&new)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .expect("a session issued after the cut-off");
    assert_eq!(proxy.upstream.operations(), ["DescribeDomain"]);
}
