use super::*;

use serde_json::json;

/// `text` as a form; one without an `Action` is an `AssumeRoleWithWebIdentity` call's.
fn form(text: &str) -> Form {
    let text = if text.contains("Action=") {
        text.to_owned()
    } else {
        format!("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&{text}")
    };
    Form::parse(text.as_bytes()).unwrap()
}

const MAX: Duration = Duration::from_secs(7200);

#[test]
fn forms_decode_and_refuse_repeated_parameters() {
    assert_eq!(
        form("Action=AssumeRole&Version=2011-06-15")
            .action()
            .unwrap(),
        Action::AssumeRole
    );
    let f = form("Action=GetCallerIdentity&Version=2011-06-15&X=a%2Bb+c");
    assert_eq!(f.get("X"), Some("a+b c"));
    assert_eq!(f.action().unwrap(), Action::GetCallerIdentity);
    let twice = Form::parse(b"Action=GetCallerIdentity&Action=AssumeRoleWithWebIdentity");
    assert!(matches!(twice, Err(ProxyError::Validation(m)) if m.contains("Action")));
    assert!(matches!(
        Form::parse(b"Action=AssumeRoleWithSAML&Version=2011-06-15"),
        Err(ProxyError::InvalidAction(a)) if a == "AssumeRoleWithSAML"
    ));
    assert!(matches!(
        Form::parse(b"Action=GetCallerIdentity&Version=2020-01-01"),
        Err(ProxyError::Validation(_))
    ));
    assert!(matches!(
        Form::parse(b"Version=2011-06-15"),
        Err(ProxyError::InvalidAction(_))
    ));
}

#[test]
fn only_form_posts_without_a_target_are_sts_calls() {
    let mut headers = HeaderMap::new();
    assert!(!is_query(&headers));
    headers.insert(
        CONTENT_TYPE,
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    assert!(is_query(&headers));
    headers.insert(
        "x-amz-target",
        "SimpleWorkflowService.ListDomains".parse().unwrap(),
    );
    assert!(!is_query(&headers), "an SWF call is never taken for one");
    headers.remove("x-amz-target");
    headers.insert(CONTENT_TYPE, "application/x-amz-json-1.0".parse().unwrap());
    assert!(!is_query(&headers));
}

fn request(extra: &str) -> Result<(), ProxyError> {
    let f = form(&format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn:aws:iam::1:role/r&RoleSessionName=pod-1&WebIdentityToken=a.b.c{extra}"
    ));
    RoleRequest::from_form(&f, Action::AssumeRoleWithWebIdentity, MAX).map(drop)
}

#[test]
fn web_identity_requests_are_checked_as_sts_checks_them() {
    let f = form("RoleArn=r&RoleSessionName=pod-1&WebIdentityToken=a.b.c");
    let r = RoleRequest::from_form(&f, Action::AssumeRoleWithWebIdentity, MAX).unwrap();
    assert_eq!(r.duration, Duration::from_secs(DEFAULT_DURATION_SECONDS));
    assert!(request("&DurationSeconds=900").is_ok());
    assert!(request("&DurationSeconds=7200").is_ok());
    for bad in [
        "&DurationSeconds=899",
        "&DurationSeconds=7201",
        "&DurationSeconds=x",
    ] {
        assert!(
            matches!(request(bad), Err(ProxyError::Validation(m)) if m.contains("DurationSeconds")),
            "{bad}"
        );
    }
    for narrowing in [
        "&Policy=%7B%7D",
        "&PolicyArns.member.1.arn=arn:aws:iam::aws:policy/x",
        "&ProviderId=www.amazon.com",
    ] {
        assert!(
            matches!(request(narrowing), Err(ProxyError::Validation(m)) if m.contains("not supported")),
            "{narrowing}"
        );
    }
    for (text, member) in [
        ("RoleSessionName=pod-1&WebIdentityToken=abcd", "roleArn"),
        ("RoleArn=r&WebIdentityToken=abcd", "roleSessionName"),
        ("RoleArn=r&RoleSessionName=pod-1", "webIdentityToken"),
    ] {
        let f = form(text);
        assert!(
            matches!(RoleRequest::from_form(&f, Action::AssumeRoleWithWebIdentity, MAX), Err(ProxyError::Validation(m)) if m.contains(member))
        );
    }
    for name in ["p", "pod 1", "pod/1", &"p".repeat(65)] {
        let f = form(&format!(
            "RoleArn=r&RoleSessionName={name}&WebIdentityToken=abcd"
        ));
        assert!(
            RoleRequest::from_form(&f, Action::AssumeRoleWithWebIdentity, MAX).is_err(),
            "{name}"
        );
    }
}

fn role(session_tags: &[(&str, &str)]) -> crate::sts::settings::Role {
    crate::sts::settings::Role {
        accept_tags_claim: true,
        ..role_without_tags_claim(session_tags)
    }
}

fn role_without_tags_claim(session_tags: &[(&str, &str)]) -> crate::sts::settings::Role {
    crate::sts::settings::Role {
        name: "r".into(),
        arn: "arn:aws:iam::1:role/r".into(),
        provider: Some(std::sync::Arc::new(super::oidc::Provider::new(
            "p".into(),
            "https://i".into(),
            vec!["a".into()],
            super::oidc::KeySet::default(),
            None,
        ))),
        subjects: vec!["*".into()],
        conditions: Vec::new(),
        session_tags: session_tags
            .iter()
            .map(|(t, p)| (t.to_string(), p.to_string()))
            .collect(),
        policies: Default::default(),
        groups: Vec::new(),
        enforce: true,
        accept_tags_claim: false,
        sessions_not_before: None,
        tenant_tag: None,
    }
}

