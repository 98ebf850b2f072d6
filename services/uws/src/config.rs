//! [`UwsConfig`]: the original's `config.json`, unchanged in structure (§A6), plus a
//! `server` section for what the original kept in `django_config.json`. JSON or YAML, from
//! `uws --config FILE` or `UWS_CONFIG_YAML`; validated at start (the original never ran its
//! validator), errors naming the key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_config::{Secret, is_default};
use tessera_embedded::EmbeddedConfig;
use tessera_http::{HttpConfig, LogConfig};
use tessera_mongodb::MongoConfig;

use crate::{Error, Result};

/// Environment prefix and YAML file stem: `UWS_*`, `.uws.yaml`, `UWS_CONFIG_YAML`.
pub const PREFIX: &str = "uws";

/// The user-authentication type of local mode (an API client vouches for users).
pub const LOCAL_AUTH: &str = "LocalUserAuthentication";
/// The user-authentication type of Globus (token introspection, RFC 7662).
pub const GLOBUS_AUTH: &str = "GlobusUserAuthentication";
/// The storage type of the local file system.
pub const LOCAL_STORAGE: &str = "LocalFileSystemStorage";
/// The local file system with `dataset_uuid` symlinks resolved by HuBMAP's ingest API
/// (`connection_details.root_url`).
pub const HUBMAP_STORAGE: &str = "HubmapLocalFileSystemStorage";
/// The local-process resource type.
pub const LOCAL_RESOURCE: &str = "LocalResource";
/// The Slurm resource type (through the Slurm commands).
pub const SLURM_RESOURCE: &str = "SlurmResource";
/// The generic command job type (`environment_details.<resource>.command`).
pub const COMMAND_JOB: &str = "CommandJob";
/// The JupyterLab job type (`environment_details.<resource>.{jupyter,host}`, both optional).
pub const JUPYTER_LAB_JOB: &str = "JupyterLabJob";
/// Globus Auth's introspection endpoint, used when `connection_details` names none.
pub const GLOBUS_INTROSPECT: &str = "https://auth.globus.org/v2/oauth2/token/introspect";

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UwsConfig {
    /// Key into `available_user_authentication`: how `POST /tokens/` logs users in.
    #[serde(skip_serializing_if = "is_default")]
    pub api_user_authentication: String,
    /// Key into `available_storage`: where workspaces live.
    #[serde(skip_serializing_if = "is_default")]
    pub main_storage: String,
    /// Key into `available_resources`: where jobs run (empty: no jobs).
    pub main_resource: String,
    /// Login and account-mapping methods.
    pub available_user_authentication: BTreeMap<String, UserAuthentication>,
    /// Storage systems.
    pub available_storage: BTreeMap<String, StorageConfig>,
    /// Compute resources (used by the job part).
    pub available_resources: BTreeMap<String, Value>,
    /// Job types.
    pub available_job_types: BTreeMap<String, JobType>,
    /// Resource options users may set, with their validation.
    pub parameters: Vec<Parameter>,
    /// What the original kept in `django_config.json`.
    pub server: ServerConfig,
}

/// An entry of `available_user_authentication`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAuthentication {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `LocalUserAuthentication` or `GlobusUserAuthentication`.
    pub user_authentication_type: String,
    /// Provider settings (`introspection_url`, `userinfo_url` for Globus).
    #[serde(default)]
    pub connection_details: Value,
    /// Globus: the client id used to introspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Globus: the client secret used to introspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Globus: `token` (introspection; `oauth` is not offered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_type: Option<String>,
    /// Globus: groups one of which a user must be in (checked at every login).
    #[serde(default)]
    pub allowed_globus_groups: Vec<String>,
}

/// How users map to accounts of the storage system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountMapping {
    /// Each user is the OS account of the same name (the original).
    #[default]
    Os,
    /// Every user's files belong to the account running uws (development, `tessera dev`).
    Service,
}

