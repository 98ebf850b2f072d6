//! [`ConductorConfig`]: every setting, as flat keys read from `.os.yaml` and `OS_<KEY>`, so
//! that the original's variables (`OS_BASE_URL`, `OS_ACCESS_KEY_ID`,
//! `OS_SECRET_ACCESS_KEY`, `OS_S3_HOSTNAME`, `OS_S3_PORT`, `OS_STORAGE_BUCKET_NAME`,
//! `OS_CLIENT_API_KEYS`) work as they are; `ACCESS_KEY_EXPIRES_IN` and `USE_FAKE_S3` are
//! aliases of `access_key_expires_in` and `use_fake_s3`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};
use tessera_config::{Secret, is_default};
use tessera_embedded::{EmbeddedConfig, LocalObjectsConfig};
use tessera_http::{HttpConfig, LogConfig};
use tessera_mongodb::MongoConfig;
use tessera_s3::S3Config;

use crate::{Error, Result};

/// Environment prefix and YAML file stem: `OS_*`, `.os.yaml`, `OS_CONFIG_YAML`.
pub const PREFIX: &str = "os";

/// Unprefixed variables of the original: `(variable, key)`.
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("ACCESS_KEY_EXPIRES_IN", "access_key_expires_in"),
    ("USE_FAKE_S3", "use_fake_s3"),
];

/// Google's endpoints, used for a provider named `google` that sets none.
const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// One OpenID Connect provider users can log in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcProvider {
    /// The name in `/user/check`'s `providers` and in `/oauth/<name>_callback`
    /// (`[a-z0-9-]`).
    pub name: String,
    /// The issuer (its discovery document gives the endpoints not set here); empty for
    /// `google`.
    #[serde(default)]
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// The authorization endpoint; empty to discover it.
    #[serde(default)]
    pub authorization_endpoint: String,
    /// The token endpoint; empty to discover it.
    #[serde(default)]
    pub token_endpoint: String,
    /// The scope asked for.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// The redirect URI registered at the provider; empty for
    /// `<base_url>/oauth/<name>_callback`.
    #[serde(default)]
    pub redirect_uri: String,
}

fn default_scope() -> String {
    "openid email profile".to_owned()
}

