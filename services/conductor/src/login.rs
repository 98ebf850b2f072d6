//! The login providers ([`Providers`]): one `tessera-oidc` relying party per configured
//! provider, built on first use (endpoints not in the config come from its discovery
//! document), and the signed, expiring login state that carries `next` through the
//! provider.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tessera_conductor::{Identity, SignedIn, TokenKind};
use tessera_oidc::{ClientSettings, Discovery, IdpKind, KeyStore, LazyClient, OidcClient};
use tessera_tokens::{AuthorizationRequest, CodeExchangeRequest, TokenExchange};
use tokio::sync::OnceCell;

use crate::config::{ConductorConfig, OidcProvider};
use crate::keys::Keys;

/// A login state as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginState {
    /// Where to return.
    pub next: String,
    /// The provider's name.
    pub provider: String,
    /// The nonce of the id token.
    pub nonce: String,
}

struct Provider {
    config: OidcProvider,
    redirect_uri: String,
    client: OnceCell<Arc<OidcClient>>,
}

/// The configured providers.
pub struct Providers {
    providers: BTreeMap<String, Provider>,
    /// Built with the first provider's client: an idle service holds no TLS context.
    http: LazyClient,
    keys: OnceLock<Arc<KeyStore>>,
    tokens_clock: Arc<dyn tessera_tokens::Clock>,
    signing: Arc<Keys>,
    state_lifetime: i64,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No provider of that name.
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    /// The provider could not be reached or refused.
    #[error("provider: {0}")]
    Provider(String),
    /// The provider did not give a usable email address.
    #[error("the provider gave no verified email address")]
    NoEmail,
}

impl Providers {
    /// The providers of `config`, using `signing` for states and PKCE verifiers.
    pub fn new(
        config: &ConductorConfig,
        signing: Arc<Keys>,
        timeout: Duration,
    ) -> crate::Result<Self> {
        let providers = config
            .oidc_providers
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    Provider {
                        config: p.clone(),
                        redirect_uri: config.redirect_uri(p),
                        client: OnceCell::new(),
                    },
                )
            })
            .collect();
        Ok(Self {
            providers,
            http: LazyClient::new(timeout),
            keys: OnceLock::new(),
            tokens_clock: Arc::new(tessera_tokens::SystemClock),
            signing,
            state_lifetime: i64::from(config.login_state_expires_in),
        })
    }

    /// The provider names, in order.
    pub fn names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    async fn client(&self, name: &str) -> Result<Arc<OidcClient>, LoginError> {
        let provider = self
            .providers
            .get(name)
            .ok_or_else(|| LoginError::UnknownProvider(name.to_owned()))?;
        provider
            .client
            .get_or_try_init(|| async {
                let http = self
                    .http
                    .get()
                    .map_err(|e| LoginError::Provider(e.to_string()))?
                    .clone();
                let keys = self
                    .keys
                    .get_or_init(|| Arc::new(KeyStore::new(http.clone(), Duration::from_secs(60))))
                    .clone();
                let config = &provider.config;
                let issuer = ConductorConfig::issuer(config);
                let (mut authorization, mut token) = (
                    config.authorization_endpoint.clone(),
                    config.token_endpoint.clone(),
                );
                if authorization.is_empty() || token.is_empty() {
                    let metadata = Discovery::new(http.clone(), issuer.clone())
                        .metadata()
                        .await
                        .map_err(|e| LoginError::Provider(e.to_string()))?;
                    if authorization.is_empty() {
                        authorization = metadata.authorization_endpoint.clone().unwrap_or_default();
                    }
                    if token.is_empty() {
                        token = metadata.token_endpoint.clone().unwrap_or_default();
                    }
                }
                let settings = ClientSettings {
                    idp: config.name.clone(),
                    kind: IdpKind::Generic {
                        authorization_endpoint: authorization,
                        token_endpoint: token,
                        issuer: Some(issuer.clone()),
                        base_url: issuer,
                    },
                    client_id: config.client_id.clone(),
                    client_secret: config.client_secret.expose().to_owned(),
                    redirect_uri: provider.redirect_uri.clone(),
                    scope: config.scope.clone(),
                    extra_params: Vec::new(),
                    username_field: "email".into(),
                    user_agent: format!("tessera-conductor/{}", crate::VERSION),
                };
                OidcClient::new(settings, http, keys, self.tokens_clock.clone())
                    .map(Arc::new)
                    .map_err(|e| LoginError::Provider(e.to_string()))
            })
            .await
            .cloned()
    }

    /// The login URL of `provider` that returns to `next`.
    pub async fn login_url(
        &self,
        identity: &Identity,
        provider: &str,
        next: &str,
    ) -> Result<String, LoginError> {
        let client = self.client(provider).await?;
        let nonce = random_token();
        let now = identity.now();
        let mut claims = Map::new();
        claims.insert("next".into(), json!(next));
        claims.insert("provider".into(), json!(provider));
        claims.insert("nonce".into(), json!(nonce));
        claims.insert("nbf".into(), json!(now));
        let state = identity
            .sign(TokenKind::LoginState, claims, self.state_lifetime)
            .map_err(|e| LoginError::Provider(e.to_string()))?;
        let verifier = self.signing.pkce_verifier(&nonce);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        client
            .authorization_url(&AuthorizationRequest {
                state,
                nonce,
                code_challenge: challenge,
            })
            .await
            .map_err(|e| LoginError::Provider(e.to_string()))
    }

    /// The verified login state, or why not.
    pub fn state(identity: &Identity, state: &str) -> Result<LoginState, tessera_conductor::Error> {
        let claims = identity.verify(TokenKind::LoginState, state)?;
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        match (text("next"), text("provider"), text("nonce")) {
            (Some(next), Some(provider), Some(nonce)) => Ok(LoginState {
                next,
                provider,
                nonce,
            }),
            _ => Err(tessera_conductor::Error::NotAuthenticated(
                "incomplete login state".into(),
            )),
        }
    }

    /// Redeems the code of a login and tells who signed in.
    pub async fn sign_in(
        &self,
        state: &LoginState,
        code: &str,
        iss: Option<String>,
    ) -> Result<SignedIn, LoginError> {
        let client = self.client(&state.provider).await?;
        let signed = client
            .sign_in(&CodeExchangeRequest {
                code: code.to_owned(),
                code_verifier: self.signing.pkce_verifier(&state.nonce),
                nonce: state.nonce.clone(),
                iss,
            })
            .await
            .map_err(|e| LoginError::Provider(e.to_string()))?;
        let text = |k: &str| {
            signed
                .claims
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        // An address the provider says it has not verified is no identity.
        if signed.claims.get("email_verified") == Some(&Value::Bool(false)) {
            return Err(LoginError::NoEmail);
        }
        let email = text("email").ok_or(LoginError::NoEmail)?;
        Ok(SignedIn {
            provider: state.provider.clone(),
            subject: signed.subject.clone(),
            email,
            name: text("name"),
            picture: text("picture"),
        })
    }
}