/// An entry of `available_storage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageConfig {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `LocalFileSystemStorage`, or `HubmapLocalFileSystemStorage` (with
    /// `connection_details.root_url`, the ingest API that resolves `dataset_uuid`s).
    pub storage_type: String,
    /// Key into `available_user_authentication` (the account mapping).
    #[serde(default)]
    pub user_authentication: String,
    /// The directory every workspace lives under.
    pub root_dir: PathBuf,
    /// Storage settings.
    #[serde(default)]
    pub connection_details: Value,
    /// Addition: directories symlink sources must lie in (none: no symlinks).
    #[serde(default)]
    pub dataset_roots: Vec<PathBuf>,
    /// Addition: how users map to OS accounts.
    #[serde(default)]
    pub account_mapping: AccountMapping,
    /// Addition: run `useradd` for users without an OS account.
    #[serde(default)]
    pub create_users: bool,
    /// Addition: the lowest uid a user may map to (system accounts are refused).
    #[serde(default = "default_min_uid")]
    pub min_uid: u32,
}

impl StorageConfig {
    /// The ingest API that resolves `dataset_uuid`s: `connection_details.root_url` of a
    /// `HubmapLocalFileSystemStorage`, when it is an http(s) URL.
    pub fn dataset_root_url(&self) -> Option<&str> {
        if self.storage_type != HUBMAP_STORAGE {
            return None;
        }
        self.connection_details
            .get("root_url")
            .and_then(Value::as_str)
            .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
    }
}

fn default_min_uid() -> u32 {
    1000
}

/// An entry of `available_job_types`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobType {
    /// Display name.
    pub name: String,
    /// The job class, e.g. `JupyterLabJob`.
    pub job_type: String,
    /// Settings per resource key.
    #[serde(default)]
    pub environment_details: Value,
}

/// An entry of `parameters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// Label.
    pub display_name: String,
    /// Help text.
    #[serde(default)]
    pub description: String,
    /// The option name.
    pub variable_name: String,
    /// The default shown to users.
    #[serde(default)]
    pub default_value: Value,
    /// How values are checked.
    pub validation: Validation,
}

/// A parameter's validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// `int`, `bool`, `str` or `float`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Lowest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    /// Highest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    /// Whether it must be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

/// The `server` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Listen address, CORS and the rest of the HTTP stack.
    #[serde(flatten)]
    pub http: HttpConfig,
    /// Logging.
    #[serde(flatten)]
    pub log: LogConfig,
    /// MongoDB, when `mongo_dsn` is set.
    #[serde(flatten)]
    pub mongo: MongoConfig,
    /// The embedded store otherwise.
    #[serde(flatten)]
    pub embedded: EmbeddedConfig,
    /// Seconds a user token lives (the original's never expired).
    pub token_lifetime_seconds: u64,
    /// Seconds between polls of a running job (the original busy-polled).
    pub job_poll_interval_seconds: u64,
    /// Every user's disk space limit in bytes (0: unlimited).
    pub quota_disk_space_bytes: i64,
    /// Every user's core-hour limit (0: unlimited).
    pub quota_core_hours: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig {
                cors_allowed_origins: Some(vec!["*".into()]),
                cors_allowed_methods: Some(vec!["*".into()]),
                cors_allowed_headers: Some(vec!["*".into()]),
                ..HttpConfig::default()
            },
            log: LogConfig::default(),
            mongo: MongoConfig {
                db_name: "uws".into(),
                ..MongoConfig::default()
            },
            embedded: EmbeddedConfig::default(),
            token_lifetime_seconds: 86_400,
            job_poll_interval_seconds: 5,
            quota_disk_space_bytes: 0,
            quota_core_hours: 0.0,
        }
    }
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        message: message.into(),
    }
}

