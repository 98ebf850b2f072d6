//! OpenID Provider metadata (`<issuer>/.well-known/openid-configuration`).

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::http::get_json;
use crate::{Error, Result};

/// The endpoints of a provider that this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// `issuer`.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: Option<String>,
    /// `token_endpoint`.
    pub token_endpoint: Option<String>,
    /// `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// `revocation_endpoint` (RFC 7009).
    pub revocation_endpoint: Option<String>,
    /// `userinfo_endpoint`.
    pub userinfo_endpoint: Option<String>,
}

impl ProviderMetadata {
    fn from_document(url: &str, doc: &Map<String, Value>) -> Result<Self> {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let issuer = text("issuer").ok_or_else(|| Error::Document {
            url: url.to_owned(),
            reason: "no issuer".to_owned(),
        })?;
        Ok(Self {
            issuer,
            authorization_endpoint: text("authorization_endpoint"),
            token_endpoint: text("token_endpoint"),
            jwks_uri: text("jwks_uri"),
            revocation_endpoint: text("revocation_endpoint"),
            userinfo_endpoint: text("userinfo_endpoint"),
        })
    }
}

/// The discovery URL of an issuer (a trailing `/` of the issuer is ignored).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Fetches an issuer's metadata.
pub async fn fetch(client: &reqwest::Client, issuer: &str) -> Result<ProviderMetadata> {
    let url = discovery_url(issuer);
    let doc = get_json(client, &url).await?;
    ProviderMetadata::from_document(&url, &doc)
}

/// One issuer's metadata, fetched on first use and kept (a failure is not kept).
pub struct Discovery {
    client: reqwest::Client,
    issuer: String,
    cached: Mutex<Option<Arc<ProviderMetadata>>>,
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery of `issuer` over `client`.
    pub fn new(client: reqwest::Client, issuer: impl Into<String>) -> Self {
        Self {
            client,
            issuer: issuer.into(),
            cached: Mutex::new(None),
        }
    }

    /// The metadata, fetched once.
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>> {
        let mut cached = self.cached.lock().await;
        if let Some(metadata) = cached.as_ref() {
            return Ok(metadata.clone());
        }
        let metadata = Arc::new(fetch(&self.client, &self.issuer).await?);
        *cached = Some(metadata.clone());
        Ok(metadata)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn metadata_needs_an_issuer() {
        let doc = json!({"issuer": "https://i", "jwks_uri": "https://i/k"});
        let m = ProviderMetadata::from_document("u", doc.as_object().unwrap()).unwrap();
        assert_eq!(m.jwks_uri.as_deref(), Some("https://i/k"));
        assert_eq!(m.revocation_endpoint, None);
        let doc = json!({"jwks_uri": "https://i/k"});
        assert!(ProviderMetadata::from_document("u", doc.as_object().unwrap()).is_err());
        assert_eq!(
            discovery_url("https://a/b/"),
            "https://a/b/.well-known/openid-configuration"
        );
    }
}
