//! What is stored and what flows between the service, the translators and the ports.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The IdP of the commons WTS runs in (its Fence); always configured.
pub const DEFAULT_IDP: &str = "default";

/// One stored refresh token (table `refresh_token` of the original, §B3).
///
/// `token_ciphertext` is the [`Cipher`](crate::Cipher) encryption of the refresh token (Fernet,
/// byte-compatible with the original's rows). `expires` is the refresh token's expiry in Unix
/// seconds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    /// A UUID4 that identifies the row.
    pub id: String,
    /// The encrypted refresh token.
    pub token_ciphertext: String,
    /// The refresh token's `jti` (a UUID4 when it has none); unique.
    pub jti: String,
    /// The local user (the commons' own username).
    pub username: String,
    /// The user's subject at the IdP (`sub` of the id token).
    pub userid: String,
    /// The IdP name (`default` or an `external_oidc` login option).
    pub idp: String,
    /// Expiry of the refresh token, Unix seconds.
    pub expires: i64,
}

impl fmt::Debug for RefreshTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The ciphertext is harmless without the key, but it is long and useless in logs.
        f.debug_struct("RefreshTokenRecord")
            .field("id", &self.id)
            .field("jti", &self.jti)
            .field("username", &self.username)
            .field("userid", &self.userid)
            .field("idp", &self.idp)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Who is calling, as the HTTP edge saw it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The credential of the `Authorization` header, whatever its scheme (§B9.7).
    pub token: Option<String>,
    /// The client address (after the trusted proxy hops).
    pub remote_ip: Option<IpAddr>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("token", &self.token.as_ref().map(|_| "**********"))
            .field("remote_ip", &self.remote_ip)
            .finish()
    }
}

/// A validated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's id at the token's issuer (`sub`).
    pub subject: String,
    /// The local username (`context.user.name`).
    pub username: String,
}

/// What the browser carries between `/oauth2/authorization_url` and the callback (in a signed
/// cookie). The verifier and nonce are the browser's own secrets; signing only stops forgery.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSession {
    /// The `state` sent to the IdP.
    pub state: String,
    /// The IdP of the login.
    pub idp: String,
    /// Where to send the browser afterwards (a local path).
    pub redirect: Option<String>,
    /// The PKCE code verifier.
    pub code_verifier: String,
    /// The OIDC nonce.
    pub nonce: String,
}

impl fmt::Debug for LoginSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginSession")
            .field("idp", &self.idp)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

/// The start of a login: where to send the browser and what it must carry back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    /// The IdP's authorization URL.
    pub url: String,
    /// The session to store in the browser.
    pub session: LoginSession,
}

/// The query of the login callback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The state sent to the IdP.
    pub state: Option<String>,
    /// The issuer (RFC 9207), when the IdP sends it.
    pub iss: Option<String>,
    /// An error code instead of a code.
    pub error: Option<String>,
    /// The error's description.
    pub error_description: Option<String>,
}

/// Why a callback has no code to redeem ([`Callback::code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackRefusal {
    /// The IdP sent `error` (and its description), as one text.
    Refused(String),
    /// Neither a code nor an error.
    NoCode,
}

impl Callback {
    /// The callback of a query whose parameter `name` has the value `param(name)`; empty
    /// values count as absent.
    pub fn from_params(param: impl Fn(&str) -> Option<String>) -> Self {
        let text = |name: &str| param(name).filter(|v| !v.is_empty());
        Self {
            code: text("code"),
            state: text("state"),
            iss: text("iss"),
            error: text("error"),
            error_description: text("error_description"),
        }
    }

    /// The code to redeem, once the state has been checked: the IdP's `error` (with its
    /// description) comes first, then a missing code.
    pub fn code(&self) -> Result<&str, CallbackRefusal> {
        if let Some(error) = &self.error {
            let description = self.error_description.as_deref().unwrap_or_default();
            return Err(CallbackRefusal::Refused(
                format!("{error} {description}").trim_end().to_owned(),
            ));
        }
        self.code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(CallbackRefusal::NoCode)
    }
}

/// What [`TokenExchange::authorization_url`](crate::TokenExchange::authorization_url) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The `state`.
    pub state: String,
    /// The `nonce`.
    pub nonce: String,
    /// The PKCE S256 challenge of the verifier.
    pub code_challenge: String,
}

/// What [`TokenExchange::exchange_code`](crate::TokenExchange::exchange_code) needs.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeExchangeRequest {
    /// The authorization code.
    pub code: String,
    /// The PKCE code verifier.
    pub code_verifier: String,
    /// The nonce the id token must carry.
    pub nonce: String,
    /// The `iss` callback parameter, when the IdP sent one.
    pub iss: Option<String>,
}

impl fmt::Debug for CodeExchangeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeExchangeRequest")
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

/// A refresh token as the IdP issued it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedRefreshToken {
    /// The token.
    pub token: String,
    /// Its expiry (Unix seconds) when known: `exp` of a JWT refresh token or the response's
    /// `refresh_expires_in`.
    pub expires: Option<i64>,
    /// Its `jti` when it is a JWT that has one.
    pub jti: Option<String>,
}

impl fmt::Debug for IssuedRefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedRefreshToken")
            .field("expires", &self.expires)
            .field("jti", &self.jti)
            .finish_non_exhaustive()
    }
}

/// The outcome of a code exchange with a verified id token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    /// `sub` of the id token.
    pub subject: String,
    /// The IdP's username claim (`id_token_username_field`), for logs.
    pub idp_username: Option<String>,
    /// The refresh token to store.
    pub refresh_token: IssuedRefreshToken,
}

/// The outcome of a refresh grant.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    /// The new access token.
    pub access_token: String,
    /// A new refresh token when the IdP rotates them.
    pub refresh_token: Option<IssuedRefreshToken>,
}

impl fmt::Debug for RefreshGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshGrant")
            .field("refresh_token", &self.refresh_token)
            .finish_non_exhaustive()
    }
}

/// One entry of the `/external_oidc` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStatus {
    /// The IdP name (the login option's key).
    pub idp: String,
    /// The display name.
    pub name: String,
    /// The configured `base_url`.
    pub base_url: String,
    /// Where the login starts (`<wts_base_url>oauth2/authorization_url?idp=<idp>`).
    pub login_url: String,
    /// How long the user's newest refresh token is still valid ("29 days"); `None` when the
    /// caller is anonymous or has no unexpired token.
    pub refresh_token_expiration: Option<String>,
}
