use super::*;

fn settings(source: Source) -> Settings {
    Settings {
        source,
        assume: None,
        region: "us-east-1".into(),
    }
}

fn part(value: &str) -> Part {
    Part {
        value: Secret::new(value),
        file: None,
    }
}

#[test]
fn static_keys_sign_at_once_and_never_expire() {
    let c = start(
        settings(Source::Static {
            access_key_id: part("AKIDSTATIC"),
            secret_access_key: part("secret"),
            session_token: Some(part("token")),
        }),
        Arc::default(),
    );
    let now = SystemTime::now();
    let identity = c.current(now).unwrap();
    assert_eq!(identity.signer.access_key_id(), "AKIDSTATIC");
    assert_eq!(
        identity.session_token.as_ref().map(|t| t.to_str().unwrap()),
        Some("token")
    );
    assert!(identity.session_token.as_ref().unwrap().is_sensitive());
    assert!(c.current(now + Duration::from_secs(86_400 * 365)).is_ok());
    let (ready, text) = c.readiness(now);
    assert!(ready, "{text}");
    assert!(
        text.contains("AKIDSTATIC") && !text.contains("secret"),
        "{text}"
    );
}

#[test]
fn expired_credentials_never_sign_and_say_so() {
    let counters = Arc::new(Counters::default());
    let c = Credentials::new(settings(Source::Chain), counters.clone());
    let now = SystemTime::now();
    assert_eq!(c.current(now).unwrap_err(), Unavailable::NotYet);
    assert!(!c.readiness(now).0);
    let expires = now + Duration::from_secs(60);
    c.store(
        Identity::new(
            "ASIATEMP",
            Secret::new("s"),
            Some("t"),
            Some(expires),
            "us-east-1",
        )
        .unwrap(),
    );
    assert!(c.current(now).is_ok());
    assert_eq!(
        counters.expiry.load(Ordering::Relaxed),
        expires.duration_since(UNIX_EPOCH).unwrap().as_secs()
    );
    assert!(matches!(c.current(expires), Err(Unavailable::Expired(_))));
    assert!(c.current(expires - Duration::from_millis(1)).is_ok());
    c.failed("the provider is down");
    c.failed("the provider is down");
    assert_eq!(counters.refresh_failures.load(Ordering::Relaxed), 2);
    let (ready, text) = c.readiness(expires);
    assert!(!ready);
    assert!(
        text.contains("the provider is down") && text.contains("503"),
        "{text}"
    );
    assert!(c.readiness(now).0, "still valid before they expire");
}

#[test]
fn a_key_id_unfit_for_a_header_is_refused() {
    for id in ["", "AKID WITH SPACE", "AKID\r\nx: y", &"A".repeat(129)] {
        assert!(
            Identity::new(id, Secret::new("s"), None, None, "us-east-1").is_err(),
            "{id:?}"
        );
    }
    assert!(Identity::new("AKID", Secret::new("s"), Some("a\nb"), None, "us-east-1").is_err());
}
