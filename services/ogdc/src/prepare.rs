//! The composition root: the store (embedded under `data_dir`, or MongoDB), the object
//! store (S3 or local), the recipe loader, the engine, the [`Runner`] and the [`Access`]
//! mode; with passwords the admin is bootstrapped here, once.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use tessera_embedded::EmbeddedStore;
use tessera_http::HttpStack;
use tessera_kit::dao::{DaoFactory, JsonDao};
use tessera_recipes::runner::Ports;
use tessera_recipes::runs::run_spec;
use tessera_recipes::users::{Cost, Passwords, Tokens, user_spec};
use tessera_recipes::{RecipeLoader, Runner, WorkflowEngine};
use tessera_service::objects::{Objects, open_objects};
use tessera_service::{Backends, Part, Role};

use tessera_oidc::{AccessTokenRules, JwtAccessTokenValidator, KeyStore};
use tessera_tokens::{Clock, SystemClock};

use crate::auth::Access;
use crate::config::{Auth, EngineKind, OgdcConfig, PREFIX};
use crate::dataone::DataoneNode;
use crate::engines::argo::{ArgoEngine, ArgoSettings};
use crate::engines::local::{LocalEngine, LocalSettings, running_as_root};
use crate::engines::slurm::{SlurmEngine, SlurmSettings};
use crate::fetch::{Fetcher, Loader};
use crate::login::Login;
use crate::rest::{self, RestState};
use crate::{Error, Result};

