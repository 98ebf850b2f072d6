//! The service as `tessera-service` runs it: its description, parts (REST API, background
//! worker), `api-client` command and `tessera dev` configuration.

use async_trait::async_trait;
use tessera_http::LogConfig;
use tessera_service::dev::DevEnv;
use tessera_service::{Given, Info, Part, Role, Service, ServiceConfig};

use crate::cli::{self, Command};
use crate::config::{PREFIX, UwsConfig};
use crate::prepare::{Core, Overrides, prepare};
use crate::{Error, Result};

const LONG_ABOUT: &str = "HuBMAP's User Workspaces Server, wire-compatible with v1.10: \
API tokens (POST /tokens/ in local mode, where an API client vouches for a user, or by \
RFC 7662 introspection of a Globus/OIDC access token), workspaces as directories under the \
main storage's root_dir owned by each user's OS account, sharing by background copy, and \
/users/, /job_types/, /parameters/, /status/.\n\n\
The config file (--config FILE or UWS_CONFIG_YAML; JSON or YAML) holds the original's \
config.json unchanged (api_user_authentication, main_storage, main_resource, \
available_user_authentication, available_storage, available_resources, available_job_types, \
parameters) plus a `server` section (listen address, store, token lifetime, job poll \
interval). Records live in the embedded store (server.embedded_db_path) or in MongoDB when \
server.mongo_dsn is set. `uws api-client create --username U` prints an API client's token.";

impl ServiceConfig for UwsConfig {
    const PREFIX: &'static str = PREFIX;

    fn log(&self) -> &LogConfig {
        &self.server.log
    }
}

#[async_trait]
impl Service for Core {
    type Config = UwsConfig;
    type Error = Error;
    type Commands = Command;

    const INFO: Info = Info {
        title: "User Workspaces Server",
        name: "uws",
        about: "User Workspaces Server: API tokens, workspaces on disk per user, sharing",
        long_about: LONG_ABOUT,
        version: crate::VERSION,
        roles: &[Role::Rest],
        migrations: false,
    };

    fn validate(config: &UwsConfig) -> Result<()> {
        config.validate()
    }

    async fn prepare(config: UwsConfig, given: Given) -> Result<Self> {
        let overrides = Overrides {
            store: given.store,
            ..Overrides::default()
        };
        prepare(config, overrides).await
    }

    fn parts(&self) -> Result<Vec<Part<Error>>> {
        // The worker stops first: it ends the job monitors and closes the job websockets,
        // which the REST server's graceful stop would otherwise wait for.
        Ok(vec![self.worker_part()?, self.rest_part()?])
    }

    async fn command(
        command: Command,
        config: &(dyn Fn() -> Result<UwsConfig> + Sync),
    ) -> Result<()> {
        cli::execute(command, config).await
    }

    /// Local login, workspaces under `uws-workspaces/` beside the shared store, every user's
    /// files owned by the developer's account, one job type.
    fn dev_config(env: &DevEnv) -> Result<UwsConfig> {
        let dir = env
            .store
            .path()
            .parent()
            .map(|p| p.join("uws-workspaces"))
            .unwrap_or_else(|| "uws-workspaces".into());
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
        let root_dir = dir
            .canonicalize()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut config = UwsConfig::local(root_dir, Vec::new());
        config.server.http = env.http.clone();
        config.server.embedded.embedded_db_path = env.store.path().to_path_buf();
        Ok(config)
    }
}
