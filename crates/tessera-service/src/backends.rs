//! Where a service's documents and events live, chosen by its flattened config fragments:
//! MongoDB when `mongo_dsn` is set, else the embedded store; Kafka when `kafka_servers` is
//! set, else the embedded event log. Errors name the key at fault and its variable.
//!
//! [`Backends`] opens them for one process: the document store at once (so a bad DSN fails
//! at start-up), the event bus only when a consumer asks for it (a REST-only process never
//! connects to Kafka), and the embedded file at most once, shared by both.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_config::Secret;
use tessera_embedded::{EmbeddedConfig, EmbeddedStore};
use tessera_kafka::{CompressionType, KafkaBus, KafkaConfig, SecurityProtocol};
use tessera_kit::dao::DaoFactory;
use tessera_kit::events::{ConsumerIdentity, EventBus};
use tessera_mongodb::{MongoConfig, MongoDaoFactory};
use tokio::sync::OnceCell;

use crate::error::{Error, Result, env_var};

/// The Kafka connection keys of hexkit's `KafkaConfig`, mirrored rather than flattening
/// [`KafkaConfig`]: there `kafka_servers` is required, here it is optional, and empty means
/// the embedded event log. [`KafkaSettings::kafka_config`] builds the provider's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaSettings {
    /// Bootstrap brokers as `host:port` (in the environment a JSON list:
    /// `<PREFIX>_KAFKA_SERVERS='["kafka:9092"]'`); empty for the embedded event log.
    pub kafka_servers: Vec<String>,
    /// `PLAINTEXT` or `SSL`.
    pub kafka_security_protocol: SecurityProtocol,
    /// CA bundle (PEM) of the brokers' certificates; empty for the system's.
    pub kafka_ssl_cafile: String,
    /// Client certificate (PEM) for mutual TLS; empty for none.
    pub kafka_ssl_certfile: String,
    /// The client certificate's private key (PEM); empty when the certfile holds it.
    pub kafka_ssl_keyfile: String,
    /// Password of an encrypted private key.
    pub kafka_ssl_password: Secret,
    /// The largest message produced or fetched.
    pub kafka_max_message_size: u32,
    /// Compression of produced batches (`gzip`, `snappy`, `lz4`); null for none.
    pub kafka_compression_type: Option<CompressionType>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        let kafka = KafkaConfig::default();
        Self {
            kafka_servers: kafka.kafka_servers,
            kafka_security_protocol: kafka.kafka_security_protocol,
            kafka_ssl_cafile: kafka.kafka_ssl_cafile,
            kafka_ssl_certfile: kafka.kafka_ssl_certfile,
            kafka_ssl_keyfile: kafka.kafka_ssl_keyfile,
            kafka_ssl_password: kafka.kafka_ssl_password,
            kafka_max_message_size: kafka.kafka_max_message_size,
            kafka_compression_type: kafka.kafka_compression_type,
        }
    }
}

impl KafkaSettings {
    /// The provider's config, or `None` for the embedded event log (no servers).
    pub fn kafka_config(&self) -> Option<KafkaConfig> {
        if self.kafka_servers.is_empty() {
            return None;
        }
        Some(KafkaConfig {
            kafka_servers: self.kafka_servers.clone(),
            kafka_security_protocol: self.kafka_security_protocol,
            kafka_ssl_cafile: self.kafka_ssl_cafile.clone(),
            kafka_ssl_certfile: self.kafka_ssl_certfile.clone(),
            kafka_ssl_keyfile: self.kafka_ssl_keyfile.clone(),
            kafka_ssl_password: self.kafka_ssl_password.clone(),
            kafka_max_message_size: self.kafka_max_message_size,
            kafka_compression_type: self.kafka_compression_type,
        })
    }

    /// Whether events come from Kafka (`kafka_servers` set).
    pub fn uses_kafka(&self) -> bool {
        !self.kafka_servers.is_empty()
    }

