//! The composition root: builds the providers from [`WpsConfig`] (the document store:
//! MongoDB or the embedded store; the event bus: Kafka or the embedded event log; access
//! check, Crypt4GH, ES256 signer, auth), the repository over them, and from those the REST
//! app, the event subscriber and the purge task. [`Overrides`] lets tests inject fakes.
//!
//! Only what a part needs is connected: the REST API never touches the event bus, so Kafka
//! is connected when the consumer part starts, and the embedded file is opened only when
//! the config (or an override) puts documents or events there (`tessera-service`'s
//! [`Backends`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tessera_auth::AuthProvider;
use tessera_embedded::EmbeddedStore;
use tessera_http::HttpStack;
use tessera_kit::dao::DaoFactory;
use tessera_kit::events::{ConsumerIdentity, EventBus};
use tessera_kit::subscriber::Subscriber;
pub use tessera_service::backends::redact_dsn;
use tessera_service::{Backends, BoxFuture, Documents, Part, Role, Shutdown};
pub use tessera_service::{Storage, Transport};
use tessera_work_orders::collections::open_grants;
use tessera_work_orders::{
    AccessCheck, Clock, Daos, GrantStore, SystemClock, TokenCrypto, WorkPackageRepository,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access::HttpAccessCheck;
use crate::adapters::{Crypt4ghCrypto, Es256Signer};
use crate::config::{PREFIX, WpsConfig};
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

/// The [`Backends`] of `config`: documents in MongoDB or the embedded store, events from
/// Kafka or the embedded event log.
pub fn backends(config: &WpsConfig) -> Backends {
    Backends::new(PREFIX, &config.mongo, &config.embedded).with_kafka(&config.kafka)
}

/// Opens the document store of `config`: `dao_factory` if given, else MongoDB when
/// `mongo_dsn` is set, else `store` or the embedded store at `embedded_db_path`.
pub async fn open_documents(
    config: &WpsConfig,
    dao_factory: Option<Arc<dyn DaoFactory>>,
    store: Option<EmbeddedStore>,
) -> Result<Documents> {
    Ok(backends(config)
        .with_documents(dao_factory)
        .with_embedded(store)
        .documents()
        .await?)
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
    backends: Arc<Backends>,
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
    let backends = backends(&config)
        .with_documents(overrides.dao_factory)
        .with_embedded(overrides.store)
        .with_bus(overrides.bus);
    let documents = backends.documents().await?;
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
    tracing::info!(
        storage = ?documents.storage,
        db = %documents.location,
        events = if config.uses_kafka() { "kafka" } else { "embedded" },
        access = ?access_source,
        "work package service prepared"
    );
    Ok(Core {
        config: Arc::new(config),
        store: documents.factory,
        storage: documents.storage,
        repository: Arc::new(repository),
        grants,
        access_source,
        auth,
        crypto,
        backends: Arc::new(backends),
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

    /// The REST API as a part: the routes in the HTTP stack (middleware, error shapes,
    /// `/health`, `/metrics`, OpenAPI, docs).
    pub fn rest_part(&self) -> Result<Part<Error>> {
        let stack = HttpStack::new(self.config.http.clone(), openapi::document)?;
        Ok(Part::rest("rest", stack, rest::routes(self.rest_state())))
    }

    /// The event translator.
    pub fn event_translator(&self) -> Result<EventTranslator> {
        Ok(EventTranslator::new(
            self.repository.clone(),
            self.config.event_names()?,
        ))
    }

    /// The consumer group member of this instance.
    pub fn consumer_identity(&self) -> ConsumerIdentity {
        ConsumerIdentity {
            service_name: self.config.service_name.clone(),
            instance_id: self.config.service_instance_id.clone(),
        }
    }

    /// The event bus: the override, else Kafka when `kafka_servers` is set (connected now;
    /// an unreachable broker names the key), else the embedded event log.
    pub async fn event_bus(&self) -> Result<(Arc<dyn EventBus>, Transport)> {
        Ok(self.backends.event_bus(&self.consumer_identity()).await?)
    }

    /// The event consumer as a part: joins group `service_name` when it starts.
    pub fn consumer_part(&self) -> Result<Part<Error>> {
        Ok(Part::consumer(
            "consumer",
            self.backends.clone(),
            self.consumer_identity(),
            self.config.subscriber_config()?,
            Arc::new(self.event_translator()?),
        ))
    }

    /// Joins the consumer group `service_name` on the [`Core::event_bus`].
    pub async fn subscriber(&self) -> Result<Subscriber> {
        let (bus, _) = self.event_bus().await?;
        Ok(Subscriber::subscribe(
            bus,
            self.consumer_identity(),
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
        Ok(tokio::spawn(async move {
            let stop = Shutdown::from(shutdown).wait();
            subscriber.run_until(stop).await.map_err(Error::from)
        }))
    }

    /// The purge as a part, when `purge_retention_days` is set: expired packages older than
    /// the retention are deleted now and hourly.
    pub fn purge_part(&self) -> Option<Part<Error>> {
        let tick = self.purge_tick()?;
        Some(Part::periodic("purge", Role::Rest, PURGE_INTERVAL, tick))
    }

    /// Runs the purge now and hourly until `shutdown` turns true; `None` when purging is
    /// off.
    pub fn spawn_purge(&self, shutdown: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
        let tick = self.purge_tick()?;
        Some(tokio::spawn(tessera_service::lifecycle::every(
            PURGE_INTERVAL,
            shutdown.into(),
            tick,
        )))
    }

    fn purge_tick(&self) -> Option<impl FnMut() -> BoxFuture<()> + Send + 'static> {
        let days = self.config.purge_retention_days?;
        let retention = TimeDelta::days(i64::from(days));
        let repository = self.repository.clone();
        Some(move || -> BoxFuture<()> {
            let repository = repository.clone();
            Box::pin(async move {
                if let Err(e) = repository.purge_expired(retention).await {
                    tracing::error!(error = %e, "purging expired work packages failed");
                }
            })
        })
    }
}
