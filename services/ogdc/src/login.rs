//! [`Login`]: v0.4's browser login in OIDC mode (§B2). `GET /login` sends the browser to the
//! provider with a random state, nonce and PKCE (S256) challenge, keeping them in a signed,
//! `HttpOnly` session cookie; `GET /authorize` checks the state against that cookie, redeems
//! the code (the id token verified) and hands the provider's tokens to the caller; `POST
//! /refresh` runs the refresh grant. The relying party is `tessera-oidc`'s, built on first use
//! from the discovery document, so the service starts while the provider is down.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use tessera_oidc::{ClientSettings, IdpKind, KeyStore, OidcClient, ProviderTokens, SessionCodec};
use tessera_tokens::{
    Callback, CallbackRefusal, Clock, CodeExchangeRequest, ExchangeError, LoginSession,
    RefreshGrant, TokenExchange as _,
};
use tokio::sync::OnceCell;

use crate::config::OidcSecrets;

/// The session cookie's name.
pub const COOKIE: &str = "ogdc_login";

/// Seconds a login may take between `/login` and `/authorize`.
pub const SESSION_SECONDS: u32 = 600;

/// Why a login step failed; the one status mapping is `rest::ApiError`'s.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No session cookie, or one that is expired, forged or of another key (400).
    #[error("No login in progress: the login session cookie is missing, expired or invalid.")]
    NoSession,
    /// The callback's state is not the session's (400).
    #[error("The state does not match the login in progress.")]
    StateMismatch,
    /// The provider sent the browser back with `error=` (400).
    #[error("The identity provider refused the login: {0}.")]
    Refused(String),
    /// The callback has no code (400).
    #[error("The callback has no authorization code.")]
    NoCode,
    /// The provider refused the authorization code (`invalid_grant`: unknown, used or
    /// expired) (400).
    #[error("The identity provider refused the authorization code ({0}).")]
    BadCode(String),
    /// A `/refresh` body problem (400).
    #[error("{0}")]
    BadRequest(&'static str),
    /// The provider refused the scope asked for at `/refresh` (400).
    #[error("The identity provider refused the scope ({0}).")]
    BadScope(String),
    /// The provider refused the refresh token (`invalid_grant`) (401).
    #[error("The refresh token is invalid or expired.")]
    InvalidGrant,
    /// The provider could not be reached (discovery, keys, token endpoint) or answered
    /// wrongly (502). The cause is logged, not answered.
    #[error("The identity provider could not be reached or answered wrongly.")]
    Provider(#[source] ExchangeError),
}

/// The start of a login.
#[derive(Debug)]
pub struct LoginStart {
    /// The provider's authorization URL.
    pub url: String,
    /// The `Set-Cookie` value of the session.
    pub set_cookie: String,
}

/// The OIDC login of this service's client.
pub struct Login {
    issuer: String,
    settings: ClientSettings,
    http: reqwest::Client,
    keys: Arc<KeyStore>,
    clock: Arc<dyn Clock>,
    client: OnceCell<Arc<OidcClient>>,
    sessions: SessionCodec,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("issuer", &self.issuer)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The `error` of an OAuth error answer (RFC 6749 §5.2), when the provider gave one.
fn oauth_error(error: &ExchangeError) -> Option<String> {
    let ExchangeError::Rejected { body, .. } = error else {
        return None;
    };
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_owned)
}

impl Login {
    /// The login of the client in `secrets`, asking for `openid email profile <admin_scope>`;
    /// the session cookie is signed with `key`, `Secure` when `secure`, under `path`.
    pub fn new(
        secrets: &OidcSecrets,
        admin_scope: &str,
        cookie: (&str, bool, &str),
        http: reqwest::Client,
        keys: Arc<KeyStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (key, secure, path) = cookie;
        Self {
            issuer: secrets.issuer().unwrap_or_default().to_owned(),
            settings: ClientSettings {
                idp: "oidc".into(),
                // Replaced by the discovered endpoints on first use.
                kind: IdpKind::Generic {
                    authorization_endpoint: String::new(),
                    token_endpoint: String::new(),
                    issuer: None,
                    base_url: String::new(),
                },
                client_id: secrets.client_id.clone(),
                client_secret: secrets.client_secret.clone(),
                redirect_uri: secrets.redirect_uri().unwrap_or_default().to_owned(),
                scope: format!("openid email profile {admin_scope}"),
                extra_params: Vec::new(),
                username_field: "preferred_username".into(),
                user_agent: format!("tessera-ogdc/{}", env!("CARGO_PKG_VERSION")),
            },
            http,
            keys,
            clock,
            client: OnceCell::new(),
            sessions: SessionCodec::new(COOKIE, key, secure, SESSION_SECONDS, path),
        }
    }

    /// The relying party; discovery runs on first use, and a failure is not kept.
    async fn client(&self) -> Result<Arc<OidcClient>, LoginError> {
        self.client
            .get_or_try_init(|| async {
                OidcClient::discover(
                    self.settings.clone(),
                    &self.issuer,
                    self.http.clone(),
                    self.keys.clone(),
                    self.clock.clone(),
                )
                .await
                .map(Arc::new)
                .map_err(LoginError::Provider)
            })
            .await
            .cloned()
    }

    /// `GET /login`: the provider's authorization URL and the session cookie.
    pub async fn start(&self) -> Result<LoginStart, LoginError> {
        let client = self.client().await?;
        let session = LoginSession::generate(&self.settings.idp, None, None);
        let url = client
            .authorization_url(&session.authorization_request())
            .await
            .map_err(LoginError::Provider)?;
        let value = self
            .sessions
            .encode(&session, self.clock.now())
            .ok_or_else(|| {
                LoginError::Provider(ExchangeError::InvalidResponse(
                    "cannot encode the login session".into(),
                ))
            })?;
        Ok(LoginStart {
            url,
            set_cookie: self.sessions.set_cookie(&value),
        })
    }

    /// `GET /authorize`: checks the callback against the session of `cookie_headers` (the
    /// request's `Cookie` headers) and redeems its code.
    pub async fn finish<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
        callback: &Callback,
    ) -> Result<ProviderTokens, LoginError> {
        let session = self
            .sessions
            .read(cookie_headers, self.clock.now())
            .ok_or(LoginError::NoSession)?;
        if callback.state.as_deref() != Some(session.state.as_str()) {
            return Err(LoginError::StateMismatch);
        }
        let code = callback.code().map_err(|refusal| match refusal {
            CallbackRefusal::Refused(why) => LoginError::Refused(why),
            CallbackRefusal::NoCode => LoginError::NoCode,
        })?;
        let request = CodeExchangeRequest {
            code: code.to_owned(),
            code_verifier: session.code_verifier,
            nonce: session.nonce,
            iss: callback.iss.clone(),
        };
        self.client()
            .await?
            .redeem_tokens(&request)
            .await
            .map_err(|e| match oauth_error(&e).as_deref() {
                Some(error @ "invalid_grant") => LoginError::BadCode(error.to_owned()),
                _ => LoginError::Provider(e),
            })
    }

    /// `POST /refresh`: the refresh grant, for `scope` when given.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<RefreshGrant, LoginError> {
        self.client()
            .await?
            .refresh_scoped(refresh_token, scope)
            .await
            .map_err(|e| match oauth_error(&e).as_deref() {
                Some("invalid_grant") => LoginError::InvalidGrant,
                Some(error @ "invalid_scope") => LoginError::BadScope(error.to_owned()),
                _ => LoginError::Provider(e),
            })
    }

    /// The `Set-Cookie` value that ends the session.
    pub fn clear_cookie(&self) -> String {
        self.sessions.clear_cookie()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_are_read_from_rejections_only() {
        let rejected = |body: &str| ExchangeError::Rejected {
            status: 400,
            body: body.to_owned(),
        };
        assert_eq!(
            oauth_error(&rejected(
                r#"{"error":"invalid_grant","error_description":"x"}"#
            ))
            .as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(oauth_error(&rejected("<html>")), None);
        assert_eq!(oauth_error(&rejected(r#"{"error":7}"#)), None);
        assert_eq!(
            oauth_error(&ExchangeError::Unreachable("invalid_grant".into())),
            None
        );
    }
}
