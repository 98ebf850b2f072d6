//! The conductor as `tessera-service` runs it: one REST part, its commands, and its
//! configuration inside `tessera dev` (a generated key pair, the dev identity provider,
//! the local object store beside the shared store).

use async_trait::async_trait;
use tessera_http::LogConfig;
use tessera_service::dev::DevEnv;
use tessera_service::{Given, Info, Part, Role, Service, ServiceConfig};

use crate::cli::{self, Command};
use crate::config::{ConductorConfig, ENV_ALIASES, OidcProvider, PREFIX};
use crate::prepare::{Core, Overrides, prepare};
use crate::{Error, Result};

/// The development secret: the RSA private key.
pub const DEV_KEYS: [&str; 1] = ["conductor_private_key"];

const LONG_ABOUT: &str = "\
OpenSpending's os-conductor: identity, permission tokens and datastore uploads.

Users log in through the configured OpenID Connect providers (/user/check lists their
login URLs; the callback returns to `next` with a user token, only to allowed origins).
/user/authorize?service= gives RS256 permission tokens, verifiable with /user/public-key,
from permission rows per (user, service) with `*` defaults, which admins manage through
/admin/permissions or `conductor permissions grant|revoke|list`. /datastore/authorize
answers presigned upload URLs for a data package's files on S3 (storage_bucket_name set)
or the local object store, which the service serves itself.

/package/upload queues a durable load of an uploaded datapackage.json (only URLs under this
datastore, of the token's user): workers (serve, run-workers; load_workers at a time) check
the descriptor and every CSV row against its Table Schema, write the package under
<owner>/<name>/final/ and index it; /package/status follows it (queued, loading-data, done,
fail with the resource, row and field at fault). A load whose process died is taken over
after load_lease_seconds. /package/publish, delete, update_params and run-hooks check the
owner; /search/package searches the packages a user may see. package_loaded,
package_published and package_deleted go to package_events_topic (Kafka with
kafka_servers, else the embedded event log). `conductor packages remove` and `conductor
reindex` administer the records and the index.

The original's variables work as they are: OS_BASE_URL, OS_ACCESS_KEY_ID,
OS_SECRET_ACCESS_KEY, OS_S3_HOSTNAME, OS_S3_PORT, OS_STORAGE_BUCKET_NAME,
OS_CLIENT_API_KEYS, ACCESS_KEY_EXPIRES_IN (or OS_ACCESS_KEY_EXPIRES_IN), USE_FAKE_S3.
The service refuses to start without a signing key (private_key or private_key_file).";

impl ServiceConfig for ConductorConfig {
    const PREFIX: &'static str = PREFIX;
    const ENV_ALIASES: &'static [(&'static str, &'static str)] = ENV_ALIASES;

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

#[async_trait]
impl Service for Core {
    type Config = ConductorConfig;
    type Error = Error;
    type Commands = Command;

    const INFO: Info = Info {
        name: "conductor",
        title: "OpenSpending conductor",
        about: "OpenSpending conductor: OIDC login, permission tokens, datastore uploads, package loading and search",
        long_about: LONG_ABOUT,
        version: crate::VERSION,
        roles: &[Role::Rest, Role::Workers],
        migrations: false,
    };

    fn validate(config: &ConductorConfig) -> Result<()> {
        config.validate()
    }

    async fn prepare(config: ConductorConfig, given: Given) -> Result<Self> {
        prepare(
            config,
            Overrides {
                store: given.store,
                ..Overrides::default()
            },
        )
        .await
    }

    fn parts(&self) -> Result<Vec<Part<Error>>> {
        Ok(vec![
            self.rest_part()?,
            self.loader_part(),
            self.relay_part(),
        ])
    }

    async fn command(
        command: Command,
        config: &(dyn Fn() -> Result<ConductorConfig> + Sync),
    ) -> Result<()> {
        cli::execute(command, config).await
    }

    fn dev_config(env: &DevEnv) -> Result<ConductorConfig> {
        let [private_key] = env.secrets.get_or_generate(DEV_KEYS, || {
            Ok([crate::keys::generate_private_key().map_err(|e| e.to_string())?])
        })?;
        let base_url = env.base_url().trim_end_matches('/').to_owned();
        let mut config = ConductorConfig {
            base_url: base_url.clone(),
            private_key: private_key.into(),
            oidc_providers: vec![OidcProvider {
                name: "dev".into(),
                issuer: env.idp.url.clone(),
                client_id: env.idp.client_id.clone(),
                client_secret: env.idp.client_secret.as_str().into(),
                authorization_endpoint: String::new(),
                token_endpoint: String::new(),
                scope: "openid email profile".into(),
                redirect_uri: String::new(),
            }],
            http: env.http.clone(),
            ..ConductorConfig::default()
        };
        config.embedded.embedded_db_path = env.store.path().to_path_buf();
        let dir = env
            .store
            .path()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        config.objects.objects_root = dir.join("conductor-objects");
        config.objects.objects_public_url = format!("{base_url}/objects");
        Ok(config)
    }
}
