//! The Work Package Service as `tessera-service` runs it: its parts (the REST API, the purge
//! task, the event consumer), `migrate-db`, the `grants` commands, and its configuration
//! inside `tessera dev`.

use async_trait::async_trait;
use serde_json::json;
use tessera_service::dev::DevEnv;
use tessera_service::{Given, Info, Part, Role, Service};

use crate::cli::{self, Command, print_line};
use crate::config::WpsConfig;
use crate::migrate::migrate;
use crate::prepare::{Core, Overrides, prepare_core};
use crate::{Error, Result};

/// The development secrets of the internal auth key pair (`tessera token mint` signs user
/// tokens with the private half; services verify with the public one).
pub const DEV_AUTH_KEYS: [&str; 2] = ["auth_private_jwk", "auth_public_jwk"];
/// The development secrets of the work order signing key pair.
pub const DEV_SIGNING_KEYS: [&str; 2] = ["signing_private_jwk", "signing_public_jwk"];

const LONG_ABOUT: &str = "\
GHGA's Work Package Service (WPS), wire-compatible with the original.

Users create work packages for a dataset (download) or a research data upload box (upload)
with their internal auth token, and get an access token sealed for their Crypt4GH key. With
it they fetch work order tokens (signed ES256 JWTs, also sealed for them) for single files
or upload operations, which the download and upload services verify.

Documents live in MongoDB when `mongo_dsn` is set, else in the embedded store (a SQLite
file). Datasets, upload boxes and accession maps arrive as events from Kafka when
`kafka_servers` is set, else from the embedded event log (`tessera events publish` feeds it
by hand). Access decisions come from the access API at `access_url`, or, when it is unset,
from the grant store in the document store, managed with `wps grants`.

Commands: `serve` (the default) runs the REST API, the event consumer and the purge task in
one process; `run-rest` and `consume-events` run them as separate processes sharing the
document store; `migrate-db` creates the collections and records the database version.";

#[async_trait]
impl Service for Core {
    type Config = WpsConfig;
    type Error = Error;
    type Commands = Command;

    const INFO: Info = Info {
        title: "Work Package Service",
        name: "wps",
        about: "GHGA's Work Package Service: work packages and work order tokens",
        long_about: LONG_ABOUT,
        version: env!("CARGO_PKG_VERSION"),
        roles: &[Role::Rest, Role::Events],
        migrations: true,
    };

    fn validate(config: &WpsConfig) -> Result<()> {
        config.validate()
    }

    async fn prepare(config: WpsConfig, given: Given) -> Result<Self> {
        let overrides = Overrides {
            store: given.store,
            ..Overrides::default()
        };
        prepare_core(config, overrides).await
    }

    /// The REST API first (so that it drains its requests before the rest stops), the
    /// purge task with it, then the event consumer.
    fn parts(&self) -> Result<Vec<Part<Error>>> {
        let mut parts = vec![self.rest_part()?];
        parts.extend(self.purge_part());
        parts.push(self.consumer_part()?);
        Ok(parts)
    }

    /// Prints one JSON line per collection and one for the version record.
    async fn migrate(config: WpsConfig) -> Result<()> {
        let report = migrate(&config).await?;
        let mut out = std::io::stdout().lock();
        for c in &report.collections {
            print_line(
                &mut out,
                &json!({"collection": c.collection, "status": c.status, "db": report.db}),
            )?;
        }
        let status = if report.recorded.is_empty() {
            "current"
        } else {
            "recorded"
        };
        print_line(
            &mut out,
            &json!({"collection": report.version_collection, "status": status,
                    "db_version": report.version,
                    "previous_version": report.previous_version,
                    "recorded": report.recorded, "db": report.db}),
        )
    }

    async fn command(
        command: Command,
        config: &(dyn Fn() -> Result<WpsConfig> + Sync),
    ) -> Result<()> {
        match command {
            Command::Grants(cmd) => cli::grants(&config()?, cmd, &mut std::io::stdout()).await,
        }
    }

    /// The defaults, with the development signing and auth keys.
    fn dev_config(env: &DevEnv) -> Result<WpsConfig> {
        let generate = || {
            tessera_auth::generate_es256_jwk_pair()
                .map(|(private, public)| [private, public])
                .map_err(Into::into)
        };
        let [signing_private, _] = env.secrets.get_or_generate(DEV_SIGNING_KEYS, generate)?;
        let [_, auth_public] = env.secrets.get_or_generate(DEV_AUTH_KEYS, generate)?;
        let mut config = WpsConfig {
            work_package_signing_key: signing_private.into(),
            auth_key: auth_public,
            http: env.http.clone(),
            ..WpsConfig::default()
        };
        config.embedded.embedded_db_path = env.store.path().to_path_buf();
        Ok(config)
    }
}
