//! OpenID Connect identity tokens (SPEC, "Temporary credentials"): a provider's key set
//! (JWKS) and the verification of a JWT against it, with `jsonwebtoken` doing the signature
//! and the registered claims.
//!
//! Only RS256 (RSA keys of 2048 bits or more) and ES256 (P-256) are accepted, and each key
//! verifies only the algorithm of its own type: a token saying `none`, an HMAC algorithm, or
//! another key type's algorithm is refused before any signature is checked. `iss` must equal
//! the provider's issuer, `aud` must hold one of its audiences, and `exp`, `nbf` are checked
//! with [`LEEWAY_SECONDS`] of skew; `exp`, `iss`, `aud` and `sub` are required. Keys come
//! from a file (read at load) or from `jwks_url` ([`Remote`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;
/// The shortest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS: usize = 256;

/// One verification key of a provider.
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A provider's keys, read from its JWKS document.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    /// Keys left out, each with why (for warnings).
    pub skipped: Vec<String>,
}

impl KeySet {
    /// Reads a JWKS document (`{"keys": [...]}`). Each key is read on its own: one the proxy
    /// cannot use (another type or algorithm, an encryption key, an RSA key under 2048 bits,
    /// an EC key off P-256, a key the library does not know) is left out and named in
    /// `skipped`, so a provider adding such a key breaks nothing. A document with no usable
    /// key is an error.
    pub fn parse(text: &str) -> Result<KeySet, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<Value>,
        }
        let document: Document =
            serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut set = KeySet::default();
        for (i, value) in document.keys.into_iter().enumerate() {
            let kid = value.get("kid").and_then(Value::as_str).map(str::to_owned);
            let name = kid.as_deref().map_or(format!("key {}", i + 1), |k| {
                format!("key `{}`", crate::error::excerpt(k))
            });
            match usable(value) {
                Ok((alg, key)) => set.keys.push(Key { kid, alg, key }),
                Err(why) => set.skipped.push(format!("{name}: {why}")),
            }
        }
        if set.keys.is_empty() {
            let why = if set.skipped.is_empty() {
                String::new()
            } else {
                format!(" ({})", set.skipped.join("; "))
            };
            return Err(format!(
                "no usable RS256 or ES256 signing key in the key set{why}"
            ));
        }
        Ok(set)
    }

    /// The key for a token's `kid` and `alg`: by `kid` when the token names one, else the
    /// only key of that algorithm.
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Key> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.alg == alg),
            None => {
                let mut of_alg = self.keys.iter().filter(|k| k.alg == alg);
                let only = of_alg.next()?;
                of_alg.next().is_none().then_some(only)
            }
        }
    }

    /// Whether the set holds a key with this id (any algorithm).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// One JWK as a verification key, or why it is not one.
fn usable(value: Value) -> Result<(Algorithm, DecodingKey), String> {
    let jwk: Jwk =
        serde_json::from_value(value).map_err(|e| format!("not a key this proxy reads: {e}"))?;
    if matches!(
        jwk.common.public_key_use,
        Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
    ) {
        return Err("an encryption key".into());
    }
    let (alg, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                rsa.n.trim_end_matches('='),
            )
            .map_err(|_| "`n` is not base64url".to_owned())?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS {
                return Err(format!(
                    "an RSA key of {} bits is too short (2048 at least)",
                    significant * 8
                ));
            }
            let key =
                DecodingKey::from_rsa_components(&rsa.n, &rsa.e).map_err(|e| e.to_string())?;
            (Algorithm::RS256, key)
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            if ec.curve != EllipticCurve::P256 {
                return Err("only the P-256 curve (ES256) is accepted".into());
            }
            let key = DecodingKey::from_ec_components(&ec.x, &ec.y).map_err(|e| e.to_string())?;
            (Algorithm::ES256, key)
        }
        _ => return Err("not an RSA or EC key".into()),
    };
    // A key that names another algorithm is not used for this one.
    let named_fits = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(_) => false,
    };
    if !named_fits {
        return Err("it names an algorithm other than RS256 or ES256".into());
    }
    Ok((alg, key))
}

/// Why an identity token was refused; each maps to one STS error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// `InvalidIdentityToken`.
    #[error("{0}")]
    Invalid(String),
    /// `ExpiredTokenException`.
    #[error("Token expired: current date/time must be before the expiration date/time.")]
    Expired,
    /// `IDPCommunicationError`: the provider's keys could not be had.
    #[error("{0}")]
    Unreachable(String),
}

