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
    Wts(wts::RunningWts),
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

/// The WTS configuration `tessera dev` uses: the identity provider from `--idp-url`, the
/// embedded store, and callers identified by nobody (no Kubernetes): a worker's bearer
/// token identifies it for non-default IdPs.
pub fn wts_config(
    store: &EmbeddedStore,
    keys: &DevKeys,
    args: &DevArgs,
    http: HttpConfig,
) -> wts::WtsConfig {
    let mut config = wts::WtsConfig {
        wts_base_url: format!("http://{}:{}/", http.host, http.port),
        fence_base_url: args.idp_url.clone(),
        encryption_key: keys.wts_encryption_key.as_str().into(),
        secret_key: keys.wts_secret_key.as_str().into(),
        oidc_client_id: args.idp_client_id.clone(),
        oidc_client_secret: args.idp_client_secret.as_str().into(),
        session_cookie_secure: false,
        http,
        ..wts::WtsConfig::default()
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
    let mut services = vec![RunningService {
        name: "wps",
        url: running.url().unwrap_or_default(),
        handle: Handle::Wps(running),
    }];
    // WTS puts its own URL into redirect URIs, so it needs its port before it starts.
    let http = http(args, 1);
    let http = if http.port == 0 {
        HttpConfig {
            port: free_port(&http.host)?,
            ..http
        }
    } else {
        http
    };
    match wts::start_dev(wts_config(store, keys, args, http), store.clone()).await {
        Ok(running) => services.push(RunningService {
            name: "wts",
            url: running.url().unwrap_or_default(),
            handle: Handle::Wts(running),
        }),
        Err(e) => {
            stop_all(services).await?;
            return Err(Error::Service(format!("wts: {e}")));
        }
    }
    Ok(services)
}

/// Stops every service gracefully.
pub async fn stop_all(services: Vec<RunningService>) -> Result<()> {
    for service in services {
        match service.handle {
            Handle::Wps(running) => running
                .stop()
                .await
                .map_err(|e| Error::Service(format!("wps: {e}")))?,
            Handle::Wts(running) => running
                .stop()
                .await
                .map_err(|e| Error::Service(format!("wts: {e}")))?,
        }
    }
    Ok(())
}

/// A port that was free a moment ago on `host`.
fn free_port(host: &str) -> Result<u16> {
    std::net::TcpListener::bind((host, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| Error::Io {
            path: format!("{host}:0").into(),
            source,
        })
}
