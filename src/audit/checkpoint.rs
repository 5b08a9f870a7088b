//! Signed checkpoints of the audit chain (SPEC, "Audit integrity"): a line
//! `{"seq":…,"prev":…,"checkpoint":{"log","covers","time","keyId","signature"}}` whose Ed25519
//! signature (`ring`) commits to everything before it, so that a chain recomputed after an
//! edit by someone without the key no longer verifies, and a log cut short after a checkpoint
//! a monitor kept is caught.
//!
//! The signed text, byte for byte (each line ends with `\n`):
//!
//! ```text
//! swf-warden audit checkpoint v1
//! log: <log id>
//! covers: <seq of the last line it covers>
//! hash: <lowercase hex SHA-256 of that line, its `prev` too>
//! time: <RFC 3339 UTC, the checkpoint's `time`>
//! ```
//!
//! `signature` is the standard base64 (with padding) of the 64-byte Ed25519 signature. Keys
//! are PEM: the private key PKCS#8 (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey
//! -algorithm ed25519` writes it), the public key SubjectPublicKeyInfo (`-----BEGIN PUBLIC
//! KEY-----`, RFC 8410).

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// PKCS#8 v1 of an Ed25519 key: this prefix, then the 32-byte seed (RFC 8410).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SubjectPublicKeyInfo of an Ed25519 key: this prefix, then the 32-byte key.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The text a checkpoint's signature is over.
pub fn signed_text(log: &str, covers: u64, hash: &str, time: &str) -> String {
    format!("swf-warden audit checkpoint v1\nlog: {log}\ncovers: {covers}\nhash: {hash}\ntime: {time}\n")
}

/// `checkpoint` in a checkpoint line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub log: String,
    pub covers: u64,
    pub time: String,
    pub key_id: String,
    pub signature: String,
}

/// The key checkpoints are signed with (`[audit] signing_key_file`, `key_id`).
pub struct SigningKey {
    pub id: String,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &SigningKey) -> bool {
        self.id == other.id && self.pair.public_key().as_ref() == other.pair.public_key().as_ref()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key.
    pub fn read(id: &str, path: &Path) -> Result<SigningKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let der = pem(&text, "PRIVATE KEY")
            .ok_or_else(|| format!("`{}` holds no PEM private key", path.display()))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| {
            format!(
                "`{}` is not an Ed25519 private key (PKCS#8)",
                path.display()
            )
        })?;
        Ok(SigningKey {
            id: id.to_owned(),
            pair,
        })
    }

    /// A checkpoint of `log` covering its lines up to `covers`, the last of which hashes to
    /// `hash`, signed now.
    pub fn sign(&self, log: &str, covers: u64, hash: &str, time: String) -> Checkpoint {
        let signature = self
            .pair
            .sign(signed_text(log, covers, hash, &time).as_bytes());
        Checkpoint {
            log: log.to_owned(),
            covers,
            time,
            key_id: self.id.clone(),
            signature: STANDARD.encode(signature.as_ref()),
        }
    }

    /// The public key, PEM.
    pub fn public_pem(&self) -> String {
        public_pem(self.pair.public_key().as_ref())
    }
}

/// A public key checkpoints are verified with (`audit verify --public-key ID=FILE`).
#[derive(Debug, Clone)]
pub struct PublicKey(Vec<u8>);

impl PublicKey {
    /// Reads a PEM SubjectPublicKeyInfo holding an Ed25519 key.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let der = pem(text, "PUBLIC KEY").ok_or("no PEM public key")?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(key) if key.len() == 32 => Ok(PublicKey(key.to_vec())),
            _ => Err("not an Ed25519 public key".into()),
        }
    }

    /// Whether `checkpoint` is signed by this key over the chain's `hash` at `covers`.
    pub fn verifies(&self, checkpoint: &Checkpoint, hash: &str) -> bool {
        let Ok(signature) = STANDARD.decode(&checkpoint.signature) else {
            return false;
        };
        let text = signed_text(&checkpoint.log, checkpoint.covers, hash, &checkpoint.time);
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(text.as_bytes(), &signature)
            .is_ok()
    }
}

/// The DER inside a PEM block of `label`.
fn pem(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    let body: String = text[start..stop].split_whitespace().collect();
    STANDARD.decode(body).ok()
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn public_pem(key: &[u8]) -> String {
    pem_block("PUBLIC KEY", &[&SPKI_PREFIX[..], key].concat())
}

/// A new key pair: the private key (PKCS#8 PEM) and the public key (PEM).
pub fn generate() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| "bad seed".to_owned())?;
    let private = pem_block("PRIVATE KEY", &[&PKCS8_PREFIX[..], &seed[..]].concat());
    Ok((private, public_pem(pair.public_key().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_public_key_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = generate().unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        std::fs::write(dir.path().join("k.key"), &private).unwrap();
        let key = SigningKey::read("k1", &dir.path().join("k.key")).unwrap();
        assert_eq!(key.public_pem(), public);
        let checkpoint = key.sign(
            "log-1",
            1000,
            "ab".repeat(32).as_str(),
            "2026-12-06T00:00:00.000Z".into(),
        );
        let public = PublicKey::parse(&public).unwrap();
        assert!(public.verifies(&checkpoint, &"ab".repeat(32)));
        assert!(
            !public.verifies(&checkpoint, &"ac".repeat(32)),
            "another chain"
        );
        let moved = Checkpoint {
            covers: 999,
            ..checkpoint.clone()
        };
        assert!(!public.verifies(&moved, &"ab".repeat(32)), "another place");
        let (_, other) = generate().unwrap();
        assert!(!PublicKey::parse(&other)
            .unwrap()
            .verifies(&checkpoint, &"ab".repeat(32)));
    }

    #[test]
    fn keys_that_are_not_ed25519_pem_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.key"), "not a key").unwrap();
        assert!(SigningKey::read("k", &dir.path().join("x.key")).is_err());
        assert!(SigningKey::read("k", &dir.path().join("missing.key")).is_err());
        assert!(
            PublicKey::parse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .is_err()
        );
    }
}
