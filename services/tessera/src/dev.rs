//! `tessera dev`: every service on its embedded defaults in one process.
//!
//! State lives in one directory (default `.tessera/`): the shared SQLite store and the
//! development keys, generated on the first start and reused afterwards, so that tokens
//! minted with `tessera token mint` keep working across restarts. The services and how
//! each is configured here come from their `tessera-service` entries ([`crate::services`]).

use std::path::{Path, PathBuf};

use clap::Args;
use tessera_service::dev::{DevIdp, DevSecrets, DevSettings, start_all, wait_all};

use crate::{Error, Result, TesseraConfig};

/// `tessera dev` arguments.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// The address every service binds (loopback by default)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The first service's port; the others take the next ones (0: any free port)
    #[arg(long, default_value_t = 8080)]
    pub base_port: u16,
    /// Where the development keys live (default: beside the store)
    #[arg(long, value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// The identity provider WTS links accounts with (its `fence_base_url`); the default is
    /// the test OIDC provider that `scripts/test-infra up oidc` starts
    #[arg(long, default_value = "http://127.0.0.1:4010/")]
    pub idp_url: String,
    /// The OIDC client id WTS uses at that provider
    #[arg(long, default_value = "test-client")]
    pub idp_client_id: String,
    /// The OIDC client secret WTS uses at that provider
    #[arg(long, default_value = "test-secret")]
    pub idp_client_secret: String,
}

/// The keys directory for `config` and `args`.
pub fn keys_dir(config: &TesseraConfig, keys_dir: Option<&Path>) -> PathBuf {
    keys_dir.map_or_else(
        || {
            config
                .embedded
                .embedded_db_path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        },
        Path::to_path_buf,
    )
}

/// The development secrets in `dir` (generated on first use by the services that need
/// them).
pub fn secrets(dir: &Path) -> Result<DevSecrets> {
    Ok(DevSecrets::open(dir)?)
}

/// Runs `tessera dev` until Ctrl-C, SIGTERM or a service failing (which stops the others
/// and exits non-zero, naming the service and the cause).
pub async fn run(config: &TesseraConfig, args: DevArgs) -> Result<()> {
    tessera_http::init_logging(&config.log).map_err(|e| Error::Service(e.to_string()))?;
    let dir = keys_dir(config, args.keys_dir.as_deref());
    let secrets = secrets(&dir)?;
    let store = tessera_embedded::EmbeddedStore::from_config(&config.embedded).await?;
    let settings = DevSettings {
        host: args.host,
        base_port: args.base_port,
        idp: DevIdp {
            url: args.idp_url,
            client_id: args.idp_client_id,
            client_secret: args.idp_client_secret,
        },
    };
    let services = start_all(&crate::services::registry(), &store, &secrets, &settings).await?;
    println!("tessera dev: store {}", store.path().display());
    println!("  keys: {}", secrets.path().display());
    for service in &services {
        println!(
            "  {:<6} {}  (docs {}/docs)",
            service.name, service.url, service.url
        );
    }
    println!(
        "Mint a user token: tessera token mint --id <uuid> --name 'Jane Doe' --email jane@example.org"
    );
    println!("Ctrl-C stops everything.");
    Ok(wait_all(services).await?)
}
