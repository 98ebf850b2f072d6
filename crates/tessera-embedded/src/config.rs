//! The configuration fragment services flatten into their own config.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The default database file, relative to the working directory.
pub const DEFAULT_DB_PATH: &str = ".tessera/tessera.sqlite";

fn default_db_path() -> PathBuf {
    PathBuf::from(DEFAULT_DB_PATH)
}

/// Where the embedded store lives (`#[serde(flatten)]` into a service config).
///
/// All services default to the same file on purpose: events only flow between services
/// (and a CLI that publishes) when they share it. Collections are separated by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedConfig {
    /// The SQLite file; its directory is created when missing. Default
    /// `.tessera/tessera.sqlite`.
    #[serde(default = "default_db_path")]
    pub embedded_db_path: PathBuf,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            embedded_db_path: default_db_path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_key_takes_the_default_and_a_given_path_wins() {
        let empty: EmbeddedConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, EmbeddedConfig::default());
        assert_eq!(
            empty.embedded_db_path,
            PathBuf::from(".tessera/tessera.sqlite")
        );
        let set: EmbeddedConfig =
            serde_json::from_str(r#"{"embedded_db_path": "/data/x.sqlite"}"#).unwrap();
        assert_eq!(set.embedded_db_path, PathBuf::from("/data/x.sqlite"));
        assert!(serde_json::from_str::<EmbeddedConfig>(r#"{"embedded_db_path": 3}"#).is_err());
    }
}
