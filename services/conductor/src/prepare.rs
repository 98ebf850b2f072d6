//! The composition root: the document store (embedded or MongoDB), the object store (S3 or
//! local), the keys, the identity core, the datastore and the login providers; and from
//! them the REST part. [`Overrides`] lets tests inject a store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tessera_conductor::packages::JobLease;
use tessera_conductor::{
    Datastore, Identity, LoadJob, PackageIndex, PackageRecord, Packages, PackagesSettings,
    PermissionRow, Settings, SystemClock, User,
};
use tessera_embedded::{EmbeddedStore, LocalObjectStore};
use tessera_http::HttpStack;
use tessera_kit::dao::{DaoFactory, JsonDao};
use tessera_kit::events::{ConsumerIdentity, Topic};
use tessera_service::objects::open_objects;
use tessera_service::{Backends, Part, Role};
use tokio::sync::Notify;

use crate::config::{ConductorConfig, PREFIX};
use crate::keys::Keys;
use crate::login::Providers;
use crate::rest::{self, RestState, openapi};
use crate::{Error, Result};

/// Replacements for what [`prepare`] would build from the config.
#[derive(Default)]
pub struct Overrides {
    /// A storage provider instead of the configured one.
    pub dao_factory: Option<Arc<dyn DaoFactory>>,
    /// An already open embedded store.
    pub store: Option<EmbeddedStore>,
    /// A search index instead of the configured one.
    pub index: Option<Arc<dyn PackageIndex>>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("dao_factory", &self.dao_factory)
            .field("store", &self.store)
            .field("index", &self.index)
            .finish()
    }
}

/// The prepared service.
pub struct Core {
    /// The validated config.
    pub config: Arc<ConductorConfig>,
    /// Users, tokens and permissions.
    pub identity: Arc<Identity>,
    /// Upload authorization.
    pub datastore: Arc<Datastore>,
    /// Package loads, records, search and events.
    pub packages: Arc<Packages>,
    /// The local object store whose presign scope the REST part mounts (None on S3).
    pub local_objects: Option<LocalObjectStore>,
    /// Wakes the load workers (an upload queued a job, or a load ended).
    pub wake: Arc<Notify>,
    backends: Arc<Backends>,
    rest: RestState,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Builds every provider and the cores; validates the config first.
pub async fn prepare(config: ConductorConfig, mut overrides: Overrides) -> Result<Core> {
    config.validate()?;
    let keys = Arc::new(Keys::from_config(&config)?);
    let backends = Arc::new(
        Backends::new(PREFIX, &config.mongo, &config.embedded)
            .with_kafka(&config.kafka)
            .with_documents(overrides.dao_factory.take())
            .with_embedded(overrides.store.take()),
    );
    let factory = backends.documents().await?.factory;
    let collection = |name: &str| tessera_service::backends::collection_name(&config.mongo, name);
    let users = JsonDao::<User>::open(
        factory.as_ref(),
        User::spec(&collection(&config.users_collection)),
    )
    .await?;
    let permissions = JsonDao::<PermissionRow>::open(
        factory.as_ref(),
        PermissionRow::spec(&collection(&config.permissions_collection)),
    )
    .await?;
    let identity = Arc::new(Identity::new(
        users,
        permissions,
        keys.clone(),
        Arc::new(SystemClock),
        Settings {
            user_token_lifetime: i64::from(config.user_token_expires_in),
            permission_token_lifetime: i64::from(config.permission_token_expires_in),
            admins: config.admin_userids.iter().cloned().collect(),
            api_keys: config.api_keys()?,
        },
    ));
    identity.seed().await?;
    let objects = open_objects(PREFIX, &config.s3(), &config.objects)
        .await
        .map_err(|e| match e {
            // The S3 fragment is built from the original's keys: name those.
            tessera_service::Error::Config { key, message, .. } if key.starts_with("s3_") => {
                Error::Config {
                    key: match key {
                        "s3_access_key_id" => "access_key_id",
                        "s3_secret_access_key" => "secret_access_key",
                        "s3_bucket" => "storage_bucket_name",
                        _ => "s3_hostname",
                    },
                    message,
                }
            }
            other => other.into(),
        })?;
    let datastore = Arc::new(Datastore::new(
        objects.store.clone(),
        config.upload_expiry(),
        config.info_prefixes(),
    ));
    let index: Arc<dyn PackageIndex> = match overrides.index.take() {
        Some(index) => index,
        None if tessera_service::backends::uses_mongo(&config.mongo) => Arc::new(
            crate::search::MongoIndex::connect(&config.mongo, &collection("package_index"))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?,
        ),
        None => {
            let path = backends.embedded_store().await?.path().to_path_buf();
            Arc::new(
                tokio::task::spawn_blocking(move || crate::search::SqliteIndex::open(&path))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?
                    .map_err(|e| Error::Internal(e.to_string()))?,
            )
        }
    };
    let packages = Arc::new(Packages::new(
        JsonDao::<LoadJob>::open(
            factory.as_ref(),
            LoadJob::spec(&collection(&config.jobs_collection)),
        )
        .await?,
        JsonDao::<JobLease>::open(
            factory.as_ref(),
            JobLease::spec(&collection(&config.leases_collection)),
        )
        .await?,
        JsonDao::<PackageRecord>::open(
            factory.as_ref(),
            PackageRecord::spec(&collection(&config.packages_collection)),
        )
        .await?,
        index,
        objects.store.clone(),
        Arc::new(SystemClock),
        PackagesSettings {
            url_prefixes: config.package_prefixes(),
            lease: Duration::from_secs(config.load_lease_seconds),
            topic: Topic::try_from(config.package_events_topic.as_str()).map_err(|e| {
                Error::Config {
                    key: "package_events_topic",
                    message: e.to_string(),
                }
            })?,
        },
    ));
    let wake = Arc::new(Notify::new());
    let providers = Arc::new(Providers::new(
        &config,
        keys.clone(),
        Duration::from_secs(10),
    )?);
    let rest = RestState {
        identity: identity.clone(),
        datastore: datastore.clone(),
        packages: packages.clone(),
        wake: wake.clone(),
        search_max_size: config.search_max_size,
        pipeline_urls: Arc::new(config.pipeline_urls.clone()),
        // Built on first use: each client loads the CA certificates (see `LazyClient`).
        hooks: Arc::new(tessera_oidc::LazyClient::new(Duration::from_secs(30))),
        providers,
        base_url: config.base().to_owned(),
        redirect_origins: Arc::new(config.redirect_origins()?),
        max_body_bytes: config.max_body_bytes,
    };
    tracing::info!(
        storage = if tessera_service::backends::uses_mongo(&config.mongo) { "mongodb" } else { "embedded" },
        objects = ?objects.kind,
        providers = config.oidc_providers.len(),
        "conductor prepared"
    );
    Ok(Core {
        config: Arc::new(config),
        identity,
        datastore,
        packages,
        local_objects: objects.local,
        wake,
        backends,
        rest,
    })
}

impl Core {
    /// What the REST handlers share.
    pub fn rest_state(&self) -> RestState {
        self.rest.clone()
    }

