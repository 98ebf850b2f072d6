//! [`OidcClient`]: one IdP's authorization server as a
//! [`TokenExchange`](tessera_tokens::TokenExchange).
//!
//! Every token-endpoint call authenticates with HTTP Basic (RFC 6749 §2.3.1 encoding) and
//! runs under the HTTP client's timeout (5 s in WTS). Only the code exchange sends the
//! `User-Agent` of the settings (`Gen3WTS/<version>`), as the original does.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Url;
use reqwest::header::USER_AGENT;
use serde_json::{Map, Value};
use tessera_tokens::{
    AuthorizationRequest, Clock, CodeExchangeRequest, CodeGrant, ExchangeError, IssuedRefreshToken,
    RefreshGrant, TokenExchange,
};

use crate::discovery::Discovery;
use crate::http::{form_encode, send_expect_success, send_for_json};
use crate::jwt::{Unverified, audience_contains, dotted_str, numeric_date};
use crate::keys::KeyStore;
use crate::{Error, Result};

/// Algorithms accepted on id tokens: asymmetric ones only (the key must fit too).
const ID_TOKEN_ALGORITHMS: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// Where an IdP's endpoints are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpKind {
    /// A Fence: the endpoints of its discovery document under `base_url` (which ends in
    /// `/user/`), or, where it serves none, `oauth2/authorize`, `oauth2/token` and
    /// `oauth2/revoke` under `base_url`; the issuer is `base_url` without the trailing `/`.
    Fence {
        /// Fence's base URL.
        base_url: String,
    },
    /// Any OpenID provider with explicit endpoints.
    Generic {
        /// The authorization endpoint.
        authorization_endpoint: String,
        /// The token endpoint.
        token_endpoint: String,
        /// The issuer of its id tokens; `None` accepts the issuer an id token names when it
        /// has the token endpoint's origin.
        issuer: Option<String>,
        /// Where to look for the discovery document (revocation endpoint) when `issuer` is
        /// not set: the configured `base_url`.
        base_url: String,
    },
}

