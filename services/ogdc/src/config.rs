//! [`OgdcConfig`]: the original's environment variables (§B10.2) under their own names
//! (`ARGO_NAMESPACE`, `API_ROOT_PATH`, … read without a prefix), plus `OGDC_*` additions.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tessera_config::Secret;
use tessera_embedded::{EmbeddedConfig, LocalObjectsConfig};
use tessera_http::{HttpConfig, LogConfig};
use tessera_mongodb::MongoConfig;
use tessera_s3::S3Config;

use crate::{Error, Result};

/// Environment prefix and YAML file stem: `OGDC_*`, `.ogdc.yaml`.
pub const PREFIX: &str = "ogdc";

/// Keys read from their bare variable, as the original named them.
pub const UNPREFIXED: &[&str] = &[
    "api_root_path",
    "environment",
    "argo_workflows_service_url",
    "argo_namespace",
    "argo_service_account_name",
    "s3_secret_key_id",
    "s3_secret_key_key",
    "internal_s3_endpoint_url",
    "public_s3_endpoint_url",
    "dataone_node_url",
    "access_mode",
    "oidc_client_secrets_file",
];

/// One entry of `allowed_input_pvcs`: a claim's name, or Kubernetes' `{"claimName": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AllowedPvc {
    /// `"name"`.
    Name(String),
    /// `{"claimName": "name"}`.
    Claim {
        /// The claim.
        #[serde(rename = "claimName")]
        claim_name: String,
    },
}

impl AllowedPvc {
    /// The claim's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Name(name) | Self::Claim { claim_name: name } => name,
        }
    }
}

/// Which workflow engine runs recipes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The embedded local executor.
    #[default]
    Local,
    /// Argo Workflows at `argo_workflows_service_url`.
    Argo,
    /// Batch jobs on a Slurm cluster (`slurm_conf`, `slurm_partition`).
    Slurm,
}

/// How callers are authenticated (`ACCESS_MODE` with `OIDC_CLIENT_SECRETS_FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// v0.3.0: users and passwords, `/token`, HS256 tokens (`authenticated` without OIDC).
    Password,
    /// v0.4: bearer access tokens of the OIDC provider (`authenticated` with a secrets file).
    Oidc(OidcSecrets),
    /// `open`: no authentication; every caller is [`ANONYMOUS`], an admin.
    Open,
    /// `read_only`: no authentication; every caller is [`ANONYMOUS`], an admin who may read
    /// everything but neither submit nor cancel.
    ReadOnly,
}

/// The owner of what anonymous callers (`open`, `read_only`) submit.
pub const ANONYMOUS: &str = "anonymous";

/// `OIDC_CLIENT_SECRETS_FILE`: the client's registration at the OIDC provider.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSecrets {
    /// The provider's discovery document, `<issuer>/.well-known/openid-configuration`.
    pub server_metadata_url: String,
    /// This service's client id: tokens must name it in `aud` and `azp`.
    pub client_id: String,
    /// The client secret (the login's code exchange and refresh grant).
    #[serde(default)]
    pub client_secret: String,
    /// The registered redirect URIs: the first is this service's `/authorize`, where the
    /// provider sends the browser back after a login.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl std::fmt::Debug for OidcSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSecrets")
            .field("server_metadata_url", &self.server_metadata_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"**********")
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// The suffix of a discovery URL (OpenID Connect Discovery 1.0 §4).
const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