/// The conductor's settings. `base_url` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConductorConfig {
    /// The public URL of this service (`OS_BASE_URL`), e.g. `https://openspending.org`.
    #[serde(skip_serializing_if = "is_default")]
    pub base_url: String,
    /// The RSA private key (PEM) that signs permission tokens; its public half is served
    /// at `/user/public-key`. Required unless `private_key_file` is set.
    pub private_key: Secret,
    /// A file holding the private key (PEM), instead of `private_key`.
    pub private_key_file: Option<PathBuf>,
    /// The login providers.
    pub oidc_providers: Vec<OidcProvider>,
    /// Origins (`scheme://host[:port]`) a login may return to besides `base_url`'s.
    pub allowed_redirect_origins: Vec<String>,
    /// User ids (md5 of the email) that may manage permissions.
    pub admin_userids: Vec<String>,
    /// API keys as `<userid>:<key>` pairs, comma-separated (`OS_CLIENT_API_KEYS`); kept
    /// only as hashes once loaded.
    pub client_api_keys: Secret,
    /// Seconds a user token is valid (the original: 14 days).
    pub user_token_expires_in: u32,
    /// Seconds a permission token is valid (the original's never expired).
    pub permission_token_expires_in: u32,
    /// Seconds a login may take from `/user/check` to the callback.
    pub login_state_expires_in: u32,
    /// Seconds an upload URL is valid (`ACCESS_KEY_EXPIRES_IN`; at most 7 days).
    pub access_key_expires_in: u32,
    /// The S3 access key id (`OS_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// The S3 secret key (`OS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Secret,
    /// The S3 host (`OS_S3_HOSTNAME`), e.g. `s3.amazonaws.com`.
    pub s3_hostname: String,
    /// The S3 port (`OS_S3_PORT`); null for the scheme's.
    pub s3_port: Option<u16>,
    /// The S3 signing region.
    pub s3_region: String,
    /// The bucket (`OS_STORAGE_BUCKET_NAME`); empty keeps objects in the local store.
    pub storage_bucket_name: String,
    /// Non-empty (`USE_FAKE_S3`): talk plain HTTP to S3.
    pub use_fake_s3: String,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// The collection of users.
    pub users_collection: String,
    /// The collection of permission rows.
    pub permissions_collection: String,
    /// The collection of load jobs.
    pub jobs_collection: String,
    /// The collection of load-job leases.
    pub leases_collection: String,
    /// The collection of package records.
    pub packages_collection: String,
    /// URL prefixes that also stand for the object store's root, besides the datastore's
    /// own (e.g. a CDN in front of the bucket); `/package/upload` accepts only URLs under
    /// these or the datastore's prefixes, and reads them from the object store.
    pub package_url_prefixes: Vec<String>,
    /// Loads that run at once in a process running workers.
    pub load_workers: usize,
    /// Seconds without a heartbeat after which a load is taken over by another worker
    /// (its worker died).
    pub load_lease_seconds: u64,
    /// Seconds between two looks for queued loads (uploads in the same process start at once).
    pub load_poll_seconds: u64,
    /// The topic of `package_loaded`, `package_published` and `package_deleted`.
    pub package_events_topic: String,
    /// The pipeline URLs `/package/run-hooks` may post to (none: the route is refused).
    pub pipeline_urls: Vec<String>,
    /// The largest `size` of `/search/package`.
    pub search_max_size: usize,
    /// Kafka for the package events (empty `kafka_servers`: the embedded event log).
    #[serde(flatten)]
    pub kafka: tessera_service::backends::KafkaSettings,
    /// HTTP server settings.
    #[serde(flatten)]
    pub http: HttpConfig,
    /// Logging settings.
    #[serde(flatten)]
    pub log: LogConfig,
    /// The embedded store (when `mongo_dsn` is empty).
    #[serde(flatten)]
    pub embedded: EmbeddedConfig,
    /// MongoDB.
    #[serde(flatten)]
    pub mongo: MongoConfig,
    /// The local object store (when `storage_bucket_name` is empty).
    #[serde(flatten)]
    pub objects: LocalObjectsConfig,
}

impl Default for ConductorConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            private_key: Secret::default(),
            private_key_file: None,
            oidc_providers: Vec::new(),
            allowed_redirect_origins: Vec::new(),
            admin_userids: Vec::new(),
            client_api_keys: Secret::default(),
            user_token_expires_in: 14 * 24 * 3600,
            permission_token_expires_in: 24 * 3600,
            login_state_expires_in: 600,
            access_key_expires_in: 259_200,
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            s3_hostname: "s3.amazonaws.com".into(),
            s3_port: None,
            s3_region: tessera_s3::DEFAULT_REGION.into(),
            storage_bucket_name: String::new(),
            use_fake_s3: String::new(),
            max_body_bytes: 1 << 20,
            users_collection: "users".into(),
            permissions_collection: "permissions".into(),
            jobs_collection: "package_jobs".into(),
            leases_collection: "package_job_leases".into(),
            packages_collection: "packages".into(),
            package_url_prefixes: Vec::new(),
            load_workers: 2,
            load_lease_seconds: 30,
            load_poll_seconds: 2,
            package_events_topic: "os-conductor-packages".into(),
            pipeline_urls: Vec::new(),
            search_max_size: 1000,
            kafka: tessera_service::backends::KafkaSettings::default(),
            http: HttpConfig {
                port: 8000,
                ..HttpConfig::default()
            },
            log: LogConfig::default(),
            embedded: EmbeddedConfig::default(),
            mongo: MongoConfig {
                db_name: "conductor".into(),
                ..MongoConfig::default()
            },
            objects: LocalObjectsConfig::default(),
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> Error {
    Error::Config {
        key,
        message: message.into(),
    }
}

