use super::*;

fn keys(list: &[(&str, &str)]) -> SessionKeys {
    let owned: Vec<(String, Secret)> = list
        .iter()
        .map(|(id, s)| (id.to_string(), Secret::new(s.repeat(32))))
        .collect();
    SessionKeys::new(&owned)
}

fn session(expires_in: i64) -> Session {
    let now = SystemTime::now();
    let expires = if expires_in >= 0 {
        now + Duration::from_secs(expires_in as u64)
    } else {
        now - Duration::from_secs(expires_in.unsigned_abs())
    };
    Session {
        role: "swf-worker".into(),
        name: "pod-1".into(),
        expires: crate::sts::truncate_to_second(expires),
        issued: crate::sts::truncate_to_second(now),
        tags: BTreeMap::from([
            ("namespace".to_owned(), "tenant-a".to_owned()),
            ("team".to_owned(), "ünïcode ok".to_owned()),
        ]),
    }
}

#[test]
fn a_session_round_trips_with_the_credentials_it_was_issued() {
    let k = keys(&[("s1", "a")]);
    let s = session(3600);
    let issued = k.issue(&s);
    assert!(issued.session_token.starts_with(PREFIX));
    assert!(
        !issued.session_token.contains("tenant-a"),
        "sealed, not readable"
    );
    assert_eq!(issued.access_key_id.len(), 20);
    assert!(issued.access_key_id.starts_with("ASIA"));
    assert!(issued.access_key_id[4..]
        .bytes()
        .all(|b| BASE32.contains(&b)));
    assert_eq!(issued.secret_access_key.expose().len(), 40);
    let (opened, id, secret) = k.open(&issued.session_token, SystemTime::now()).unwrap();
    assert_eq!(opened, s);
    assert_eq!(id, issued.access_key_id);
    assert_eq!(secret.expose(), issued.secret_access_key.expose());
}

#[test]
fn two_sessions_get_different_credentials() {
    let k = keys(&[("s1", "a")]);
    let one = k.issue(&session(3600));
    let two = k.issue(&session(3600));
    assert_ne!(one.session_token, two.session_token);
    assert_ne!(one.access_key_id, two.access_key_id);
    assert_ne!(
        one.secret_access_key.expose(),
        two.secret_access_key.expose()
    );
}

#[test]
fn an_expired_session_is_refused_as_expired() {
    let k = keys(&[("s1", "a")]);
    let issued = k.issue(&session(-1));
    assert_eq!(
        k.open(&issued.session_token, SystemTime::now())
            .unwrap_err(),
        SessionError::Expired
    );
    // At the second it expires, it has.
    let s = session(10);
    let issued = k.issue(&s);
    assert_eq!(
        k.open(&issued.session_token, s.expires).unwrap_err(),
        SessionError::Expired
    );
    assert!(k
        .open(&issued.session_token, s.expires - Duration::from_secs(1))
        .is_ok());
}

#[test]
fn rotation_first_key_seals_all_keys_open() {
    let old = keys(&[("s1", "a")]);
    let rotated = keys(&[("s2", "b"), ("s1", "a")]);
    let before = old.issue(&session(3600));
    let (_, id, secret) = rotated
        .open(&before.session_token, SystemTime::now())
        .unwrap();
    assert_eq!(
        id, before.access_key_id,
        "credentials derive under the sealing key"
    );
    assert_eq!(secret.expose(), before.secret_access_key.expose());
    let after = rotated.issue(&session(3600));
    assert_eq!(
        old.open(&after.session_token, SystemTime::now())
            .unwrap_err(),
        SessionError::Invalid,
        "a replica without the new key does not accept its sessions"
    );
}

#[test]
fn another_key_set_and_every_altered_byte_are_refused() {
    let k = keys(&[("s1", "a")]);
    let impostor = keys(&[("s1", "c")]);
    let forged = impostor.issue(&session(3600));
    assert_eq!(
        k.open(&forged.session_token, SystemTime::now())
            .unwrap_err(),
        SessionError::Invalid
    );
    let token = k.issue(&session(3600)).session_token;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token[PREFIX.len()..])
        .unwrap();
    for i in 0..raw.len() {
        let mut bad = raw.clone();
        bad[i] ^= 0x01;
        let bad = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bad)
        );
        assert_eq!(
            k.open(&bad, SystemTime::now()).unwrap_err(),
            SessionError::Invalid,
            "byte {i}"
        );
    }
    for bad in [
        "",
        "swfs1.",
        "swfs1.!!!",
        &token[..token.len() - 4],
        "sw1.abc",
    ] {
        assert_eq!(
            k.open(bad, SystemTime::now()).unwrap_err(),
            SessionError::Invalid
        );
    }
}

#[test]
fn a_task_token_key_with_the_same_secret_opens_no_session() {
    // One secret used for both purposes still yields different keys.
    let secret = Secret::new("a".repeat(32));
    let task = crate::tokens::Keyring::new(PREFIX, vec![TokenKey::new("s1", &secret)]);
    let k = keys(&[("s1", "a")]);
    let forged = task.seal(&encode(&session(3600)));
    assert_eq!(
        k.open(&forged, SystemTime::now()).unwrap_err(),
        SessionError::Invalid
    );
}

#[test]
fn the_payload_reader_refuses_what_the_writer_never_writes() {
    let good = encode(&session(3600));
    assert!(decode(&good).is_some());
    for cut in 0..good.len() {
        assert!(decode(&good[..cut]).is_none(), "cut at {cut}");
    }
    let mut longer = good.clone();
    longer.push(0);
    assert!(decode(&longer).is_none(), "trailing bytes");
    let mut version = good;
    version[0] = 3;
    assert!(decode(&version).is_none(), "another version");
}

#[test]
fn a_first_version_session_counts_as_issued_as_early_as_it_could_have_been() {
    let s = session(3600);
    let v2 = encode(&s);
    // Version 1: the same without the issue time.
    let mut v1 = vec![VERSION_1];
    v1.extend_from_slice(&v2[1..9]);
    v1.extend_from_slice(&v2[17..]);
    let read = decode(&v1).unwrap();
    assert_eq!(read.issued, s.expires - LONGEST);
    assert_eq!((read.role, read.name, read.tags), (s.role, s.name, s.tags));
    assert_eq!(decode(&v2).unwrap().issued, s.issued);
}
