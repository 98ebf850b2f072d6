//! The Workspace Token Service as `tessera-service` runs it: its parts (the REST API and
//! the purge task), `purge` and `generate-key`, and its configuration inside `tessera dev`.

use async_trait::async_trait;
use tessera_http::LogConfig;
use tessera_service::dev::DevEnv;
use tessera_service::{Given, Info, Part, Role, Service, ServiceConfig};
use tessera_tokens::Fernet;

use crate::cli::{self, Command};
use crate::config::{PREFIX, WtsConfig};
use crate::prepare::{Core, Overrides, prepare};
use crate::{Error, Result};

/// The development secrets: the Fernet key of the stored refresh tokens and the key of
/// the login session cookie.
pub const DEV_KEYS: [&str; 2] = ["wts_encryption_key", "wts_secret_key"];

const LONG_ABOUT: &str = "\
Gen3's Workspace Token Service (WTS), wire-compatible with the original.

Users link their accounts at the configured identity providers (Fence or any OpenID
Connect provider) through /oauth2/authorization_url; WTS keeps their refresh tokens,
Fernet-encrypted, per user and provider, and hands short-lived access tokens to their
workspaces on /token. /aggregate fans a request out to every linked commons.

Refresh tokens live in MongoDB when `mongo_dsn` is set, else in the embedded store (a
SQLite file). Expired ones are purged every `purge_interval_seconds` (and by `wts purge`).";

impl ServiceConfig for WtsConfig {
    const PREFIX: &'static str = PREFIX;

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

#[async_trait]
impl Service for Core {
    type Config = WtsConfig;
    type Error = Error;
    type Commands = Command;

    const INFO: Info = Info {
        title: "Workspace Token Service",
        name: "wts",
        about: "Workspace Token Service: refresh tokens per user and IdP, access tokens on demand",
        long_about: LONG_ABOUT,
        version: crate::VERSION,
        roles: &[Role::Rest],
        migrations: false,
    };

    fn validate(config: &WtsConfig) -> Result<()> {
        config.validate()
    }

    async fn prepare(config: WtsConfig, given: Given) -> Result<Self> {
        let overrides = Overrides {
            store: given.store,
            ..Overrides::default()
        };
        prepare(config, overrides).await
    }

    fn parts(&self) -> Result<Vec<Part<Error>>> {
        let mut parts = vec![self.rest_part()?];
        parts.extend(self.purge_part());
        Ok(parts)
    }

    async fn command(
        command: Command,
        config: &(dyn Fn() -> Result<WtsConfig> + Sync),
    ) -> Result<()> {
        cli::execute(command, config).await
    }

    /// The identity provider of `tessera dev` as the commons' Fence, the development
    /// secrets, and callers identified by nobody (no Kubernetes): a worker's bearer token
    /// identifies it for non-default IdPs.
    fn dev_config(env: &DevEnv) -> Result<WtsConfig> {
        let [encryption_key, secret_key] = env.secrets.get_or_generate(DEV_KEYS, || {
            Ok([Fernet::generate_key(), Fernet::generate_key()])
        })?;
        let mut config = WtsConfig {
            wts_base_url: env.base_url(),
            fence_base_url: env.idp.url.clone(),
            encryption_key: encryption_key.into(),
            secret_key: secret_key.into(),
            oidc_client_id: env.idp.client_id.clone(),
            oidc_client_secret: env.idp.client_secret.as_str().into(),
            session_cookie_secure: false,
            http: env.http.clone(),
            ..WtsConfig::default()
        };
        config.embedded.embedded_db_path = env.store.path().to_path_buf();
        Ok(config)
    }
}
