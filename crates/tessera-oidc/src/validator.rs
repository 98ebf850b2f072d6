//! [`JwtAccessTokenValidator`]: the commons' access tokens (Fence's, or any issuer's that
//! follows the same rules), as authutils checks them (§B2) with the corrections of §B9.
//!
//! Order: parse; the issuer must be allowed (before any key is fetched, unlike the original);
//! the algorithm must be allowed; the key is the issuer's key named by `kid`; the signature;
//! then `exp` (required), `nbf` and `iat` without leeway, the audience, the authorized
//! party (`azp`, when the rules name one), the rules' scope (`openid` by default), `pur` =
//! `access` (when the rules name a purpose), and `sub` and `context.user.name` for the
//! identity.
//!
//! [`JwtAccessTokenValidator::verify`] also answers the token's scopes, so that a caller can
//! require a further scope per operation with [`VerifiedToken::require_scope`] and tell a
//! token that is not valid (401) from one that lacks a permission (403).

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
    /// The value `azp` must have (Keycloak's tokens name the client they were issued to
    /// there); `None` skips the check.
    pub authorized_party: Option<String>,
    /// The required value of `pur`; `None` skips the check (tokens that are not Fence's).
    pub purpose: Option<String>,
    /// A scope `scope` must contain; `None` skips the check.
    pub scope: Option<String>,
    /// The dotted claim holding the username.
    pub username_claim: String,
}

impl Default for AccessTokenRules {
    fn default() -> Self {
        Self {
            allowed_issuers: Vec::new(),
            audience: Some("gen3".to_owned()),
            algorithms: vec!["RS256".to_owned()],
            authorized_party: None,
            purpose: Some("access".to_owned()),
            scope: Some("openid".to_owned()),
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

/// A token that passed every rule: who it names and the scopes it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The identity (`sub` and the rules' username claim).
    pub identity: Identity,
    /// The scopes of `scope` (a space-separated string, or Fence's list), in token order.
    pub scopes: Vec<String>,
}

/// A valid token lacks a scope an operation requires (an HTTP service answers 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token's scope does not include {0}")]
pub struct MissingScope(pub String);

impl VerifiedToken {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `Err` naming `scope` when the token does not carry it.
    pub fn require_scope(&self, scope: &str) -> Result<(), MissingScope> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(MissingScope(scope.to_owned()))
        }
    }
}

fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("scope") {
        Some(Value::String(scope)) => scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
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

    fn check_claims(&self, claims: &Map<String, Value>) -> Result<VerifiedToken, ValidationError> {
        check_times(claims, self.clock.now()).map_err(invalid)?;
        if let Some(audience) = &self.rules.audience
            && !audience_contains(claims, audience)
        {
            return Err(invalid(format!(
                "the token's audience does not include {audience}"
            )));
        }
        if let Some(party) = &self.rules.authorized_party
            && claims.get("azp").and_then(Value::as_str) != Some(party.as_str())
        {
            return Err(invalid(format!(
                "the token's authorized party (azp) is not {party}"
            )));
        }
        if let Some(scope) = &self.rules.scope
            && !scope_contains(claims, scope)
        {
            return Err(invalid(format!(
                "the token's scope does not include {scope}"
            )));
        }
        if let Some(purpose) = &self.rules.purpose
            && claims.get("pur").and_then(Value::as_str) != Some(purpose.as_str())
        {
            return Err(invalid(format!("the token's purpose is not {purpose}")));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the token has no sub"))?;
        let username = dotted_str(claims, &self.rules.username_claim)
            .ok_or_else(|| invalid(format!("the token has no {}", self.rules.username_claim)))?;
        Ok(VerifiedToken {
            identity: Identity {
                subject: subject.to_owned(),
                username: username.to_owned(),
            },
            scopes: scopes(claims),
        })
    }

    /// Checks `token` against the rules and answers its identity and scopes.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, ValidationError> {
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

#[async_trait]
impl AccessTokenValidator for JwtAccessTokenValidator {
    async fn validate(&self, token: &str) -> Result<Identity, ValidationError> {
        self.verify(token).await.map(|verified| verified.identity)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn verified(scope: Value) -> VerifiedToken {
        let claims = json!({ "scope": scope });
        VerifiedToken {
            identity: Identity {
                subject: "s".into(),
                username: "u".into(),
            },
            scopes: scopes(claims.as_object().unwrap()),
        }
    }

    #[test]
    fn scopes_come_from_a_string_or_a_list() {
        let t = verified(json!("openid  ogdc:admin"));
        assert_eq!(t.scopes, ["openid", "ogdc:admin"]);
        assert!(t.require_scope("ogdc:admin").is_ok());
        assert_eq!(
            t.require_scope("ogdc").unwrap_err().to_string(),
            "the token's scope does not include ogdc"
        );
        assert_eq!(verified(json!(["a", 5, "b"])).scopes, ["a", "b"]);
        assert!(verified(Value::Null).scopes.is_empty());
        assert!(!verified(json!(7)).has_scope("7"));
    }
}
