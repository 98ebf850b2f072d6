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
    /// Fernet key WTS encrypts stored refresh tokens with.
    #[serde(default)]
    pub wts_encryption_key: String,
    /// Key WTS signs its login session cookie with.
    #[serde(default)]
    pub wts_secret_key: String,
}

impl DevKeys {
    fn generate() -> Result<Self> {
        let (signing_private_jwk, signing_public_jwk) = tessera_auth::generate_es256_jwk_pair()?;
        let (auth_private_jwk, auth_public_jwk) = tessera_auth::generate_es256_jwk_pair()?;
        Ok(Self {
            signing_private_jwk,
            signing_public_jwk,
            auth_private_jwk,
            auth_public_jwk,
            wts_encryption_key: tessera_tokens::Fernet::generate_key(),
            wts_secret_key: tessera_tokens::Fernet::generate_key(),
        })
    }

    /// Fills keys that a keys file from an older version lacks; true when any was missing.
    fn complete(&mut self) -> bool {
        let mut changed = false;
        for key in [&mut self.wts_encryption_key, &mut self.wts_secret_key] {
            if key.is_empty() {
                *key = tessera_tokens::Fernet::generate_key();
                changed = true;
            }
        }
        changed
    }
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

/// Loads the development keys from `dir`, generating and storing them (0600) on first use
/// and completing a keys file written by an older version.
pub fn load_or_create_keys(dir: &Path) -> Result<DevKeys> {
    let path = dir.join(KEYS_FILE);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let keys = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut keys: DevKeys = serde_json::from_str(&text).map_err(|e| {
                Error::Usage(format!(
                    "{} is not a valid keys file ({e}); delete it to generate new keys",
                    path.display()
                ))
            })?;
            if !keys.complete() {
                return Ok(keys);
            }
            keys
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => DevKeys::generate()?,
        Err(err) => return Err(io(err)),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let text = serde_json::to_string_pretty(&keys)
        .map_err(|e| Error::Usage(format!("cannot encode keys: {e}")))?;
    // Write a new file and rename it over the old one, so a crash never leaves half a file.
    let tmp = dir.join(format!("{KEYS_FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(keys)
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
    tessera_http::shutdown_signal().await;
    crate::services::stop_all(services).await
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
        assert!(!first.wts_encryption_key.is_empty());
        // A keys file without the WTS keys gets them added, the others kept.
        let mut old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap())
                .unwrap();
        old.as_object_mut().unwrap().remove("wts_secret_key");
        std::fs::write(dir.path().join(KEYS_FILE), old.to_string()).unwrap();
        let completed = load_or_create_keys(dir.path()).unwrap();
        assert_eq!(completed.auth_public_jwk, first.auth_public_jwk);
        assert!(!completed.wts_secret_key.is_empty());
        assert_eq!(
            load_or_create_keys(dir.path()).unwrap().wts_secret_key,
            completed.wts_secret_key
        );
        std::fs::write(dir.path().join(KEYS_FILE), "not json").unwrap();
        assert!(matches!(
            load_or_create_keys(dir.path()),
            Err(Error::Usage(_))
        ));
    }
}
