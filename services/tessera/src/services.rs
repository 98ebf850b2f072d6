//! The services `tessera dev` runs, each on its embedded defaults.

use crate::Result;
use crate::dev::{DevArgs, DevKeys};
use tessera_embedded::EmbeddedStore;

/// A service running inside `tessera dev`.
#[derive(Debug)]
pub struct RunningService {
    pub name: &'static str,
    pub url: String,
    stop: tessera_http::RunningServer,
}

/// Starts every service; ports are `base_port`, `base_port + 1`, … (or any free one for 0).
pub async fn start_all(
    _store: &EmbeddedStore,
    _keys: &DevKeys,
    _args: &DevArgs,
) -> Result<Vec<RunningService>> {
    Ok(Vec::new())
}

/// Stops every service gracefully.
pub async fn stop_all(services: Vec<RunningService>) -> Result<()> {
    for service in services {
        service
            .stop
            .stop(true)
            .await
            .map_err(|e| crate::Error::Service(format!("{}: {e}", service.name)))?;
    }
    Ok(())
}