    /// The first key other than `kafka_servers` that differs from its default: set
    /// without servers, it shows that Kafka was meant.
    fn first_customised_key(&self) -> Option<&'static str> {
        let d = Self::default();
        [
            (
                "kafka_security_protocol",
                self.kafka_security_protocol != d.kafka_security_protocol,
            ),
            (
                "kafka_ssl_cafile",
                self.kafka_ssl_cafile != d.kafka_ssl_cafile,
            ),
            (
                "kafka_ssl_certfile",
                self.kafka_ssl_certfile != d.kafka_ssl_certfile,
            ),
            (
                "kafka_ssl_keyfile",
                self.kafka_ssl_keyfile != d.kafka_ssl_keyfile,
            ),
            (
                "kafka_ssl_password",
                self.kafka_ssl_password != d.kafka_ssl_password,
            ),
            (
                "kafka_max_message_size",
                self.kafka_max_message_size != d.kafka_max_message_size,
            ),
            (
                "kafka_compression_type",
                self.kafka_compression_type != d.kafka_compression_type,
            ),
        ]
        .into_iter()
        .find_map(|(key, set)| set.then_some(key))
    }
}

/// Whether the documents live in MongoDB (`mongo_dsn` set).
pub fn uses_mongo(mongo: &MongoConfig) -> bool {
    !mongo.mongo_dsn.is_empty()
}

/// The name a collection has in the document store: as given on MongoDB (whose database is
/// `db_name`), prefixed with `<db_name>.` on the embedded store, so that services sharing
/// one SQLite file never collide.
pub fn collection_name(mongo: &MongoConfig, name: &str) -> String {
    if uses_mongo(mongo) {
        name.to_owned()
    } else {
        format!("{}.{name}", mongo.db_name)
    }
}

/// Checks the MongoDB keys: `db_name` set, `mongo_timeout` at least 1 and only with a
/// `mongo_dsn` (a typo in the DSN's variable would otherwise fall back to the embedded store
/// without a word).
pub fn validate_store(prefix: &str, mongo: &MongoConfig) -> Result<()> {
    if mongo.db_name.is_empty() {
        return Err(Error::config(prefix, "db_name", "must not be empty"));
    }
    if !uses_mongo(mongo) && mongo.mongo_timeout.is_some() {
        return Err(Error::config(
            prefix,
            "mongo_dsn",
            "is empty (the embedded store) but mongo_timeout is set: set mongo_dsn to use \
             MongoDB, or unset mongo_timeout",
        ));
    }
    if mongo.mongo_timeout == Some(0) {
        return Err(Error::config(prefix, "mongo_timeout", "must be at least 1"));
    }
    Ok(())
}

/// Checks the Kafka keys: the provider's own rules when `kafka_servers` is set, and no
/// Kafka key set without it (events would silently come from the local file instead).
pub fn validate_bus(prefix: &str, kafka: &KafkaSettings) -> Result<()> {
    match kafka.kafka_config() {
        None => match kafka.first_customised_key() {
            Some(key) => Err(Error::config(
                prefix,
                "kafka_servers",
                format!(
                    "is empty (the embedded event log) but {key} is set: set kafka_servers \
                     to use Kafka, or unset {key}"
                ),
            )),
            None => Ok(()),
        },
        Some(config) => config.validate().map_err(|e| kafka_error(prefix, e)),
    }
}

/// A Kafka provider error as a config error naming its key, where it has one.
fn kafka_error(prefix: &str, err: tessera_kafka::Error) -> Error {
    match err {
        tessera_kafka::Error::Config { key, message } => Error::config(prefix, key, message),
        other => Error::Connect {
            what: "kafka",
            key: "kafka_servers",
            env: env_var(prefix, "kafka_servers"),
            target: String::new(),
            source: Box::new(other),
        },
    }
}

/// The connection target of a MongoDB connection string without credentials or options:
/// `mongodb://user:pw@h1,h2/db?x=y` gives `mongodb://h1,h2`.
pub fn redact_dsn(dsn: &str) -> String {
    let (scheme, rest) = dsn.split_once("://").unwrap_or(("mongodb", dsn));
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{hosts}")
}

