//! The services `tessera dev` runs, each on its embedded defaults, all on one store.
//!
//! Each service gets its defaults, the development keys and the next port; nothing else is
//! read, so that `tessera dev` behaves the same on every machine.

use tessera_embedded::EmbeddedStore;
use tessera_http::HttpConfig;

use crate::dev::{DevArgs, DevKeys};
use crate::{Error, Result};

/// A service running inside `tessera dev`.
#[derive(Debug)]
pub struct RunningService {
    pub name: &'static str,
    pub url: String,
    handle: Handle,
}

#[derive(Debug)]
enum Handle {
    Wps(wps::RunningWps),
}

fn http(args: &DevArgs, index: u16) -> HttpConfig {
    HttpConfig {
        host: args.host.clone(),
        port: if args.base_port == 0 {
            0
        } else {
            args.base_port.saturating_add(index)
        },
        ..HttpConfig::default()
    }
}

/// The WPS configuration `tessera dev` uses.
pub fn wps_config(store: &EmbeddedStore, keys: &DevKeys, args: &DevArgs) -> wps::WpsConfig {
    let mut config = wps::WpsConfig {
        work_package_signing_key: keys.signing_private_jwk.as_str().into(),
        auth_key: keys.auth_public_jwk.clone(),
        http: http(args, 0),
        ..wps::WpsConfig::default()
    };
    config.embedded.embedded_db_path = store.path().to_path_buf();
    config
}

/// Starts every service.
pub async fn start_all(
    store: &EmbeddedStore,
    keys: &DevKeys,
    args: &DevArgs,
) -> Result<Vec<RunningService>> {
    let running = wps::start_dev(wps_config(store, keys, args), store.clone())
        .await
        .map_err(|e| Error::Service(format!("wps: {e}")))?;
    let url = running.url().unwrap_or_default();
    Ok(vec![RunningService {
        name: "wps",
        url,
        handle: Handle::Wps(running),
    }])
}

/// Stops every service gracefully.
pub async fn stop_all(services: Vec<RunningService>) -> Result<()> {
    for service in services {
        match service.handle {
            Handle::Wps(running) => running
                .stop()
                .await
                .map_err(|e| Error::Service(format!("wps: {e}")))?,
        }
    }
    Ok(())
}
