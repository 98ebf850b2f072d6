//! The composition root: the document store (embedded or MongoDB), the object store (S3 or
//! local), the keys, the identity core, the datastore and the login providers; and from
//! them the REST part. [`Overrides`] lets tests inject a store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tessera_conductor::{Datastore, Identity, PermissionRow, Settings, SystemClock, User};
use tessera_embedded::{EmbeddedStore, LocalObjectStore};
use tessera_http::HttpStack;
use tessera_kit::dao::{DaoFactory, JsonDao};
use tessera_service::objects::open_objects;
use tessera_service::{Backends, Part};

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
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("dao_factory", &self.dao_factory)
            .field("store", &self.store)
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
    /// The local object store whose presign scope the REST part mounts (None on S3).
    pub local_objects: Option<LocalObjectStore>,
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
    let factory = Backends::new(PREFIX, &config.mongo, &config.embedded)
        .with_documents(overrides.dao_factory.take())
        .with_embedded(overrides.store.take())
        .documents()
        .await?
        .factory;
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
    let providers = Arc::new(Providers::new(
        &config,
        keys.clone(),
        Duration::from_secs(10),
    )?);
    let rest = RestState {
        identity: identity.clone(),
        datastore: datastore.clone(),
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
        local_objects: objects.local,
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
        let stack = HttpStack::new(self.config.http.clone(), openapi::document())?;
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