/// Connects to MongoDB; an unreachable server is [`Error::Connect`] naming `mongo_dsn`, a
/// bad setting an [`Error::Config`] naming its key.
pub async fn connect_mongo(prefix: &str, mongo: &MongoConfig) -> Result<MongoDaoFactory> {
    MongoDaoFactory::connect(mongo).await.map_err(|e| match e {
        tessera_mongodb::Error::Dsn(source) => Error::config(
            prefix,
            "mongo_dsn",
            format!("not a usable connection string: {source}"),
        ),
        tessera_mongodb::Error::EmptyDbName => {
            Error::config(prefix, "db_name", "must not be empty")
        }
        tessera_mongodb::Error::ZeroTimeout => {
            Error::config(prefix, "mongo_timeout", "must be at least 1")
        }
        other => Error::Connect {
            what: "mongodb",
            key: "mongo_dsn",
            env: env_var(prefix, "mongo_dsn"),
            target: redact_dsn(mongo.mongo_dsn.expose()),
            source: Box::new(other),
        },
    })
}

/// Connects to Kafka as consumer-group member `identity`; an unreachable broker is
/// [`Error::Connect`] naming `kafka_servers`.
pub async fn connect_kafka(
    prefix: &str,
    kafka: &KafkaSettings,
    identity: &ConsumerIdentity,
) -> Result<KafkaBus> {
    let Some(config) = kafka.kafka_config() else {
        return Err(Error::config(
            prefix,
            "kafka_servers",
            "is empty: no Kafka to connect to",
        ));
    };
    KafkaBus::connect(&config, &identity.service_name, &identity.instance_id)
        .await
        .map_err(|e| match e {
            tessera_kafka::Error::Unreachable { .. } => Error::Connect {
                what: "kafka",
                key: "kafka_servers",
                env: env_var(prefix, "kafka_servers"),
                target: config.kafka_servers.join(","),
                source: Box::new(e),
            },
            other => kafka_error(prefix, other),
        })
}

/// Which document store a process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// MongoDB at `mongo_dsn`, database `db_name`.
    Mongo,
    /// The embedded store at `embedded_db_path`, collections prefixed with `db_name`.
    Embedded,
    /// One injected by the caller (tests).
    Override,
}

/// Where a process's events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Kafka at `kafka_servers`.
    Kafka,
    /// The embedded event log at `embedded_db_path`.
    Embedded,
    /// One injected by the caller (tests).
    Override,
}

/// The opened document store.
#[derive(Debug, Clone)]
pub struct Documents {
    /// The store.
    pub factory: Arc<dyn DaoFactory>,
    /// Which one it is.
    pub storage: Storage,
    /// Where the documents are, for messages: the database name or the file (never a DSN).
    pub location: String,
}

/// The document store and event bus of one service process. Build it from the config
/// fragments, inject what tests or `tessera dev` provide, then [`Backends::documents`]
/// (once, at start-up) and [`Backends::event_bus`] (when a consumer starts).
pub struct Backends {
    prefix: String,
    mongo: MongoConfig,
    embedded_config: EmbeddedConfig,
    kafka: KafkaSettings,
    embedded: OnceCell<EmbeddedStore>,
    dao_override: Option<Arc<dyn DaoFactory>>,
    bus_override: Option<Arc<dyn EventBus>>,
}

impl fmt::Debug for Backends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backends")
            .field("prefix", &self.prefix)
            .field("mongo", &uses_mongo(&self.mongo))
            .field("kafka", &self.kafka.uses_kafka())
            .field("embedded", &self.embedded_config.embedded_db_path)
            .finish_non_exhaustive()
    }
}

impl Backends {
    /// The backends of the service with environment prefix `prefix` (for messages).
    pub fn new(prefix: &str, mongo: &MongoConfig, embedded: &EmbeddedConfig) -> Self {
        Self {
            prefix: prefix.to_owned(),
            mongo: mongo.clone(),
            embedded_config: embedded.clone(),
            kafka: KafkaSettings::default(),
            embedded: OnceCell::new(),
            dao_override: None,
            bus_override: None,
        }
    }

