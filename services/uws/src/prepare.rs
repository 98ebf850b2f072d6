//! The composition root: the store (`Backends`: embedded or MongoDB), the local storage
//! provider, the introspection client in introspection mode, the [`Uws`] core over them,
//! and from those the REST part and the background worker. [`Overrides`] lets tests inject
//! fakes.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tessera_embedded::EmbeddedStore;
use tessera_http::HttpStack;
use tessera_kit::dao::DaoFactory;
use tessera_service::{Backends, Part, Role};
use tessera_workspaces::params::Parameter;
use tessera_workspaces::service::Clock;
use tessera_workspaces::state::Records;
use tessera_workspaces::worker::Receiver;
use tessera_workspaces::{
    DatasetResolver, Introspector, JobKind, JobSettings, LoginMode, Resource, Settings, Storage,
    Uws,
};

use crate::config::{
    COMMAND_JOB, GLOBUS_AUTH, GLOBUS_INTROSPECT, JUPYTER_LAB_JOB, PREFIX, SLURM_RESOURCE, UwsConfig,
};
use crate::datasets::HubmapDatasets;
use crate::introspect::HttpIntrospector;
use crate::local::LocalResource;
use crate::rest::{self, RestState, openapi};
use crate::slurm::SlurmResource;
use crate::storage::LocalStorage;
use crate::{Error, Result};

