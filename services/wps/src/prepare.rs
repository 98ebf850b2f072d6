//! The composition root: builds the providers from [`WpsConfig`] (embedded store, access
//! check, Crypt4GH, ES256 signer, auth), the repository over them, and from those the REST
//! app, the event subscriber and the purge task. [`Overrides`] lets tests inject fakes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tessera_auth::AuthProvider;
use tessera_embedded::EmbeddedStore;
use tessera_http::{HttpStack, RunningServer};
use tessera_kit::dao::DaoFactory;
use tessera_kit::events::{ConsumerIdentity, EventBus};
use tessera_kit::subscriber::Subscriber;
use tessera_work_orders::collections::{open_grants, specs};
use tessera_work_orders::{
    AccessCheck, Clock, Daos, GrantStore, SystemClock, TokenCrypto, WorkPackageRepository,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access::HttpAccessCheck;
use crate::adapters::{Crypt4ghCrypto, Es256Signer};
use crate::config::WpsConfig;
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
    /// An already open store (instead of opening `embedded_db_path`).
    pub store: Option<EmbeddedStore>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("access", &self.access.is_some())
            .field("clock", &self.clock.is_some())
            .field("store", &self.store)
            .finish()
    }
}

/// Where access decisions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessSource {
    /// The embedded grant store (`access_url` unset).
    Grants,
    /// The access API at `access_url`.
    Http,
    /// An override.
    Override,
}

/// The service's parts, built once per process.
pub struct Core {
    /// The validated config.
    pub config: Arc<WpsConfig>,
    /// The embedded store (documents and events).
    pub store: EmbeddedStore,
    /// The domain core.
    pub repository: Arc<WorkPackageRepository>,
    /// The embedded grants (used for access decisions only with [`AccessSource::Grants`]).
    pub grants: GrantStore,
    /// Where access decisions come from.
    pub access_source: AccessSource,
    auth: AuthProvider,
    crypto: Arc<dyn TokenCrypto>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .field("store", &self.store)
            .field("access_source", &self.access_source)
            .finish_non_exhaustive()
    }
}

/// Opens the embedded store of `config` (or takes the override).
async fn open_store(config: &WpsConfig, store: Option<EmbeddedStore>) -> Result<EmbeddedStore> {
    match store {
        Some(store) => Ok(store),
        None => Ok(EmbeddedStore::from_config(&config.embedded).await?),
    }
}

/// The grant store of `config` on `store`, judging validity by `clock`.
pub async fn prepare_grants(
    config: &WpsConfig,
    store: &EmbeddedStore,
    clock: Arc<dyn Clock>,
) -> Result<GrantStore> {
    let dao = open_grants(store, &config.embedded_collections()).await?;
    Ok(GrantStore::new(dao, clock))
}

/// Builds every provider and the repository. Validates the config first, so a bad key
/// fails here with the key's name.
pub async fn prepare_core(config: WpsConfig, overrides: Overrides) -> Result<Core> {
    config.validate()?;
    let signer = config.signer()?;
    let auth = config.auth_provider()?;
    let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let store = open_store(&config, overrides.store).await?;
    let names = config.embedded_collections();
    let daos = Daos::open(&store, &names).await?;
    let grants = prepare_grants(&config, &store, clock.clone()).await?;
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
    tracing::info!(db = %store.path().display(), access = ?access_source, "work package service prepared");
    Ok(Core {
        config: Arc::new(config),
        store,
        repository: Arc::new(repository),
        grants,
        access_source,
        auth,
        crypto,
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

    /// Joins the consumer group `service_name` on the embedded bus.
    pub async fn subscriber(&self) -> Result<Subscriber> {
        let identity = ConsumerIdentity {
            service_name: self.config.service_name.clone(),
            instance_id: self.config.service_instance_id.clone(),
        };
        let bus: Arc<dyn EventBus> = Arc::new(self.store.clone());
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

/// Creates every collection (and its indexes) in the embedded store; returns their names.
pub async fn migrate(config: &WpsConfig) -> Result<Vec<String>> {
    let store = open_store(config, None).await?;
    let specs = specs(&config.embedded_collections());
    let mut created = Vec::new();
    for spec in [
        specs.datasets,
        specs.upload_boxes,
        specs.work_packages,
        specs.accession_maps,
        specs.grants,
    ] {
        let name = spec.name.clone();
        DaoFactory::document_dao(&store, spec).await?;
        created.push(name);
    }
    Ok(created)
}
