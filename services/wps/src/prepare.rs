//! The composition root: builds the providers from [`WpsConfig`] (the document store:
//! MongoDB or the embedded store; the event bus: Kafka or the embedded event log; access
//! check, Crypt4GH, ES256 signer, auth), the repository over them, and from those the REST
//! app, the event subscriber and the purge task. [`Overrides`] lets tests inject fakes.
//!
//! Only what a part needs is connected: the REST API never touches the event bus, so Kafka
//! is connected when the consumer starts, and the embedded file is opened only when the
//! config (or an override) puts documents or events there.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tessera_auth::AuthProvider;
use tessera_embedded::EmbeddedStore;
use tessera_http::{HttpStack, RunningServer};
use tessera_kafka::KafkaBus;
use tessera_kit::dao::DaoFactory;
use tessera_kit::events::{ConsumerIdentity, EventBus};
use tessera_kit::subscriber::Subscriber;
use tessera_mongodb::MongoDaoFactory;
use tessera_work_orders::collections::open_grants;
use tessera_work_orders::{
    AccessCheck, Clock, Daos, GrantStore, SystemClock, TokenCrypto, WorkPackageRepository,
};
use tokio::sync::{OnceCell, watch};
use tokio::task::JoinHandle;

use crate::access::HttpAccessCheck;
use crate::adapters::{Crypt4ghCrypto, Es256Signer};
use crate::config::{WpsConfig, kafka_config_error};
use crate::events::EventTranslator;
use crate::rest::{self, RestState, openapi};
use crate::{Error, Result};

/// How often expired work packages are purged when `purge_retention_days` is set.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Replacements for what [`prepare_core`] would build from the config.
#[derive(Default)]
pub struct Overrides {
    /// The access check (instead of the grant store or the HTTP adapter).
    pub access: Option<Arc<dyn AccessCheck>>,
    /// The clock of the repository and the grant store.
    pub clock: Option<Arc<dyn Clock>>,
    /// An already open embedded store, used wherever the config picks the embedded store
    /// (instead of opening `embedded_db_path`).
    pub store: Option<EmbeddedStore>,
    /// A document store (instead of MongoDB or the embedded store).
    pub dao_factory: Option<Arc<dyn DaoFactory>>,
    /// An event bus (instead of Kafka or the embedded event log).
    pub bus: Option<Arc<dyn EventBus>>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("access", &self.access.is_some())
            .field("clock", &self.clock.is_some())
            .field("store", &self.store)
            .field("dao_factory", &self.dao_factory)
            .field("bus", &self.bus.is_some())
            .finish()
    }
}

/// Where access decisions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessSource {
    /// The embedded grant store (`access_url` unset), in the document store.
    Grants,
    /// The access API at `access_url`.
    Http,
    /// An override.
    Override,
}

/// Where documents live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// MongoDB at `mongo_dsn`, database `db_name`.
    Mongo,
    /// The embedded store at `embedded_db_path`, collections prefixed with `db_name`.
    Embedded,
    /// An override.
    Override,
}

/// Where events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Kafka at `kafka_servers`.
    Kafka,
    /// The embedded event log at `embedded_db_path`.
    Embedded,
    /// An override.
    Override,
}