/// Everything one IdP client needs.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The IdP's name, for logs.
    pub idp: String,
    /// The endpoints.
    pub kind: IdpKind,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The redirect URI registered at the IdP.
    pub redirect_uri: String,
    /// The scope asked for.
    pub scope: String,
    /// Extra authorization-request parameters (Fence's `params`, e.g. `idp`).
    pub extra_params: Vec<(String, String)>,
    /// The dotted id-token claim with the IdP's username (for logs).
    pub username_field: String,
    /// The `User-Agent` of the code exchange.
    pub user_agent: String,
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("idp", &self.idp)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// One IdP's authorization server.
pub struct OidcClient {
    settings: ClientSettings,
    authorization_endpoint: Url,
    token_endpoint: Url,
    http: reqwest::Client,
    keys: Arc<KeyStore>,
    clock: Arc<dyn Clock>,
    discovery: Option<Discovery>,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn parse_url(what: &str, url: &str) -> Result<Url> {
    let parsed = Url::parse(url).map_err(|e| Error::Config(format!("{what} {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Config(format!("{what} {url:?} must be http(s)")));
    }
    Ok(parsed)
}

impl OidcClient {
    /// A client over `http` (whose timeout applies to every call), with id-token keys from
    /// `keys`. Fails when an endpoint is not an absolute http(s) URL.
    pub fn new(
        settings: ClientSettings,
        http: reqwest::Client,
        keys: Arc<KeyStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let (authorization, token, discovery) = match &settings.kind {
            IdpKind::Fence { base_url } => {
                let base = parse_url("fence base url", base_url)?;
                let join = |path: &str| {
                    base.join(path)
                        .map_err(|e| Error::Config(format!("fence base url {base_url:?}: {e}")))
                };
                (
                    join("oauth2/authorize")?,
                    join("oauth2/token")?,
                    Some(Discovery::new(http.clone(), base_url.as_str())),
                )
            }
            IdpKind::Generic {
                authorization_endpoint,
                token_endpoint,
                issuer,
                base_url,
            } => {
                let discovery_base = issuer.as_deref().unwrap_or(base_url);
                (
                    parse_url("authorization endpoint", authorization_endpoint)?,
                    parse_url("token endpoint", token_endpoint)?,
                    Some(Discovery::new(http.clone(), discovery_base)),
                )
            }
        };
        Ok(Self {
            settings,
            authorization_endpoint: authorization,
            token_endpoint: token,
            http,
            keys,
            clock,
            discovery,
        })
    }

    /// A client of the provider at `issuer`, its endpoints from its discovery document
    /// (`settings.kind` is replaced by them, with `issuer` as the id tokens' issuer). MUST
    /// return `Unreachable` when the document cannot be fetched, `InvalidResponse` when it
    /// names another issuer or lacks the authorization or token endpoint.
    pub async fn discover(
        mut settings: ClientSettings,
        issuer: &str,
        http: reqwest::Client,
        keys: Arc<KeyStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ExchangeError> {
        let metadata = crate::discovery::fetch(&http, issuer)
            .await
            .map_err(|e| match e {
                Error::Fetch { .. } => ExchangeError::Unreachable(e.to_string()),
                e => ExchangeError::InvalidResponse(e.to_string()),
            })?;
        if metadata.issuer != issuer {
            return Err(ExchangeError::InvalidResponse(format!(
                "the discovery document names the issuer {}, not {issuer}",
                metadata.issuer
            )));
        }
        let endpoint = |url: Option<String>, what: &str| {
            url.ok_or_else(|| {
                ExchangeError::InvalidResponse(format!("the discovery document has no {what}"))
            })
        };
        settings.kind = IdpKind::Generic {
            authorization_endpoint: endpoint(
                metadata.authorization_endpoint,
                "authorization_endpoint",
            )?,
            token_endpoint: endpoint(metadata.token_endpoint, "token_endpoint")?,
            issuer: Some(issuer.to_owned()),
            base_url: issuer.to_owned(),
        };
        Self::new(settings, http, keys, clock)
            .map_err(|e| ExchangeError::InvalidResponse(e.to_string()))
    }

    /// The settings.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The token endpoint as configured (a Fence's fixed path; see [`Self::endpoints`]).
    pub fn token_endpoint(&self) -> &str {
        self.token_endpoint.as_str()
    }

    /// The authorization and token endpoints to use: a generic IdP's as configured; a
    /// Fence's from its discovery document when it serves one that names them, else the
    /// fixed paths under its base URL (the original's, and Fence's own). The document is
    /// fetched once; a failure is not kept, so a Fence that comes up later is discovered.
    pub async fn endpoints(&self) -> (Url, Url) {
        let fixed = (
            self.authorization_endpoint.clone(),
            self.token_endpoint.clone(),
        );
        let (IdpKind::Fence { .. }, Some(discovery)) = (&self.settings.kind, &self.discovery)
        else {
            return fixed;
        };
        let metadata = match discovery.metadata().await {
            Ok(metadata) => metadata,
            Err(error) => {
                tracing::debug!(idp = %self.settings.idp, %error, "no discovery document; fixed fence endpoints");
                return fixed;
            }
        };
        let discovered = |url: &Option<String>| {
            url.as_deref()
                .and_then(|url| parse_url("endpoint", url).ok())
        };
        (
            discovered(&metadata.authorization_endpoint).unwrap_or(fixed.0),
            discovered(&metadata.token_endpoint).unwrap_or(fixed.1),
        )
    }

    /// The issuer known without looking at a token: a Fence's base URL without its `/`,
    /// a generic IdP's `issuer` as configured. Issuers are compared exactly (OIDC Core
    /// 3.1.3.7, RFC 9207): a trailing slash makes another issuer.
    fn configured_issuer(&self) -> Option<String> {
        match &self.settings.kind {
            IdpKind::Fence { base_url } => Some(base_url.trim_end_matches('/').to_owned()),
            IdpKind::Generic { issuer, .. } => issuer.clone(),
        }
    }

    /// The revocation endpoint: the discovery document's; for a Fence without one (or
    /// without a revocation endpoint in it) `oauth2/revoke` under its base URL (the original
    /// loses `/user` here).
    pub async fn revocation_endpoint(&self) -> Result<Option<String>> {
        match (&self.settings.kind, &self.discovery) {
            (IdpKind::Fence { base_url }, discovery) => {
                let discovered = match discovery {
                    Some(discovery) => discovery
                        .metadata()
                        .await
                        .ok()
                        .and_then(|metadata| metadata.revocation_endpoint.clone()),
                    None => None,
                };
                match discovered {
                    Some(endpoint) => Ok(Some(endpoint)),
                    None => Ok(Some(
                        parse_url("fence base url", base_url)?
                            .join("oauth2/revoke")
                            .map_err(|e| Error::Config(e.to_string()))?
                            .to_string(),
                    )),
                }
            }
            (IdpKind::Generic { .. }, Some(discovery)) => {
                Ok(discovery.metadata().await?.revocation_endpoint.clone())
            }
            (IdpKind::Generic { .. }, None) => Ok(None),
        }
    }

    async fn token_request(&self) -> reqwest::RequestBuilder {
        let (_, token_endpoint) = self.endpoints().await;
        self.http.post(token_endpoint).basic_auth(
            form_encode(&self.settings.client_id),
            Some(form_encode(&self.settings.client_secret)),
        )
    }

    /// Verifies an id token: signature with the issuer's key, issuer, audience = client id,
    /// expiry, nonce. Returns its claims.
    async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, ExchangeError> {
        let invalid = |reason: String| ExchangeError::InvalidIdToken(reason);
        let unverified = Unverified::parse(token).map_err(invalid)?;
        let named = unverified
            .claim_str("iss")
            .ok_or_else(|| invalid("no iss".to_owned()))?
            .to_owned();
        let issuer = match self.configured_issuer() {
            Some(issuer) => issuer,
            None => {
                let same_origin = Url::parse(&named)
                    .is_ok_and(|url| url.origin() == self.token_endpoint.origin());
                if !same_origin {
                    return Err(invalid(format!(
                        "issuer {named} is not at the token endpoint's origin"
                    )));
                }
                named.clone()
            }
        };
        if named != issuer {
            return Err(invalid(format!("issuer {named} is not {issuer}")));
        }
        let alg = unverified
            .header_str("alg")
            .ok_or_else(|| invalid("no alg".to_owned()))?;
        if !ID_TOKEN_ALGORITHMS.contains(&alg) {
            return Err(invalid(format!("algorithm {alg} is not allowed")));
        }
        let key = self
            .keys
            .key(&issuer, unverified.header_str("kid"))
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let payload = key.verify(alg, token).map_err(invalid)?;
        let claims = match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => claims,
            _ => return Err(invalid("the payload is not a json object".to_owned())),
        };
        let exp = numeric_date(&claims, "exp")
            .map_err(invalid)?
            .ok_or_else(|| invalid("no exp".to_owned()))?;
        if exp <= self.clock.now() {
            return Err(invalid(format!("expired at {exp}")));
        }
        if !audience_contains(&claims, &self.settings.client_id) {
            return Err(invalid("the audience is not this client".to_owned()));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(invalid("the nonce does not match".to_owned()));
        }
        Ok(claims)
    }

    /// A refresh token as issued, with what can be read from it: `exp` and `jti` of a JWT
    /// (Fence's), else `refresh_expires_in` of the response (Keycloak's).
    fn issued(&self, token: &str, response: &Map<String, Value>) -> IssuedRefreshToken {
        let jwt = Unverified::parse(token).ok();
        let exp = jwt
            .as_ref()
            .and_then(|t| numeric_date(&t.claims, "exp").ok().flatten());
        let expires_in = response
            .get("refresh_expires_in")
            .and_then(Value::as_i64)
            .filter(|s| *s > 0)
            .map(|s| self.clock.now().saturating_add(s));
        IssuedRefreshToken {
            token: token.to_owned(),
            expires: exp.or(expires_in),
            jti: jwt.and_then(|t| t.claim_str("jti").map(str::to_owned)),
        }
    }
}

impl OidcClient {
    /// Redeems an authorization code: checks the callback's issuer (RFC 9207), requires an
    /// id token (and a refresh token when `need_refresh`) and verifies it. Returns the
    /// token response and the id token's claims.
    async fn redeem(
        &self,
        request: &CodeExchangeRequest,
        need_refresh: bool,
    ) -> Result<(Map<String, Value>, Map<String, Value>), ExchangeError> {
        // RFC 9207: an authorization response from another issuer is a mix-up; its code must
        // not reach this token endpoint.
        if let (Some(iss), Some(expected)) = (&request.iss, self.configured_issuer())
            && *iss != expected
        {
            return Err(ExchangeError::InvalidIdToken(format!(
                "the callback's issuer {iss} is not {expected}"
            )));
        }
        let form = [
            ("grant_type", "authorization_code"),
            ("code", request.code.as_str()),
            ("redirect_uri", self.settings.redirect_uri.as_str()),
            ("code_verifier", request.code_verifier.as_str()),
        ];
        let response = send_for_json(
            self.token_request()
                .await
                .header(USER_AGENT, &self.settings.user_agent)
                .form(&form),
        )
        .await?;
        let wanted: &[&str] = if need_refresh {
            &["refresh_token", "id_token"]
        } else {
            &["id_token"]
        };
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|field| text(&response, field).is_none())
            .collect();
        let Some(id_token) = text(&response, "id_token").filter(|_| missing.is_empty()) else {
            return Err(ExchangeError::InvalidResponse(format!(
                "missing {}",
                missing.join(", ")
            )));
        };
        let claims = self.verify_id_token(id_token, &request.nonce).await?;
        if let Some(iss) = &request.iss
            && claims.get("iss").and_then(Value::as_str) != Some(iss.as_str())
        {
            return Err(ExchangeError::InvalidIdToken(
                "the callback's issuer is not the id token's".to_owned(),
            ));
        }
        Ok((response, claims))
    }

    /// Signs a user in: redeems the code (no refresh token needed), verifies the id token
    /// and, when the provider has a userinfo endpoint and sent an access token, adds the
    /// userinfo claims the id token lacks (many providers put `email` only there). The
    /// userinfo answer MUST name the id token's `sub`, else `InvalidResponse`.
    pub async fn sign_in(&self, request: &CodeExchangeRequest) -> Result<SignIn, ExchangeError> {
        let (response, mut claims) = self.redeem(request, false).await?;
        let subject = subject(&claims)?;
        let userinfo = match (&self.discovery, text(&response, "access_token")) {
            (Some(discovery), Some(access_token)) => {
                let metadata = discovery
                    .metadata()
                    .await
                    .map_err(|e| ExchangeError::Unreachable(e.to_string()))?;
                match &metadata.userinfo_endpoint {
                    Some(endpoint) => Some(
                        send_for_json(self.http.get(endpoint.as_str()).bearer_auth(access_token))
                            .await?,
                    ),
                    None => None,
                }
            }
            _ => None,
        };
        if let Some(info) = userinfo {
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(ExchangeError::InvalidResponse(
                    "the userinfo subject is not the id token's".to_owned(),
                ));
            }
            for (key, value) in info {
                claims.entry(key).or_insert(value);
            }
        }
        Ok(SignIn { subject, claims })
    }
}

impl OidcClient {
    /// Redeems a login's code for the provider's tokens, for a service that hands them to
    /// its caller: the id token is verified as by [`Self::sign_in`] (no userinfo call). MUST
    /// return `InvalidResponse` when the answer lacks an id or access token, and the errors
    /// of [`TokenExchange::exchange_code`] otherwise.
    pub async fn redeem_tokens(
        &self,
        request: &CodeExchangeRequest,
    ) -> Result<ProviderTokens, ExchangeError> {
        let (response, claims) = self.redeem(request, false).await?;
        let access_token = text(&response, "access_token")
            .ok_or_else(|| ExchangeError::InvalidResponse("missing access_token".to_owned()))?;
        Ok(ProviderTokens {
            access_token: access_token.to_owned(),
            refresh_token: text(&response, "refresh_token").map(str::to_owned),
            claims,
        })
    }