    /// The REST API as a part, with the local store's presign scope when objects are local.
    pub fn rest_part(&self) -> Result<Part<Error>> {
        let stack = HttpStack::new(self.config.http.clone(), openapi::document)?;
        let objects = match &self.local_objects {
            Some(store) => Some((
                objects_path(&self.config.objects.objects_public_url)?,
                store.clone(),
            )),
            None => None,
        };
        Ok(Part::rest(
            "rest",
            stack,
            rest::routes(self.rest_state(), objects),
        ))
    }
}

impl Core {
    /// The load workers: up to `load_workers` loads at once, taken when an upload wakes
    /// them and every `load_poll_seconds` (queued elsewhere, or resumed after their worker
    /// died). A stop abandons running loads, which another worker resumes after the lease.
    pub fn loader_part(&self) -> Part<Error> {
        let packages = self.packages.clone();
        let wake = self.wake.clone();
        let workers = self.config.load_workers;
        let poll = Duration::from_secs(self.config.load_poll_seconds);
        let beat = Duration::from_secs(self.config.load_lease_seconds)
            .div_f64(3.0)
            .min(Duration::from_secs(1));
        Part::task("loader", Role::Workers, move |shutdown| async move {
            let permits = Arc::new(tokio::sync::Semaphore::new(workers));
            let stop = shutdown.wait();
            tokio::pin!(stop);
            loop {
                if permits.available_permits() > 0 {
                    match packages.claimable().await {
                        Ok(jobs) => {
                            for job in jobs {
                                let Ok(permit) = permits.clone().try_acquire_owned() else {
                                    break;
                                };
                                match packages.claim(&job).await {
                                    Ok(Some(job)) => {
                                        let (packages, wake) = (packages.clone(), wake.clone());
                                        tokio::spawn(async move {
                                            let url = job.url.clone();
                                            if let Err(e) = packages.run(job, beat).await {
                                                tracing::error!(url, error = %tessera_service::lifecycle::chain(&e), "package load aborted");
                                            }
                                            drop(permit);
                                            wake.notify_one();
                                        });
                                    }
                                    Ok(None) => {}
                                    Err(e) => {
                                        tracing::warn!(url = %job.url, error = %e, "claiming a load failed")
                                    }
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "listing load jobs failed"),
                    }
                }
                tokio::select! {
                    () = &mut stop => break,
                    () = wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
            Ok(())
        })
    }

    /// The outbox relay: publishes the events waiting in package records (about every
    /// second) on the configured bus.
    pub fn relay_part(&self) -> Part<Error> {
        let packages = self.packages.clone();
        let backends = self.backends.clone();
        Part::new("events", Role::Workers, move |context| async move {
            let identity = ConsumerIdentity {
                service_name: "conductor".into(),
                instance_id: uuid_like(),
            };
            let (bus, transport) = backends.event_bus(&identity).await?;
            tracing::info!(?transport, "package event relay started");
            Ok(tessera_service::lifecycle::Started::new(async move {
                tessera_service::lifecycle::every(Duration::from_secs(1), context.shutdown, || {
                    let (packages, bus) = (packages.clone(), bus.clone());
                    async move {
                        match packages.relay(bus.as_ref()).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(events = n, "package events published"),
                            Err(e) => {
                                tracing::warn!(error = %e, "publishing package events failed")
                            }
                        }
                    }
                })
                .await;
                Ok(())
            }))
        })
    }
}

/// A process-unique instance id.
fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), rand::random::<u32>())
}

/// The path of the local store's public URL, where its scope is mounted.
fn objects_path(public_url: &str) -> Result<String> {
    let url = reqwest::Url::parse(public_url).map_err(|e| Error::Config {
        key: "objects_public_url",
        message: format!("{public_url:?}: {e}"),
    })?;
    let path = url.path().trim_end_matches('/').to_owned();
    if path.is_empty() {
        return Err(Error::Config {
            key: "objects_public_url",
            message: "needs a path (e.g. /objects) to mount the object routes at".into(),
        });
    }
    Ok(path)
}