/// The document store of a config, opened.
#[derive(Debug, Clone)]
pub struct Documents {
    /// The store.
    pub factory: Arc<dyn DaoFactory>,
    /// Which one it is.
    pub storage: Storage,
    /// The embedded store, when it was opened for the documents.
    pub embedded: Option<EmbeddedStore>,
    /// Where the documents are, for messages: the database name or the file (never a DSN).
    pub location: String,
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
/// bad setting a [`Error::Config`] naming its key.
pub async fn connect_mongo(config: &WpsConfig) -> Result<MongoDaoFactory> {
    MongoDaoFactory::connect(&config.mongo)
        .await
        .map_err(|e| match e {
            tessera_mongodb::Error::Dsn(source) => Error::Config {
                key: "mongo_dsn",
                message: format!("not a usable connection string: {source}"),
            },
            tessera_mongodb::Error::EmptyDbName => Error::Config {
                key: "db_name",
                message: "must not be empty".into(),
            },
            tessera_mongodb::Error::ZeroTimeout => Error::Config {
                key: "mongo_timeout",
                message: "must be at least 1".into(),
            },
            other => Error::Connect {
                what: "mongodb",
                key: "mongo_dsn",
                target: redact_dsn(config.mongo.mongo_dsn.expose()),
                source: Box::new(other),
            },
        })
}

/// Connects to Kafka (the consumer's and the dead-letter publisher's bus); an unreachable
/// broker is [`Error::Connect`] naming `kafka_servers`.
pub async fn connect_kafka(config: &WpsConfig) -> Result<KafkaBus> {
    let Some(kafka) = config.kafka.kafka_config() else {
        return Err(Error::Config {
            key: "kafka_servers",
            message: "is empty: no Kafka to connect to".into(),
        });
    };
    KafkaBus::connect(&kafka, &config.service_name, &config.service_instance_id)
        .await
        .map_err(|e| match e {
            tessera_kafka::Error::Unreachable { .. } => Error::Connect {
                what: "kafka",
                key: "kafka_servers",
                target: kafka.kafka_servers.join(","),
                source: Box::new(e),
            },
            other => kafka_config_error(other),
        })
}

/// Opens the document store of `config`: `dao_factory` if given, else MongoDB when
/// `mongo_dsn` is set, else `store` or the embedded store at `embedded_db_path`.
pub async fn open_documents(
    config: &WpsConfig,
    dao_factory: Option<Arc<dyn DaoFactory>>,
    store: Option<EmbeddedStore>,
) -> Result<Documents> {
    if let Some(factory) = dao_factory {
        return Ok(Documents {
            factory,
            storage: Storage::Override,
            embedded: None,
            location: "an injected store".into(),
        });
    }
    if config.uses_mongo() {
        let factory = connect_mongo(config).await?;
        return Ok(Documents {
            location: format!("mongodb database {}", factory.db_name()),
            factory: Arc::new(factory),
            storage: Storage::Mongo,
            embedded: None,
        });
    }
    let store = match store {
        Some(store) => store,
        None => EmbeddedStore::from_config(&config.embedded).await?,
    };
    Ok(Documents {
        location: store.path().display().to_string(),
        factory: Arc::new(store.clone()),
        storage: Storage::Embedded,
        embedded: Some(store),
    })
}

/// The service's parts, built once per process.
pub struct Core {
    /// The validated config.
    pub config: Arc<WpsConfig>,
    /// The document store (MongoDB or the embedded store); collection names from
    /// [`WpsConfig::collection_names`].
    pub store: Arc<dyn DaoFactory>,
    /// Which document store it is.
    pub storage: Storage,
    /// The domain core.
    pub repository: Arc<WorkPackageRepository>,
    /// The embedded grants, in the document store (used for access decisions only with
    /// [`AccessSource::Grants`]).
    pub grants: GrantStore,
    /// Where access decisions come from.
    pub access_source: AccessSource,
    auth: AuthProvider,
    crypto: Arc<dyn TokenCrypto>,
    /// The embedded store: given, opened for the documents, or opened for events later.
    embedded: OnceCell<EmbeddedStore>,
    bus: Option<Arc<dyn EventBus>>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .field("store", &self.store)
            .field("storage", &self.storage)
            .field("access_source", &self.access_source)
            .finish_non_exhaustive()
    }
}

/// The grant store of `config` in `factory`, judging validity by `clock`.
pub async fn prepare_grants(
    config: &WpsConfig,
    factory: &dyn DaoFactory,
    clock: Arc<dyn Clock>,
) -> Result<GrantStore> {
    let dao = open_grants(factory, &config.collection_names()).await?;
    Ok(GrantStore::new(dao, clock))
}

/// Builds every provider and the repository. Validates the config first, so a bad key
/// fails here with the key's name; connects to MongoDB when `mongo_dsn` is set (Kafka waits
/// for the consumer).
pub async fn prepare_core(config: WpsConfig, overrides: Overrides) -> Result<Core> {
    config.validate()?;
    let signer = config.signer()?;
    let auth = config.auth_provider()?;
    let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let given_store = overrides.store;
    let documents = open_documents(&config, overrides.dao_factory, given_store.clone()).await?;
    let names = config.collection_names();
    let daos = Daos::open(documents.factory.as_ref(), &names).await?;
    let grants = prepare_grants(&config, documents.factory.as_ref(), clock.clone()).await?;
    let (access, access_source): (Arc<dyn AccessCheck>, _) =
        match (overrides.access, config.access_base_url()) {
            (Some(access), _) => (access, AccessSource::Override),
            (None, Some(url)) => (
                Arc::new(HttpAccessCheck::new(
                    &url,
                    Duration::from_secs(config.access_timeout_seconds),
                )?),
                AccessSource::Http,
            ),
            (None, None) => (Arc::new(grants.clone()), AccessSource::Grants),
        };
    let crypto: Arc<dyn TokenCrypto> = Arc::new(Crypt4ghCrypto);
    let repository = WorkPackageRepository::new(
        config.repository_config(),
        daos,
        access,
        crypto.clone(),
        Arc::new(Es256Signer(signer)),
    )
    .with_clock(clock);
    if config.uses_kafka() && documents.storage == Storage::Embedded {
        tracing::warn!(
            db = %documents.location,
            group = %config.service_name,
            "kafka_servers is set but mongo_dsn is empty: documents stay in a local file. \
             That works on one machine only: consumers of the group elsewhere would each keep \
             just their own partitions, and REST instances elsewhere would see none of it. \
             Set mongo_dsn for more than one machine"
        );
    }
    tracing::info!(
        storage = ?documents.storage,
        db = %documents.location,
        events = if config.uses_kafka() { "kafka" } else { "embedded" },
        access = ?access_source,
        "work package service prepared"
    );
    let embedded = OnceCell::new();
    if let Some(store) = documents.embedded.or(given_store) {
        let _ = embedded.set(store);
    }
    Ok(Core {
        config: Arc::new(config),
        store: documents.factory,
        storage: documents.storage,
        repository: Arc::new(repository),
        grants,
        access_source,
        auth,
        crypto,
        embedded,
        bus: overrides.bus,
    })
}

