//! Domain core of the Workspace Token Service (Gen3 WTS, spec `uws_wts.md` §B): refresh
//! tokens stored per (user, IdP), access tokens handed out on demand, and account linking.
//!
//! The crate sees only the DAO protocol of `tessera-kit` and its own ports; HTTP, OIDC and
//! Kubernetes live in providers and the service.
//!
//! Layout:
//! - [`model`]: [`RefreshTokenRecord`] (what is stored), [`Caller`], [`Identity`], the login
//!   session and what the token exchange hands back.
//! - [`ports`]: [`TokenExchange`] (one per IdP: authorization URL, code exchange, refresh,
//!   revocation), [`AccessTokenValidator`] (a bearer token to an identity),
//!   [`IdentityResolver`] (the workspace a request comes from to a user), [`Cipher`] and
//!   [`Clock`].
//! - [`fernet`]: [`Fernet`], the [`Cipher`] whose tokens are byte-compatible with Python's
//!   `cryptography.fernet` (existing rows keep working).
//! - [`service`]: [`TokenService`], every rule of §B1 plus the fixes: rotated refresh tokens
//!   are stored, logout revokes and deletes, `/connected` works for every IdP, expired rows
//!   are purged, a linked account moves to the user who links it last.
//! - [`collections`]: the collection spec of the refresh tokens.
//! - [`human`]: the human-readable expirations of `/external_oidc` ("29 days").

pub mod collections;
pub mod fernet;
pub mod human;
pub mod model;
pub mod ports;
pub mod service;

pub use collections::{DEFAULT_COLLECTION, refresh_token_spec};
pub use fernet::Fernet;
pub use model::{
    AuthorizationRequest, Callback, CallbackRefusal, Caller, CodeExchangeRequest, CodeGrant,
    DEFAULT_IDP, Identity, IssuedRefreshToken, LoginSession, LoginStart, ProviderStatus,
    RefreshGrant, RefreshTokenRecord,
};
pub use ports::{
    AccessTokenValidator, Cipher, CipherError, Clock, ExchangeError, IdentityResolver,
    ResolveError, SystemClock, TokenExchange, ValidationError,
};
pub use service::{Idp, Settings, TokenService};

use tessera_kit::dao;

/// Errors of the token service. Each variant is one answer of the HTTP API; the service maps
/// them to statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No user could be identified (no valid token, no known workspace).
    #[error("you need to be authenticated to use this resource")]
    NotAuthenticated,
    /// A bearer token was given but is not valid, or one is required and missing.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// `/oauth2/connected` and `/oauth2/logout` without a valid user.
    #[error("user is not logged in")]
    NotLoggedIn,
    /// The `expires` parameter is not an integer.
    #[error("expires has to be an integer")]
    InvalidExpires,
    /// The IdP is not configured.
    #[error("requested idp {0:?} is not configured")]
    UnknownIdp(String),
    /// A login redirect that is not a local path.
    #[error("only relative redirects are supported")]
    AbsoluteRedirect,
    /// The user has no stored refresh token for the IdP.
    #[error("user has no refresh token")]
    NoRefreshToken,
    /// The user's newest refresh token for the IdP has expired.
    #[error("the refresh token is expired")]
    RefreshTokenExpired,
    /// `/oauth2/connected`: no unexpired refresh token for the IdP.
    #[error("not connected with token service or expired")]
    NotConnected,
    /// The login callback does not belong to the login this browser started.
    #[error("state did not match across auth requests")]
    StateMismatch,
    /// The IdP refused the login (error redirect, rejected code, invalid id token).
    #[error("login refused: {0}")]
    LoginRefused(String),
    /// The IdP's token response lacks fields (named, never the tokens themselves).
    #[error("error in token response: {0}")]
    TokenResponse(String),
    /// The IdP could not be reached or timed out.
    #[error("cannot reach identity provider {idp:?}")]
    IdpUnreachable {
        /// The IdP.
        idp: String,
        /// What failed.
        #[source]
        source: ExchangeError,
    },
    /// The IdP answered the refresh grant with an error.
    #[error("identity provider {idp:?} refused the refresh grant with status {status}")]
    RefreshRefused {
        /// The IdP.
        idp: String,
        /// The HTTP status.
        status: u16,
        /// The response body (shortened).
        body: String,
    },
    /// Some refresh tokens could not be revoked (they were deleted all the same).
    #[error("could not log out: {0}")]
    LogoutFailed(String),
    /// The IdP misbehaved in another way.
    #[error("identity provider {idp:?} failed")]
    Exchange {
        /// The IdP.
        idp: String,
        /// What failed.
        #[source]
        source: ExchangeError,
    },
    /// The workspace identity could not be looked up.
    #[error("cannot resolve the caller's workspace identity")]
    Identity(#[source] ResolveError),
    /// A stored token could not be encrypted or decrypted.
    #[error("cannot encrypt or decrypt a stored refresh token")]
    Cipher(#[source] CipherError),
    /// The storage failed.
    #[error("refresh token storage failed")]
    Storage(#[from] dao::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