impl UwsConfig {
    /// A single-machine setup: local login (`local`), workspaces under `root_dir` owned by
    /// the account running uws, symlinks into `dataset_roots`, one job type
    /// (`jupyter_lab`). `tessera dev` runs this.
    pub fn local(root_dir: PathBuf, dataset_roots: Vec<PathBuf>) -> Self {
        Self {
            api_user_authentication: "local".into(),
            main_storage: "local".into(),
            available_user_authentication: BTreeMap::from([(
                "local".into(),
                UserAuthentication {
                    name: "Local".into(),
                    user_authentication_type: LOCAL_AUTH.into(),
                    connection_details: Value::Object(serde_json::Map::new()),
                    client_id: None,
                    client_secret: None,
                    authentication_type: None,
                    allowed_globus_groups: Vec::new(),
                },
            )]),
            available_storage: BTreeMap::from([(
                "local".into(),
                StorageConfig {
                    name: "Local".into(),
                    storage_type: LOCAL_STORAGE.into(),
                    user_authentication: "local".into(),
                    root_dir,
                    connection_details: Value::Object(serde_json::Map::new()),
                    dataset_roots,
                    account_mapping: AccountMapping::Service,
                    create_users: false,
                    min_uid: 0,
                },
            )]),
            main_resource: "local".into(),
            available_resources: BTreeMap::from([(
                "local".into(),
                serde_json::json!({
                    "name": "Local",
                    "resource_type": LOCAL_RESOURCE,
                    "storage": "local",
                    "user_authentication": "local",
                    "parameter_mapping": {"num_cpus": "num_cpus"},
                }),
            )]),
            available_job_types: BTreeMap::from([(
                "jupyter_lab".into(),
                JobType {
                    name: "JupyterLab".into(),
                    job_type: "JupyterLabJob".into(),
                    environment_details: Value::Object(serde_json::Map::new()),
                },
            )]),
            ..Self::default()
        }
    }

    /// The main storage entry.
    pub fn storage(&self) -> Result<&StorageConfig> {
        self.available_storage
            .get(&self.main_storage)
            .ok_or_else(|| invalid("main_storage", "names no entry of available_storage"))
    }

    /// The login method.
    pub fn login(&self) -> Result<&UserAuthentication> {
        self.available_user_authentication
            .get(&self.api_user_authentication)
            .ok_or_else(|| {
                invalid(
                    "api_user_authentication",
                    "names no entry of available_user_authentication",
                )
            })
    }