impl Core {
    /// What the REST handlers share.
    pub fn rest_state(&self) -> RestState {
        RestState {
            repository: self.repository.clone(),
            crypto: self.crypto.clone(),
            auth: actix_web::web::Data::new(self.auth.clone()),
            wot_max_age: self.config.wot_lifetime_seconds,
        }
    }

    /// The HTTP stack (middleware, error shapes, `/health`, OpenAPI, docs) for this
    /// service's config.
    pub fn http_stack(&self) -> Result<HttpStack> {
        Ok(HttpStack::new(
            self.config.http.clone(),
            openapi::document(),
        )?)
    }

    /// The routes to hand to [`HttpStack::app`] or [`HttpStack::serve`].
    pub fn routes(&self) -> impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static {
        rest::routes(self.rest_state())
    }

    /// Binds and runs the REST API in the background.
    pub async fn serve_rest(&self) -> Result<RunningServer> {
        Ok(self.http_stack()?.serve(self.routes()).await?)
    }

    /// The event translator.
    pub fn event_translator(&self) -> Result<EventTranslator> {
        Ok(EventTranslator::new(
            self.repository.clone(),
            self.config.event_names()?,
        ))
    }

    /// The embedded store: the one given or opened for the documents, else opened now.
    pub async fn embedded_store(&self) -> Result<&EmbeddedStore> {
        self.embedded
            .get_or_try_init(|| EmbeddedStore::from_config(&self.config.embedded))
            .await
            .map_err(Error::from)
    }

    /// The event bus: the override, else Kafka when `kafka_servers` is set (connected now;
    /// an unreachable broker names the key), else the embedded event log.
    pub async fn event_bus(&self) -> Result<(Arc<dyn EventBus>, Transport)> {
        if let Some(bus) = &self.bus {
            return Ok((bus.clone(), Transport::Override));
        }
        if self.config.uses_kafka() {
            return Ok((
                Arc::new(connect_kafka(&self.config).await?),
                Transport::Kafka,
            ));
        }
        let store = self.embedded_store().await?;
        if self.storage == Storage::Mongo {
            tracing::warn!(
                log = %store.path().display(),
                "mongo_dsn is set but kafka_servers is empty: events come from the embedded \
                 event log, which only publishers writing to that file on this machine reach. \
                 Set kafka_servers for more than one machine"
            );
        }
        Ok((Arc::new(store.clone()), Transport::Embedded))
    }

    /// Joins the consumer group `service_name` on the [`Core::event_bus`].
    pub async fn subscriber(&self) -> Result<Subscriber> {
        let identity = ConsumerIdentity {
            service_name: self.config.service_name.clone(),
            instance_id: self.config.service_instance_id.clone(),
        };
        let (bus, transport) = self.event_bus().await?;
        tracing::debug!(?transport, "event bus ready");
        Ok(Subscriber::subscribe(
            bus,
            identity,
            self.config.subscriber_config()?,
            Arc::new(self.event_translator()?),
        )
        .await?)
    }

    /// Runs the consumer in the background until `shutdown` turns true. The task ends with
    /// an error when an event fails for good without a dead-letter topic.
    pub async fn spawn_consumer(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<JoinHandle<Result<()>>> {
        let mut subscriber = self.subscriber().await?;
        tracing::info!(group = %self.config.service_name, "event consumer started");
        Ok(tokio::spawn(async move {
            let result = subscriber.run_until(stopped(shutdown)).await;
            match &result {
                Ok(()) => tracing::info!("event consumer stopped"),
                Err(e) => tracing::error!(error = %e, "event consumer failed"),
            }
            result.map_err(Error::from)
        }))
    }

    /// Purges packages that expired more than `purge_retention_days` ago, now and then
    /// hourly, until `shutdown` turns true; `None` when purging is off.
    pub fn spawn_purge(&self, shutdown: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
        let days = self.config.purge_retention_days?;
        let retention = TimeDelta::days(i64::from(days));
        let repository = self.repository.clone();
        Some(tokio::spawn(async move {
            let stop = stopped(shutdown);
            tokio::pin!(stop);
            loop {
                if let Err(e) = repository.purge_expired(retention).await {
                    tracing::error!(error = %e, "purging expired work packages failed");
                }
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(PURGE_INTERVAL) => {}
                }
            }
        }))
    }
}

/// Resolves once `shutdown` holds true (or its sender is gone).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
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
}
