//! [`WpsConfig`]: every setting of the service, as flat keys (`.wps.yaml`, `WPS_<KEY>`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_auth::{AuthProvider, ClaimRules, JwtSigner};
use tessera_config::{Secret, is_default};
use tessera_embedded::EmbeddedConfig;
use tessera_http::{HttpConfig, LogConfig};
use tessera_kit::events::{EventType, Topic};
use tessera_kit::subscriber::SubscriberConfig;
use tessera_mongodb::MongoConfig;
pub use tessera_service::KafkaSettings;
use tessera_service::ServiceConfig;
use tessera_service::backends::{validate_bus, validate_store};
use tessera_work_orders::{Collections, RepositoryConfig};

use crate::{Error, Result};

/// Environment prefix and YAML file stem: `WPS_*`, `.wps.yaml`, `WPS_CONFIG_YAML`.
pub const PREFIX: &str = "wps";

/// The outbox event type of an upsert (research data upload boxes, accession maps).
pub const UPSERTED: &str = "upserted";
/// The outbox event type of a deletion.
pub const DELETED: &str = "deleted";

/// The longest `access_url` the original accepts (pydantic's `HttpUrl`).
const MAX_URL_LEN: usize = 2083;

/// The Work Package Service's settings. Keys follow the original (wps.md §6); the
/// additions are `grants_collection`, `wot_lifetime_seconds`, `purge_retention_days`,
/// `access_timeout_seconds` and `embedded_db_path`.
///
/// Where things live: an empty `mongo_dsn` keeps the documents (and the grants) in the
/// embedded store, an empty `kafka_servers` takes events from the embedded event log; both
/// set is the production path. See [`WpsConfig::validate`] for the combinations.
///
/// `work_package_signing_key` and `auth_key` are required: they are left out of the
/// serialised default, so loading names them when they are set nowhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WpsConfig {
    /// The consumer group and the `service` header of dead letters.
    pub service_name: String,
    /// This instance; the consumer's client id is `<service_name>.<service_instance_id>`.
    pub service_instance_id: String,
    /// The private P-256 JWK (JSON) that signs work order tokens.
    #[serde(skip_serializing_if = "is_default")]
    pub work_package_signing_key: Secret,
    /// The public JWK (JSON) of the internal auth tokens.
    #[serde(skip_serializing_if = "is_default")]
    pub auth_key: String,
    /// The JWS algorithms internal auth tokens may use.
    pub auth_algs: Vec<String>,
    /// Claims an internal auth token must carry; a non-null value must match exactly.
    pub auth_check_claims: BTreeMap<String, Option<Value>>,
    /// Claim renames applied before the user context is built; null drops the claim.
    pub auth_map_claims: BTreeMap<String, Option<String>>,
    /// MongoDB (`mongo_dsn`, `db_name`, `mongo_timeout`). An empty `mongo_dsn` means the
    /// embedded store, where `db_name` prefixes every collection name instead of naming the
    /// database.
    #[serde(flatten)]
    pub mongo: MongoConfig,
    /// Collection names.
    #[serde(flatten)]
    pub collections: Collections,
    /// The collection of database version records (hexkit's `MigrationManager` shape),
    /// written by `migrate-db`.
    pub db_version_collection: String,
    /// Seconds `migrate-db` waits between two looks at a lock held by another run (required
    /// in the original; 5 here).
    pub migration_wait_sec: u64,
    /// The longest `migrate-db` waits for another run's lock in all; null waits as long as
    /// it is held, as the original does.
    pub migration_max_wait_sec: Option<u64>,
    /// Days a work package stays valid at most.
    pub work_package_valid_days: u32,
    /// Seconds from `iat` to `exp` of a work order token (a constant 30 in the original).
    pub wot_lifetime_seconds: u32,
    /// Days after expiry when a work package is deleted (checked hourly); null keeps
    /// expired packages forever, as the original does.
    pub purge_retention_days: Option<u32>,
    /// Base URL of the access API (auth service claims repository); null uses the embedded
    /// grant store managed with `wps grants`.
    pub access_url: Option<String>,
    /// Timeout of one access API request.
    pub access_timeout_seconds: u64,
    /// Topic of dataset events from the metadata service.
    pub dataset_change_topic: String,
    /// Event type of a dataset upsertion.
    pub dataset_upsertion_type: String,
    /// Event type of a dataset deletion.
    pub dataset_deletion_type: String,
    /// Outbox topic of research data upload boxes (`upserted`/`deleted`).
    pub research_data_upload_box_topic: String,
    /// Outbox topic of file accession maps (`upserted`/`deleted`).
    pub accession_map_topic: String,
    /// Retries of a failed event before it is dead-lettered (or stops the consumer).
    pub kafka_max_retries: u32,
    /// Send events that fail for good to `kafka_dlq_topic` (and read `retry-<service_name>`)
    /// instead of stopping the consumer; on by default (the original's default is off, so one
    /// malformed event stopped its consumer at every restart). On the embedded bus the
    /// dead letters are the topic's entries in the event log (`tessera events tail --topic
    /// dlq`).
    pub kafka_enable_dlq: bool,
    /// The dead-letter topic.
    pub kafka_dlq_topic: String,
    /// Seconds before the first retry; doubled for each further one.
    pub kafka_retry_backoff: u64,
    /// Kafka connection keys; an empty `kafka_servers` means the embedded event log.
    #[serde(flatten)]
    pub kafka: KafkaSettings,
    /// HTTP server settings.
    #[serde(flatten)]
    pub http: HttpConfig,
    /// Logging settings.
    #[serde(flatten)]
    pub log: LogConfig,
    /// Where the embedded store lives.
    #[serde(flatten)]
    pub embedded: EmbeddedConfig,
}