#[test]
fn session_tags_come_from_the_named_claims_then_the_aws_tags_claim() {
    let claims = json!({
        "kubernetes.io": {"namespace": "tenant-a"},
        TAGS_CLAIM: {"principal_tags": {"namespace": ["tenant-b"], "team": ["blue"]}},
    });
    let claims = claims.as_object().unwrap();
    let tags = session_tags(&role(&[("namespace", "kubernetes.io.namespace")]), claims).unwrap();
    assert_eq!(tags["namespace"], "tenant-a", "the role's own mapping wins");
    assert_eq!(tags["team"], "blue");
    let missing = session_tags(&role(&[("namespace", "kubernetes.io.pod")]), claims);
    assert!(
        matches!(missing, Err(ProxyError::IdpRejectedClaim(m)) if m.contains("kubernetes.io.pod"))
    );
    let bad = json!({"ns": "a*b<"});
    let bad = session_tags(&role(&[("namespace", "ns")]), bad.as_object().unwrap());
    assert!(
        matches!(bad, Err(ProxyError::IdpRejectedClaim(_))),
        "{bad:?}"
    );
    let many: serde_json::Map<String, Value> = (0..51)
        .map(|i| (format!("t{i}"), json!([format!("v{i}")])))
        .collect();
    let claims = json!({ TAGS_CLAIM: {"principal_tags": many} });
    assert!(session_tags(&role(&[]), claims.as_object().unwrap()).is_err());
}

#[test]
fn the_aws_tags_claim_adds_nothing_unless_the_role_accepts_it() {
    let claims = json!({
        "ns": "tenant-a",
        TAGS_CLAIM: {"principal_tags": {"team": ["blue"], "admin": ["true"]}},
    });
    let tags = session_tags(
        &role_without_tags_claim(&[("namespace", "ns")]),
        claims.as_object().unwrap(),
    )
    .unwrap();
    assert_eq!(
        tags,
        BTreeMap::from([("namespace".to_owned(), "tenant-a".to_owned())])
    );
}

#[test]
fn an_ambiguous_claim_path_is_rejected_not_guessed() {
    let claims = json!({"k.io": {"ns": "chosen-by-the-token"}, "k": {"io": {"ns": "tenant-a"}}});
    let tags = session_tags(
        &role(&[("namespace", "k.io.ns")]),
        claims.as_object().unwrap(),
    );
    assert!(
        matches!(&tags, Err(ProxyError::IdpRejectedClaim(m)) if m.contains("ambiguous")),
        "{tags:?}"
    );
}

#[test]
fn forms_are_small_and_their_action_is_read_first() {
    let many = (0..65)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    assert!(
        matches!(Form::parse(many.as_bytes()), Err(ProxyError::Validation(m)) if m.contains("64 parameters"))
    );
    // A call this STS does not serve is refused for its action, whatever follows.
    let unserved = "Action=GetSessionToken&Version=2011-06-15&a=1&a=2";
    assert!(matches!(
        Form::parse(unserved.as_bytes()),
        Err(ProxyError::InvalidAction(_))
    ));
    let served = "Version=2011-06-15&RoleArn=r&Action=AssumeRoleWithWebIdentity";
    assert_eq!(
        Form::parse(served.as_bytes()).unwrap().get("RoleArn"),
        Some("r")
    );
}

#[test]
fn answers_escape_what_they_echo() {
    let issued = Issued {
        credentials: Credentials {
            access_key_id: "ASIAXXXXXXXXXXXXXXXX".into(),
            secret_access_key: crate::secret::Secret::new("s"),
            session_token: "swfs1.t".into(),
        },
        expires: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        role: "r".into(),
        assumed_role_arn: "arn:aws:sts::1:assumed-role/r/s".into(),
        session_name: "s".into(),
        identity: Some((
            WebIdentity {
                issuer: "https://i".into(),
                subject: "<sub&>".into(),
            },
            "a".into(),
        )),
    };
    let xml = issued_xml(Action::AssumeRoleWithWebIdentity, &issued, "id-1");
    assert!(
        xml.contains("<SubjectFromWebIdentityToken>&lt;sub&amp;&gt;</SubjectFromWebIdentityToken>")
    );
    assert!(xml.contains("<Expiration>2023-11-14T22:13:20Z</Expiration>"));
    assert!(xml.contains("<AssumedRoleId>r:s</AssumedRoleId>"));
    assert!(xml.contains("<RequestId>id-1</RequestId>"));
    assert!(xml.starts_with("<AssumeRoleWithWebIdentityResponse "));
    let by_key = Issued {
        identity: None,
        ..issued
    };
    let xml = issued_xml(Action::AssumeRole, &by_key, "id-2");
    assert!(xml.starts_with("<AssumeRoleResponse ") && xml.contains("<AssumeRoleResult>"));
    assert!(!xml.contains("SubjectFromWebIdentityToken"), "{xml}");
}
