//! [`JwtAccessTokenValidator`]: the commons' access tokens (Fence's, or any issuer's that
//! follows the same rules), as authutils checks them (§B2) with the corrections of §B9.
//!
//! Order: parse; the issuer must be allowed (before any key is fetched, unlike the original);
//! the algorithm must be allowed; the key is the issuer's key named by `kid`; the signature;
//! then `exp` (required), `nbf` and `iat` without leeway, the audience, `openid` in scope,
//! `pur` = `access`, and `sub` and `context.user.name` for the identity.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tessera_tokens::{AccessTokenValidator, Clock, Identity, ValidationError};

use crate::jwt::{Unverified, audience_contains, check_times, dotted_str, scope_contains};
use crate::keys::KeyStore;

/// The rules of [`JwtAccessTokenValidator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRules {
    /// Issuers whose tokens are accepted (a trailing `/` is ignored on both sides).
    pub allowed_issuers: Vec<String>,
    /// An audience `aud` must contain (authutils 8 wants `gen3`); `None` skips the check.
    pub audience: Option<String>,
    /// Accepted JWS algorithms (the original: `RS256` only).
    pub algorithms: Vec<String>,
    /// The required value of `pur`.
    pub purpose: String,
    /// A scope `scope` must contain.
    pub scope: String,
    /// The dotted claim holding the username.
    pub username_claim: String,
}

impl Default for AccessTokenRules {
    fn default() -> Self {
        Self {
            allowed_issuers: Vec::new(),
            audience: Some("gen3".to_owned()),
            algorithms: vec!["RS256".to_owned()],
            purpose: "access".to_owned(),
            scope: "openid".to_owned(),
            username_claim: "context.user.name".to_owned(),
        }
    }
}

/// Validates access tokens against [`AccessTokenRules`] with keys from a [`KeyStore`].
pub struct JwtAccessTokenValidator {
    rules: AccessTokenRules,
    keys: Arc<KeyStore>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JwtAccessTokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAccessTokenValidator")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

fn invalid(reason: impl Into<String>) -> ValidationError {
    ValidationError(reason.into())
}

impl JwtAccessTokenValidator {
    /// A validator with `rules`, keys from `keys` and the time from `clock`.
    pub fn new(rules: AccessTokenRules, keys: Arc<KeyStore>, clock: Arc<dyn Clock>) -> Self {
        Self { rules, keys, clock }
    }

    /// The rules.
    pub fn rules(&self) -> &AccessTokenRules {
        &self.rules
    }

    fn check_claims(&self, claims: &Map<String, Value>) -> Result<Identity, ValidationError> {
        check_times(claims, self.clock.now()).map_err(invalid)?;
        if let Some(audience) = &self.rules.audience
            && !audience_contains(claims, audience)
        {
            return Err(invalid(format!(
                "the token's audience does not include {audience}"
            )));
        }
        if !scope_contains(claims, &self.rules.scope) {
            return Err(invalid(format!(
                "the token's scope does not include {}",
                self.rules.scope
            )));
        }
        if claims.get("pur").and_then(Value::as_str) != Some(self.rules.purpose.as_str()) {
            return Err(invalid(format!(
                "the token's purpose is not {}",
                self.rules.purpose
            )));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the token has no sub"))?;
        let username = dotted_str(claims, &self.rules.username_claim)
            .ok_or_else(|| invalid(format!("the token has no {}", self.rules.username_claim)))?;
        Ok(Identity {
            subject: subject.to_owned(),
            username: username.to_owned(),
        })
    }
}

#[async_trait]
impl AccessTokenValidator for JwtAccessTokenValidator {
    async fn validate(&self, token: &str) -> Result<Identity, ValidationError> {
        let unverified = Unverified::parse(token).map_err(invalid)?;
        let issuer = unverified
            .claim_str("iss")
            .ok_or_else(|| invalid("the token has no issuer"))?;
        // Exact, as authutils compares: `https://x/user/` is not `https://x/user`.
        if !self.rules.allowed_issuers.iter().any(|a| a == issuer) {
            return Err(invalid(format!("issuer {issuer} is not allowed")));
        }
        let alg = unverified
            .header_str("alg")
            .ok_or_else(|| invalid("the token has no alg"))?;
        if !self.rules.algorithms.iter().any(|a| a == alg) {
            return Err(invalid(format!("algorithm {alg} is not allowed")));
        }
        let kid = unverified
            .header_str("kid")
            .ok_or_else(|| invalid("the token has no kid"))?;
        let key = self
            .keys
            .key(issuer, Some(kid))
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let payload = key.verify(alg, token).map_err(invalid)?;
        // The verified payload, not the one read before: they are the same bytes, but only
        // this one is proven.
        let claims = match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => claims,
            _ => return Err(invalid("the payload is not a json object")),
        };
        self.check_claims(&claims)
    }
}
