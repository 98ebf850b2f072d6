//! [`AuthProvider`]: verifier plus claim rules, the one object services keep to authenticate
//! internal tokens.

use serde_json::{Map, Value};

use crate::{AuthContext, ClaimRules, JwtVerifier, Result};

/// Turns an internal auth token into an [`AuthContext`].
#[derive(Debug, Clone)]
pub struct AuthProvider {
    verifier: JwtVerifier,
    rules: ClaimRules,
}

impl AuthProvider {
    /// Combines a verifier with the claim rules to apply after verification.
    pub fn new(verifier: JwtVerifier, rules: ClaimRules) -> Self {
        Self { verifier, rules }
    }

    /// Builds the provider from configuration values: the public JWK (`auth_key`), the allowed
    /// algorithms (`auth_algs`) and the claim rules. Errors as [`JwtVerifier::from_jwk_json`].
    pub fn from_jwk_json(
        public_jwk_json: &str,
        allowed_algs: &[String],
        rules: ClaimRules,
    ) -> Result<Self> {
        Ok(Self::new(
            JwtVerifier::from_jwk_json(public_jwk_json, allowed_algs)?,
            rules,
        ))
    }

    /// Verifies the token and checks its claims; returns the (mapped) claims.
    pub fn claims(&self, token: &str) -> Result<Map<String, Value>> {
        self.rules.check(self.verifier.verify(token)?)
    }

    /// Verifies the token, checks its claims and builds the user context.
    ///
    /// Errors: any of [`JwtVerifier::verify`], [`ClaimRules::check`] and
    /// [`AuthContext::from_claims`].
    pub fn authenticate(&self, token: &str) -> Result<AuthContext> {
        AuthContext::from_claims(&self.claims(token)?)
    }
}