/// Replacements for what [`prepare`] would build.
#[derive(Default)]
pub struct Overrides {
    /// A storage provider (instead of the embedded store).
    pub dao_factory: Option<Arc<dyn DaoFactory>>,
    /// An open embedded store.
    pub store: Option<EmbeddedStore>,
    /// The engine.
    pub engine: Option<Arc<dyn WorkflowEngine>>,
    /// The recipe loader.
    pub loader: Option<Arc<dyn RecipeLoader>>,
    /// The clock OIDC access tokens are checked against.
    pub clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("dao_factory", &self.dao_factory)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// The prepared service.
pub struct Core {
    /// The validated config.
    pub config: Arc<OgdcConfig>,
    /// The use cases.
    pub runner: Runner,
    /// The object store (its local presign scope is mounted at `/objects`).
    pub objects: Objects,
    /// How callers are authenticated.
    pub access: Access,
    /// The browser login (`/login`, `/authorize`, `/refresh`), in OIDC mode only.
    pub login: Option<Arc<Login>>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

fn config_error(key: &'static str) -> impl Fn(String) -> Error {
    move |message| Error::Config { key, message }
}

/// Builds everything from `config`.
pub async fn prepare(config: OgdcConfig, mut overrides: Overrides) -> Result<Core> {
    config.validate()?;
    let auth = config.auth()?;
    let (access, login) = access(&config, &auth, overrides.clock.take())?;
    // Made here with the usual mode, before the store makes its private directory inside.
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| config_error("data_dir")(format!("cannot create it: {e}")))?;
    let factory = Backends::new(PREFIX, &config.mongo, &config.embedded())
        .with_documents(overrides.dao_factory.take())
        .with_embedded(overrides.store.take())
        .documents()
        .await?
        .factory;
    let users = JsonDao::open(factory.as_ref(), user_spec("ogdc_users"))
        .await
        .map_err(tessera_recipes::Error::from)?;
    let runs = JsonDao::open(factory.as_ref(), run_spec("ogdc_runs"))
        .await
        .map_err(tessera_recipes::Error::from)?;
    let objects = open_objects(
        PREFIX,
        &config.s3(),
        &config.local_objects(&config.base_url()),
    )
    .await?;
    let fetcher = Fetcher::new(
        config.allow_private_urls,
        Duration::from_secs(config.input_timeout_seconds),
    );
    let claims = config.input_claims();
    let loader = match overrides.loader.take() {
        Some(loader) => loader,
        None => {
            let loader = Loader::new(
                fetcher.clone(),
                (!config.recipe_local_root.is_empty())
                    .then(|| PathBuf::from(&config.recipe_local_root)),
            )
            .with_claims(claims.clone());
            Arc::new(if config.dataone_node_url.is_empty() {
                loader
            } else {
                loader.with_dataone(DataoneNode::new(&config.dataone_node_url, fetcher.clone()))
            })
        }
    };
    let engine: Arc<dyn WorkflowEngine> = match overrides.engine.take() {
        Some(engine) => engine,
        None if config.engine == EngineKind::Argo => Arc::new(
            ArgoEngine::new(
                ArgoSettings {
                    service_account: config.argo_service_account_name.clone(),
                    image_tag: config.runner_image_tag.clone(),
                    environment: config.environment.clone(),
                    pvc_name: config.workflow_pvc_name.clone(),
                    max_parallel: config.max_parallel_limit,
                },
                &config.argo_workflows_service_url,
                &config.argo_namespace,
                Some(config.argo_token.expose().to_owned()),
                Duration::from_millis(config.argo_poll_interval_ms),
            )
            .map_err(|e| config_error("argo_workflows_service_url")(e.to_string()))?,
        ),
        None if config.engine == EngineKind::Slurm => Arc::new(
            SlurmEngine::new(
                SlurmSettings {
                    work_root: config.work_dir(),
                    volume_root: config.volume_dir(),
                    command_timeout: Duration::from_secs(config.command_timeout_seconds),
                    input_max_bytes: config.input_max_bytes,
                    claims: claims.clone(),
                    run_as: running_as_root().then_some((config.run_as_uid, config.run_as_gid)),
                    partition: (!config.slurm_partition.is_empty())
                        .then(|| config.slurm_partition.clone()),
                    time_limit: Duration::from_secs(
                        u64::from(config.slurm_time_limit_minutes) * 60,
                    ),
                    max_parallel: config.max_parallel_limit,
                },
                tessera_slurm::Slurm::new(tessera_slurm::Settings {
                    conf: (!config.slurm_conf.is_empty()).then(|| config.slurm_conf.clone().into()),
                    ..tessera_slurm::Settings::default()
                }),
                fetcher,
                objects.store.clone(),
            )
            .map_err(|e| config_error("data_dir")(e.to_string()))?,
        ),
        None => Arc::new(
            LocalEngine::new(
                LocalSettings {
                    work_root: config.work_dir(),
                    volume_root: config.volume_dir(),
                    parallel: config.max_parallel_limit,
                    command_timeout: Duration::from_secs(config.command_timeout_seconds),
                    input_max_bytes: config.input_max_bytes,
                    claims: claims.clone(),
                    run_as: running_as_root().then_some((config.run_as_uid, config.run_as_gid)),
                },
                fetcher,
                objects.store.clone(),
            )
            .map_err(|e| config_error("data_dir")(e.to_string()))?,
        ),
    };
    let passwords = Passwords::new(
        Cost {
            t: config.argon2_t,
            m_kib: config.argon2_m_kib,
            p: config.argon2_p,
        },
        config.password_workers,
    )
    .map_err(|e| config_error("argon2_m_kib")(e.to_string()))?;
    // Without passwords no token is ever issued or accepted: a random key keeps it so.
    let jwt_key = match auth {
        Auth::Password => config.jwt_secret_key.expose().as_bytes().to_vec(),
        _ => rand::random::<[u8; 32]>().to_vec(),
    };
    let tokens = Tokens::new(
        &jwt_key,
        chrono::Duration::minutes(i64::from(config.access_token_minutes)),
    )?;
    let runner = Runner::new(
        Ports {
            users,
            runs,
            engine,
            loader,
            objects: objects.store.clone(),
        },
        passwords,
        tokens,
    );
    if auth == Auth::Password {
        runner
            .bootstrap_admin(config.admin_password.expose())
            .await?;
    }
    tracing::info!(
        engine = runner.engine_name(),
        objects = ?objects.kind,
        access = access.name(),
        "ogdc prepared"
    );
    Ok(Core {
        config: Arc::new(config),
        runner,
        objects,
        access,
        login,
    })
}

/// The access mode; in OIDC mode a validator with Keycloak's rules for this client: `iss`
/// the metadata URL's issuer, `aud` containing and `azp` equal to the client id, RS256, no
/// Fence purpose or scope, the owner from `sub`; and the browser login, whose session cookie
/// is signed with `secret_key` (random per process when empty). Nothing is fetched before
/// the first token or login.
fn access(
    config: &OgdcConfig,
    auth: &Auth,
    clock: Option<Arc<dyn Clock>>,
) -> Result<(Access, Option<Arc<Login>>)> {
    Ok(match auth {
        Auth::Password => (Access::Password, None),
        Auth::Open => (Access::Open, None),
        Auth::ReadOnly => (Access::ReadOnly, None),
        Auth::Oidc(secrets) => {
            let issuer = secrets.issuer().ok_or_else(|| {
                config_error("oidc_client_secrets_file")("no issuer in server_metadata_url".into())
            })?;
            let http = tessera_oidc::http_client(Duration::from_secs(config.oidc_timeout_seconds))
                .map_err(|e| config_error("oidc_timeout_seconds")(e.to_string()))?;
            let keys = Arc::new(KeyStore::new(
                http.clone(),
                Duration::from_secs(config.jwks_min_refresh_seconds),
            ));
            let rules = AccessTokenRules {
                allowed_issuers: vec![issuer.to_owned()],
                audience: Some(secrets.client_id.clone()),
                authorized_party: Some(secrets.client_id.clone()),
                algorithms: vec!["RS256".into()],
                purpose: None,
                scope: None,
                username_claim: "sub".into(),
            };
            let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
            let key = match config.secret_key.expose() {
                "" => URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
                key => key.to_owned(),
            };
            let path = match config.http.api_root_path.trim_end_matches('/') {
                "" => "/",
                path => path,
            };
            let login = Login::new(
                secrets,
                &config.scope_admin,
                (&key, config.base_url().starts_with("https://"), path),
                http,
                keys.clone(),
                clock.clone(),
            );
            (
                Access::Oidc {
                    validator: Arc::new(JwtAccessTokenValidator::new(rules, keys, clock)),
                    admin_scope: config.scope_admin.clone(),
                },
                Some(Arc::new(login)),
            )
        }
    })
}

/// How often the REST process looks for runs that a stop cut off before their start.
const RESUME_INTERVAL: Duration = Duration::from_secs(60);

impl Core {
    /// Starts again, now and every minute, the runs a stop cut off before their start
    /// (`Runner::resume`); with the REST API, which starts runs.
    pub fn resume_part(&self) -> Part<Error> {
        let runner = self.runner.clone();
        Part::periodic("resume", Role::Rest, RESUME_INTERVAL, move || {
            let runner = runner.clone();
            async move {
                match runner.resume(chrono::Utc::now()).await {
                    Ok(0) => {}
                    Ok(resumed) => tracing::info!(runs = resumed, "runs started again"),
                    Err(e) => tracing::error!(error = %e, "looking for cut-off runs failed"),
                }
            }
        })
    }

    /// The REST API as a part.
    pub fn rest_part(&self) -> Result<Part<Error>> {
        let stack = HttpStack::new(self.config.http.clone(), rest::openapi::document)?;
        let state = RestState {
            runner: self.runner.clone(),
            access: self.access.clone(),
            login: self.login.clone(),
            internal_s3: self.config.internal_s3_endpoint_url.clone(),
            public_s3: self.config.public_s3_endpoint_url.clone(),
        };
        let local = self.objects.local.clone();
        Ok(Part::rest(
            "rest",
            stack,
            move |cfg: &mut actix_web::web::ServiceConfig| {
                rest::routes(state.clone(), local.clone(), cfg)
            },
        ))
    }
}