impl OidcSecrets {
    /// Parses the file's JSON; the error says what is wrong.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let secrets: Self = serde_json::from_str(text).map_err(|e| {
            format!(
                "not JSON of {{server_metadata_url, client_id, client_secret, \
                 redirect_uris}}: {e}"
            )
        })?;
        if secrets.issuer().is_none() {
            return Err(format!(
                "server_metadata_url must be an http(s) URL ending in {DISCOVERY_SUFFIX}, not {:?}",
                secrets.server_metadata_url
            ));
        }
        if secrets.client_id.is_empty() {
            return Err("client_id must not be empty".into());
        }
        match secrets.redirect_uri() {
            Some(uri) if uri.starts_with("http://") || uri.starts_with("https://") => {}
            Some(uri) => {
                return Err(format!(
                    "the first of redirect_uris must be an http(s) URL, not {uri:?}"
                ));
            }
            None => {
                return Err(
                    "redirect_uris must name this service's /authorize (the login's callback)"
                        .into(),
                );
            }
        }
        Ok(secrets)
    }

    /// Where the provider sends the browser back after a login: the first redirect URI.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uris.first().map(String::as_str)
    }

    /// The issuer the metadata URL belongs to: the provider's discovery document MUST name
    /// it as `issuer` (Discovery §4.3), and tokens MUST carry it as `iss`.
    pub fn issuer(&self) -> Option<&str> {
        let url = &self.server_metadata_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return None;
        }
        url.strip_suffix(DISCOVERY_SUFFIX)
            .filter(|issuer| !issuer.ends_with('/') && !issuer.ends_with(':'))
    }
}

