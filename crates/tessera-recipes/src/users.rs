//! Users (v0.3.0): names and Argon2id password hashes, the admin bootstrapped once, and
//! HS256 access tokens `{"sub": name, "exp": now + 30 min}`.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tessera_kit::dao::CollectionSpec;
use tokio::sync::Semaphore;

use crate::{Error, Result};

/// The bootstrapped administrator.
pub const ADMIN: &str = "admin";

/// A user. The name is the id, so that two concurrent creations of one name cannot both
/// succeed (the original's non-unique index let them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The Argon2id PHC string.
    pub password_hash: String,
}

/// The user collection.
pub fn user_spec(collection: &str) -> CollectionSpec {
    CollectionSpec::new(collection, "name")
}

/// Argon2 cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Iterations.
    pub t: u32,
    /// Memory in KiB.
    pub m_kib: u32,
    /// Lanes.
    pub p: u32,
}

impl Cost {
    /// argon2-cffi's defaults, which the original's pwdlib `recommended()` uses.
    pub const ORIGINAL: Self = Self {
        t: 3,
        m_kib: 65536,
        p: 4,
    };
}

/// Hashing and verifying passwords on at most `workers` blocking threads at a time, so
/// parallel logins queue instead of each taking 64 MiB at once.
#[derive(Debug, Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: Arc<String>,
}

impl Passwords {
    /// A pool of `workers` (≥ 1) at `cost`.
    pub fn new(cost: Cost, workers: usize) -> Result<Self> {
        let params = Params::new(cost.m_kib, cost.t, cost.p, None)
            .map_err(|e| Error::Hashing(e.to_string()))?;
        let dummy = hash_with(&params, "not a password of anyone")?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            dummy: Arc::new(dummy),
        })
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        let params = self.params.clone();
        self.blocking(move || hash_with(&params, &password)).await?
    }

    /// Whether `password` matches `hash`. Without a hash (unknown user) it verifies against
    /// a dummy hash of the same cost and answers false, so both cost the same.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_str().to_owned());
        let ok = self
            .blocking(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && ok)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Hashing(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Hashing(e.to_string()))
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hashing(e.to_string()))
}

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The JWT.
    pub access_token: String,
    /// When it expires.
    pub expires: DateTime<Utc>,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("could not validate credentials")]
pub struct BadToken;

/// HS256 access tokens `{"sub", "exp"}` (PyJWT's shape: header `{"alg":"HS256","typ":"JWT"}`).
#[derive(Clone)]
pub struct Tokens {
    key: Hmac<Sha256>,
    lifetime: chrono::Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<i64>,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `lifetime`.
    pub fn new(secret: &[u8], lifetime: chrono::Duration) -> Result<Self> {
        let key =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|e| Error::Hashing(e.to_string()))?;
        Ok(Self { key, lifetime })
    }

    /// A token for `user`, issued at `now`.
    pub fn issue(&self, user: &str, now: DateTime<Utc>) -> IssuedToken {
        let expires = now + self.lifetime;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = serde_json::json!({ "sub": user, "exp": expires.timestamp() });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.key.clone();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        IssuedToken {
            access_token: format!("{signing_input}.{signature}"),
            expires,
        }
    }

    /// The user a token names, if its signature, algorithm and expiry hold at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<String, BadToken> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BadToken);
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| BadToken)?;
        let mut mac = self.key.clone();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).map_err(|_| BadToken)?;
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(BadToken)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(BadToken);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(BadToken)?;
        // PyJWT checks `exp` only when present; the original always sets it, so require it.
        match claims.exp {
            Some(exp) if exp > now.timestamp() => {}
            _ => return Err(BadToken),
        }
        claims.sub.filter(|s| !s.is_empty()).ok_or(BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Cost = Cost {
        t: 1,
        m_kib: 64,
        p: 1,
    };

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_fail() {
        let passwords = Passwords::new(CHEAP, 2).unwrap();
        let hash = passwords.hash("pw".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(
            passwords
                .verify("pw".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("nope".into(), Some(hash)).await.unwrap());
        assert!(
            !passwords
                .verify("not a password of anyone".into(), None)
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("pw".into(), Some("garbage".into()))
                .await
                .unwrap()
        );
    }

    #[test]
    fn the_original_cost_is_argon2_cffis_default() {
        let params = Params::new(
            Cost::ORIGINAL.m_kib,
            Cost::ORIGINAL.t,
            Cost::ORIGINAL.p,
            None,
        )
        .unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (65536, 3, 4)
        );
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering_expiry_and_other_keys() {
        let tokens = Tokens::new(b"secret", chrono::Duration::minutes(30)).unwrap();
        let now = Utc::now();
        let issued = tokens.issue("alice", now);
        assert_eq!(issued.expires, now + chrono::Duration::minutes(30));
        assert_eq!(tokens.verify(&issued.access_token, now).unwrap(), "alice");
        assert_eq!(
            tokens.verify(&issued.access_token, now + chrono::Duration::minutes(31)),
            Err(BadToken)
        );
        let other = Tokens::new(b"other", chrono::Duration::minutes(30)).unwrap();
        assert_eq!(other.verify(&issued.access_token, now), Err(BadToken));
        let mut tampered = issued.access_token.clone();
        tampered.push('x');
        assert_eq!(tokens.verify(&tampered, now), Err(BadToken));
        for bad in ["", "a.b", "a.b.c.d", "..."] {
            assert_eq!(tokens.verify(bad, now), Err(BadToken));
        }
        let payload = URL_SAFE_NO_PAD
            .decode(issued.access_token.split('.').nth(1).unwrap())
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"sub": "alice", "exp": issued.expires.timestamp()})
        );
    }
}
