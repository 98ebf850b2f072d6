//! The [`IdentityResolver`] adapters: who a request without a user token comes from.
//!
//! - [`KubernetesIdentity`]: the original's rule (§B2): the pod whose IP is the caller's, found
//!   through the Kubernetes API (`GET /api/v1/pods?fieldSelector=status.podIP=<ip>` over
//!   HTTPS with the service-account token), names the user in its `gen3username` or else
//!   `hub.jupyter.org/username` annotation. Needs cluster-wide pod-list RBAC.
//! - [`StaticIdentity`]: a configured address or token to a username, for deployments
//!   without Kubernetes.
//! - [`NoIdentity`], when no workspace has an identity.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use serde_json::Value;
use tessera_tokens::{Caller, IdentityResolver, ResolveError};

use crate::{Error, Result};

/// Annotations naming the user, in order of preference.
pub const USERNAME_ANNOTATIONS: [&str; 2] = ["gen3username", "hub.jupyter.org/username"];

/// Workspace identity through the Kubernetes API.
#[derive(Debug)]
pub struct KubernetesIdentity {
    http: reqwest::Client,
    pods_url: Url,
    token_file: PathBuf,
}

impl KubernetesIdentity {
    /// The in-cluster API URL from `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`.
    pub fn in_cluster_url() -> Option<String> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        // An IPv6 service host needs brackets in a URL.
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        Some(format!("https://{host}:{port}"))
    }

    /// An adapter for the API at `api_url`, authenticating with the token in `token_file`
    /// (read on every lookup: projected tokens rotate) and trusting the CA in `ca_file`
    /// besides the system roots when that file exists.
    pub fn new(
        api_url: &str,
        token_file: &Path,
        ca_file: &Path,
        timeout: Duration,
    ) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if ca_file.exists() {
            let pem = std::fs::read(ca_file).map_err(|e| Error::Config {
                key: "kubernetes_ca_file",
                message: format!("{}: {e}", ca_file.display()),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::Config {
                key: "kubernetes_ca_file",
                message: format!("{}: {e}", ca_file.display()),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let pods_url = Url::parse(api_url)
            .and_then(|url| url.join("api/v1/pods"))
            .map_err(|e| Error::Config {
                key: "kubernetes_api_url",
                message: format!("{api_url:?}: {e}"),
            })?;
        Ok(Self {
            http,
            pods_url,
            token_file: token_file.to_owned(),
        })
    }

    async fn lookup(&self, ip: IpAddr) -> Result<Option<String>, ResolveError> {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| ResolveError(format!("cannot read {}: {e}", self.token_file.display())))?;
        let mut url = self.pods_url.clone();
        url.query_pairs_mut()
            .append_pair("fieldSelector", &format!("status.podIP={ip}"));
        let response = self
            .http
            .get(url)
            .bearer_auth(token.trim())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ResolveError(format!("kubernetes api: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ResolveError(format!("kubernetes api answered {status}")));
        }
        let pods: Value = response
            .json()
            .await
            .map_err(|e| ResolveError(format!("kubernetes api: {e}")))?;
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        for annotation in USERNAME_ANNOTATIONS {
            if let Some(user) = items
                .iter()
                .filter_map(|pod| pod["metadata"]["annotations"][annotation].as_str())
                .find(|user| !user.is_empty())
            {
                return Ok(Some(user.to_owned()));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl IdentityResolver for KubernetesIdentity {
    async fn resolve(&self, caller: &Caller) -> Result<Option<String>, ResolveError> {
        match caller.remote_ip {
            Some(ip) => self.lookup(ip).await,
            None => Ok(None),
        }
    }
}

/// Workspace identity from a fixed map; a token match wins over an address match.
#[derive(Debug, Clone, Default)]
pub struct StaticIdentity {
    by_ip: BTreeMap<IpAddr, String>,
    by_token: BTreeMap<String, String>,
}

impl StaticIdentity {
    /// The adapter over the two maps.
    pub fn new(by_ip: BTreeMap<IpAddr, String>, by_token: BTreeMap<String, String>) -> Self {
        Self { by_ip, by_token }
    }
}

#[async_trait]
impl IdentityResolver for StaticIdentity {
    async fn resolve(&self, caller: &Caller) -> Result<Option<String>, ResolveError> {
        let by_token = caller.token.as_ref().and_then(|t| self.by_token.get(t));
        let by_ip = caller.remote_ip.and_then(|ip| self.by_ip.get(&ip));
        Ok(by_token.or(by_ip).cloned())
    }
}

/// No workspace identities.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIdentity;

#[async_trait]
impl IdentityResolver for NoIdentity {
    async fn resolve(&self, _caller: &Caller) -> Result<Option<String>, ResolveError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_identities_match_tokens_before_addresses() {
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let adapter = StaticIdentity::new(
            [(ip, "alice".to_owned())].into(),
            [("sidecar".to_owned(), "bob".to_owned())].into(),
        );
        let caller = |token: Option<&str>, remote: Option<IpAddr>| Caller {
            token: token.map(str::to_owned),
            remote_ip: remote,
        };
        assert_eq!(
            adapter
                .resolve(&caller(None, Some(ip)))
                .await
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            adapter
                .resolve(&caller(Some("sidecar"), Some(ip)))
                .await
                .unwrap()
                .as_deref(),
            Some("bob")
        );
        assert_eq!(
            adapter.resolve(&caller(Some("other"), None)).await.unwrap(),
            None
        );
        assert_eq!(
            NoIdentity
                .resolve(&caller(Some("sidecar"), Some(ip)))
                .await
                .unwrap(),
            None
        );
    }
}
