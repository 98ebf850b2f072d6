//! The login port of introspection mode: who an access token of the login provider belongs
//! to (RFC 7662, which Globus Auth implements).

use std::fmt;

use async_trait::async_trait;
use serde_json::Value;

/// Who the login provider says a token belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The provider's subject.
    pub sub: String,
    /// The e-mail address (its local part becomes the username, as the original).
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The groups the provider reports, if it reports any.
    pub groups: Option<Vec<String>>,
    /// Everything the provider said.
    pub details: Value,
}

/// Errors of the login provider.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token is not active or not usable.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// The provider could not be asked.
    #[error("login provider unavailable: {0}")]
    Unavailable(String),
}

/// Token introspection.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Introspector: Send + Sync + fmt::Debug {
    /// The identity behind `token`. MUST return `Rejected` when the provider says the token
    /// is not active, and `Unavailable` when it cannot be asked.
    async fn introspect(&self, token: &str) -> Result<Identity, Error>;
}
