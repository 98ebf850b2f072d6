//! The configuration fragment services flatten into their own config.

use serde::{Deserialize, Serialize};
use tessera_config::Secret;

/// Where the documents live (`#[serde(flatten)]` into a service config; GHGA hexkit's
/// `MongoDbConfig` keys).
///
/// Services treat an empty `mongo_dsn` as "use the embedded store"; `connect` refuses an
/// empty `db_name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MongoConfig {
    /// Connection string, e.g. `mongodb://user:pw@host:27017/?replicaSet=rs0`; a secret
    /// because it may hold credentials.
    #[serde(default)]
    pub mongo_dsn: Secret,
    /// Database that holds the service's collections.
    #[serde(default)]
    pub db_name: String,
    /// Seconds any one call (server selection, connection, the operation) may take; null
    /// for the driver's defaults (30 s to select a server, operations without limit).
    #[serde(default)]
    pub mongo_timeout: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flat_keys_and_hides_the_dsn() {
        let config: MongoConfig = serde_json::from_str(
            r#"{"mongo_dsn": "mongodb://u:pw@h/", "db_name": "wps", "mongo_timeout": 5}"#,
        )
        .unwrap();
        assert_eq!(config.mongo_dsn.expose(), "mongodb://u:pw@h/");
        assert_eq!(config.db_name, "wps");
        assert_eq!(config.mongo_timeout, Some(5));
        assert!(!format!("{config:?}").contains("pw"));
        assert!(!serde_json::to_string(&config).unwrap().contains("pw"));
    }

    #[test]
    fn every_key_is_listed_and_all_are_optional() {
        let defaults = serde_json::to_value(MongoConfig::default()).unwrap();
        assert_eq!(
            defaults,
            serde_json::json!({"mongo_dsn": "", "db_name": "", "mongo_timeout": null})
        );
        let partial: MongoConfig = serde_json::from_str(r#"{"db_name": "x"}"#).unwrap();
        assert!(partial.mongo_dsn.is_empty());
        assert!(serde_json::from_str::<MongoConfig>(r#"{"mongo_timeout": "soon"}"#).is_err());
    }
}
