//! Running the service: the REST API and the purge task until a stop signal; and
//! [`start_dev`] for `tessera dev`.

use std::fmt;

use tessera_embedded::EmbeddedStore;
use tessera_http::{RunningServer, shutdown_signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::WtsConfig;
use crate::prepare::{Core, Overrides, prepare};
use crate::{Error, Result};

/// A running service: stop it with [`RunningWts::stop`], or [`RunningWts::wait`] for a stop
/// signal.
pub struct RunningWts {
    core: Core,
    server: Option<RunningServer>,
    purge: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for RunningWts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningWts")
            .field("url", &self.url())
            .field("purge", &self.purge.is_some())
            .finish_non_exhaustive()
    }
}

/// Starts the REST API and the purge task on a prepared core.
pub async fn start(core: Core) -> Result<RunningWts> {
    let (shutdown, receiver) = watch::channel(false);
    let server = core.serve_rest().await?;
    let purge = core.spawn_purge(receiver);
    Ok(RunningWts {
        core,
        server: Some(server),
        purge,
        shutdown,
    })
}

/// Starts the service on `store` for `tessera dev`. The required keys (`wts_base_url`,
/// `fence_base_url`, `encryption_key`, `secret_key`, `oidc_client_id`,
/// `oidc_client_secret`) must be set; `identity_source: auto` uses `static_identities` or
/// nobody outside a cluster.
///
/// ```no_run
/// # async fn demo(store: tessera_embedded::EmbeddedStore) -> wts::Result<()> {
/// let mut config = wts::WtsConfig::load()?;
/// config.http.port = 0; // any free port
/// let running = wts::start_dev(config, store).await?;
/// println!("wts at {}", running.url().unwrap_or_default());
/// running.stop().await?;
/// # Ok(()) }
/// ```
pub async fn start_dev(config: WtsConfig, store: EmbeddedStore) -> Result<RunningWts> {
    let core = prepare(
        config,
        Overrides {
            store: Some(store),
            ..Overrides::default()
        },
    )
    .await?;
    start(core).await
}

impl RunningWts {
    /// `http://host:port` of the REST API.
    pub fn url(&self) -> Option<String> {
        self.server.as_ref().map(RunningServer::url)
    }

    /// The parts the service runs on.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Waits until a stop signal or the server stopping; then stops the purge task.
    pub async fn wait(mut self) -> Result<()> {
        let server = self.server.take();
        let handle = server.as_ref().map(RunningServer::handle);
        let result = tokio::select! {
            () = shutdown_signal() => Ok(()),
            r = async move {
                match server {
                    Some(server) => server.wait().await.map_err(Error::from),
                    None => std::future::pending().await,
                }
            } => r,
        };
        if let Some(handle) = handle {
            handle.stop(true).await;
        }
        let _ = self.shutdown.send(true);
        if let Some(purge) = self.purge.take() {
            let _ = purge.await;
        }
        result
    }

    /// Stops the REST server (letting in-flight requests finish) and the purge task.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.shutdown.send(true);
        let server = match self.server.take() {
            Some(server) => server.stop(true).await.map_err(Error::from),
            None => Ok(()),
        };
        if let Some(purge) = self.purge.take() {
            let _ = purge.await;
        }
        server
    }
}

/// Runs the service with `config` until a stop signal.
pub async fn run(config: WtsConfig) -> Result<()> {
    let core = prepare(config, Overrides::default()).await?;
    let running = start(core).await?;
    if let Some(url) = running.url() {
        tracing::info!(%url, "workspace token service listening");
    }
    running.wait().await
}
