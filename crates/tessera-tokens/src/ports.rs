//! The ports of the token service. Providers: `tessera-oidc` ([`TokenExchange`],
//! [`AccessTokenValidator`]), the service's Kubernetes and static adapters
//! ([`IdentityResolver`]), [`Fernet`](crate::Fernet) ([`Cipher`]).

use std::fmt;

use async_trait::async_trait;

use crate::model::{
    AuthorizationRequest, Caller, CodeExchangeRequest, CodeGrant, Identity, RefreshGrant,
};

/// Why a call to an IdP failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The IdP could not be reached, or did not answer in time.
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
    /// The IdP answered with an error status.
    #[error("identity provider answered {status}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The response body, shortened.
        body: String,
    },
    /// The answer lacks required fields or is not what the protocol says.
    #[error("invalid response from the identity provider: {0}")]
    InvalidResponse(String),
    /// The id token failed verification (signature, issuer, audience, expiry or nonce).
    #[error("invalid id token: {0}")]
    InvalidIdToken(String),
    /// The IdP does not offer the operation (e.g. no revocation endpoint).
    #[error("not supported by the identity provider: {0}")]
    Unsupported(String),
}

/// Talks to one IdP's authorization server.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TokenExchange: Send + Sync + fmt::Debug {
    /// The URL that starts a login: `response_type=code`, the client id, redirect URI and
    /// scope, `state`, `nonce`, the S256 PKCE challenge and the IdP's extra parameters.
    /// MUST return `Unreachable` when the endpoint is discovered and discovery fails.
    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<String, ExchangeError>;

    /// Redeems an authorization code and verifies the id token (signature, issuer, audience
    /// = client id, expiry, nonce). MUST return `InvalidResponse` naming the missing fields
    /// when the answer lacks a refresh or id token, `InvalidIdToken` when verification fails,
    /// `Rejected` for an error status and `Unreachable` for network errors and timeouts.
    async fn exchange_code(
        &self,
        request: &CodeExchangeRequest,
    ) -> Result<CodeGrant, ExchangeError>;

    /// Runs the refresh grant. MUST return the new refresh token when the IdP rotated it,
    /// `Rejected` for an error status and `Unreachable` for network errors and timeouts.
    async fn refresh(&self, refresh_token: &str) -> Result<RefreshGrant, ExchangeError>;

    /// Revokes a refresh token at the IdP's revocation endpoint. MUST return `Unsupported`
    /// when the IdP has none.
    async fn revoke(&self, refresh_token: &str) -> Result<(), ExchangeError>;
}

/// Why a bearer token was refused; every case is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

/// Turns a bearer access token of the commons into an identity.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AccessTokenValidator: Send + Sync + fmt::Debug {
    /// The identity of a valid token. MUST refuse a token whose issuer is not allowed before
    /// fetching any key, and any token failing a rule of §B2/§B9 (algorithm, signature,
    /// `exp`/`iat`/`nbf`, audience, `openid` scope, `pur`).
    async fn validate(&self, token: &str) -> Result<Identity, ValidationError>;
}

/// Why a workspace identity lookup failed (not "unknown caller", which is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

/// Finds the user a request comes from without a user token: the workspace pod behind the
/// caller's address (Kubernetes), or a configured address or token.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait IdentityResolver: Send + Sync + fmt::Debug {
    /// The local username, `Ok(None)` when the caller is not a known workspace. MUST return
    /// an error only when the lookup itself failed.
    async fn resolve(&self, caller: &Caller) -> Result<Option<String>, ResolveError>;
}

/// Why encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The key is not usable.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The token is malformed, tampered with or made with another key.
    #[error("invalid token")]
    InvalidToken,
}

/// Symmetric authenticated encryption of stored refresh tokens.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Cipher: Send + Sync + fmt::Debug {
    /// Encrypts `plaintext`.
    fn encrypt(&self, plaintext: &str) -> Result<String, CipherError>;
    /// Decrypts a token made by [`Cipher::encrypt`] with the same key. MUST return
    /// `InvalidToken` for anything else.
    fn decrypt(&self, token: &str) -> Result<String, CipherError>;
}

/// The time, so that tests can set it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in Unix seconds.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}
