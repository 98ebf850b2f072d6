//! An OpenID Connect relying party on reqwest and josekit: the provider of
//! `tessera-tokens`' [`TokenExchange`](tessera_tokens::TokenExchange) and
//! [`AccessTokenValidator`](tessera_tokens::AccessTokenValidator) ports.
//!
//! Layout:
//! - [`http`]: the shared HTTP client and how responses become port errors.
//! - [`discovery`]: `/.well-known/openid-configuration` documents.
//! - [`keys`]: [`KeyStore`], signing keys per issuer (a JWKS, or Fence's `/jwt/keys` list of
//!   `[kid, pem]`), refreshed on an unknown `kid` at most once per interval.
//! - [`jwt`]: compact JWS parsing and the numeric-date and claim helpers shared below.
//! - [`validator`]: [`JwtAccessTokenValidator`], the commons' access-token rules (§B2 and
//!   §B9 of the WTS spec): issuer allowed before any key is fetched, algorithm, key by `kid`,
//!   `exp` required, `exp`/`iat`/`nbf` without leeway, audience, `azp`, `openid` scope, `pur`
//!   (each of the last four optional), and per-operation scopes on the [`VerifiedToken`].
//! - [`client`]: [`OidcClient`], one IdP's authorization server: authorization URL with
//!   PKCE (S256) and nonce, code exchange with id-token verification, refresh, revocation,
//!   [`OidcClient::sign_in`] (a login: verified id-token claims completed from userinfo),
//!   [`OidcClient::redeem_tokens`] (a login that hands the provider's tokens to the caller)
//!   and [`OidcClient::discover`] (endpoints from the discovery document).
//! - [`session`]: [`SessionCodec`], the login session (state, PKCE verifier, nonce) in a
//!   signed, expiring, `HttpOnly` cookie between the login and its callback.
//!
//! josekit and reqwest are implementation details: no type of theirs is in a public
//! signature except [`reqwest::Client`] for sharing one connection pool.

pub mod client;
pub mod discovery;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod session;
pub mod validator;

pub use client::{ClientSettings, IdpKind, OidcClient, ProviderTokens, SignIn};
pub use discovery::{Discovery, ProviderMetadata};
pub use http::{LazyClient, http_client, http_client_with_roots};
pub use keys::KeyStore;
pub use session::SessionCodec;
pub use validator::{AccessTokenRules, JwtAccessTokenValidator, MissingScope, VerifiedToken};

/// Errors of this crate (setup and key retrieval; token and exchange failures are the
/// ports' error types).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A setting is unusable.
    #[error("invalid oidc setting: {0}")]
    Config(String),
    /// A document could not be fetched.
    #[error("cannot fetch {url}: {reason}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// A fetched document is not what it should be.
    #[error("invalid document at {url}: {reason}")]
    Document {
        /// What was fetched.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// No key with that id, after a refresh if one was allowed.
    #[error("no signing key {kid:?} for issuer {issuer:?}")]
    UnknownKey {
        /// The issuer.
        issuer: String,
        /// The key id.
        kid: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