/// The OGDC runner's settings.
///
/// With password authentication (the default: `ACCESS_MODE=authenticated` and no
/// `OIDC_CLIENT_SECRETS_FILE`), `jwt_secret_key` (`OGDC_JWT_SECRET_KEY`) and
/// `admin_password` (`OGDC_ADMIN_PASSWORD`) are required: the service refuses to start
/// without them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OgdcConfig {
    /// HS256 key of the access tokens (required with passwords, unused otherwise).
    pub jwt_secret_key: Secret,
    /// The password `admin` is created with (once; never re-synced; required with
    /// passwords, unused otherwise).
    pub admin_password: Secret,
    /// `authenticated` (default), `open` (no authentication) or `read_only` (no
    /// authentication, no submissions or cancels).
    pub access_mode: String,
    /// A JSON file `{server_metadata_url, client_id, client_secret, redirect_uris}`: when
    /// set (and `access_mode` is `authenticated`), callers bring the provider's access tokens
    /// instead of logging in at `/token`.
    pub oidc_client_secrets_file: String,
    /// The scope an OIDC access token needs for the admin routes; `/login` asks for it
    /// besides `openid email profile`.
    pub scope_admin: String,
    /// The key of the login session cookie (`/login` to `/authorize`) in OIDC mode; empty
    /// for a random key per process (a login then cannot finish at another process or
    /// after a restart).
    pub secret_key: Secret,
    /// Seconds a request to the OIDC provider (discovery, keys) may take.
    pub oidc_timeout_seconds: u64,
    /// Least seconds between two fetches of the provider's keys (a token naming an unknown
    /// key triggers one).
    pub jwks_min_refresh_seconds: u64,
    /// Minutes an access token is valid.
    pub access_token_minutes: u32,
    /// Argon2id iterations (the original: 3).
    pub argon2_t: u32,
    /// Argon2id memory in KiB (the original: 65536).
    pub argon2_m_kib: u32,
    /// Argon2id lanes (the original: 4).
    pub argon2_p: u32,
    /// Password hashes computed at once; more logins wait (bounds memory and CPU).
    pub password_workers: usize,
    /// `local`, `dev` or other; informational (the original picked image pull policies).
    pub environment: String,
    /// Where the embedded store, the local objects, the workflow volume and work
    /// directories live.
    pub data_dir: PathBuf,
    /// The public URL of this service (for the local object store's signed URLs); empty
    /// for `http://<host>:<port>`.
    pub public_url: String,
    /// Which engine runs recipes: `local`, `argo` or `slurm`.
    pub engine: EngineKind,
    /// The Slurm engine's `slurm.conf`; empty keeps the process's `SLURM_CONF` (or
    /// Slurm's default).
    pub slurm_conf: String,
    /// The Slurm partition runs go to; empty for the cluster's default.
    pub slurm_partition: String,
    /// The time limit of a run's Slurm job, in minutes.
    pub slurm_time_limit_minutes: u32,
    /// Argo Server (not used by the local engine).
    pub argo_workflows_service_url: String,
    /// Bearer token for the Argo Server; empty sends no `Authorization` (server auth mode).
    pub argo_token: Secret,
    /// Milliseconds between polls of helper workflows (the original: 5 s).
    pub argo_poll_interval_ms: u64,
    /// The workflow volume's claim (`pvc` outputs, the publication check); `pvc_mount`
    /// inputs may read it.
    pub workflow_pvc_name: String,
    /// Other claims `pvc_mount` inputs may read: a JSON list of names or `{"claimName":
    /// …}` objects (`OGDC_ALLOWED_INPUT_PVCS`, as the original).
    pub allowed_input_pvcs: Vec<AllowedPvc>,
    /// Where the local executor and Slurm find an input claim's files: `<pvc_root>/<claim>/`
    /// (the workflow claim is the workflow volume); empty for `<data_dir>/pvcs`.
    pub pvc_root: String,
    /// Argo namespace.
    pub argo_namespace: String,
    /// Service account of the workflows.
    pub argo_service_account_name: String,
    /// Image tag of the runner image.
    pub runner_image_tag: String,
    /// Runs (and Argo tasks) at once.
    pub max_parallel_limit: usize,
    /// Directory under which local `recipe_path`s may lie; empty allows none (https only).
    pub recipe_local_root: String,
    /// Allow recipe and input URLs on loopback or private addresses (tests, labs); http://
    /// is then allowed for them too.
    pub allow_private_urls: bool,
    /// Largest input file the local executor fetches, in bytes.
    pub input_max_bytes: u64,
    /// Seconds one input download may take.
    pub input_timeout_seconds: u64,
    /// Seconds one recipe command may run.
    pub command_timeout_seconds: u64,
    /// Unix account (uid) the local executor runs commands as when the service runs as
    /// root; `nobody` by default.
    pub run_as_uid: u32,
    /// Its group.
    pub run_as_gid: u32,
    /// S3 access key id of the output bucket (S3 when `internal_s3_endpoint_url` is set).
    pub s3_secret_key_id: String,
    /// S3 secret key.
    pub s3_secret_key_key: Secret,
    /// S3 endpoint as the service reaches it.
    pub internal_s3_endpoint_url: String,
    /// S3 endpoint as users reach it; replaces the internal one in `/output` URLs.
    pub public_s3_endpoint_url: String,
    /// Output bucket.
    pub s3_bucket: String,
    /// S3 region.
    pub s3_region: String,
    /// DataONE member node (dataone inputs).
    pub dataone_node_url: String,
    /// HTTP server.
    #[serde(flatten)]
    pub http: HttpConfig,
    /// Logging.
    #[serde(flatten)]
    pub log: LogConfig,
    /// MongoDB (when `mongo_dsn` is set), else the embedded store under `data_dir`.
    #[serde(flatten)]
    pub mongo: MongoConfig,
}

