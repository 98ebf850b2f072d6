//! [`Access`]: who a request's caller is, in the mode the config selects (§B2).
//!
//! - Password (v0.3.0): the runner's HS256 tokens of `/token`.
//! - OIDC (v0.4): the provider's JWT access tokens, checked by `tessera-oidc` with
//!   Keycloak's rules: `iss` the issuer of the metadata URL, `aud` containing and `azp`
//!   equal to the client id, `exp`; keys from the provider's JWKS (cached). The run owner is
//!   `sub` (stable at the provider, unlike `preferred_username`); the admin scope makes the
//!   caller an admin.
//! - `open` and `read_only`: no authentication; every caller is `anonymous`, an admin.
//!
//! 401s keep v0.3.0's shapes in both token modes; a valid OIDC token without the admin
//! scope on an admin route is 403.

use std::fmt;
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header;
use tessera_oidc::JwtAccessTokenValidator;
use tessera_recipes::{Caller, Runner};

use crate::config::ANONYMOUS;
use crate::rest::ApiError;

/// How callers are authenticated.
#[derive(Clone)]
pub enum Access {
    /// The runner's users and HS256 tokens.
    Password,
    /// The OIDC provider's access tokens.
    Oidc {
        /// Checks tokens (issuer, audience, azp, expiry, signature).
        validator: Arc<JwtAccessTokenValidator>,
        /// The scope that makes a caller an admin.
        admin_scope: String,
    },
    /// Everyone is `anonymous`, an admin.
    Open,
    /// Everyone is `anonymous`, an admin who may only read.
    ReadOnly,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Access {
    /// The mode's name (logs, errors).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Oidc { .. } => "oidc",
            Self::Open => "open",
            Self::ReadOnly => "read_only",
        }
    }

    /// Whether users log in at `/token` and are created at `/create_user`.
    pub fn has_users(&self) -> bool {
        matches!(self, Self::Password)
    }

    /// The caller of a protected route (§B10.5 for the header's rules).
    pub async fn caller(&self, req: &HttpRequest, runner: &Runner) -> Result<Caller, ApiError> {
        let (validator, admin_scope) = match self {
            Self::Open | Self::ReadOnly => {
                return Ok(Caller {
                    name: ANONYMOUS.to_owned(),
                    admin: true,
                });
            }
            Self::Password => {
                let credential = bearer(req)?;
                return runner
                    .authenticate(credential)
                    .await?
                    .map_err(|_| ApiError::BadCredentials);
            }
            Self::Oidc {
                validator,
                admin_scope,
            } => (validator, admin_scope),
        };
        let credential = bearer(req)?;
        match validator.verify(credential).await {
            Ok(token) => Ok(Caller {
                admin: token.has_scope(admin_scope),
                name: token.identity.subject,
            }),
            Err(why) => {
                tracing::info!(reason = %why.0, "access token refused");
                Err(ApiError::BadCredentials)
            }
        }
    }

    /// The caller of an admin route: in OIDC mode a valid token without the admin scope is
    /// 403; with passwords a non-admin is the domain's `NotAdmin` (401, as v0.3.0 answers).
    pub async fn admin(&self, req: &HttpRequest, runner: &Runner) -> Result<Caller, ApiError> {
        let caller = self.caller(req, runner).await?;
        if let Self::Oidc { admin_scope, .. } = self
            && !caller.is_admin()
        {
            return Err(ApiError::MissingScope(admin_scope.clone()));
        }
        Ok(caller)
    }

    /// The caller of a route that changes runs: `read_only` refuses it (403).
    pub async fn writer(
        &self,
        req: &HttpRequest,
        runner: &Runner,
        what: &'static str,
    ) -> Result<Caller, ApiError> {
        if let Self::ReadOnly = self {
            return Err(ApiError::ReadOnly(what));
        }
        self.caller(req, runner).await
    }
}

/// The credential of `Authorization: Bearer <credential>`: a missing header or another
/// scheme is "Not authenticated", an empty credential "Could not validate credentials.".
fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::NotAuthenticated)?;
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::NotAuthenticated);
    }
    let credential = credential.trim();
    if credential.is_empty() {
        return Err(ApiError::BadCredentials);
    }
    Ok(credential)
}