/// The largest key set document read from a provider.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A key set fetched from `jwks_url`: fetched when first needed, again when older than
/// `refresh`, and on a token whose `kid` it lacks, but never twice within `refetch_interval`
/// (a stream of random kids costs the provider one request per interval, not one per token).
/// One fetch at a time; a call with a known key never waits for one. A failed fetch keeps the
/// last keys, used until `max_stale` after they were fetched. What was fetched outlives a
/// reload (`FETCHED`): a new configuration generation starts from the last keys of its URL.
#[derive(Debug)]
pub struct Remote {
    pub url: String,
    pub fetcher: crate::forward::fetch::Fetcher,
    pub refetch_interval: Duration,
    pub refresh: Duration,
    pub max_stale: Duration,
    /// When the keys in use were fetched (`None`: never).
    fetched_at: std::sync::Mutex<Option<Instant>>,
    /// Held by the task fetching; holds when the last fetch was tried.
    fetching: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

/// The longest a call waits for a key set being fetched; then it is answered with what is
/// known (`IDPCommunicationError` when that is nothing), while the fetch goes on for the calls
/// after it.
pub const FETCH_WAIT: Duration = Duration::from_secs(2);

/// The last keys fetched per URL, with when: kept across configuration generations.
type Fetched = std::collections::HashMap<String, (Arc<KeySet>, Instant)>;
static FETCHED: std::sync::Mutex<Option<Fetched>> = std::sync::Mutex::new(None);

impl Remote {
    pub fn new(
        url: String,
        fetcher: crate::forward::fetch::Fetcher,
        refetch_interval: Duration,
        refresh: Duration,
        max_stale: Duration,
    ) -> Remote {
        Remote {
            url,
            fetcher,
            refetch_interval,
            refresh,
            max_stale,
            fetched_at: std::sync::Mutex::new(None),
            fetching: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    fn fetched_at(&self) -> Option<Instant> {
        *self.fetched_at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A provider: who issues the tokens, for whom, and with which keys.
#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    keys: ArcSwap<KeySet>,
    /// `None`: the keys are the file's, read at load.
    pub remote: Option<Remote>,
}

impl Provider {
    pub fn new(
        name: String,
        issuer: String,
        audiences: Vec<String>,
        keys: KeySet,
        remote: Option<Remote>,
    ) -> Provider {
        let mut keys = Arc::new(keys);
        if let Some(remote) = &remote {
            let fetched = FETCHED.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((known, at)) = fetched.as_ref().and_then(|f| f.get(&remote.url)) {
                keys = known.clone();
                *remote.fetched_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(*at);
            }
        }
        Provider {
            name,
            issuer,
            audiences,
            keys: ArcSwap::new(keys),
            remote,
        }
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(self: &Arc<Self>, token: &str) -> Result<Map<String, Value>, TokenRefusal> {
        let invalid = |m: &str| TokenRefusal::Invalid(m.to_owned());
        let not_accepted = || invalid("The token's algorithm is not accepted (RS256 or ES256).");
        // RFC 7515: a header naming extensions as critical must be refused by a verifier
        // that does not understand them, and this one understands none.
        if segment(token, 0).is_some_and(|header| header.contains_key("crit")) {
            return Err(invalid(
                "The token's header names critical extensions (crit), which are not understood.",
            ));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            // `none` and names the crate does not know fail to parse: say which it was.
            if named_algorithm(token).is_some() {
                not_accepted()
            } else {
                invalid("The token is not a well-formed JWT.")
            }
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(not_accepted());
        }
        if let Some(remote) = &self.remote {
            match remote.fetched_at() {
                // Nothing to verify with yet: wait (a while) for the first keys.
                None => self.refetch(remote, true).await,
                // Due for a refresh: one call fetches, the others go on with the keys they have.
                Some(at) if at.elapsed() >= remote.refresh => self.refetch(remote, false).await,
                Some(_) => {}
            }
        }
        let mut keys = self.keys.load_full();
        if keys.find(header.kid.as_deref(), header.alg).is_none() {
            if let Some(remote) = &self.remote {
                self.refetch(remote, true).await;
                keys = self.keys.load_full();
            }
        }
        if let Some(remote) = &self.remote {
            if remote
                .fetched_at()
                .is_none_or(|at| at.elapsed() >= remote.max_stale)
            {
                return Err(TokenRefusal::Unreachable(
                    "The identity provider's keys could not be fetched.".into(),
                ));
            }
        }
        let key = keys
            .find(header.kid.as_deref(), header.alg)
            .ok_or_else(|| {
                invalid("The token was not signed by a key of the provider (unknown kid).")
            })?;
        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.required_spec_claims =
            HashSet::from(["exp", "iss", "aud", "sub"].map(str::to_owned));
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenRefusal::Expired,
                ErrorKind::ImmatureSignature => invalid("The token is not valid yet (nbf)."),
                ErrorKind::InvalidIssuer => invalid("Issuer does not match the role's provider."),
                ErrorKind::InvalidAudience => invalid("Incorrect token audience."),
                ErrorKind::InvalidSignature => invalid("The token's signature does not verify."),
                ErrorKind::MissingRequiredClaim(claim) => {
                    TokenRefusal::Invalid(format!("The token has no `{claim}` claim."))
                }
                ErrorKind::InvalidAlgorithm => {
                    invalid("The token's algorithm does not match its key.")
                }
                _ => invalid("The token is not a well-formed JWT."),
            })?;
        // The library also takes an array holding the issuer: only the issuer itself is.
        if data.claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(invalid("Issuer does not match the role's provider."));
        }
        Ok(data.claims)
    }

    /// Fetches the key set again, unless a fetch is under way or one was tried within the
    /// refetch interval. The fetch runs in a task of its own, so that it completes (and its
    /// keys serve later calls) whatever becomes of this call. With `wait`, the call waits for
    /// the fetch under way, for at most [`FETCH_WAIT`].
    async fn refetch(self: &Arc<Self>, remote: &Remote, wait: bool) {
        if let Ok(mut last_attempt) = remote.fetching.clone().try_lock_owned() {
            if last_attempt.is_some_and(|at| at.elapsed() < remote.refetch_interval) {
                return;
            }
            *last_attempt = Some(Instant::now());
            let provider = self.clone();
            tokio::spawn(async move {
                provider.fetch().await;
                drop(last_attempt);
            });
        }
        if wait {
            // The lock is free again once the fetch under way has ended.
            let _ = tokio::time::timeout(FETCH_WAIT, remote.fetching.lock()).await;
        }
    }

    /// One fetch of the key set; the keys replace the last ones if it succeeds.
    async fn fetch(&self) {
        let Some(remote) = &self.remote else { return };
        let fetched = remote.fetcher.get(MAX_JWKS_BYTES).await.and_then(|body| {
            let text = std::str::from_utf8(&body).map_err(|_| "not UTF-8".to_owned())?;
            KeySet::parse(text)
        });
        match fetched {
            Ok(keys) => {
                for why in &keys.skipped {
                    tracing::warn!(provider = %self.name, url = %remote.url, "key left out: {why}");
                }
                let keys = Arc::new(keys);
                let now = Instant::now();
                self.keys.store(keys.clone());
                *remote.fetched_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                FETCHED
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(Default::default)
                    .insert(remote.url.clone(), (keys, now));
            }
            Err(error) => tracing::warn!(
                provider = %self.name,
                url = %remote.url,
                %error,
                "could not fetch the identity provider's keys; the last ones stay in use"
            ),
        }
    }
}

/// Segment `index` of a JWT (0: header, 1: payload) as a JSON object, unverified.
fn segment(token: &str, index: usize) -> Option<Map<String, Value>> {
    let part = token.split('.').nth(index)?;
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        part.trim_end_matches('='),
    )
    .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The `iss` a token names, read before anything of it is verified: it picks the provider
/// whose keys verify it.
pub fn unverified_issuer(token: &str) -> Result<String, TokenRefusal> {
    segment(token, 1)
        .and_then(|payload| payload.get("iss")?.as_str().map(str::to_owned))
        .ok_or_else(|| TokenRefusal::Invalid("The token is not a well-formed JWT.".into()))
}

/// The `alg` a token's header names, if its header is readable JSON with one.
fn named_algorithm(token: &str) -> Option<String> {
    segment(token, 0)?.get("alg")?.as_str().map(str::to_owned)
}

/// A claim path that names two different claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The claim path `{0}` names both a claim with dots in its name and a nested claim: it is ambiguous.")]
pub struct AmbiguousClaim(pub String);

/// The value at `path` in `claims`: dot-separated, where a claim name may itself hold dots
/// (`kubernetes.io.namespace` is `namespace` inside `kubernetes.io`). A path that reads two
/// different claims (a top-level `a.b` and `b` inside `a`) is refused: no token can choose
/// which of two claims a role's condition or tag reads.
pub fn claim<'c>(
    claims: &'c Map<String, Value>,
    path: &str,
) -> Result<Option<&'c Value>, AmbiguousClaim> {
    let mut found = None;
    readings(claims, path, &mut |value| match found.replace(value) {
        Some(_) => Err(AmbiguousClaim(path.to_owned())),
        None => Ok(()),
    })?;
    Ok(found)
}

/// Calls `each` with every value `path` can name in `claims`.
fn readings<'c>(
    claims: &'c Map<String, Value>,
    path: &str,
    each: &mut impl FnMut(&'c Value) -> Result<(), AmbiguousClaim>,
) -> Result<(), AmbiguousClaim> {
    if let Some(v) = claims.get(path) {
        each(v)?;
    }
    for (i, _) in path.match_indices('.') {
        if let Some(Value::Object(inner)) = claims.get(&path[..i]) {
            readings(inner, &path[i + 1..], each)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
