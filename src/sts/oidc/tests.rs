use super::*;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const RSA_PEM: &str = include_str!("../../../tests/fixtures/oidc/rsa-2048.pem");
const RSA_JWK: &str = include_str!("../../../tests/fixtures/oidc/rsa-2048.jwk.json");
const SHORT_RSA_JWK: &str = include_str!("../../../tests/fixtures/oidc/rsa-1024.jwk.json");
const ISSUER: &str = "https://issuer.test";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh P-256 key: (PEM private key, its JWK).
fn ec_key(kid: &str) -> (String, Value) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    });
    (pair.serialize_pem(), jwk)
}

fn provider(keys: &[Value]) -> Arc<Provider> {
    Arc::new(Provider::new(
        "test".into(),
        ISSUER.into(),
        vec!["swf-warden".into()],
        KeySet::parse(&json!({ "keys": keys }).to_string()).unwrap(),
        None,
    ))
}

/// `Provider::verify`, run to completion (a file's keys never wait).
fn verify(p: &Arc<Provider>, token: &str) -> Result<Map<String, Value>, TokenRefusal> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(p.verify(token))
}

fn rsa_jwk() -> Value {
    serde_json::from_str(RSA_JWK).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": ["other", "swf-warden"], "sub": "system:serviceaccount:tenant-a:swf-worker",
        "exp": now() + 600, "iat": now(), "nbf": now() - 5,
        "kubernetes.io": {"namespace": "tenant-a"},
    })
}

fn rs256(claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn invalid(result: Result<Map<String, Value>, TokenRefusal>) -> String {
    match result {
        Err(TokenRefusal::Invalid(m)) => m,
        other => panic!("expected InvalidIdentityToken, got {other:?}"),
    }
}

#[test]
fn a_good_rs256_token_yields_its_claims() {
    let p = provider(&[rsa_jwk()]);
    let verified = verify(&p, &rs256(&claims(), Some("rsa-1"))).unwrap();
    assert_eq!(verified["sub"], "system:serviceaccount:tenant-a:swf-worker");
    assert_eq!(
        claim(&verified, "kubernetes.io.namespace"),
        Ok(Some(&json!("tenant-a")))
    );
    // Without a kid, the only key of the algorithm is used.
    assert!(verify(&p, &rs256(&claims(), None)).is_ok());
}

#[test]
fn a_good_es256_token_yields_its_claims_and_keys_verify_only_their_algorithm() {
    let (pem, jwk) = ec_key("ec-1");
    let p = provider(&[rsa_jwk(), jwk]);
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(verify(&p, &token).is_ok());
    // The same token claiming the RSA key's kid: no ES256 key has that id.
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(invalid(verify(&p, &token)).contains("unknown kid"));
}

#[test]
fn registered_claims_are_enforced() {
    let p = provider(&[rsa_jwk()]);
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims();
        edit(&mut c);
        verify(&p, &rs256(&c, Some("rsa-1")))
    };
    assert!(invalid(with(&|c| c["aud"] = json!("someone-else"))).contains("audience"));
    assert!(invalid(with(&|c| c["iss"] = json!("https://evil.test"))).contains("Issuer"));
    assert_eq!(
        with(&|c| c["exp"] = json!(now() - LEEWAY_SECONDS - 5)).unwrap_err(),
        TokenRefusal::Expired
    );
    assert!(
        with(&|c| c["exp"] = json!(now() - 5)).is_ok(),
        "within the leeway"
    );
    assert!(invalid(with(&|c| c["nbf"] = json!(now() + LEEWAY_SECONDS + 60))).contains("nbf"));
    for claim in ["exp", "sub", "aud", "iss"] {
        let refused = with(&|c| {
            c.as_object_mut().unwrap().remove(claim);
        });
        assert!(refused.is_err(), "{claim} is required");
    }
}

#[test]
fn alg_none_hmac_with_the_public_key_and_tampering_are_refused() {
    let p = provider(&[rsa_jwk()]);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = b64(&claims());
    let none = format!(
        "{}.{payload}.",
        b64(&json!({"alg": "none", "kid": "rsa-1"}))
    );
    assert!(invalid(verify(&p, &none)).contains("algorithm"));
    // HS256 keyed with the provider's public key material.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let hs = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(RSA_JWK.as_bytes()),
    )
    .unwrap();
    assert!(invalid(verify(&p, &hs)).contains("algorithm"));
    let n = rsa_jwk()["n"].as_str().unwrap().to_owned();
    let hs =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(n.as_bytes())).unwrap();
    assert!(invalid(verify(&p, &hs)).contains("algorithm"));
    // A payload swapped under a good signature.
    let good = rs256(&claims(), Some("rsa-1"));
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut other = claims();
    other["sub"] = json!("system:serviceaccount:tenant-b:swf-worker");
    let forged_payload = b64(&other);
    parts[1] = &forged_payload;
    assert!(invalid(verify(&p, &parts.join("."))).contains("signature"));
    assert!(invalid(verify(&p, "not.a.jwt")).contains("well-formed"));
    assert!(invalid(verify(&p, &rs256(&claims(), Some("rsa-unknown")))).contains("unknown kid"));
}

