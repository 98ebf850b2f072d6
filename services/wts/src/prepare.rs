//! The composition root: builds the providers from [`WtsConfig`] (storage, Fernet, the OIDC
//! clients and key store, the access-token validator, the workspace identity adapter), the
//! [`TokenService`] over them, and from those the REST app and the purge task.
//! [`Overrides`] lets tests inject fakes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{IdentitySource, PREFIX, WtsConfig};
use crate::identity::{KubernetesIdentity, NoIdentity, StaticIdentity};
use crate::rest::aggregate::Aggregator;
use crate::rest::{self, RestState, openapi};
use crate::{Error, Result};
use tessera_embedded::EmbeddedStore;
use tessera_http::HttpStack;
use tessera_kit::dao::{Dao, DaoFactory, JsonDao};
use tessera_oidc::{AccessTokenRules, JwtAccessTokenValidator, KeyStore, OidcClient, SessionCodec};
use tessera_service::{Backends, Part, Role};
use tessera_tokens::{
    AccessTokenValidator, Clock, Fernet, IdentityResolver, Idp, RefreshTokenRecord, Settings,
    SystemClock, TokenExchange, TokenService, refresh_token_spec,
};

/// Replacements for what [`prepare`] would build from the config.
#[derive(Default)]
pub struct Overrides {
    /// A storage provider (instead of the embedded store); e.g. MongoDB.
    pub dao_factory: Option<Arc<dyn DaoFactory>>,
    /// An already open embedded store (instead of opening `embedded_db_path`).
    pub store: Option<EmbeddedStore>,
    /// The clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// The workspace identity adapter.
    pub identity: Option<Arc<dyn IdentityResolver>>,
    /// The access-token validator.
    pub validator: Option<Arc<dyn AccessTokenValidator>>,
    /// IdP clients by IdP name.
    pub exchanges: BTreeMap<String, Arc<dyn TokenExchange>>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("dao_factory", &self.dao_factory)
            .field("store", &self.store)
            .field("clock", &self.clock.is_some())
            .field("identity", &self.identity)
            .field("validator", &self.validator)
            .field("exchanges", &self.exchanges.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The service's parts, built once per process.
pub struct Core {
    /// The validated config.
    pub config: Arc<WtsConfig>,
    /// The domain core.
    pub service: Arc<TokenService>,
    /// The refresh-token collection.
    pub dao: Arc<dyn Dao<RefreshTokenRecord>>,
    /// Which identity adapter runs (`kubernetes`, `static`, `none`, `override`).
    pub identity_source: &'static str,
    rest: RestState,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .field("identity_source", &self.identity_source)
            .finish_non_exhaustive()
    }
}

/// The identity adapter of `config`, and its name.
fn identity(config: &WtsConfig) -> Result<(Arc<dyn IdentityResolver>, &'static str)> {
    let kubernetes_url = config
        .kubernetes_api_url
        .clone()
        .or_else(KubernetesIdentity::in_cluster_url);
    let kubernetes = |url: &str| -> Result<Arc<dyn IdentityResolver>> {
        Ok(Arc::new(KubernetesIdentity::new(
            url,
            &config.kubernetes_token_file,
            &config.kubernetes_ca_file,
            Duration::from_secs(config.idp_timeout_seconds),
        )?))
    };
    let statics = || -> Result<Arc<dyn IdentityResolver>> {
        let (by_ip, by_token) = config.static_identity_map()?;
        Ok(Arc::new(StaticIdentity::new(by_ip, by_token)))
    };
    Ok(match (config.identity_source, kubernetes_url) {
        (IdentitySource::Kubernetes | IdentitySource::Auto, Some(url)) => {
            (kubernetes(&url)?, "kubernetes")
        }
        (IdentitySource::Kubernetes, None) => {
            return Err(Error::Config {
                key: "kubernetes_api_url",
                message:
                    "not running in a cluster: set kubernetes_api_url, or another identity_source"
                        .into(),
            });
        }
        (IdentitySource::Static, _) => (statics()?, "static"),
        (IdentitySource::Auto, None) if !config.static_identities.is_empty() => {
            (statics()?, "static")
        }
        (IdentitySource::Auto | IdentitySource::None, _) => (Arc::new(NoIdentity), "none"),
    })
}

/// Builds every provider and the service. Validates the config first, so a bad key fails
/// here with the key's name.
pub async fn prepare(config: WtsConfig, mut overrides: Overrides) -> Result<Core> {
    config.validate()?;
    let clock = overrides
        .clock
        .take()
        .unwrap_or_else(|| Arc::new(SystemClock));
    let factory = Backends::new(PREFIX, &config.mongo, &config.embedded)
        .with_documents(overrides.dao_factory.take())
        .with_embedded(overrides.store.take())
        .documents()
        .await?
        .factory;
    let dao = JsonDao::open(
        factory.as_ref(),
        refresh_token_spec(&config.collection_name()),
    )
    .await?;
    let cipher =
        Arc::new(
            Fernet::new(config.encryption_key.expose()).map_err(|e| Error::Config {
                key: "encryption_key",
                message: e.to_string(),
            })?,
        );
    let roots = config.ca_bundle()?;
    let http = tessera_oidc::http_client_with_roots(
        Duration::from_secs(config.idp_timeout_seconds),
        &roots,
    )?;
    let keys = Arc::new(KeyStore::new(
        http.clone(),
        Duration::from_secs(config.jwks_refresh_interval_seconds),
    ));
    let validator = match overrides.validator.take() {
        Some(validator) => validator,
        None => Arc::new(JwtAccessTokenValidator::new(
            AccessTokenRules {
                allowed_issuers: config.issuers(),
                audience: config.access_token_audience.clone(),
                algorithms: config.access_token_algorithms.clone(),
                ..AccessTokenRules::default()
            },
            keys.clone(),
            clock.clone(),
        )),
    };
    let (identity, identity_source) = match overrides.identity.take() {
        Some(identity) => (identity, "override"),
        None => identity(&config)?,
    };
    let specs = config.idps()?;
    let mut schemes = BTreeMap::new();
    let mut idps = Vec::with_capacity(specs.len());
    for spec in specs {
        schemes
            .entry(spec.commons_host.clone())
            .or_insert_with(|| spec.commons_scheme.clone());
        let exchange: Arc<dyn TokenExchange> = match overrides.exchanges.remove(&spec.id) {
            Some(exchange) => exchange,
            None => Arc::new(OidcClient::new(
                spec.client,
                http.clone(),
                keys.clone(),
                clock.clone(),
            )?),
        };
        idps.push(Idp {
            id: spec.id,
            name: spec.name,
            base_url: spec.base_url,
            commons_host: spec.commons_host,
            login_url: spec.login_url,
            state_prefix: spec.state_prefix,
            exchange,
        });
    }
    let service = Arc::new(TokenService::new(
        dao.clone(),
        cipher,
        clock.clone(),
        validator,
        identity,
        idps,
        Settings {
            opaque_refresh_token_lifetime: i64::from(config.opaque_refresh_token_lifetime_seconds),
        },
    ));
    let cookie_path = config.http.api_root_path.trim_end_matches('/');
    let rest = RestState {
        service: service.clone(),
        sessions: SessionCodec::new(
            "wts",
            config.secret_key.expose(),
            config.session_cookie_secure,
            config.login_session_seconds,
            if cookie_path.is_empty() {
                "/"
            } else {
                cookie_path
            },
        ),
        clock,
        forwarded_for_hops: config.forwarded_for_hops,
        aggregator: Arc::new(Aggregator::new(
            config.aggregate_endpoint_allowlist.clone(),
            schemes,
            Duration::from_secs(config.aggregate_timeout_seconds),
            &roots,
        )?),
    };
    tracing::info!(
        storage = if config.uses_mongo() { "mongodb" } else { "embedded" },
        collection = %config.collection_name(),
        identity = identity_source,
        idps = service.idps().len(),
        "workspace token service prepared"
    );
    Ok(Core {
        config: Arc::new(config),
        service,
        dao,
        identity_source,
        rest,
    })
}

impl Core {
    /// What the REST handlers share.
    pub fn rest_state(&self) -> RestState {
        self.rest.clone()
    }

    /// The REST API as a part: the routes in the HTTP stack (middleware, error shapes,
    /// `/health`, `/metrics`, OpenAPI, docs).
    pub fn rest_part(&self) -> Result<Part<Error>> {
        let stack = HttpStack::new(self.config.http.clone(), openapi::document)?;
        Ok(Part::rest("rest", stack, rest::routes(self.rest_state())))
    }

    /// The purge of expired refresh tokens as a part (now and every
    /// `purge_interval_seconds`); `None` when purging is off.
    pub fn purge_part(&self) -> Option<Part<Error>> {
        let interval = match self.config.purge_interval_seconds {
            0 => return None,
            secs => Duration::from_secs(secs),
        };
        let service = self.service.clone();
        Some(Part::periodic("purge", Role::Rest, interval, move || {
            let service = service.clone();
            async move {
                if let Err(e) = service.purge_expired().await {
                    tracing::error!(error = %tessera_http::error_chain(&e), "purging expired refresh tokens failed");
                }
            }
        }))
    }
}