    /// Takes events from Kafka when `kafka.kafka_servers` is set.
    pub fn with_kafka(mut self, kafka: &KafkaSettings) -> Self {
        self.kafka = kafka.clone();
        self
    }

    /// Uses this already open embedded store wherever the config picks the embedded store.
    pub fn with_embedded(mut self, store: Option<EmbeddedStore>) -> Self {
        if let Some(store) = store {
            self.embedded = OnceCell::new_with(Some(store));
        }
        self
    }

    /// Uses this document store instead of the configured one.
    pub fn with_documents(mut self, factory: Option<Arc<dyn DaoFactory>>) -> Self {
        self.dao_override = factory;
        self
    }

    /// Uses this event bus instead of the configured one.
    pub fn with_bus(mut self, bus: Option<Arc<dyn EventBus>>) -> Self {
        self.bus_override = bus;
        self
    }

    /// Checks the store and bus keys ([`validate_store`], [`validate_bus`]).
    pub fn validate(&self) -> Result<()> {
        validate_store(&self.prefix, &self.mongo)?;
        validate_bus(&self.prefix, &self.kafka)
    }

    /// Whether documents go to MongoDB (and no store was injected).
    pub fn uses_mongo(&self) -> bool {
        self.dao_override.is_none() && uses_mongo(&self.mongo)
    }

    /// The name of collection `name` in the document store ([`collection_name`]).
    pub fn collection(&self, name: &str) -> String {
        collection_name(&self.mongo, name)
    }

    /// The embedded store: the one injected or opened before, else opened now.
    pub async fn embedded_store(&self) -> Result<EmbeddedStore> {
        self.embedded
            .get_or_try_init(|| EmbeddedStore::from_config(&self.embedded_config))
            .await
            .cloned()
            .map_err(Error::from)
    }

    /// Opens the document store: the injected one, else MongoDB when `mongo_dsn` is set,
    /// else the embedded store.
    pub async fn documents(&self) -> Result<Documents> {
        if let Some(factory) = &self.dao_override {
            return Ok(Documents {
                factory: factory.clone(),
                storage: Storage::Override,
                location: "an injected store".into(),
            });
        }
        if uses_mongo(&self.mongo) {
            let factory = connect_mongo(&self.prefix, &self.mongo).await?;
            return Ok(Documents {
                location: format!("mongodb database {}", factory.db_name()),
                factory: Arc::new(factory),
                storage: Storage::Mongo,
            });
        }
        let store = self.embedded_store().await?;
        Ok(Documents {
            location: store.path().display().to_string(),
            factory: Arc::new(store),
            storage: Storage::Embedded,
        })
    }