    /// Checks every cross-reference and value; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let login = self.login()?;
        let key = format!(
            "available_user_authentication.{}",
            self.api_user_authentication
        );
        match login.user_authentication_type.as_str() {
            LOCAL_AUTH => {}
            GLOBUS_AUTH => {
                if login.authentication_type.as_deref().unwrap_or("token") != "token" {
                    return Err(invalid(
                        format!("{key}.authentication_type"),
                        "only \"token\" (introspection) is offered",
                    ));
                }
                if login.client_id.as_deref().unwrap_or_default().is_empty() {
                    return Err(invalid(
                        format!("{key}.client_id"),
                        "required for introspection",
                    ));
                }
                if login.client_secret.as_ref().is_none_or(Secret::is_empty) {
                    return Err(invalid(
                        format!("{key}.client_secret"),
                        "required for introspection",
                    ));
                }
                for field in ["introspection_url", "userinfo_url"] {
                    if let Some(url) = login.connection_details.get(field) {
                        let ok = url
                            .as_str()
                            .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
                        if !ok {
                            return Err(invalid(
                                format!("{key}.connection_details.{field}"),
                                "must be an http(s) URL",
                            ));
                        }
                    }
                }
            }
            other => {
                return Err(invalid(
                    format!("{key}.user_authentication_type"),
                    format!("unknown type {other:?} (expected {LOCAL_AUTH} or {GLOBUS_AUTH})"),
                ));
            }
        }
        for (name, auth) in &self.available_user_authentication {
            if ![LOCAL_AUTH, GLOBUS_AUTH].contains(&auth.user_authentication_type.as_str()) {
                return Err(invalid(
                    format!("available_user_authentication.{name}.user_authentication_type"),
                    format!("unknown type {:?}", auth.user_authentication_type),
                ));
            }
        }
        let storage = self.storage()?;
        let skey = format!("available_storage.{}", self.main_storage);
        if storage.storage_type != LOCAL_STORAGE && storage.storage_type != HUBMAP_STORAGE {
            return Err(invalid(
                format!("{skey}.storage_type"),
                format!(
                    "unknown type {:?} (expected {LOCAL_STORAGE} or {HUBMAP_STORAGE})",
                    storage.storage_type
                ),
            ));
        }
        if storage.storage_type == HUBMAP_STORAGE && storage.dataset_root_url().is_none() {
            return Err(invalid(
                format!("{skey}.connection_details.root_url"),
                "must be an http(s) URL (the ingest API)",
            ));
        }
        if !storage.user_authentication.is_empty()
            && !self
                .available_user_authentication
                .contains_key(&storage.user_authentication)
        {
            return Err(invalid(
                format!("{skey}.user_authentication"),
                "names no entry of available_user_authentication",
            ));
        }
        if !storage.root_dir.is_absolute() {
            return Err(invalid(
                format!("{skey}.root_dir"),
                "must be an absolute path",
            ));
        }
        if !storage.root_dir.is_dir() {
            return Err(invalid(
                format!("{skey}.root_dir"),
                format!("{} is not a directory", storage.root_dir.display()),
            ));
        }
        for (i, root) in storage.dataset_roots.iter().enumerate() {
            if !root.is_absolute() || !root.is_dir() {
                return Err(invalid(
                    format!("{skey}.dataset_roots[{i}]"),
                    format!("{} is not an absolute path to a directory", root.display()),
                ));
            }
        }
        if !self.main_resource.is_empty() {
            let Some(resource) = self.available_resources.get(&self.main_resource) else {
                return Err(invalid(
                    "main_resource",
                    "names no entry of available_resources",
                ));
            };
            let kind = resource.get("resource_type").and_then(Value::as_str);
            if kind != Some(LOCAL_RESOURCE) && kind != Some(SLURM_RESOURCE) {
                return Err(invalid(
                    format!("available_resources.{}.resource_type", self.main_resource),
                    format!("must be \"{LOCAL_RESOURCE}\" or \"{SLURM_RESOURCE}\""),
                ));
            }
            if let Some(mapping) = resource.get("parameter_mapping")
                && !mapping
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string))
            {
                return Err(invalid(
                    format!(
                        "available_resources.{}.parameter_mapping",
                        self.main_resource
                    ),
                    "must map option names to names",
                ));
            }
        }
        for (i, p) in self.parameters.iter().enumerate() {
            if !["int", "bool", "str", "float"].contains(&p.validation.kind.as_str()) {
                return Err(invalid(
                    format!("parameters[{i}].validation.type"),
                    format!(
                        "{:?} is not one of int, bool, str, float",
                        p.validation.kind
                    ),
                ));
            }
            if p.variable_name.is_empty() {
                return Err(invalid(
                    format!("parameters[{i}].variable_name"),
                    "must not be empty",
                ));
            }
            for (bound, value) in [("min", &p.validation.min), ("max", &p.validation.max)] {
                if value.as_ref().is_some_and(|v| !v.is_number()) {
                    return Err(invalid(
                        format!("parameters[{i}].validation.{bound}"),
                        "must be a number",
                    ));
                }
            }
        }
        if self.server.token_lifetime_seconds == 0 {
            return Err(invalid(
                "server.token_lifetime_seconds",
                "must be at least 1",
            ));
        }
        if self.server.job_poll_interval_seconds == 0 {
            return Err(invalid(
                "server.job_poll_interval_seconds",
                "must be at least 1",
            ));
        }
        if self.server.quota_disk_space_bytes < 0 {
            return Err(invalid(
                "server.quota_disk_space_bytes",
                "must be 0 (unlimited) or more",
            ));
        }
        if !(self.server.quota_core_hours >= 0.0 && self.server.quota_core_hours.is_finite()) {
            return Err(invalid(
                "server.quota_core_hours",
                "must be 0 (unlimited) or more",
            ));
        }
        tessera_service::backends::validate_store(PREFIX, &self.server.mongo)?;
        Ok(())
    }
}