impl Default for OgdcConfig {
    fn default() -> Self {
        Self {
            jwt_secret_key: Secret::default(),
            admin_password: Secret::default(),
            access_mode: "authenticated".into(),
            oidc_client_secrets_file: String::new(),
            scope_admin: "ogdc:admin".into(),
            secret_key: Secret::default(),
            oidc_timeout_seconds: 10,
            jwks_min_refresh_seconds: 60,
            access_token_minutes: 30,
            argon2_t: 3,
            argon2_m_kib: 65536,
            argon2_p: 4,
            password_workers: 2,
            environment: "local".into(),
            data_dir: PathBuf::from(".tessera/ogdc"),
            public_url: String::new(),
            engine: EngineKind::Local,
            slurm_conf: String::new(),
            slurm_partition: String::new(),
            slurm_time_limit_minutes: 60,
            argo_workflows_service_url: "http://localhost:2746".into(),
            argo_token: Secret::default(),
            argo_poll_interval_ms: 5000,
            workflow_pvc_name: "cephfs-qgnet-ogdc-workflow-pvc".into(),
            allowed_input_pvcs: Vec::new(),
            pvc_root: String::new(),
            argo_namespace: "qgnet".into(),
            argo_service_account_name: "argo-workflow".into(),
            runner_image_tag: "latest".into(),
            max_parallel_limit: 5,
            recipe_local_root: String::new(),
            allow_private_urls: false,
            input_max_bytes: 1 << 30,
            input_timeout_seconds: 600,
            command_timeout_seconds: 3600,
            run_as_uid: 65534,
            run_as_gid: 65534,
            s3_secret_key_id: String::new(),
            s3_secret_key_key: Secret::default(),
            internal_s3_endpoint_url: String::new(),
            public_s3_endpoint_url: String::new(),
            s3_bucket: "argo-workflows".into(),
            s3_region: "us-east-1".into(),
            dataone_node_url: "https://arcticdata.io/metacat/d1/mn".into(),
            http: HttpConfig {
                port: 8000,
                ..HttpConfig::default()
            },
            log: LogConfig::default(),
            mongo: MongoConfig {
                db_name: "ogdc".into(),
                ..MongoConfig::default()
            },
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> Error {
    Error::Config {
        key,
        message: message.into(),
    }
}

impl OgdcConfig {
    /// The authentication `access_mode` and `oidc_client_secrets_file` select; the secrets
    /// file is read here. The error names the variable at fault.
    pub fn auth(&self) -> Result<Auth> {
        match self.access_mode.as_str() {
            "authenticated" => {}
            "open" => return Ok(Auth::Open),
            "read_only" => return Ok(Auth::ReadOnly),
            other => {
                return Err(invalid(
                    "access_mode",
                    format!("must be authenticated, open or read_only, not {other:?}"),
                ));
            }
        }
        if self.oidc_client_secrets_file.is_empty() {
            return Ok(Auth::Password);
        }
        let path = &self.oidc_client_secrets_file;
        let text = std::fs::read_to_string(path).map_err(|e| {
            invalid(
                "oidc_client_secrets_file",
                format!("cannot read {path}: {e}"),
            )
        })?;
        OidcSecrets::parse(&text)
            .map(Auth::Oidc)
            .map_err(|e| invalid("oidc_client_secrets_file", format!("{path}: {e}")))
    }

    /// Checks what loading cannot; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let auth = self.auth()?;
        if auth == Auth::Password {
            if self.jwt_secret_key.expose().is_empty() {
                return Err(invalid("jwt_secret_key", "must be set"));
            }
            if self.admin_password.expose().is_empty() {
                return Err(invalid("admin_password", "must be set"));
            }
        }
        if matches!(auth, Auth::Oidc(_)) && self.scope_admin.trim().is_empty() {
            return Err(invalid("scope_admin", "must not be empty"));
        }
        if self.oidc_timeout_seconds == 0 {
            return Err(invalid("oidc_timeout_seconds", "must be at least 1"));
        }
        if self.access_token_minutes == 0 {
            return Err(invalid("access_token_minutes", "must be at least 1"));
        }
        if self.password_workers == 0 {
            return Err(invalid("password_workers", "must be at least 1"));
        }
        if self.max_parallel_limit == 0 {
            return Err(invalid("max_parallel_limit", "must be at least 1"));
        }
        if self.engine == EngineKind::Argo
            && !(self.argo_workflows_service_url.starts_with("http://")
                || self.argo_workflows_service_url.starts_with("https://"))
        {
            return Err(invalid(
                "argo_workflows_service_url",
                "must be an http:// or https:// URL",
            ));
        }
        if self.engine == EngineKind::Slurm {
            if self.slurm_time_limit_minutes == 0 {
                return Err(invalid("slurm_time_limit_minutes", "must be at least 1"));
            }
            if !self.slurm_conf.is_empty() && !PathBuf::from(&self.slurm_conf).is_file() {
                return Err(invalid("slurm_conf", "must name an existing file"));
            }
        }
        if !self.pvc_root.is_empty() && !PathBuf::from(&self.pvc_root).is_absolute() {
            return Err(invalid("pvc_root", "must be an absolute path"));
        }
        for claim in &self.allowed_input_pvcs {
            if !tessera_recipes::recipe::is_dns_label(claim.name()) {
                return Err(invalid(
                    "allowed_input_pvcs",
                    format!("{:?} is not a claim name (a DNS label)", claim.name()),
                ));
            }
        }
        if !self.recipe_local_root.is_empty()
            && !PathBuf::from(&self.recipe_local_root).is_absolute()
        {
            return Err(invalid("recipe_local_root", "must be an absolute path"));
        }
        for (key, url) in [
            ("public_url", &self.public_url),
            ("internal_s3_endpoint_url", &self.internal_s3_endpoint_url),
            ("public_s3_endpoint_url", &self.public_s3_endpoint_url),
        ] {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(key, "must be an http:// or https:// URL"));
            }
        }
        tessera_service::backends::validate_store(PREFIX, &self.mongo)?;
        Ok(())
    }

