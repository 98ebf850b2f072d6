//! Starting a prepared [`Core`] (`tessera-service`'s runtime): the REST API and the purge
//! task; [`start_dev`] for tests and tools that bring their own embedded store.

use tessera_embedded::EmbeddedStore;
use tessera_service::Parts;

use crate::Result;
use crate::config::WtsConfig;
use crate::prepare::{Core, Overrides, prepare};

/// A running service: [`tessera_service::Running::stop`] it, or `wait` for a stop signal.
pub type RunningWts = tessera_service::Running<Core>;

/// Starts the REST API and the purge task on a prepared core.
pub async fn start(core: Core) -> Result<RunningWts> {
    tessera_service::start(core, Parts::ALL).await
}

/// Starts the service on `store`. The required keys (`wts_base_url`, `fence_base_url`,
/// `encryption_key`, `secret_key`, `oidc_client_id`, `oidc_client_secret`) must be set;
/// `identity_source: auto` uses `static_identities` or nobody outside a cluster.
///
/// ```no_run
/// # async fn demo(store: tessera_embedded::EmbeddedStore) -> wts::Result<()> {
/// let mut config = tessera_service::load_config::<wts::Core>()?;
/// config.http.port = 0; // any free port
/// let running = wts::start_dev(config, store).await?;
/// println!("wts at {}", running.url().unwrap_or_default());
/// running.stop().await?;
/// # Ok(()) }
/// ```
pub async fn start_dev(config: WtsConfig, store: EmbeddedStore) -> Result<RunningWts> {
    let overrides = Overrides {
        store: Some(store),
        ..Overrides::default()
    };
    start(prepare(config, overrides).await?).await
}

/// Runs the service with `config` until a stop signal.
pub async fn run(config: WtsConfig) -> Result<()> {
    tessera_service::run::<Core>(config, Parts::ALL).await
}