    /// The refresh grant, asking for `scope` (a subset of the granted one) when given; as
    /// [`TokenExchange::refresh`] otherwise.
    pub async fn refresh_scoped(
        &self,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<RefreshGrant, ExchangeError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = send_for_json(self.token_request().await.form(&form)).await?;
        let access_token = text(&response, "access_token")
            .ok_or_else(|| ExchangeError::InvalidResponse("missing access_token".to_owned()))?;
        Ok(RefreshGrant {
            access_token: access_token.to_owned(),
            refresh_token: text(&response, "refresh_token").map(|t| self.issued(t, &response)),
        })
    }
}

/// The provider's tokens of a login ([`OidcClient::redeem_tokens`]).
#[derive(Clone, PartialEq)]
pub struct ProviderTokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token, when the provider issued one.
    pub refresh_token: Option<String>,
    /// The verified id-token claims.
    pub claims: Map<String, Value>,
}

impl fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderTokens")
            .field("sub", &self.claims.get("sub"))
            .finish_non_exhaustive()
    }
}

/// A signed-in user: the id token's claims, completed from userinfo.
#[derive(Debug, Clone, PartialEq)]
pub struct SignIn {
    /// `sub`.
    pub subject: String,
    /// The verified claims (`email`, `name`, `picture`, … when the provider gives them).
    pub claims: Map<String, Value>,
}