impl Default for WpsConfig {
    fn default() -> Self {
        let auth_check_claims = ["id", "name", "email", "iat", "exp"]
            .into_iter()
            .map(|claim| (claim.to_owned(), None))
            .collect();
        Self {
            service_name: "wps".into(),
            service_instance_id: "wps-1".into(),
            work_package_signing_key: Secret::default(),
            auth_key: String::new(),
            auth_algs: vec!["ES256".into()],
            auth_check_claims,
            auth_map_claims: BTreeMap::new(),
            mongo: MongoConfig {
                db_name: "work-packages".into(),
                ..MongoConfig::default()
            },
            collections: Collections::default(),
            db_version_collection: "wpsDbVersions".into(),
            migration_wait_sec: 5,
            migration_max_wait_sec: None,
            work_package_valid_days: 30,
            wot_lifetime_seconds: 30,
            purge_retention_days: None,
            access_url: None,
            access_timeout_seconds: 60,
            dataset_change_topic: "metadata-datasets".into(),
            dataset_upsertion_type: "dataset_created".into(),
            dataset_deletion_type: "dataset_deleted".into(),
            research_data_upload_box_topic: "upload-boxes".into(),
            accession_map_topic: "file-accession-mappings".into(),
            kafka_max_retries: 0,
            kafka_enable_dlq: true,
            kafka_dlq_topic: "dlq".into(),
            kafka_retry_backoff: 0,
            kafka: KafkaSettings::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            embedded: EmbeddedConfig::default(),
        }
    }
}

/// The validated event names of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNames {
    /// `dataset_change_topic`.
    pub dataset_topic: Topic,
    /// `dataset_upsertion_type`.
    pub dataset_upsertion: EventType,
    /// `dataset_deletion_type`.
    pub dataset_deletion: EventType,
    /// `research_data_upload_box_topic`.
    pub upload_box_topic: Topic,
    /// `accession_map_topic`.
    pub accession_map_topic: Topic,
    /// `upserted`.
    pub upserted: EventType,
    /// `deleted`.
    pub deleted: EventType,
}

fn invalid(key: &'static str, message: impl Into<String>) -> Error {
    Error::Config {
        key,
        message: message.into(),
    }
}

impl WpsConfig {
    /// Loads the config from the given variables only (and the YAML file they name); for
    /// tests.
    pub fn load_from_env(env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        tessera_service::load_config_from::<crate::Core>(env)
    }

    /// Checks every value that loading alone cannot: the keys parse, the URL is http(s),
    /// topic and event type names are valid, numbers are in range. The error names the key.
    pub fn validate(&self) -> Result<()> {
        self.signer()?;
        self.auth_provider()?;
        self.event_names()?;
        self.subscriber_config()?;
        if self.service_name.is_empty() {
            return Err(invalid("service_name", "must not be empty"));
        }
        if self.service_instance_id.is_empty() {
            return Err(invalid("service_instance_id", "must not be empty"));
        }
        if self.mongo.db_name.is_empty() {
            return Err(invalid("db_name", "must not be empty"));
        }
        if self.db_version_collection.is_empty() {
            return Err(invalid("db_version_collection", "must not be empty"));
        }
        if self.migration_wait_sec == 0 {
            return Err(invalid("migration_wait_sec", "must be at least 1"));
        }
        self.validate_backends()?;
        if self.work_package_valid_days == 0 {
            return Err(invalid("work_package_valid_days", "must be at least 1"));
        }
        if self.wot_lifetime_seconds == 0 {
            return Err(invalid("wot_lifetime_seconds", "must be at least 1"));
        }
        if self.access_timeout_seconds == 0 {
            return Err(invalid("access_timeout_seconds", "must be at least 1"));
        }
        if let Some(url) = &self.access_url {
            validate_url(url)?;
        }
        Ok(())
    }

