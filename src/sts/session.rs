//! Stateless role sessions (SPEC, "Temporary credentials"): the session token seals the role,
//! the session name, the session tags and the expiry under the session keys (the task tokens'
//! envelope, [`Keyring`], with keys derived for this purpose); the access key id and the
//! secret are derived from the token under the key that sealed it. Nothing is stored: any
//! replica holding the keys accepts any session, and rotation works as for task tokens (the
//! first key seals, all open).
//!
//! The sealed payload: `version (2) | expires (u64 BE, Unix seconds) | issued (u64 BE, Unix
//! seconds) | role (u8 length) | session name (u8 length) | tag count (u8) | per tag: key (u8
//! length), value (u16 BE length)`. Version 1 (without `issued`) is still read: its sessions
//! count as issued as early as they could have been (their expiry less the longest duration),
//! so that `sessions_not_before` revokes them too.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hmac::Mac;

use crate::secret::Secret;
use crate::sigv4::canonical::{hmac, keyed, HmacSha256};
use crate::tokens::{Keyring, TokenKey};

/// Session tokens start with this (they are opaque to SDKs).
const PREFIX: &str = "swfs1.";
const VERSION: u8 = 2;
/// Sessions sealed before they carried their issue time.
const VERSION_1: u8 = 1;
/// The longest a session lasts (`[sts] max_duration_seconds`' bound).
const LONGEST: Duration = Duration::from_secs(43_200);
/// Base32 (RFC 4648) for access key ids, as AWS's look.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// IAM's limits on what a session carries.
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_KEY: usize = 128;
pub const MAX_TAG_VALUE: usize = 256;

/// What a session token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The role's name (its ARN is built from the service settings).
    pub role: String,
    /// `RoleSessionName`.
    pub name: String,
    pub expires: SystemTime,
    /// When it was issued (whole seconds), for `[[role]] sessions_not_before`.
    pub issued: SystemTime,
    pub tags: BTreeMap<String, String>,
}

/// Credentials handed to a caller.
#[derive(Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: String,
}

/// Why a session token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session token was not issued by a key this proxy holds, or was altered")]
    Invalid,
    #[error("the session token has expired")]
    Expired,
}

/// The session keys: the first seals, all open.
#[derive(Debug)]
pub struct SessionKeys {
    ring: Keyring,
    /// Per key id, the key credentials are derived under.
    credential_keys: Vec<(String, HmacSha256)>,
}

impl SessionKeys {
    /// `keys` (`(id, secret)`) must not be empty (the config loader guarantees it).
    pub fn new(keys: &[(String, Secret)]) -> SessionKeys {
        SessionKeys {
            ring: Keyring::new(
                PREFIX,
                keys.iter()
                    .map(|(id, secret)| TokenKey::derive(id, secret, "session"))
                    .collect(),
            ),
            credential_keys: keys
                .iter()
                .map(|(id, secret)| {
                    let key = hmac(
                        secret.expose().as_bytes(),
                        b"swf-warden/session/credential/v1",
                    );
                    (id.clone(), keyed(&key))
                })
                .collect(),
        }
    }

    /// Seals `session` and derives its credentials. The caller has checked the limits
    /// (names of at most 64 bytes, at most [`MAX_TAGS`] tags within their lengths).
    pub fn issue(&self, session: &Session) -> Credentials {
        let token = self.ring.seal(&encode(session));
        let (access_key_id, secret) = self.derive(&self.credential_keys[0].1, &token);
        Credentials {
            access_key_id,
            secret_access_key: secret,
            session_token: token,
        }
    }

    /// Opens a session token presented at `now`: the session, and the access key id and
    /// secret it was issued with.
    pub fn open(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<(Session, String, Secret), SessionError> {
        let (kid, payload) = self.ring.open(token).map_err(|_| SessionError::Invalid)?;
        let session = decode(&payload).ok_or(SessionError::Invalid)?;
        if session.expires <= now {
            return Err(SessionError::Expired);
        }
        let key = self
            .credential_keys
            .iter()
            .find(|(id, _)| id == kid)
            .map(|(_, key)| key)
            .ok_or(SessionError::Invalid)?;
        let (access_key_id, secret) = self.derive(key, token);
        Ok((session, access_key_id, secret))
    }

    /// `ASIA` and 16 base32 digits, and a 40-character secret, both from the token.
    fn derive(&self, key: &HmacSha256, token: &str) -> (String, Secret) {
        let mac = |label: &[u8]| {
            let mut mac = key.clone();
            mac.update(label);
            mac.update(token.as_bytes());
            mac.finalize().into_bytes()
        };
        let id = mac(b"access-key-id:");
        let mut bits: u128 = 0;
        for byte in &id[..10] {
            bits = bits << 8 | u128::from(*byte);
        }
        let mut access_key_id = String::with_capacity(20);
        access_key_id.push_str("ASIA");
        for i in (0..16).rev() {
            access_key_id.push(char::from(BASE32[(bits >> (i * 5)) as usize & 31]));
        }
        let secret = STANDARD_NO_PAD.encode(&mac(b"secret-access-key:")[..30]);
        (access_key_id, Secret::new(secret))
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn encode(session: &Session) -> Vec<u8> {
    let mut out = Vec::with_capacity(72 + session.tags.len() * 32);
    out.push(VERSION);
    out.extend_from_slice(&unix(session.expires).to_be_bytes());
    out.extend_from_slice(&unix(session.issued).to_be_bytes());
    for text in [&session.role, &session.name] {
        out.push(text.len().min(255) as u8);
        out.extend_from_slice(&text.as_bytes()[..text.len().min(255)]);
    }
    out.push(session.tags.len().min(MAX_TAGS) as u8);
    for (key, value) in session.tags.iter().take(MAX_TAGS) {
        let key = &key.as_bytes()[..key.len().min(255)];
        let value = &value.as_bytes()[..value.len().min(usize::from(u16::MAX))];
        out.push(key.len() as u8);
        out.extend_from_slice(key);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Reads what [`encode`] wrote; `None` for anything else (a sealed payload always is, but
/// the reader trusts nothing).
fn decode(payload: &[u8]) -> Option<Session> {
    let mut reader = Reader(payload);
    let version = reader.byte()?;
    let mut seconds = || Some(u64::from_be_bytes(reader.take(8)?.try_into().ok()?));
    let expires = UNIX_EPOCH + Duration::from_secs(seconds()?);
    let issued = match version {
        VERSION => UNIX_EPOCH + Duration::from_secs(seconds()?),
        VERSION_1 => expires.checked_sub(LONGEST).unwrap_or(UNIX_EPOCH),
        _ => return None,
    };
    let role_len = usize::from(reader.byte()?);
    let role = reader.text(role_len)?;
    let name_len = usize::from(reader.byte()?);
    let name = reader.text(name_len)?;
    let count = usize::from(reader.byte()?);
    let mut tags = BTreeMap::new();
    for _ in 0..count {
        let key_len = usize::from(reader.byte()?);
        let key = reader.text(key_len)?;
        let value_len = usize::from(u16::from_be_bytes(reader.take(2)?.try_into().ok()?));
        tags.insert(key, reader.text(value_len)?);
    }
    if !reader.0.is_empty() {
        return None;
    }
    Some(Session {
        role,
        name,
        expires,
        issued,
        tags,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn text(&mut self, len: usize) -> Option<String> {
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests;