/// Replacements for what [`prepare`] would build from the config.
#[derive(Default)]
pub struct Overrides {
    /// A store provider instead of the configured one.
    pub dao_factory: Option<Arc<dyn DaoFactory>>,
    /// An open embedded store.
    pub store: Option<EmbeddedStore>,
    /// The storage provider.
    pub storage: Option<Arc<dyn Storage>>,
    /// The introspection client.
    pub introspector: Option<Arc<dyn Introspector>>,
    /// The clock.
    pub clock: Option<Clock>,
    /// The resource jobs run on.
    pub resource: Option<Arc<dyn Resource>>,
    /// The resolver of `dataset_uuid` symlinks.
    pub datasets: Option<Arc<dyn DatasetResolver>>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("dao_factory", &self.dao_factory)
            .field("store", &self.store)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

/// The service's parts, built once per process.
pub struct Core {
    /// The validated config.
    pub config: Arc<UwsConfig>,
    /// The domain core.
    pub uws: Arc<Uws>,
    worker: Mutex<Option<Receiver>>,
    rest: RestState,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn introspector(config: &UwsConfig) -> Result<Option<Arc<dyn Introspector>>> {
    let login = config.login()?;
    if login.user_authentication_type != GLOBUS_AUTH {
        return Ok(None);
    }
    let detail = |k: &str| {
        login
            .connection_details
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let client = HttpIntrospector::new(
        detail("introspection_url").unwrap_or_else(|| GLOBUS_INTROSPECT.to_owned()),
        detail("userinfo_url"),
        login.client_id.clone().unwrap_or_default(),
        login
            .client_secret
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default(),
        Duration::from_secs(15),
    )
    .map_err(|e| Error::Internal(format!("introspection client: {e}")))?;
    Ok(Some(Arc::new(client)))
}

/// The `/status/` dependencies: every configured part, reported as connected.
fn dependencies(config: &UwsConfig) -> Value {
    let names = |keys: Vec<&String>| -> Value {
        keys.into_iter()
            .map(|k| (k.clone(), json!({"connected": true, "message": ""})))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "main_resource": config.main_resource,
        "api_user_authentication": config.api_user_authentication,
        "resources": names(config.available_resources.keys().collect()),
        "storage_methods": names(config.available_storage.keys().collect()),
        "user_authentication_methods": names(config.available_user_authentication.keys().collect()),
    })
}

/// What each job type runs on the main resource: a `CommandJob` its
/// `environment_details.<main_resource>.command`; a `JupyterLabJob` JupyterLab with the
/// `jupyter` executable and listening `host` of `environment_details.<main_resource>`
/// (defaults: `jupyter` from the job's `PATH`; 127.0.0.1 on a local resource, the node's
/// address on Slurm); anything else cannot run.
fn job_kinds(config: &UwsConfig) -> std::collections::BTreeMap<String, JobKind> {
    config
        .available_job_types
        .iter()
        .map(|(key, t)| {
            let details = t.environment_details.get(&config.main_resource);
            let text = |key: &str| details.and_then(|d| d.get(key)).and_then(Value::as_str);
            let kind = match (t.job_type.as_str(), text("command")) {
                (COMMAND_JOB, Some(command)) => JobKind::Command {
                    command: command.to_owned(),
                },
                (JUPYTER_LAB_JOB, _) => JobKind::JupyterLab {
                    jupyter: text("jupyter").unwrap_or("jupyter").to_owned(),
                    host: text("host")
                        .map(str::to_owned)
                        .or_else(|| on_this_host(config).then(|| "127.0.0.1".to_owned())),
                },
                _ => JobKind::Misconfigured,
            };
            (key.clone(), kind)
        })
        .collect()
}

/// Whether the main resource runs jobs on this host (a `LocalResource`).
fn on_this_host(config: &UwsConfig) -> bool {
    config
        .available_resources
        .get(&config.main_resource)
        .is_some_and(|entry| {
            entry.get("resource_type").and_then(Value::as_str) != Some(SLURM_RESOURCE)
        })
}

/// The provider of a resource entry (`validate` checked its type): `SlurmResource`
/// submits with the Slurm commands (`connection_details.slurm_conf`, `cpu_partition`,
/// `time_limit` in minutes); `LocalResource` runs processes.
fn resource_of(entry: &Value) -> Arc<dyn Resource> {
    if entry.get("resource_type").and_then(Value::as_str) != Some(SLURM_RESOURCE) {
        return Arc::new(LocalResource::new());
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let conf = text(entry.pointer("/connection_details/slurm_conf"));
    let minutes = entry
        .get("time_limit")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap_or(30);
    let slurm = tessera_slurm::Slurm::new(tessera_slurm::Settings {
        conf: conf.map(Into::into),
        ..tessera_slurm::Settings::default()
    });
    Arc::new(SlurmResource::new(
        slurm,
        text(entry.get("cpu_partition")),
        minutes,
    ))
}

/// The job part's settings; `None` without a main resource.
fn job_settings(
    config: &UwsConfig,
    resource: Option<Arc<dyn Resource>>,
) -> Result<Option<JobSettings>> {
    let Some(entry) = config.available_resources.get(&config.main_resource) else {
        return Ok(None);
    };
    let resource = match resource {
        Some(resource) => resource,
        None => resource_of(entry),
    };
    let parameters =
        serde_json::to_value(&config.parameters).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Some(JobSettings {
        resource,
        kinds: job_kinds(config),
        parameters: Parameter::from_config(&parameters),
        parameter_mapping: entry.get("parameter_mapping").cloned(),
        root_dir: config.storage()?.root_dir.clone(),
        poll_interval: Duration::from_secs(config.server.job_poll_interval_seconds.max(1)),
        passthrough_domain: entry
            .get("passthrough_domain")
            .and_then(Value::as_str)
            .map(str::to_owned),
        jobs_on_this_host: on_this_host(config),
    }))
}

/// The ingest API client of a `HubmapLocalFileSystemStorage`, else none.
fn dataset_resolver(config: &UwsConfig) -> Result<Option<Arc<dyn DatasetResolver>>> {
    let Some(url) = config.storage()?.dataset_root_url() else {
        return Ok(None);
    };
    let client = HubmapDatasets::new(url, DATASET_API_TIMEOUT).map_err(|e| Error::Config {
        key: format!(
            "available_storage.{}.connection_details.root_url",
            config.main_storage
        ),
        message: e.to_string(),
    })?;
    Ok(Some(Arc::new(client)))
}

/// How long a create waits for the ingest API.
const DATASET_API_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds every provider and the core. Validates the config first, so a bad key fails
/// here with the key's name.
pub async fn prepare(config: UwsConfig, mut overrides: Overrides) -> Result<Core> {
    config.validate()?;
    let login = config.login()?;
    let mode = if login.user_authentication_type == GLOBUS_AUTH {
        LoginMode::Introspection {
            allowed_groups: login.allowed_globus_groups.clone(),
        }
    } else {
        LoginMode::Local
    };
    let factory = Backends::new(PREFIX, &config.server.mongo, &config.server.embedded)
        .with_documents(overrides.dao_factory.take())
        .with_embedded(overrides.store.take())
        .documents()
        .await?
        .factory;
    let records = Records::open(factory.as_ref()).await?;
    let storage: Arc<dyn Storage> = match overrides.storage.take() {
        Some(storage) => storage,
        None => {
            let storage_config = config.storage()?;
            Arc::new(
                LocalStorage::new(storage_config).map_err(|e| Error::Config {
                    key: format!("available_storage.{}.root_dir", config.main_storage),
                    message: e.to_string(),
                })?,
            )
        }
    };
    let introspector = match overrides.introspector.take() {
        Some(i) => Some(i),
        None => introspector(&config)?,
    };
    let settings = Settings {
        login: mode,
        token_lifetime: chrono::Duration::seconds(
            i64::try_from(config.server.token_lifetime_seconds).unwrap_or(i64::MAX / 1000),
        ),
        job_types: config
            .available_job_types
            .iter()
            .map(|(k, t)| (k.clone(), t.name.clone()))
            .collect(),
        parameters: serde_json::to_value(&config.parameters)
            .map_err(|e| Error::Internal(e.to_string()))?,
        quota: tessera_workspaces::Quota {
            max_disk_space: Some(config.server.quota_disk_space_bytes).filter(|b| *b > 0),
            max_core_hours: Some(config.server.quota_core_hours).filter(|h| *h > 0.0),
        },
    };
    let clock = overrides
        .clock
        .take()
        .unwrap_or_else(|| Arc::new(chrono::Utc::now));
    let (mut uws, worker) = Uws::new(records, storage, introspector, settings, clock);
    if let Some(datasets) = match overrides.datasets.take() {
        Some(d) => Some(d),
        None => dataset_resolver(&config)?,
    } {
        uws = uws.with_datasets(datasets);
    }
    if let Some(jobs) = job_settings(&config, overrides.resource.take())? {
        uws = uws.with_jobs(jobs);
    }
    let uws = Arc::new(uws);
    let rest = RestState {
        uws: uws.clone(),
        status: Arc::new(dependencies(&config)),
        listings: Arc::default(),
        upstream: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Internal(format!("the passthrough client: {e}")))?,
    };
    tracing::info!(
        store = if config.server.mongo.mongo_dsn.is_empty() { "embedded" } else { "mongodb" },
        storage = %config.main_storage,
        login = %config.api_user_authentication,
        "user workspaces server prepared"
    );
    Ok(Core {
        config: Arc::new(config),
        uws,
        worker: Mutex::new(Some(worker)),
        rest,
    })
}

impl Core {
    /// What the REST handlers share.
    pub fn rest_state(&self) -> RestState {
        self.rest.clone()
    }

    /// The REST API as a part.
    pub fn rest_part(&self) -> Result<Part<Error>> {
        let stack = HttpStack::new(self.config.server.http.clone(), openapi::document)?;
        Ok(Part::rest("rest", stack, rest::routes(self.rest_state())))
    }

    /// The background worker (scans, deletions, share copies) as a part; it runs with the
    /// REST API, whose requests feed it.
    pub fn worker_part(&self) -> Result<Part<Error>> {
        let rx = self
            .worker
            .lock()
            .ok()
            .and_then(|mut w| w.take())
            .ok_or_else(|| Error::Internal("the worker part was already taken".into()))?;
        let uws = self.uws.clone();
        Ok(Part::task(
            "worker",
            Role::Rest,
            move |shutdown| async move {
                let resumed = uws.resume_monitors();
                if resumed > 0 {
                    tracing::info!(jobs = resumed, "job monitors resumed");
                }
                uws.run_worker(rx, shutdown.wait()).await;
                uws.close_monitors();
                Ok(())
            },
        ))
    }
}