    /// Whether the documents (and the embedded grants) live in MongoDB (`mongo_dsn` set).
    pub fn uses_mongo(&self) -> bool {
        tessera_service::backends::uses_mongo(&self.mongo)
    }

    /// Whether events come from Kafka (`kafka_servers` set).
    pub fn uses_kafka(&self) -> bool {
        self.kafka.uses_kafka()
    }

    /// The MongoDB and Kafka keys: every combination of the two backends runs, but keys of
    /// a backend that is not selected are refused ([`validate_store`], [`validate_bus`]).
    fn validate_backends(&self) -> Result<()> {
        validate_store(PREFIX, &self.mongo)?;
        Ok(validate_bus(PREFIX, &self.kafka)?)
    }

    /// The collection names in the document store: as configured on MongoDB (whose
    /// database is `db_name`), prefixed with `<db_name>.` on the embedded store.
    pub fn collection_names(&self) -> Collections {
        if self.uses_mongo() {
            self.collections.clone()
        } else {
            self.embedded_collections()
        }
    }

    /// The name of the version collection in the document store (prefixed like
    /// [`WpsConfig::collection_names`]).
    pub fn version_collection_name(&self) -> String {
        tessera_service::backends::collection_name(&self.mongo, &self.db_version_collection)
    }

    /// How `migrate-db` waits for another run's lock.
    pub fn lock_wait(&self) -> crate::migrate::LockWait {
        crate::migrate::LockWait {
            interval: Duration::from_secs(self.migration_wait_sec),
            max: self.migration_max_wait_sec.map(Duration::from_secs),
        }
    }

    /// The work order signer from `work_package_signing_key`.
    pub fn signer(&self) -> Result<JwtSigner> {
        let key = self.work_package_signing_key.expose();
        if key.trim().is_empty() {
            return Err(invalid(
                "work_package_signing_key",
                "must be the private P-256 JWK (JSON) that signs work order tokens",
            ));
        }
        JwtSigner::from_jwk_json(key)
            .map_err(|e| invalid("work_package_signing_key", e.to_string()))
    }

    /// The internal token authenticator from `auth_key`, `auth_algs`, `auth_check_claims`
    /// and `auth_map_claims`.
    pub fn auth_provider(&self) -> Result<AuthProvider> {
        if self.auth_key.trim().is_empty() {
            return Err(invalid(
                "auth_key",
                "must be the public JWK (JSON) of the internal auth tokens",
            ));
        }
        let rules = ClaimRules {
            required: self.auth_check_claims.clone(),
            map: self.auth_map_claims.clone(),
        };
        AuthProvider::from_jwk_json(&self.auth_key, &self.auth_algs, rules).map_err(|e| {
            let key = match e {
                tessera_auth::Error::UnsupportedAlgorithm(_)
                | tessera_auth::Error::NoUsableAlgorithm(_) => "auth_algs",
                _ => "auth_key",
            };
            invalid(key, e.to_string())
        })
    }

    /// The repository settings.
    pub fn repository_config(&self) -> RepositoryConfig {
        RepositoryConfig {
            work_package_valid_days: self.work_package_valid_days,
            wot_lifetime_secs: self.wot_lifetime_seconds,
        }
    }

    /// The collection names as stored in the embedded store: each prefixed with
    /// `<db_name>.`, so that services sharing one SQLite file never collide.
    pub fn embedded_collections(&self) -> Collections {
        let prefixed = |name: &str| format!("{}.{name}", self.mongo.db_name);
        let c = &self.collections;
        Collections {
            datasets_collection: prefixed(&c.datasets_collection),
            upload_boxes_collection: prefixed(&c.upload_boxes_collection),
            work_packages_collection: prefixed(&c.work_packages_collection),
            accession_maps_collection: prefixed(&c.accession_maps_collection),
            grants_collection: prefixed(&c.grants_collection),
        }
    }

