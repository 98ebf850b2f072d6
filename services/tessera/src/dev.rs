//! `tessera dev`: every service on its embedded defaults in one process.
//!
//! State lives in one directory (default `.tessera/`): the shared SQLite store and the
//! development keys, generated on the first start and reused afterwards, so that tokens
//! minted with `tessera token mint` keep working across restarts.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

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
}

/// The development keys, as files in the keys directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevKeys {
    /// Private P-256 JWK that signs work-order tokens.
    pub signing_private_jwk: String,
    /// Its public half, for services that verify work-order tokens.
    pub signing_public_jwk: String,
    /// Private P-256 JWK that mints internal user tokens (`tessera token mint`).
    pub auth_private_jwk: String,
    /// Its public half: the services' `auth_key`.
    pub auth_public_jwk: String,
}

const KEYS_FILE: &str = "dev-keys.json";

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

/// Loads the development keys from `dir`, generating and storing them (0600) on first use.
pub fn load_or_create_keys(dir: &Path) -> Result<DevKeys> {
    let path = dir.join(KEYS_FILE);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{} is not a valid keys file ({e}); delete it to generate new keys",
                path.display()
            ))
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let (signing_private_jwk, signing_public_jwk) =
                tessera_auth::generate_es256_jwk_pair()?;
            let (auth_private_jwk, auth_public_jwk) = tessera_auth::generate_es256_jwk_pair()?;
            let keys = DevKeys {
                signing_private_jwk,
                signing_public_jwk,
                auth_private_jwk,
                auth_public_jwk,
            };
            std::fs::create_dir_all(dir).map_err(io)?;
            let text = serde_json::to_string_pretty(&keys)
                .map_err(|e| Error::Usage(format!("cannot encode keys: {e}")))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            use std::io::Write;
            let mut file = options.open(&path).map_err(io)?;
            file.write_all(text.as_bytes()).map_err(io)?;
            Ok(keys)
        }
        Err(err) => Err(io(err)),
    }
}

/// Runs `tessera dev` until Ctrl-C or SIGTERM.
pub async fn run(config: &TesseraConfig, args: DevArgs) -> Result<()> {
    tessera_http::init_logging(&config.log).map_err(|e| Error::Service(e.to_string()))?;
    let dir = keys_dir(config, args.keys_dir.as_deref());
    let keys = load_or_create_keys(&dir)?;
    let store = tessera_embedded::EmbeddedStore::from_config(&config.embedded).await?;
    let services = crate::services::start_all(&store, &keys, &args).await?;
    println!("tessera dev: store {}", store.path().display());
    println!("  keys: {}", dir.join(KEYS_FILE).display());
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
    wait_for_signal().await;
    crate::services::stop_all(services).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_keys(dir.path()).unwrap();
        let second = load_or_create_keys(dir.path()).unwrap();
        assert_eq!(first.auth_public_jwk, second.auth_public_jwk);
        assert_ne!(first.auth_public_jwk, first.signing_public_jwk);
        std::fs::write(dir.path().join(KEYS_FILE), "not json").unwrap();
        assert!(matches!(
            load_or_create_keys(dir.path()),
            Err(Error::Usage(_))
        ));
    }
}