#[test]
fn key_sets_keep_only_strong_signing_keys() {
    assert!(KeySet::parse(
        &json!({"keys": [serde_json::from_str::<Value>(SHORT_RSA_JWK).unwrap()]}).to_string()
    )
    .unwrap_err()
    .contains("too short"));
    assert!(
        KeySet::parse(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)
            .unwrap_err()
            .contains("no usable RS256 or ES256")
    );
    assert!(KeySet::parse(r#"{"keys": []}"#).is_err());
    assert!(KeySet::parse("not json").unwrap_err().contains("JWKS"));
    let mut wrong_alg = rsa_jwk();
    wrong_alg["alg"] = json!("RS512");
    assert!(KeySet::parse(&json!({"keys": [wrong_alg]}).to_string()).is_err());
    let mut encryption = rsa_jwk();
    encryption["use"] = json!("enc");
    assert!(KeySet::parse(&json!({"keys": [encryption]}).to_string()).is_err());
    let set = KeySet::parse(&json!({"keys": [rsa_jwk()]}).to_string()).unwrap();
    assert!(set.has_kid("rsa-1") && !set.has_kid("rsa-2"));
    // Keys the proxy cannot use beside one it can: left out, named, the rest kept.
    let p384 = json!({"kty": "EC", "crv": "P-384", "kid": "ec-384", "x": "AA", "y": "AA"});
    let odd = json!({"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP-384", "n": "AQAB", "e": "AQAB"});
    let short: Value = serde_json::from_str(SHORT_RSA_JWK).unwrap();
    let set = KeySet::parse(&json!({"keys": [p384, odd, short, rsa_jwk()]}).to_string()).unwrap();
    assert!(set.has_kid("rsa-1"));
    assert_eq!(set.skipped.len(), 3, "{:?}", set.skipped);
    assert!(set.skipped[2].contains("rsa-short") && set.skipped[2].contains("too short"));
}

#[test]
fn an_issuer_in_an_array_is_not_the_issuer() {
    let p = provider(&[rsa_jwk()]);
    let mut c = claims();
    c["iss"] = json!([ISSUER, "https://other.test"]);
    assert!(invalid(verify(&p, &rs256(&c, Some("rsa-1")))).contains("Issuer"));
}

#[test]
fn claim_paths_follow_names_with_dots_and_refuse_two_readings() {
    let c = json!({"a.b": {"c": 1}, "a": {"b": {"c": 2}}, "x": {"y.z": "w"}, "plain": "p", "k.io": {"ns": "n"}});
    let c = c.as_object().unwrap();
    assert_eq!(
        claim(c, "a.b.c"),
        Err(AmbiguousClaim("a.b.c".into())),
        "a top-level `a.b` and a nested `a`.`b` both hold `c`"
    );
    assert_eq!(claim(c, "x.y.z"), Ok(Some(&json!("w"))));
    assert_eq!(claim(c, "k.io.ns"), Ok(Some(&json!("n"))));
    assert_eq!(claim(c, "plain"), Ok(Some(&json!("p"))));
    assert_eq!(claim(c, "x.y"), Ok(None));
    assert_eq!(claim(c, "missing.path"), Ok(None));
}

#[test]
fn a_token_naming_critical_extensions_is_refused() {
    let p = provider(&[rsa_jwk()]);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!(
        "{}.{}",
        b64(&json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]})),
        b64(&claims())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    // Signed as it stands: only the critical extension refuses it.
    assert!(invalid(verify(&p, &format!("{message}.{signature}"))).contains("crit"));
}

#[test]
fn the_unverified_issuer_picks_the_provider() {
    assert_eq!(
        unverified_issuer(&rs256(&claims(), None)),
        Ok(ISSUER.to_owned())
    );
    for token in ["", "a.b.c", "e30.e30.x", "e30.WzFd.x"] {
        assert!(unverified_issuer(token).is_err(), "{token}");
    }
}