/// `scheme://host[:port]` of an http(s) URL.
pub fn origin_of(key: &'static str, url: &str) -> Result<String> {
    let parsed = Url::parse(url).map_err(|e| invalid(key, format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(
            key,
            format!("{url:?} must be an http(s) URL with a host"),
        ));
    }
    Ok(parsed.origin().ascii_serialization())
}

impl ConductorConfig {
    /// `base_url` without a trailing `/`.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// Checks what loading cannot; the error names the key. The key pair is checked when
    /// it is read ([`crate::keys::Keys::from_config`]).
    pub fn validate(&self) -> Result<()> {
        origin_of("base_url", &self.base_url)?;
        if self.private_key.expose().trim().is_empty() && self.private_key_file.is_none() {
            return Err(invalid(
                "private_key",
                "no signing key: set private_key (PEM) or private_key_file (`tessera dev` generates one)",
            ));
        }
        for origin in &self.allowed_redirect_origins {
            origin_of("allowed_redirect_origins", origin)?;
        }
        let mut names = BTreeSet::new();
        for provider in &self.oidc_providers {
            let ok = !provider.name.is_empty()
                && provider
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok || !names.insert(provider.name.clone()) {
                return Err(invalid(
                    "oidc_providers",
                    format!(
                        "provider name {:?} must be unique and of [a-z0-9-]",
                        provider.name
                    ),
                ));
            }
            if provider.client_id.is_empty() {
                return Err(invalid(
                    "oidc_providers",
                    format!("provider {:?} has no client_id", provider.name),
                ));
            }
            if provider.issuer.is_empty() && provider.name != "google" {
                return Err(invalid(
                    "oidc_providers",
                    format!("provider {:?} has no issuer", provider.name),
                ));
            }
        }
        self.api_keys()?;
        for (key, value) in [
            ("user_token_expires_in", self.user_token_expires_in),
            (
                "permission_token_expires_in",
                self.permission_token_expires_in,
            ),
            ("login_state_expires_in", self.login_state_expires_in),
            ("access_key_expires_in", self.access_key_expires_in),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        tessera_kit::objects::check_expiry(self.upload_expiry())
            .map_err(|e| invalid("access_key_expires_in", e.to_string()))?;
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if self.uses_s3() {
            if self.access_key_id.is_empty() {
                return Err(invalid(
                    "access_key_id",
                    "required with storage_bucket_name",
                ));
            }
            if self.s3_hostname.is_empty() {
                return Err(invalid("s3_hostname", "required with storage_bucket_name"));
            }
        }
        for (key, value) in [
            ("load_workers", self.load_workers as u64),
            ("load_lease_seconds", self.load_lease_seconds),
            ("load_poll_seconds", self.load_poll_seconds),
            ("search_max_size", self.search_max_size as u64),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.search_max_size > tessera_conductor::search::MAX_SIZE {
            return Err(invalid(
                "search_max_size",
                format!("must be at most {}", tessera_conductor::search::MAX_SIZE),
            ));
        }
        tessera_kit::events::Topic::try_from(self.package_events_topic.as_str())
            .map_err(|e| invalid("package_events_topic", e.to_string()))?;
        for url in self.package_url_prefixes.iter().chain(&self.pipeline_urls) {
            let key = if self.pipeline_urls.contains(url) {
                "pipeline_urls"
            } else {
                "package_url_prefixes"
            };
            origin_of(key, url)?;
        }
        tessera_service::backends::validate_store(PREFIX, &self.mongo)?;
        tessera_service::backends::validate_bus(PREFIX, &self.kafka)?;
        Ok(())
    }

    /// Upload URL lifetime.
    pub fn upload_expiry(&self) -> Duration {
        Duration::from_secs(u64::from(self.access_key_expires_in))
    }

    /// Whether objects go to S3.
    pub fn uses_s3(&self) -> bool {
        !self.storage_bucket_name.trim().is_empty()
    }

    /// `http` with `use_fake_s3`, else `https`.
    pub fn s3_scheme(&self) -> &'static str {
        if self.use_fake_s3.is_empty() {
            "https"
        } else {
            "http"
        }
    }

    /// The S3 fragment of `tessera-s3` these keys make (path-style, as the original).
    pub fn s3(&self) -> S3Config {
        if !self.uses_s3() {
            return S3Config::default();
        }
        let port = self.s3_port.map(|p| format!(":{p}")).unwrap_or_default();
        S3Config {
            s3_endpoint_url: format!("{}://{}{port}", self.s3_scheme(), self.s3_hostname),
            s3_region: self.s3_region.clone(),
            s3_bucket: self.storage_bucket_name.clone(),
            s3_access_key_id: self.access_key_id.clone(),
            s3_secret_access_key: self.secret_access_key.clone(),
            ..S3Config::default()
        }
    }

    /// The prefixes of `/datastore/info` (each gets `/<userid>`): for S3 the original's
    /// eight (http:80 and https:443, path-style and virtual-host style, with and without
    /// the port); for the local store its public URL.
    pub fn info_prefixes(&self) -> Vec<String> {
        if !self.uses_s3() {
            return vec![
                self.objects
                    .objects_public_url
                    .trim_end_matches('/')
                    .to_owned(),
            ];
        }
        let bucket = &self.storage_bucket_name;
        let mut out = Vec::with_capacity(8);
        for (scheme, port) in [("http", 80), ("https", 443)] {
            for (host, path) in [
                (self.s3_hostname.clone(), format!("/{bucket}")),
                (bucket.clone(), String::new()),
            ] {
                out.push(format!("{scheme}://{host}:{port}{path}"));
                out.push(format!("{scheme}://{host}{path}"));
            }
        }
        out
    }

    /// The URL prefixes that stand for the object store's root: the datastore's public
    /// prefixes and `package_url_prefixes`, without trailing `/`.
    pub fn package_prefixes(&self) -> Vec<String> {
        let mut out = self.info_prefixes();
        if self.uses_s3() {
            // Where presigned URLs point: the endpoint, path-style.
            let s3 = self.s3();
            out.push(format!(
                "{}/{}",
                s3.s3_endpoint_url.trim_end_matches('/'),
                self.storage_bucket_name
            ));
        }
        out.extend(
            self.package_url_prefixes
                .iter()
                .map(|p| p.trim_end_matches('/').to_owned()),
        );
        out.sort();
        out.dedup();
        out
    }

    /// Every origin a login may return to.
    pub fn redirect_origins(&self) -> Result<BTreeSet<String>> {
        let mut origins = BTreeSet::from([origin_of("base_url", &self.base_url)?]);
        for origin in &self.allowed_redirect_origins {
            origins.insert(origin_of("allowed_redirect_origins", origin)?);
        }
        Ok(origins)
    }

    /// `client_api_keys` as hash → userid.
    pub fn api_keys(&self) -> Result<BTreeMap<String, String>> {
        let mut keys = BTreeMap::new();
        for entry in self
            .client_api_keys
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (userid, key) = entry
                .split_once(':')
                .filter(|(u, k)| !u.is_empty() && k.len() >= 16)
                .ok_or_else(|| {
                    invalid(
                        "client_api_keys",
                        "entries must be <userid>:<key> with keys of at least 16 characters",
                    )
                })?;
            keys.insert(tessera_conductor::hash_api_key(key), userid.to_owned());
        }
        Ok(keys)
    }

    /// The provider's redirect URI.
    pub fn redirect_uri(&self, provider: &OidcProvider) -> String {
        if provider.redirect_uri.is_empty() {
            format!("{}/oauth/{}_callback", self.base(), provider.name)
        } else {
            provider.redirect_uri.clone()
        }
    }

    /// The provider's issuer (Google's for `google` without one).
    pub fn issuer(provider: &OidcProvider) -> String {
        if provider.issuer.is_empty() {
            GOOGLE_ISSUER.to_owned()
        } else {
            provider.issuer.trim_end_matches('/').to_owned()
        }
    }
}