    /// The topics and event types the consumer takes.
    pub fn event_names(&self) -> Result<EventNames> {
        let topic = |key: &'static str, value: &str| {
            Topic::try_from(value).map_err(|e| invalid(key, e.to_string()))
        };
        let event_type = |key: &'static str, value: &str| {
            EventType::try_from(value).map_err(|e| invalid(key, e.to_string()))
        };
        Ok(EventNames {
            dataset_topic: topic("dataset_change_topic", &self.dataset_change_topic)?,
            dataset_upsertion: event_type("dataset_upsertion_type", &self.dataset_upsertion_type)?,
            dataset_deletion: event_type("dataset_deletion_type", &self.dataset_deletion_type)?,
            upload_box_topic: topic(
                "research_data_upload_box_topic",
                &self.research_data_upload_box_topic,
            )?,
            accession_map_topic: topic("accession_map_topic", &self.accession_map_topic)?,
            upserted: EventType::try_from(UPSERTED).map_err(|e| Error::Internal(e.to_string()))?,
            deleted: EventType::try_from(DELETED).map_err(|e| Error::Internal(e.to_string()))?,
        })
    }

    /// Retry and dead-letter settings of the consumer.
    pub fn subscriber_config(&self) -> Result<SubscriberConfig> {
        Ok(SubscriberConfig {
            max_retries: self.kafka_max_retries,
            retry_backoff: Duration::from_secs(self.kafka_retry_backoff),
            enable_dlq: self.kafka_enable_dlq,
            dlq_topic: Topic::try_from(self.kafka_dlq_topic.as_str())
                .map_err(|e| invalid("kafka_dlq_topic", e.to_string()))?,
        })
    }

    /// `access_url` without its trailing `/`.
    pub fn access_base_url(&self) -> Option<String> {
        self.access_url
            .as_deref()
            .map(|url| url.trim_end_matches('/').to_owned())
    }
}

/// `access_url` must be an absolute http(s) URL of 1 to 2083 characters with a host.
fn validate_url(url: &str) -> Result<()> {
    const KEY: &str = "access_url";
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return Err(invalid(KEY, "must be 1 to 2083 characters"));
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid(KEY, "must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(invalid(KEY, "must name a host"));
    }
    Ok(())
}

impl ServiceConfig for WpsConfig {
    const PREFIX: &'static str = PREFIX;

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use tessera_kafka::CompressionType;

    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(validate_url("http://access").is_ok());
        assert!(validate_url("https://auth.example.org/api/").is_ok());
        for bad in [
            "",
            "ftp://x",
            "http://",
            "access",
            "http:///x",
            "http://a b",
        ] {
            assert!(validate_url(bad).is_err(), "{bad:?}");
        }
        assert!(validate_url(&format!("http://{}", "a".repeat(2100))).is_err());
    }

    #[test]
    fn embedded_collections_are_prefixed_with_the_database() {
        let config = WpsConfig::default();
        let names = config.embedded_collections();
        assert_eq!(names.datasets_collection, "work-packages.datasets");
        assert_eq!(names.work_packages_collection, "work-packages.workPackages");
        assert_eq!(names.grants_collection, "work-packages.grants");
    }

    #[test]
    fn mongodb_and_kafka_are_optional_and_pick_the_names() {
        let defaults = serde_json::to_value(WpsConfig::default()).unwrap();
        assert_eq!(defaults["kafka_servers"], serde_json::json!([]));
        assert_eq!(defaults["mongo_dsn"], "");
        assert_eq!(defaults["db_name"], "work-packages");
        assert_eq!(defaults["kafka_security_protocol"], "PLAINTEXT");
        let mut config = WpsConfig::default();
        assert!(!config.uses_mongo() && !config.uses_kafka());
        assert!(config.kafka.kafka_config().is_none());
        assert_eq!(
            config.version_collection_name(),
            "work-packages.wpsDbVersions"
        );
        assert_eq!(
            config.collection_names().grants_collection,
            "work-packages.grants"
        );

        config.mongo.mongo_dsn = "mongodb://db:27017/".into();
        config.kafka.kafka_servers = vec!["k1:9092".into(), "k2:9092".into()];
        config.kafka.kafka_compression_type = Some(CompressionType::Gzip);
        assert!(config.uses_mongo() && config.uses_kafka());
        assert_eq!(config.collection_names(), Collections::default());
        assert_eq!(config.version_collection_name(), "wpsDbVersions");
        let kafka = config.kafka.kafka_config().unwrap();
        assert_eq!(kafka.kafka_servers, ["k1:9092", "k2:9092"]);
        assert_eq!(kafka.kafka_compression_type, Some(CompressionType::Gzip));
        assert!(config.validate_backends().is_ok());
    }

    #[test]
    fn trailing_slash_is_dropped_from_the_access_url() {
        let config = WpsConfig {
            access_url: Some("http://access/api//".into()),
            ..WpsConfig::default()
        };
        assert_eq!(
            config.access_base_url().as_deref(),
            Some("http://access/api")
        );
    }
}