    /// The event bus: the injected one, else Kafka when `kafka_servers` is set (connected
    /// now as `identity`; an unreachable broker names the key), else the embedded event
    /// log. Mixing a shared backend with a local one works on one machine only; that is
    /// logged.
    pub async fn event_bus(
        &self,
        identity: &ConsumerIdentity,
    ) -> Result<(Arc<dyn EventBus>, Transport)> {
        if let Some(bus) = &self.bus_override {
            return Ok((bus.clone(), Transport::Override));
        }
        if self.kafka.uses_kafka() {
            if !self.uses_mongo() {
                tracing::warn!(
                    group = %identity.service_name,
                    "kafka_servers is set but mongo_dsn is empty: documents stay in a local \
                     file. That works on one machine only: consumers of the group elsewhere \
                     would each keep just their own partitions. Set mongo_dsn for more than \
                     one machine"
                );
            }
            let bus = connect_kafka(&self.prefix, &self.kafka, identity).await?;
            return Ok((Arc::new(bus), Transport::Kafka));
        }
        let store = self.embedded_store().await?;
        if self.uses_mongo() {
            tracing::warn!(
                log = %store.path().display(),
                "mongo_dsn is set but kafka_servers is empty: events come from the embedded \
                 event log, which only publishers writing to that file on this machine reach. \
                 Set kafka_servers for more than one machine"
            );
        }
        Ok((Arc::new(store), Transport::Embedded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_lose_credentials_and_options() {
        assert_eq!(
            redact_dsn("mongodb://ada:pw@h1:27017,h2/db?replicaSet=rs0&password=x"),
            "mongodb://h1:27017,h2"
        );
        assert_eq!(
            redact_dsn("mongodb+srv://u:p@w@cluster.example.org/"),
            "mongodb+srv://cluster.example.org"
        );
        assert_eq!(redact_dsn("mongodb://db"), "mongodb://db");
        assert_eq!(redact_dsn("db:27017"), "mongodb://db:27017");
    }

    fn key_of(result: Result<()>) -> (&'static str, String, String) {
        match result {
            Err(Error::Config { key, env, message }) => (key, env, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn keys_of_an_unselected_backend_are_refused_with_the_key() {
        let kafka = KafkaSettings {
            kafka_ssl_cafile: "/ca.pem".into(),
            ..KafkaSettings::default()
        };
        let (key, env, message) = key_of(validate_bus("svc", &kafka));
        assert_eq!((key, env.as_str()), ("kafka_servers", "SVC_KAFKA_SERVERS"));
        assert!(message.contains("kafka_ssl_cafile"), "{message}");
        assert!(validate_bus("svc", &KafkaSettings::default()).is_ok());

        let mut mongo = MongoConfig {
            db_name: "db".into(),
            mongo_timeout: Some(5),
            ..MongoConfig::default()
        };
        assert_eq!(key_of(validate_store("svc", &mongo)).0, "mongo_dsn");
        mongo.mongo_dsn = "mongodb://db/".into();
        assert!(validate_store("svc", &mongo).is_ok());
        mongo.mongo_timeout = Some(0);
        assert_eq!(key_of(validate_store("svc", &mongo)).0, "mongo_timeout");
        mongo.db_name.clear();
        assert_eq!(key_of(validate_store("svc", &mongo)).0, "db_name");

        // The provider's own checks keep their key.
        let kafka = KafkaSettings {
            kafka_servers: vec!["k:1".into()],
            kafka_max_message_size: 10,
            ..KafkaSettings::default()
        };
        assert_eq!(
            key_of(validate_bus("svc", &kafka)).0,
            "kafka_max_message_size"
        );
    }

    #[test]
    fn collections_are_prefixed_on_the_embedded_store_only() {
        let mut mongo = MongoConfig {
            db_name: "work-packages".into(),
            ..MongoConfig::default()
        };
        assert_eq!(collection_name(&mongo, "grants"), "work-packages.grants");
        mongo.mongo_dsn = "mongodb://db/".into();
        assert_eq!(collection_name(&mongo, "grants"), "grants");
    }

    #[tokio::test]
    async fn the_embedded_store_is_opened_once_for_documents_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = EmbeddedConfig {
            embedded_db_path: dir.path().join("x.sqlite"),
        };
        let mongo = MongoConfig {
            db_name: "db".into(),
            ..MongoConfig::default()
        };
        let backends = Backends::new("svc", &mongo, &embedded);
        let documents = backends.documents().await.unwrap();
        assert_eq!(documents.storage, Storage::Embedded);
        let identity = ConsumerIdentity {
            service_name: "svc".into(),
            instance_id: "1".into(),
        };
        let (_, transport) = backends.event_bus(&identity).await.unwrap();
        assert_eq!(transport, Transport::Embedded);
        assert_eq!(
            backends.embedded_store().await.unwrap().path(),
            embedded.embedded_db_path
        );
    }

    #[tokio::test]
    async fn an_unreachable_mongodb_names_the_key_and_hides_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mongo = MongoConfig {
            mongo_dsn: format!("mongodb://ada:s3cret@127.0.0.1:{port}/").into(),
            db_name: "db".into(),
            mongo_timeout: Some(1),
        };
        let err = Backends::new("svc", &mongo, &EmbeddedConfig::default())
            .documents()
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                Error::Connect {
                    key: "mongo_dsn",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            text.contains("SVC_MONGO_DSN") && !text.contains("s3cret"),
            "{text}"
        );
    }
}
