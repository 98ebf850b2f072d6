//! Running parts of a prepared [`Core`] (`tessera-service`'s runtime); [`start_dev`] for
//! tests and tools that bring their own embedded store.

use tessera_embedded::EmbeddedStore;
pub use tessera_service::{Parts, start};

use crate::Result;
use crate::config::WpsConfig;
use crate::prepare::{Core, Overrides, prepare_core};

/// A running service: [`tessera_service::Running::stop`] it, or `wait` for a stop signal
/// or a part ending.
pub type RunningWps = tessera_service::Running<Core>;

/// Starts the REST API, the event consumer (and the purge task when
/// `purge_retention_days` is set) on `store`.
///
/// ```no_run
/// # async fn demo(store: tessera_embedded::EmbeddedStore) -> wps::Result<()> {
/// // or build it; signing and auth keys required
/// let mut config = tessera_service::load_config::<wps::Core>()?;
/// config.http.port = 0; // any free port
/// let running = wps::start_dev(config, store).await?;
/// println!("wps at {}", running.url().unwrap_or_default());
/// running.stop().await?;
/// # Ok(()) }
/// ```
pub async fn start_dev(config: WpsConfig, store: EmbeddedStore) -> Result<RunningWps> {
    let overrides = Overrides {
        store: Some(store),
        ..Overrides::default()
    };
    start(prepare_core(config, overrides).await?, Parts::ALL).await
}

/// Runs `parts` of the service with `config` until a stop signal or a part ending.
pub async fn run(config: WpsConfig, parts: Parts) -> Result<()> {
    tessera_service::run::<Core>(config, parts).await
}