    /// The embedded store's settings (`<data_dir>/store/ogdc.sqlite`). The store keeps its
    /// directory private (0700), so it has one of its own: the local executor's work and
    /// volume directories beside it must stay reachable by the account recipes run as.
    pub fn embedded(&self) -> EmbeddedConfig {
        EmbeddedConfig {
            embedded_db_path: self.data_dir.join("store").join("ogdc.sqlite"),
        }
    }

    /// The base URL users reach this service at.
    pub fn base_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}:{}", self.http.host, self.http.port)
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }

    /// The local object store (outputs without S3), under `<data_dir>/objects`.
    pub fn local_objects(&self, base_url: &str) -> LocalObjectsConfig {
        LocalObjectsConfig {
            objects_root: self.data_dir.join("objects"),
            objects_public_url: format!(
                "{}{}/objects",
                base_url,
                self.http.api_root_path.trim_end_matches('/')
            ),
            objects_signing_key: Secret::default(),
        }
    }

    /// S3 for outputs, when `internal_s3_endpoint_url` is set.
    pub fn s3(&self) -> S3Config {
        if self.internal_s3_endpoint_url.is_empty() {
            return S3Config::default();
        }
        S3Config {
            s3_endpoint_url: self.internal_s3_endpoint_url.clone(),
            s3_region: self.s3_region.clone(),
            s3_bucket: self.s3_bucket.clone(),
            s3_access_key_id: self.s3_secret_key_id.clone(),
            s3_secret_access_key: self.s3_secret_key_key.clone(),
            ..S3Config::default()
        }
    }

    /// The workflow volume of the local executor (`pvc` outputs).
    pub fn volume_dir(&self) -> PathBuf {
        self.data_dir.join("volume")
    }

    /// The claims `pvc_mount` inputs may read, and where the local executor and Slurm find
    /// them.
    pub fn input_claims(&self) -> crate::engines::steps::Claims {
        crate::engines::steps::Claims {
            workflow_claim: self.workflow_pvc_name.clone(),
            workflow_dir: self.volume_dir(),
            allowed: self
                .allowed_input_pvcs
                .iter()
                .map(|c| c.name().to_owned())
                .collect(),
            root: if self.pvc_root.is_empty() {
                self.data_dir.join("pvcs")
            } else {
                PathBuf::from(&self.pvc_root)
            },
        }
    }

    /// The work directories of the local executor.
    pub fn work_dir(&self) -> PathBuf {
        self.data_dir.join("work")
    }
}
