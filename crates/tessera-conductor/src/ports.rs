//! The ports: [`TokenCodec`] signs and verifies tokens (the service implements it with
//! josekit), [`Clock`] tells the time.

use std::fmt;

use serde_json::{Map, Value};

/// The kinds of token; a token of one kind never passes as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A user's session token (`{userid, exp}`), accepted by the `/user` routes.
    User,
    /// A permission token (`{userid, permissions, service, exp}`), RS256, verifiable with
    /// the public key; accepted by the datastore.
    Permission,
    /// The state of a login round trip (`{next, provider, nonce, exp}`).
    LoginState,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

/// Signs and verifies compact JWS tokens.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait TokenCodec: Send + Sync + fmt::Debug {
    /// Signs `claims` as a token of `kind`.
    fn sign(&self, kind: TokenKind, claims: &Map<String, Value>) -> Result<String, TokenError>;

    /// The claims of `token` when its signature is valid for `kind` (the algorithm is the
    /// kind's, never the token's choice). MUST NOT check any claim: the domain does.
    fn verify(&self, kind: TokenKind, token: &str) -> Result<Map<String, Value>, TokenError>;

    /// The PEM of the public key that verifies permission tokens.
    fn public_key_pem(&self) -> String;
}

/// The time, in Unix seconds.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}