fn subject(claims: &Map<String, Value>) -> Result<String, ExchangeError> {
    claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ExchangeError::InvalidIdToken("no sub".to_owned()))
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[async_trait]
impl TokenExchange for OidcClient {
    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<String, ExchangeError> {
        let (mut url, _) = self.endpoints().await;
        {
            let s = &self.settings;
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &s.client_id)
                .append_pair("redirect_uri", &s.redirect_uri)
                .append_pair("scope", &s.scope)
                .append_pair("state", &request.state)
                .append_pair("nonce", &request.nonce)
                .append_pair("code_challenge", &request.code_challenge)
                .append_pair("code_challenge_method", "S256");
            for (key, value) in &s.extra_params {
                query.append_pair(key, value);
            }
        }
        Ok(url.to_string())
    }

    async fn exchange_code(
        &self,
        request: &CodeExchangeRequest,
    ) -> Result<CodeGrant, ExchangeError> {
        let (response, claims) = self.redeem(request, true).await?;
        let refresh_token = text(&response, "refresh_token").unwrap_or_default();
        Ok(CodeGrant {
            subject: subject(&claims)?,
            idp_username: dotted_str(&claims, &self.settings.username_field).map(str::to_owned),
            refresh_token: self.issued(refresh_token, &response),
        })
    }

    async fn refresh(&self, refresh_token: &str) -> Result<RefreshGrant, ExchangeError> {
        self.refresh_scoped(refresh_token, None).await
    }

    async fn revoke(&self, refresh_token: &str) -> Result<(), ExchangeError> {
        let endpoint = self
            .revocation_endpoint()
            .await
            .map_err(|e| ExchangeError::Unreachable(e.to_string()))?
            .ok_or_else(|| ExchangeError::Unsupported("no revocation endpoint".to_owned()))?;
        let form = [
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ];
        send_expect_success(
            self.http
                .post(endpoint)
                .basic_auth(
                    form_encode(&self.settings.client_id),
                    Some(form_encode(&self.settings.client_secret)),
                )
                .form(&form),
        )
        .await
    }
}
